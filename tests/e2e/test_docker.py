"""The seed's Docker commands against the real engine (docker.io 20.10) using hostnet's plugins."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "netns"))
from helpers import ask, ping, wait_listening  # noqa: E402

from conftest import World  # noqa: E402
from lab import SEGMENT, in_ns  # noqa: E402

HOSTNET_IPAM = ["network", "create", "-d", "nat", "--ipam-driver", "hostnet-ipam"]
V4, V6 = "172.30.0.0/24", "fd12:3456::/64"


def assert_clean_text(stderr: str) -> None:
    """A plugin error reaches the docker CLI as hostnet's sentence, not as the JSON that
    carried it, a Python traceback or an internal error."""
    for bad in ('{"', "Traceback", "internal error", "Exception"):
        assert bad not in stderr, stderr


def hostnet_net(w: World, subnet: str) -> dict[str, Any]:
    """hostnet's view of the network Docker made with ``subnet`` (named by its Docker id)."""
    name = next(
        n["Name"]
        for n in w.d.json("network", "ls", "--format", "json")
        if subnet in (n["Subnet"], n["SubnetIPv6"])
    )
    view: dict[str, Any] = w.d.json("network", "inspect", name)[0]
    return view


def node_ip(ns: str) -> str:
    out = in_ns(ns, "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
    return out.split(" inet ")[1].split("/")[0]


def pinged(w: World, name: str, ip: str) -> bool:
    return "1 packets received" in w.exec(name, "ping", "-c1", "-W2", ip)


@contextlib.contextmanager
def segment_ipv6(w: World) -> Iterator[str]:
    """IPv6 addresses on the lab segment for the docker host and the client, removed
    after; yields the docker host's."""
    added = []
    try:
        for ns, ip in ((w.d.host, w.host_ip), (w.client, node_ip(w.client))):
            added.append((ns, w.lab.with_ipv6(ns, ip)))
        yield added[0][1]
    finally:
        for ns, ip6 in added:
            in_ns(ns, "ip", "-6", "addr", "del", f"{ip6}/64", "dev", "eth0", check=False)


def test_seed_network_commands_and_static_ip(w: World) -> None:
    w.dk.docker(
        "network",
        "create",
        "-d",
        "nat",
        "--subnet=172.16.1.0/24",
        "--gateway=172.16.1.1",
        "CustomNat1",
    )
    w.dk.docker(
        "network",
        "create",
        "-d",
        "nat",
        "--subnet=172.16.2.0/24",
        "--gateway=172.16.2.1",
        "CustomNat2",
    )
    ls = w.dk.docker("network", "ls", "--format", "{{.Name}} {{.Driver}}").stdout.split("\n")
    assert "CustomNat1 nat" in ls and "CustomNat2 nat" in ls
    ipam = json.loads(w.dk.docker("network", "inspect", "CustomNat1").stdout)[0]["IPAM"]["Config"]
    assert ipam == [{"Subnet": "172.16.1.0/24", "Gateway": "172.16.1.1"}]
    assert {n["Subnet"] for n in w.d.json("network", "ls", "--format", "json")} >= {
        "172.16.1.0/24",
        "172.16.2.0/24",
    }
    a = w.serve("ca", "--network=CustomNat1", "--ip=172.16.1.105")
    assert a == "172.16.1.105"
    assert "172.16.1.105/24" in w.exec("ca", "ip", "-4", "addr", "show", "eth0")
    w.serve("cb", "--net=CustomNat1")
    c = w.serve("cc", "--network=CustomNat2")
    assert w.ask_from("cb", a) == "ca"  # same network: direct
    assert w.ask_from("cc", a) == ""  # other NAT network: isolated
    assert w.exec("ca", "ping", "-c1", "-W1", "172.16.1.1").count("1 packets received") == 1
    assert c.startswith("172.16.2.")


def test_published_ports_from_outside_host_and_hairpin(w: World) -> None:
    w.dk.docker(
        "network",
        "create",
        "-d",
        "nat",
        "--subnet=172.16.1.0/24",
        "--gateway=172.16.1.1",
        "CustomNat1",
    )
    in_ns(w.d.host, "ip", "addr", "add", f"{SEGMENT}.201/24", "dev", "eth0")
    try:
        w.serve("web", "--network=CustomNat1", "-p", "8082:80")
        w.serve("pinned", "--network=CustomNat1", "-p", f"{SEGMENT}.201:9000:80")
        w.serve("ranged", "--network=CustomNat1", "-p", "9100-9101:80-81", port=81)
        w.serve("neighbour", "--network=CustomNat1")
        assert ask(w.client, w.host_ip, 8082) == "web"  # another lab host
        assert ask(w.d.host, w.host_ip, 8082) == "web"  # the docker host itself
        assert ask(w.d.host, "127.0.0.1", 8082) == "web"
        assert w.ask_from("neighbour", w.host_ip, 8082) == "web"  # hairpin
        assert ask(w.client, f"{SEGMENT}.201", 9000) == "pinned"
        assert ask(w.client, w.host_ip, 9000, timeout=1) == ""
        assert ask(w.client, w.host_ip, 9101) == "ranged"
        rows = w.d.json("nat", "ls", "--format", "json")
        assert {r["External"] for r in rows} >= {
            "0.0.0.0:8082",
            f"{SEGMENT}.201:9000",
            "0.0.0.0:9101",
        }
    finally:
        in_ns(w.d.host, "ip", "addr", "del", f"{SEGMENT}.201/24", "dev", "eth0")


def test_connect_disconnect_running_container_and_rm(w: World) -> None:
    w.dk.docker("network", "create", "-d", "nat", "--subnet=172.16.1.0/24", "n1")
    w.dk.docker("network", "create", "-d", "nat", "--subnet=172.16.2.0/24", "n2")
    a = w.serve("ca", "--network=n1")
    b = w.serve("cb", "--network=n2")
    assert w.ask_from("ca", b) == ""
    w.dk.docker("network", "connect", "--ip", "172.16.2.50", "n2", "ca")
    assert "172.16.2.50/24" in w.exec("ca", "ip", "-4", "addr")
    assert w.ask_from("ca", b) == "cb"
    assert len(w.d.json("ps", "--format", "json")) == 3
    w.dk.docker("network", "disconnect", "n2", "ca")
    assert "172.16.2.50" not in w.exec("ca", "ip", "-4", "addr")
    assert w.ask_from("ca", b) == ""
    assert w.ask_from("ca", "172.16.1.1", 1) == "" and a.startswith("172.16.1.")
    w.dk.docker("rm", "-f", "ca", "cb")
    assert w.d.json("ps", "--format", "json") == []
    w.dk.docker("network", "rm", "n1", "n2")


def test_expose_makes_hostnet_nat_usable_by_name(w: World) -> None:
    res = w.d.cli("docker", "expose", "--docker", f"docker-h-{w.dk.sock}", check=False)
    assert res.returncode != 0  # a docker CLI that does not exist is reported
    os.environ["DOCKER_HOST"] = f"unix://{w.dk.sock}"
    try:
        out = w.d.cli("docker", "expose", "--docker", "/usr/bin/docker", "nat").stdout
        assert "nat: exposed to Docker" in out
        ip = w.serve("web", "--network", "nat", "-p", "8085:80")
        assert ip.startswith("172.16.") and ask(w.client, w.host_ip, 8085) == "web"
        # hostnet's own containers and Docker's share one address space on nat
        res = w.d.cli("run", "--net", "nat", "--ip", ip, "--", "true", check=False)
        assert res.returncode != 0 and "already in use" in res.stderr
        w.d.cli(
            "run",
            "-d",
            "--net",
            "nat",
            "--name",
            "native",
            "--",
            "socat",
            "TCP-LISTEN:80,fork",
            "SYSTEM:read l; echo native",
        )
        native = next(c for c in w.d.json("ps", "--format", "json") if c["Name"] == "native")
        native_ip = native["Networks"]["nat"]["IPAddress"]
        wait_listening(native["NetnsPath"], 80)
        assert w.ask_from("web", native_ip) == "native"
        w.d.cli("rm", "native")
        w.dk.docker("rm", "-f", "web")
        w.dk.docker("network", "rm", "nat")
        assert [n["Name"] for n in w.d.json("network", "ls", "--format", "json")] == ["nat"]
    finally:
        os.environ.pop("DOCKER_HOST", None)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (
            ["network", "create", "-d", "nat", "--subnet=172.16.1.0/24", "-o", "bogus=1", "x"],
            "option 'bogus' is not supported by the nat driver",
        ),
        (
            ["network", "create", "-d", "nat", "--subnet=198.51.100.0/25", "x"],
            "overlaps the host's own",
        ),
        (["network", "create", "-d", "hostnet-overlay", "x"], "need a cluster store"),
        # an IPv6 subnet with no room for a gateway and an endpoint, from either IPAM
        (
            ["network", "create", "-d", "nat", "--ipv6", "--subnet=fd00::/127", "x"],
            "subnet fd00::/127 is too small. use a prefix of /126 or larger",
        ),
        (
            [*HOSTNET_IPAM, "--ipv6", "--subnet=172.16.9.0/24", "--subnet=fd00::/127", "x"],
            "subnet fd00::/127 is too small. use a prefix of /126 or larger",
        ),
        (
            [*HOSTNET_IPAM, "--subnet=172.16.9.0/24", "--ip-range=172.16.9.0/31", "x"],
            "is too small",
        ),
    ],
)
def test_hostnet_errors_reach_the_docker_cli(w: World, argv: list[str], words: str) -> None:
    res = w.dk.docker(*argv, check=False)
    assert res.returncode != 0 and words in res.stderr, res.stderr
    assert_clean_text(res.stderr)
    assert [n["Name"] for n in w.d.json("network", "ls", "--format", "json")] == ["nat"]


