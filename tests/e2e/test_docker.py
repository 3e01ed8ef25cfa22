"""The seed's Docker commands against the real engine (docker.io 20.10) using hostnet's plugins."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "netns"))
from helpers import ask, ping  # noqa: E402

from conftest import World  # noqa: E402
from lab import SEGMENT, in_ns  # noqa: E402


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
        native = w.d.json("ps", "--format", "json")
        native_ip = next(c for c in native if c["Name"] == "native")["Networks"]["nat"]["IPAddress"]
        time.sleep(0.3)
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
        (["network", "create", "-d", "nat", "--ipv6", "--subnet=fd00::/64", "x"], "IPv6"),
    ],
)
def test_hostnet_errors_reach_the_docker_cli(w: World, argv: list[str], words: str) -> None:
    res = w.dk.docker(*argv, check=False)
    assert res.returncode != 0 and words in res.stderr, res.stderr
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