def test_address_taken_reaches_the_docker_cli(w: World) -> None:
    w.dk.docker("network", "create", "-d", "nat", "--subnet=172.16.1.0/24", "n1")
    w.serve("ca", "--network=n1", "-p", "8090:80")
    res = w.dk.docker(
        "run",
        "-d",
        "--name",
        "cb",
        "--network=n1",
        "-p",
        "8090:80",
        "busybox",
        "sleep",
        "60",
        check=False,
    )
    assert (
        res.returncode != 0 and "8090/tcp on all host addresses is already mapped" in res.stderr
    ), res.stderr


def test_hostnetd_restart_keeps_docker_containers_working(w: World) -> None:
    w.dk.docker("network", "create", "-d", "nat", "--subnet=172.16.1.0/24", "n1")
    w.dk.docker("network", "create", "-d", "nat", "--subnet=172.16.2.0/24", "n2")
    w.serve("web", "--network=n1", "-p", "8082:80")
    w.dk.docker("network", "connect", "n2", "web")
    w.d.stop(signal.SIGKILL)
    assert ask(w.client, w.host_ip, 8082) == "web"
    w.d.start()
    assert ask(w.client, w.host_ip, 8082) == "web"
    w.dk.docker("network", "disconnect", "n2", "web")
    w.dk.docker("rm", "-f", "web")
    assert ask(w.client, w.host_ip, 8082, timeout=1) == ""
    assert ping(w.d.host, "172.16.1.1")


def test_transparent_network_from_docker(w: World) -> None:
    gw = f"{SEGMENT}.1"
    w.dk.docker(
        "network",
        "create",
        "-d",
        "transparent",
        f"--subnet={SEGMENT}.0/24",
        f"--gateway={gw}",
        "-o",
        "com.docker.network.windowsshim.interface=eth0",
        "MyTransparentNet",
    )
    w.serve("tweb", "--network=MyTransparentNet", f"--ip={SEGMENT}.120")
    assert ask(w.client, f"{SEGMENT}.120", 80) == "tweb"  # on the physical segment
    assert ask(w.d.host, f"{SEGMENT}.120", 80) == "tweb"
    assert ask(w.client, w.host_ip, 1, timeout=1) == ""  # (nothing listens there)
    assert ping(w.client, w.host_ip)  # the docker host kept its address
    w.dk.docker("rm", "-f", "tweb")
    w.dk.docker("network", "rm", "MyTransparentNet")
    assert ping(w.client, w.host_ip)


def test_dual_stack_network_static_and_allocated_ipv6(w: World) -> None:
    w.dk.docker(
        *HOSTNET_IPAM,
        "--ipv6",
        f"--subnet={V4}",
        f"--subnet={V6}",
        "--gateway=fd12:3456::1",
        "--ip-range=fd12:3456::100/120",
        "--aux-address=router6=fd12:3456::100",
        "ds",
    )
    view = w.dk.network("ds")
    assert view["EnableIPv6"] is True
    assert {c["Subnet"] for c in view["IPAM"]["Config"]} == {V4, V6}
    hn = hostnet_net(w, V4)
    assert hn["EnableIPv6"] is True and hn["IPAM"]["Config"] == [
        {"Subnet": V4, "Gateway": "172.30.0.1"},
        {
            "Subnet": V6,
            "Gateway": "fd12:3456::1",
            "IPRange": "fd12:3456::100/120",
            "AuxiliaryAddresses": {"router6": "fd12:3456::100"},
        },
    ]
    a = w.serve("ca", "--network=ds", "--ip6=fd12:3456::10")
    ca = w.dk.endpoint("ca")
    assert ca["GlobalIPv6Address"] == "fd12:3456::10" and ca["GlobalIPv6PrefixLen"] == 64
    assert ca["IPv6Gateway"] == "fd12:3456::1" and a.startswith("172.30.0.")
    assert "fd12:3456::10/64" in w.exec("ca", "ip", "-6", "addr", "show", "eth0")
    assert "default via fd12:3456::1" in w.exec("ca", "ip", "-6", "route")
    w.serve("cb", "--network=ds")
    b6 = w.dk.endpoint("cb")["GlobalIPv6Address"]
    # hostnet's IPAM: from --ip-range, never the --aux-address
    assert b6 == "fd12:3456::101", b6
    assert pinged(w, "cb", "fd12:3456::10") and pinged(w, "ca", b6)
    assert w.ask_from("cb", "fd12:3456::10") == "ca"  # TCP over IPv6
    assert w.ask_from("cb", a) == "ca"  # and over IPv4
    eps = {c["Name"]: c for c in hostnet_net(w, V4)["Containers"].values()}
    assert {e["IPv6Address"] for e in eps.values()} == {"fd12:3456::10/64", f"{b6}/64"}
    # a running container of another network joins with a static IPv6 address, and leaves
    w.dk.docker("network", "create", "-d", "nat", "--subnet=172.16.1.0/24", "n1")
    w.serve("solo", "--network=n1")
    w.dk.docker("network", "connect", "--ip6", "fd12:3456::50", "ds", "solo")
    assert w.dk.endpoint("solo", "ds")["GlobalIPv6Address"] == "fd12:3456::50"
    assert w.ask_from("solo", "fd12:3456::10") == "ca"
    w.dk.docker("network", "disconnect", "ds", "solo")
    assert "fd12:3456::50" not in w.exec("solo", "ip", "-6", "addr")
    # a restarted hostnetd finds the network of Docker's pool again (it keeps no pools)
    w.d.stop()
    w.d.start()
    w.serve("cc", "--network=ds")
    assert w.dk.endpoint("cc")["GlobalIPv6Address"] == "fd12:3456::102"
    assert w.ask_from("cc", "fd12:3456::10") == "ca"
    w.dk.docker("rm", "-f", "ca", "cb", "cc", "solo")
    w.dk.docker("network", "rm", "ds", "n1")


def test_ipv6_without_subnet_gets_a_unique_local_64_and_internal_stays_in(w: World) -> None:
    w.dk.docker(*HOSTNET_IPAM, "--ipv6", "--internal", "auto1")
    w.dk.docker(*HOSTNET_IPAM, "--ipv6", "auto2")
    subnets = []
    for name in ("auto1", "auto2"):
        cfg = [c for c in w.dk.network(name)["IPAM"]["Config"] if ":" in c["Subnet"]]
        sub = ipaddress.ip_network(cfg[0]["Subnet"])
        assert sub.prefixlen == 64 and sub.subnet_of(ipaddress.ip_network("fd00::/8")), sub
        subnets.append(sub)
    assert subnets[0] != subnets[1]
    hn = hostnet_net(w, str(subnets[0]))
    assert hn["Internal"] is True and hn["EnableIPv6"] is True
    w.serve("ca", "--network=auto1")
    w.serve("cb", "--network=auto1")
    a6 = w.dk.endpoint("ca")["GlobalIPv6Address"]
    assert ipaddress.ip_address(a6) in subnets[0]
    assert w.ask_from("cb", a6) == "ca"
    # internal: nothing outside the network is reached
    client = node_ip(w.client)
    assert not pinged(w, "ca", client)
    w.serve("cc", "--network=auto2")
    assert pinged(w, "cc", client)
    w.dk.docker("rm", "-f", "ca", "cb", "cc")
    w.dk.docker("network", "rm", "auto1", "auto2")


def test_published_ports_answer_on_the_families_asked_for(w: World) -> None:
    with segment_ipv6(w) as host6:
        w.dk.docker(*HOSTNET_IPAM, "--ipv6", f"--subnet={V4}", f"--subnet={V6}", "ds")
        w.serve(
            "web",
            "--network=ds",
            "-p",
            "8080:80",  # every host address: both families
            "-p",
            "[::]:8081:80",  # IPv6 only
            "-p",
            "0.0.0.0:8082:80",  # IPv4 only
        )
        w.serve("neighbour", "--network=ds")
        assert ask(w.client, host6, 8080) == "web"
        assert ask(w.client, w.host_ip, 8080) == "web"
        assert ask(w.client, host6, 8081) == "web"
        assert ask(w.client, w.host_ip, 8081, timeout=1) == ""
        assert ask(w.client, w.host_ip, 8082) == "web"
        assert ask(w.client, host6, 8082, timeout=1) == ""
        assert ask(w.d.host, host6, 8080) == "web"  # from the docker host itself
        assert w.ask_from("neighbour", host6, 8080) == "web"  # hairpin over IPv6
        web6 = w.dk.endpoint("web")["GlobalIPv6Address"]
        rows = {
            (r["External"], r["Internal"])
            for r in w.d.json("nat", "ls", "--format", "json")
            if r["Container"] == "docker-" + w.dk.endpoint("web")["EndpointID"][:12]
        }
        web4 = w.dk.endpoint("web")["IPAddress"]
        assert rows == {
            ("0.0.0.0:8080", f"{web4}:80"),
            ("[::]:8080", f"[{web6}]:80"),
            ("[::]:8081", f"[{web6}]:80"),
            ("0.0.0.0:8082", f"{web4}:80"),
        }
        # [::]:8081 holds the IPv6 side of 8081 only: IPv4's is still free
        both = ["--name", "both", "--network=ds", "-p", "8081:80", "busybox", "true"]
        res = w.dk.docker("run", "-d", *both, check=False)
        taken = "8081/tcp on all host addresses is already mapped"
        assert res.returncode != 0 and taken in res.stderr, res.stderr
        assert_clean_text(res.stderr)
        w.serve("v4", "--network=ds", "-p", "0.0.0.0:8081:80")
        assert ask(w.client, w.host_ip, 8081) == "v4"
        assert ask(w.client, host6, 8081) == "web"
        w.dk.docker("rm", "-f", "web", "neighbour", "v4", "both")
        w.dk.docker("network", "rm", "ds")
        pm6 = in_ns(w.d.host, "nft", "list", "map", "ip6", "hostnet", "pm_any").stdout
        assert "elements" not in pm6, pm6


def test_expose_dual_stack_hostnet_network(w: World) -> None:
    v4, v6 = "172.31.5.0/24", "fd12:3456:5::/64"
    w.d.cli("network", "create", "--ipv6", "--subnet", v4, "--subnet", v6, "ds")
    os.environ["DOCKER_HOST"] = f"unix://{w.dk.sock}"
    try:
        out = w.d.cli("docker", "expose", "--docker", "/usr/bin/docker", "ds").stdout
        assert "ds: exposed to Docker" in out
        view = w.dk.network("ds")
        assert view["EnableIPv6"] is True
        assert {(c["Subnet"], c["Gateway"]) for c in view["IPAM"]["Config"]} == {
            (v4, "172.31.5.1"),
            (v6, "fd12:3456:5::1"),
        }
        w.serve("web", "--network", "ds", "--ip6", "fd12:3456:5::20", "-p", "8086:80")
        assert w.dk.endpoint("web")["GlobalIPv6Address"] == "fd12:3456:5::20"
        # hostnet's own containers and Docker's share one IPv6 address space
        res = w.d.cli("run", "--net", "ds", "--ip6", "fd12:3456:5::20", "--", "true", check=False)
        assert res.returncode != 0 and "already in use" in res.stderr, res.stderr
        w.serve("other", "--network", "ds")
        other6 = w.dk.endpoint("other")["GlobalIPv6Address"]
        assert ipaddress.ip_address(other6) in ipaddress.ip_network(v6)
        assert w.ask_from("other", "fd12:3456:5::20") == "web"
        assert pinged(w, "web", other6)
        with segment_ipv6(w) as host6:
            assert ask(w.client, host6, 8086) == "web"
            assert ask(w.client, w.host_ip, 8086) == "web"
        w.dk.docker("rm", "-f", "web", "other")
        w.dk.docker("network", "rm", "ds")
        w.d.cli("network", "rm", "ds")
    finally:
        os.environ.pop("DOCKER_HOST", None)
        w.dk.cleanup()  # the Docker network first: it holds the hostnet one
        w.d.cli("network", "rm", "ds", check=False)  # when the test failed half way


def test_ipv6_errors_reach_the_docker_cli(w: World) -> None:
    w.dk.docker(
        *HOSTNET_IPAM,
        "--ipv6",
        f"--subnet={V4}",
        f"--subnet={V6}",
        "--aux-address=r6=fd12:3456::5",
        "ds",
    )
    w.dk.docker("network", "create", "-d", "nat", "--subnet=172.16.1.0/24", "only4")
    w.serve("ca", "--network=ds", "--ip6=fd12:3456::10")
    run = ["run", "-d", "--name", "bad", "busybox", "sleep", "60"]
    cases = [
        # an overlapping unique local prefix, from hostnet's IPAM and from Docker's
        (
            [*HOSTNET_IPAM, "--ipv6", "--subnet=172.16.9.0/24", "--subnet=fd12:3456::/48", "x"],
            f"subnet fd12:3456::/48 overlaps network '{hostnet_net(w, V4)['Name']}' ({V6})",
        ),
        (
            ["network", "create", "-d", "nat", "--ipv6", "--subnet=fd12:3456::/48", "x"],
            "subnet fd12:3456::/48 overlaps network",
        ),
        # --ip6 outside the subnet (Docker's own check), the gateway, taken, reserved
        ([*run[:4], "--network=ds", "--ip6=fd12:9999::10", *run[4:]], "does not belong"),
        (
            [*run[:4], "--network=ds", "--ip6=fd12:3456::1", *run[4:]],
            "address fd12:3456::1 is the network, broadcast or gateway address of " + V6,
        ),
        (
            [*run[:4], "--network=ds", "--ip6=fd12:3456::10", *run[4:]],
            f"address fd12:3456::10 is already in use on {V6}",
        ),
        (
            [*run[:4], "--network=ds", "--ip6=fd12:3456::5", *run[4:]],
            "reserved with --aux-address",
        ),
        # IPv6 ports of a container that has no IPv6 address
        (
            [*run[:4], "--network=only4", "-p", "[::]:8090:80", *run[4:]],
            "publishes on an IPv6 host address, but network",
        ),
    ]
    for argv, words in cases:
        res = w.dk.docker(*argv, check=False)
        assert res.returncode != 0 and words in res.stderr, (argv, res.stderr)
        assert_clean_text(res.stderr)
        w.dk.docker("rm", "-f", "bad", check=False)
    names = {n["Name"] for n in w.d.json("network", "ls", "--format", "json")}
    assert len(names) == 3  # nat, ds, only4: nothing half made
    w.dk.docker("rm", "-f", "ca")
    w.dk.docker("network", "rm", "ds", "only4")
