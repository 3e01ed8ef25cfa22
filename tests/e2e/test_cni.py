"""hostnet-cni against the CNI spec, chained with the reference plugins, and under podman."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "netns"))
from cni_runner import add, delete, exec_plugin  # noqa: E402
from helpers import ask, peer_server, ping, wait_listening  # noqa: E402

from lab import Daemon, Lab, eventually, in_ns, sh  # noqa: E402

C_SHIM = "/opt/cni/bin/hostnet"
PY_SHIM = os.path.join(os.path.dirname(__file__), "py-hostnet-cni")


@pytest.fixture(scope="module", autouse=True)
def shims() -> Iterator[None]:
    if not os.path.exists(C_SHIM):
        pytest.skip("hostnet-cni is not installed (scripts/install-cni.sh)")
    src = os.path.join(os.path.dirname(__file__), "..", "..", "src")
    with open(PY_SHIM, "w") as fh:
        fh.write(
            f"#!{sys.executable} -IS\nimport sys\nsys.path.insert(0, {os.path.abspath(src)!r})\n"
            "from hostnet.cni.plugin import main\nmain()\n"
        )
    os.chmod(PY_SHIM, 0o755)
    yield
    os.unlink(PY_SHIM)


@pytest.fixture
def world(lab: Lab) -> Iterator[tuple[Lab, Daemon, str, str]]:
    d, host_ip = lab.host()
    ns = lab.prefix + "pod"
    sh("ip", "netns", "add", ns)
    try:
        yield lab, d, host_ip, ns
    finally:
        sh("ip", "netns", "del", ns, check=False)


def conf(d: Daemon, version: str = "1.0.0", **extra: object) -> dict[str, object]:
    return {"cniVersion": version, "name": "nat", "type": "hostnet", "socket": d.socket, **extra}


@pytest.mark.parametrize("shim", [C_SHIM, PY_SHIM], ids=["c-shim", "python-shim"])
@pytest.mark.parametrize("version", ["0.4.0", "1.0.0", "1.1.0"])
def test_add_check_del_round_trip(
    world: tuple[Lab, Daemon, str, str], shim: str, version: str
) -> None:
    lab, d, host_ip, ns = world
    client, _ = lab.node("client")
    runtime = {
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        "dns": {"nameservers": ["198.51.100.53"], "search": ["lab"]},
    }
    code, res = exec_plugin(
        shim, "ADD", conf(d, version, runtimeConfig=runtime), "ctr1", f"/run/netns/{ns}"
    )
    assert code == 0, res
    assert res["cniVersion"] == version
    assert res["interfaces"][1] == {
        "name": "eth0",
        "mac": res["interfaces"][1]["mac"],
        "sandbox": f"/run/netns/{ns}",
    }
    assert len(res["ips"]) == 1  # an IPv4-only network: no IPv6 entry
    ip = res["ips"][0]["address"].split("/")[0]
    assert res["ips"][0]["interface"] == 1 and res["ips"][0]["gateway"] == "172.16.0.1"
    assert ("version" in res["ips"][0]) == (version == "0.4.0")
    assert res["routes"] == [{"dst": "0.0.0.0/0", "gw": "172.16.0.1"}]
    assert res["dns"] == runtime["dns"]
    assert f"{ip}/16" in in_ns(ns, "ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert ping(ns, "172.16.0.1")
    lab.spawn(ns, "socat", "TCP-LISTEN:80,reuseaddr,fork", "SYSTEM:read l; echo pod")
    wait_listening(f"/run/netns/{ns}", 80)
    assert ask(client, host_ip, 8080) == "pod"
    assert exec_plugin(shim, "CHECK", conf(d, version), "ctr1", f"/run/netns/{ns}")[0] == 0
    assert (
        exec_plugin(
            shim, "DEL", conf(d, version, runtimeConfig=runtime), "ctr1", f"/run/netns/{ns}"
        )[0]
        == 0
    )
    assert ask(client, host_ip, 8080, timeout=1) == ""
    assert in_ns(ns, "ip", "link", "show", "eth0", check=False).returncode != 0
    assert (
        exec_plugin(shim, "DEL", conf(d, version), "ctr1", f"/run/netns/{ns}")[0] == 0
    )  # idempotent
    assert d.json("ps", "--format", "json") == []


def test_static_ip_and_mac_from_runtime_config(world: tuple[Lab, Daemon, str, str]) -> None:
    _, d, _, ns = world
    runtime = {"ips": ["172.16.9.9/16"], "mac": "02:11:22:33:44:55"}
    code, res = exec_plugin(
        C_SHIM, "ADD", conf(d, runtimeConfig=runtime), "ctr2", f"/run/netns/{ns}"
    )
    assert code == 0, res
    assert (
        res["ips"][0]["address"] == "172.16.9.9/16"
        and res["interfaces"][1]["mac"] == "02:11:22:33:44:55"
    )
    link = in_ns(ns, "ip", "-o", "link", "show", "eth0").stdout
    assert "02:11:22:33:44:55" in link
    assert exec_plugin(C_SHIM, "DEL", conf(d), "ctr2", f"/run/netns/{ns}")[0] == 0
    # podman's form for one --ip and --mac-address: CNI_ARGS
    args = {"CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web;MAC=02:11:22:33:44:66;IP=172.16.9.10"}
    code, res = exec_plugin(C_SHIM, "ADD", conf(d), "ctr2", f"/run/netns/{ns}", env=args)
    assert code == 0, res
    assert [e["address"] for e in res["ips"]] == ["172.16.9.10/16"]
    assert "02:11:22:33:44:66" in in_ns(ns, "ip", "-o", "link", "show", "eth0").stdout
    assert exec_plugin(C_SHIM, "DEL", conf(d), "ctr2", f"/run/netns/{ns}", env=args)[0] == 0


def test_del_succeeds_when_namespace_is_gone_and_releases_everything(
    world: tuple[Lab, Daemon, str, str],
) -> None:
    _, d, _, ns = world
    assert exec_plugin(C_SHIM, "ADD", conf(d), "ctr3", f"/run/netns/{ns}")[0] == 0
    sh("ip", "netns", "del", ns)
    code, out = exec_plugin(C_SHIM, "DEL", conf(d), "ctr3", f"/run/netns/{ns}")
    assert code == 0, out
    assert d.json("ps", "--format", "json") == []

    def no_veth() -> None:
        assert "hv" not in in_ns(d.host, "ip", "-o", "link", "show", "type", "veth").stdout

    eventually(no_veth)
    assert d.json("network", "inspect", "nat")[0]["Containers"] == {}


def test_check_reports_a_deleted_veth(world: tuple[Lab, Daemon, str, str]) -> None:
    _, d, _, ns = world
    code, res = exec_plugin(C_SHIM, "ADD", conf(d), "ctr4", f"/run/netns/{ns}")
    assert code == 0
    in_ns(d.host, "ip", "link", "del", res["interfaces"][0]["name"])
    code, err = exec_plugin(C_SHIM, "CHECK", conf(d), "ctr4", f"/run/netns/{ns}")
    assert code != 0 and "missing" in err["msg"] and err["code"] >= 5
    assert exec_plugin(C_SHIM, "DEL", conf(d), "ctr4", f"/run/netns/{ns}")[0] == 0


def test_gc_removes_attachments_not_in_the_valid_list(world: tuple[Lab, Daemon, str, str]) -> None:
    lab, d, _, ns = world
    ns2 = lab.prefix + "pod2"
    sh("ip", "netns", "add", ns2)
    try:
        assert exec_plugin(C_SHIM, "ADD", conf(d), "keep", f"/run/netns/{ns}")[0] == 0
        assert exec_plugin(C_SHIM, "ADD", conf(d), "stale", f"/run/netns/{ns2}")[0] == 0
        valid = {"cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "eth0"}]}
        assert exec_plugin(C_SHIM, "GC", conf(d, "1.1.0", **valid))[0] == 0
        assert [c["Id"] for c in d.json("ps", "--format", "json")] == ["keep"]
        assert in_ns(ns2, "ip", "link", "show", "eth0", check=False).returncode != 0
        assert exec_plugin(C_SHIM, "DEL", conf(d), "keep", f"/run/netns/{ns}")[0] == 0
    finally:
        sh("ip", "netns", "del", ns2, check=False)


def test_status_and_version(world: tuple[Lab, Daemon, str, str]) -> None:
    _, d, _, _ = world
    assert exec_plugin(C_SHIM, "STATUS", conf(d, "1.1.0"))[0] == 0
    code, out = exec_plugin(C_SHIM, "VERSION", {"cniVersion": "1.1.0"})
    assert code == 0 and set(out["supportedVersions"]) >= {"0.4.0", "1.0.0", "1.1.0"}
    bad = {**conf(d, "1.1.0"), "socket": "/nonexistent.sock"}
    code, out = exec_plugin(C_SHIM, "STATUS", bad)
    assert code != 0 and out["code"] == 50


@pytest.mark.parametrize(
    ("config", "env", "code", "words"),
    [
        ({"cniVersion": "9.9.9", "name": "nat", "type": "hostnet"}, {}, 1, "not supported"),
        ({"cniVersion": "1.0.0", "type": "hostnet"}, {}, 7, "'name'"),
        (
            {"cniVersion": "1.0.0", "name": "nat", "type": "hostnet"},
            {"CNI_NETNS": ""},
            4,
            "CNI_NETNS",
        ),
        (
            {"cniVersion": "1.0.0", "name": "nope", "type": "hostnet"},
            {},
            3,
            "no network named 'nope'",
        ),
        (
            {"cniVersion": "1.0.0", "name": "n2", "type": "hostnet", "subnet": "10.1.2.3/33"},
            {},
            7,
            "malformed subnet",
        ),
        (
            {"cniVersion": "1.0.0", "name": "n3", "type": "hostnet", "driver": "bogus"},
            {},
            7,
            "unknown driver",
        ),
        (
            {
                "cniVersion": "1.0.0",
                "name": "nat",
                "type": "hostnet",
                "runtimeConfig": {"bandwidth": {"ingressRate": 1000}},
            },
            {},
            7,
            "needs ingressBurst",
        ),
    ],
)
def test_bad_config_gets_cni_error_codes(
    world: tuple[Lab, Daemon, str, str],
    config: dict[str, object],
    env: dict[str, str],
    code: int,
    words: str,
) -> None:
    _, d, _, ns = world
    config = {**config, "socket": d.socket}
    rc, out = exec_plugin(C_SHIM, "ADD", config, "bad", f"/run/netns/{ns}", env=env)
    assert rc != 0 and out["code"] == code and words in out["msg"], out
    assert d.json("ps", "--format", "json") == []
    res = subprocess.run(
        [C_SHIM],
        input=b"not json",
        env={
            "CNI_COMMAND": "ADD",
            "CNI_CONTAINERID": "x",
            "CNI_NETNS": f"/run/netns/{ns}",
            "CNI_IFNAME": "eth0",
            "HOSTNET_SOCKET": d.socket,
        },
        capture_output=True,
    )
    assert res.returncode != 0 and json.loads(res.stdout)["code"] == 6


@pytest.mark.parametrize("second", ["bandwidth", "tuning"])
def test_chained_with_reference_plugins(world: tuple[Lab, Daemon, str, str], second: str) -> None:
    _, d, _, ns = world
    extra = (
        {"type": "bandwidth", "capabilities": {"bandwidth": True}}
        if second == "bandwidth"
        else {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.rp_filter": "2"}, "mtu": 1400}
    )
    conflist = {
        "cniVersion": "1.0.0",
        "name": "nat",
        "plugins": [{"type": "hostnet", "socket": d.socket}, extra],
    }
    runtime = {
        "bandwidth": {
            "ingressRate": 8_000_000,
            "ingressBurst": 16_000_000,
            "egressRate": 8_000_000,
            "egressBurst": 16_000_000,
        }
    }
    res = add(conflist, "chain1", f"/run/netns/{ns}", runtime=runtime, host_ns=d.host)
    assert res["ips"][0]["address"].startswith("172.16.")
    if second == "bandwidth":
        host_if = res["interfaces"][0]["name"]
        assert "tbf" in in_ns(d.host, "tc", "qdisc", "show", "dev", host_if).stdout
    else:
        assert "mtu 1400" in in_ns(ns, "ip", "link", "show", "eth0").stdout
        assert in_ns(ns, "sysctl", "-n", "net.ipv4.conf.eth0.rp_filter").stdout.strip() == "2"
    delete(conflist, "chain1", f"/run/netns/{ns}", runtime=runtime, host_ns=d.host)
    assert d.json("ps", "--format", "json") == []


V4, V6 = "172.20.0.0/24", "fd12::/64"


@pytest.fixture
def ds(world: tuple[Lab, Daemon, str, str]) -> Iterator[tuple[Lab, Daemon, str, str]]:
    """The world with a dual-stack network ``ds`` (172.20.0.0/24 and fd12::/64)."""
    _, d, _, _ = world
    d.cli("network", "create", "--ipv6", "--subnet", V4, "--subnet", V6, "ds")
    try:
        yield world
    finally:
        d.cli("network", "rm", "ds", check=False)


def ds_conf(d: Daemon, version: str = "1.0.0", **extra: object) -> dict[str, object]:
    return conf(d, version, name="ds", **extra)


def addrs_in(ns: str, family: str) -> list[str]:
    """eth0's global addresses of one family ("-4" or "-6") in namespace ``ns``, as CIDR."""
    out = in_ns(ns, "ip", "-o", family, "addr", "show", "dev", "eth0", "scope", "global").stdout
    return [line.split()[3] for line in out.splitlines()]


def port_rows(d: Daemon) -> list[dict[str, str]]:
    """'hostnet nat ls' without the networks' masquerade rows."""
    return [r for r in d.json("nat", "ls", "--format", "json") if r["External"] != "*"]


def no_traceback(d: Daemon) -> None:
    assert "Traceback" not in d.log(), d.log()[-3000:]


@pytest.mark.parametrize("version", ["0.4.0", "1.0.0", "1.1.0"])
def test_dual_stack_add_returns_both_families_and_maps_ports_per_family(
    ds: tuple[Lab, Daemon, str, str], version: str
) -> None:
    lab, d, host_ip, ns = ds
    host6 = lab.with_ipv6(d.host, host_ip)
    client, client_ip = lab.node("client")
    client6 = lab.with_ipv6(client, client_ip)
    runtime = {
        "portMappings": [
            {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},  # both families
            {"hostPort": 8081, "containerPort": 81, "protocol": "tcp", "hostIP": "0.0.0.0"},
            {"hostPort": 8082, "containerPort": 82, "protocol": "tcp", "hostIP": "::"},
            {"hostPort": 8083, "containerPort": 83, "protocol": "tcp", "hostIP": host6},
        ]
    }
    code, res = exec_plugin(
        C_SHIM, "ADD", ds_conf(d, version, runtimeConfig=runtime), "ds1", f"/run/netns/{ns}"
    )
    assert code == 0, res
    ip4, ip6 = (e["address"].split("/")[0] for e in res["ips"])
    assert ipaddress.ip_address(ip4) in ipaddress.ip_network(V4)
    assert ipaddress.ip_address(ip6) in ipaddress.ip_network(V6)
    versions = [{"version": "4"}, {"version": "6"}] if version == "0.4.0" else [{}, {}]
    assert res["ips"] == [
        {"address": f"{ip4}/24", "gateway": "172.20.0.1", "interface": 1, **versions[0]},
        {"address": f"{ip6}/64", "gateway": "fd12::1", "interface": 1, **versions[1]},
    ]
    assert res["interfaces"][1]["sandbox"] == f"/run/netns/{ns}"
    assert res["routes"] == [
        {"dst": "0.0.0.0/0", "gw": "172.20.0.1"},
        {"dst": "::/0", "gw": "fd12::1"},
    ]
    assert res["dns"]["nameservers"]
    # the kernel holds what the result says
    assert addrs_in(ns, "-4") == [f"{ip4}/24"] and addrs_in(ns, "-6") == [f"{ip6}/64"]
    assert "default via fd12::1 dev eth0" in in_ns(ns, "ip", "-6", "route").stdout
    assert ping(ns, "fd12::1") and ping(ns, "172.20.0.1")
    for port in (80, 81, 82, 83):
        lab.spawn(
            ns,
            "socat",
            f"TCP6-LISTEN:{port},reuseaddr,fork,ipv6only=0",
            f"SYSTEM:read l; echo p{port}",
        )
        wait_listening(f"/run/netns/{ns}", port)
    assert ask(client, host_ip, 8080) == "p80" and ask(client, host6, 8080) == "p80"
    assert ask(client, host_ip, 8081) == "p81" and ask(client, host6, 8081, timeout=1) == ""
    assert ask(client, host6, 8082) == "p82" and ask(client, host_ip, 8082, timeout=1) == ""
    assert ask(client, host6, 8083) == "p83" and ask(client, host_ip, 8083, timeout=1) == ""
    # out over IPv6: masqueraded to the host's address
    peer_server(lab.spawn, client, 7000)
    assert ask(ns, client6, 7000) == host6
    nat = {(r["External"], r["Internal"]) for r in port_rows(d)}
    assert nat == {
        ("0.0.0.0:8080", f"{ip4}:80"),
        ("[::]:8080", f"[{ip6}]:80"),
        ("0.0.0.0:8081", f"{ip4}:81"),
        ("[::]:8082", f"[{ip6}]:82"),
        (f"[{host6}]:8083", f"[{ip6}]:83"),
    }
    assert exec_plugin(C_SHIM, "CHECK", ds_conf(d, version), "ds1", f"/run/netns/{ns}")[0] == 0
    code, out = exec_plugin(
        C_SHIM, "DEL", ds_conf(d, version, runtimeConfig=runtime), "ds1", f"/run/netns/{ns}"
    )
    assert code == 0, out
    assert ask(client, host6, 8080, timeout=1) == "" and ask(client, host6, 8082, timeout=1) == ""
    assert in_ns(ns, "ip", "link", "show", "eth0", check=False).returncode != 0
    assert d.json("ps", "--format", "json") == [] and port_rows(d) == []
    assert exec_plugin(C_SHIM, "DEL", ds_conf(d, version), "ds1", f"/run/netns/{ns}")[0] == 0


@pytest.mark.parametrize("version", ["0.4.0", "1.0.0"])
def test_ipv6_only_and_internal_networks_return_what_they_have(
    world: tuple[Lab, Daemon, str, str], version: str
) -> None:
    _, d, _, ns = world
    # made on first use from the config: IPv6 only
    v6only = conf(d, version, name="v6only", subnets=["fd13::/64"], ipv4=False)
    code, res = exec_plugin(C_SHIM, "ADD", v6only, "v6", f"/run/netns/{ns}")
    assert code == 0, res
    ip6 = res["ips"][0]["address"].split("/")[0]
    extra = {"version": "6"} if version == "0.4.0" else {}
    assert res["ips"] == [{"address": f"{ip6}/64", "gateway": "fd13::1", "interface": 1, **extra}]
    assert res["routes"] == [{"dst": "::/0", "gw": "fd13::1"}]
    assert addrs_in(ns, "-4") == [] and addrs_in(ns, "-6") == [f"{ip6}/64"]
    assert ping(ns, "fd13::1")
    assert exec_plugin(C_SHIM, "CHECK", v6only, "v6", f"/run/netns/{ns}")[0] == 0
    assert exec_plugin(C_SHIM, "DEL", v6only, "v6", f"/run/netns/{ns}")[0] == 0
    d.cli("network", "rm", "v6only")
    # an internal network has no way out: its addresses, no default routes
    d.cli("network", "create", "--internal", "--ipv6", "--subnet", "172.20.9.0/24", "inner")
    try:
        inner = conf(d, version, name="inner")
        code, res = exec_plugin(C_SHIM, "ADD", inner, "in1", f"/run/netns/{ns}")
        assert code == 0, res
        assert [e["address"].split("/")[1] for e in res["ips"]] == ["24", "64"]
        assert res["routes"] == []
        assert "default" not in in_ns(ns, "ip", "-6", "route").stdout
        assert exec_plugin(C_SHIM, "DEL", inner, "in1", f"/run/netns/{ns}")[0] == 0
    finally:
        d.cli("network", "rm", "inner", check=False)
    assert d.json("ps", "--format", "json") == []


@pytest.mark.parametrize(
    ("runtime", "cni_args", "want4", "want6"),
    [
        ({"ips": ["172.20.0.5/24", "fd12::5/64"]}, "", "172.20.0.5", "fd12::5"),
        ({"ips": ["fd12::6", "172.20.0.6"]}, "", "172.20.0.6", "fd12::6"),  # podman's form
        ({}, "IgnoreUnknown=1;K8S_POD_NAME=web;IP=172.20.0.7,fd12::7", "172.20.0.7", "fd12::7"),
        ({}, "IgnoreUnknown=1;IP=fd12::8", "", "fd12::8"),  # podman's single --ip6
        ({"ips": ["172.20.0.9"]}, "", "172.20.0.9", ""),
    ],
    ids=["ips-cidr", "ips-plain", "cni-args-both", "cni-args-ip6", "ips-ipv4-only"],
)
def test_static_addresses_of_both_families(
    ds: tuple[Lab, Daemon, str, str],
    runtime: dict[str, object],
    cni_args: str,
    want4: str,
    want6: str,
) -> None:
    _, d, _, ns = ds
    code, res = exec_plugin(
        C_SHIM,
        "ADD",
        ds_conf(d, runtimeConfig=runtime),
        "st1",
        f"/run/netns/{ns}",
        env={"CNI_ARGS": cni_args},
    )
    assert code == 0, res
    got4, got6 = (e["address"] for e in res["ips"])
    # a family without a static address gets one from IPAM
    assert got4 == f"{want4}/24" if want4 else got4.startswith("172.20.0.")
    assert got6 == f"{want6}/64" if want6 else got6.startswith("fd12::")
    assert addrs_in(ns, "-4") == [got4] and addrs_in(ns, "-6") == [got6]
    assert exec_plugin(C_SHIM, "DEL", ds_conf(d), "st1", f"/run/netns/{ns}")[0] == 0
    assert d.json("ps", "--format", "json") == []


@pytest.mark.parametrize(
    ("name", "runtime", "cni_args", "code", "words"),
    [
        ("ds", {"ips": ["fd99::5/64"]}, "", 7, "fd99::5 is outside network 'ds''s IPv6 subnet"),
        ("nat", {"ips": ["fd12::5/64"]}, "", 7, "network 'nat' has no IPv6 subnet"),
        ("ds", {"ips": ["fd12::5", "fd12::6"]}, "", 7, "two IPv6 addresses"),
        ("ds", {"ips": ["fd12::5/48"]}, "", 7, "prefix /48"),
        ("ds", {"ips": ["fd12::zz"]}, "", 7, "'fd12::zz' is not an IP address"),
        ("ds", {"ips": [5]}, "", 7, "5 is not an IP address"),
        ("ds", {"ips": "fd12::5"}, "", 7, "must be a list"),
        ("ds", {"ips": ["fd12::1"]}, "", 7, "gateway"),
        ("ds", {}, "IP=fd99::5", 7, "outside network 'ds''s IPv6 subnet"),
        ("ds", {}, "IgnoreUnknown=1;garbage", 4, "CNI_ARGS"),
        ("ds", {"mac": "02:11"}, "", 7, "MAC address '02:11' is malformed"),
        (
            "ds",
            {"portMappings": [{"hostPort": 80, "containerPort": 80, "protocol": "sctp"}]},
            "",
            7,
            "protocol 'sctp' is not supported",
        ),
        (
            "ds",
            {"portMappings": [{"hostPort": 80, "containerPort": 80, "hostIP": "nope"}]},
            "",
            7,
            "hostIP 'nope' is not an IP address",
        ),
        (
            "nat",
            {"portMappings": [{"hostPort": 80, "containerPort": 80, "hostIP": "::"}]},
            "",
            7,
            "hostIP :: is IPv6, but network 'nat' has no IPv6 subnet",
        ),
    ],
)
def test_bad_addresses_get_a_cni_error_and_change_nothing(
    ds: tuple[Lab, Daemon, str, str],
    name: str,
    runtime: dict[str, object],
    cni_args: str,
    code: int,
    words: str,
) -> None:
    _, d, _, ns = ds
    config = conf(d, name=name, runtimeConfig=runtime)
    rc, out = exec_plugin(
        C_SHIM, "ADD", config, "bad6", f"/run/netns/{ns}", env={"CNI_ARGS": cni_args}
    )
    assert rc != 0 and out["code"] == code and words in out["msg"], out
    assert out["details"]  # a remedy
    assert d.json("ps", "--format", "json") == []
    assert in_ns(ns, "ip", "link", "show", "eth0", check=False).returncode != 0
    no_traceback(d)


PODMAN_CONF = """[network]
network_backend = "cni"
cni_plugin_dirs = ["/opt/cni/bin", "/usr/lib/cni"]
network_config_dir = "{netd}"
[engine]
events_logger = "none"
cgroup_manager = "cgroupfs"
# runc (docker.io's): crun refuses hosts with cgroup v1 and v2 mounted at once (hybrid)
runtime = "runc"
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
"""


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], str, str]]:
    if not shutil.which("podman") or not os.path.exists("/bin/busybox"):
        pytest.skip("needs podman and busybox-static (scripts/test.sh installs them)")
    base = tmp_path_factory.mktemp("podman")
    netd = base / "net.d"
    netd.mkdir()
    (base / "containers.conf").write_text(PODMAN_CONF.format(netd=netd))
    cmd = [
        "podman",
        "--root",
        str(base / "root"),
        "--runroot",
        str(base / "run"),
        "--storage-driver",
        "vfs",
    ]
    os.environ["CONTAINERS_CONF"] = str(base / "containers.conf")
    from images import busybox_tar

    sh(
        *cmd,
        "import",
        "--change",
        "ENV PATH=/bin",
        busybox_tar(str(base)),
        "localhost/busybox:latest",
        timeout=120,
    )
    yield cmd, str(netd), str(base)
    sh(*cmd, "rm", "-af", check=False, timeout=120)
    sh(*cmd, "rmi", "-af", check=False, timeout=120)
    os.environ.pop("CONTAINERS_CONF", None)
    subprocess.run(["rm", "-rf", str(base)], check=False)


def test_podman_run_gets_address_and_port_mapping_and_rm_releases(
    lab: Lab, podman: tuple[list[str], str, str]
) -> None:
    cmd, netd, _ = podman
    d, host_ip = lab.host()
    client, _ = lab.node("client")
    conflist = {
        "cniVersion": "1.0.0",
        "name": "hnpod",
        "plugins": [
            {
                "type": "hostnet",
                "network": "nat",
                "socket": d.socket,
                "capabilities": {"portMappings": True},
            }
        ],
    }
    path = os.path.join(netd, "hnpod.conflist")
    with open(path, "w") as fh:
        json.dump(conflist, fh)
    try:
        in_ns(
            d.host,
            *cmd,
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "hnpod",
            "-p",
            "8080:80",
            "localhost/busybox",
            "sh",
            "-c",
            "while true; do echo podweb | nc -l -p 80; done",
            timeout=120,
        )
        ps = d.json("ps", "--format", "json")
        assert (
            len(ps) == 1
            and ps[0]["External"]
            and ps[0]["Networks"]["nat"]["IPAddress"].startswith("172.16.")
        )
        deadline = time.monotonic() + 10
        while ask(client, host_ip, 8080, timeout=1) != "podweb" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ask(client, host_ip, 8080) == "podweb"
        in_ns(d.host, *cmd, "rm", "-f", "-t", "0", "web", timeout=120)
        assert d.json("ps", "--format", "json") == []
        assert ask(client, host_ip, 8080, timeout=1) == ""
    finally:
        sh(*cmd, "rm", "-f", "-t", "0", "web", check=False, timeout=120)
        os.unlink(path)


def podman_network(cmd: list[str], d: Daemon, container: str, net: str) -> dict[str, Any]:
    """What podman recorded of a container's network (from hostnet's CNI result)."""
    out = in_ns(d.host, *cmd, "inspect", container, timeout=60).stdout
    networks: dict[str, Any] = json.loads(out)[0]["NetworkSettings"]["Networks"]
    return networks[net]


def test_podman_dual_stack_container_talks_ipv6_and_publishes_on_both_families(
    lab: Lab, podman: tuple[list[str], str, str]
) -> None:
    cmd, netd, _ = podman
    d, host_ip = lab.host()
    host6 = lab.with_ipv6(d.host, host_ip)
    client, client_ip = lab.node("client")
    lab.with_ipv6(client, client_ip)
    d.cli("network", "create", "--ipv6", "--subnet", V4, "--subnet", V6, "ds")
    conflist = {
        "cniVersion": "1.0.0",
        "name": "hnpod6",
        "plugins": [
            {
                "type": "hostnet",
                "network": "ds",
                "socket": d.socket,
                # declared: for --ip/--ip6 podman 4.3 would otherwise set capabilities to
                # {"ips": true} alone (libcni.InjectConf replaces the key), losing portMappings
                "capabilities": {"portMappings": True, "ips": True},
            }
        ],
    }
    path = os.path.join(netd, "hnpod6.conflist")
    with open(path, "w") as fh:
        json.dump(conflist, fh)

    def pm(*args: str) -> subprocess.CompletedProcess[str]:
        return in_ns(d.host, *cmd, *args, timeout=120)

    try:
        # two static addresses: podman hands them over as the ips capability
        pm(
            "run", "-d", "--name", "web6", "--network", "hnpod6",
            "--ip", "172.20.0.80", "--ip6", "fd12::80", "-p", "8080:80",
            "localhost/busybox", "sh", "-c", "while true; do echo podweb | nc -l -p 80; done",
        )  # fmt: skip
        # one: podman hands it over in CNI_ARGS (IP=); IPAM picks the IPv4 address
        pm(
            "run", "-d", "--name", "peer6", "--network", "hnpod6", "--ip6", "fd12::81",
            "localhost/busybox", "sleep", "600",
        )  # fmt: skip
        web, peer = (
            podman_network(cmd, d, "web6", "hnpod6"),
            podman_network(cmd, d, "peer6", "hnpod6"),
        )
        assert (web["IPAddress"], web["GlobalIPv6Address"]) == ("172.20.0.80", "fd12::80"), web
        assert (web["Gateway"], web["IPv6Gateway"], web["GlobalIPv6PrefixLen"]) == (
            "172.20.0.1",
            "fd12::1",
            64,
        ), web
        assert peer["GlobalIPv6Address"] == "fd12::81" and peer["IPAddress"].startswith("172.20.0.")
        ps = d.json("ps", "--format", "json")
        assert len(ps) == 2 and all(c["External"] for c in ps)
        inside = pm("exec", "peer6", "ip", "-6", "addr", "show", "dev", "eth0").stdout
        assert "fd12::81/64" in inside
        assert "default via fd12::1" in pm("exec", "peer6", "ip", "-6", "route").stdout
        # peer to peer over IPv6: ping6 and TCP
        assert pm("exec", "peer6", "ping", "-6", "-c", "1", "-W", "2", "fd12::80").returncode == 0
        said = pm("exec", "peer6", "sh", "-c", "echo hi | nc -w 2 fd12::80 80").stdout.strip()
        assert said == "podweb"
        # the published port answers over IPv6 (and IPv4) from another node
        deadline = time.monotonic() + 10
        while ask(client, host6, 8080, timeout=1) != "podweb" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ask(client, host6, 8080) == "podweb"
        assert ask(client, host_ip, 8080) == "podweb"
        pm("rm", "-f", "-t", "0", "web6", "peer6")
        assert d.json("ps", "--format", "json") == []
        assert ask(client, host6, 8080, timeout=1) == ""
    finally:
        sh(*cmd, "rm", "-f", "-t", "0", "web6", "peer6", check=False, timeout=120)
        os.unlink(path)
        d.cli("network", "rm", "ds", check=False)


def iperf_mbps(
    lab: Lab, server_ns: str, client_ns: str, ip: str, reverse: bool, port: int
) -> float:
    lab.spawn(server_ns, "iperf3", "-s", "-1", "-p", str(port))
    wait_listening(f"/run/netns/{server_ns}", port)
    args = ["iperf3", "-c", ip, "-p", str(port), "-t", "2", "-J"] + (["-R"] if reverse else [])
    out = json.loads(in_ns(client_ns, *args, timeout=30).stdout)
    assert "error" not in out, out["error"]
    return float(out["end"]["sum_received"]["bits_per_second"]) / 1e6


def test_bandwidth_limits_both_directions(world: tuple[Lab, Daemon, str, str]) -> None:
    lab, d, _, ns = world
    rate = 20_000_000
    runtime = {
        "bandwidth": {
            "ingressRate": rate,
            "ingressBurst": rate // 10,
            "egressRate": rate,
            "egressBurst": rate // 10,
        }
    }
    code, res = exec_plugin(C_SHIM, "ADD", conf(d, runtimeConfig=runtime), "bw", f"/run/netns/{ns}")
    assert code == 0, res
    ip = res["ips"][0]["address"].split("/")[0]
    towards = iperf_mbps(lab, ns, d.host, ip, reverse=False, port=5201)  # host -> container
    away = iperf_mbps(lab, ns, d.host, ip, reverse=True, port=5202)  # container -> host
    assert 5 < towards < 30 and 5 < away < 30, (towards, away)
    assert exec_plugin(C_SHIM, "DEL", conf(d), "bw", f"/run/netns/{ns}")[0] == 0


def test_network_dns_options_in_the_result(world: tuple[Lab, Daemon, str, str]) -> None:
    _, d, _, ns = world
    config = conf(
        d,
        name="named",
        subnet="172.16.7.0/24",
        options={"dnsservers": "198.51.100.53", "dnssuffix": "corp.example"},
    )
    code, res = exec_plugin(C_SHIM, "ADD", config, "dns1", f"/run/netns/{ns}")
    assert code == 0, res
    # the embedded resolver serves the namespace and forwards to the network's dnsservers
    assert res["dns"] == {"nameservers": ["127.0.0.11"], "search": ["corp.example"]}
    assert "127.0.0.11:" in in_ns(ns, "ss", "-lun").stdout
    assert exec_plugin(C_SHIM, "DEL", config, "dns1", f"/run/netns/{ns}")[0] == 0
    assert "127.0.0.11:" not in in_ns(ns, "ss", "-lun").stdout  # nothing pins the runtime's netns


def test_acl_and_policies_from_the_config(world: tuple[Lab, Daemon, str, str]) -> None:
    lab, d, _, ns = world
    config = conf(
        d,
        acl=["action=block;dir=in;proto=tcp;lport=81"],
        policies=[
            {
                "Type": "ACL",
                "Settings": {
                    "Action": "Block",
                    "Direction": "In",
                    "Protocols": "6",
                    "LocalPorts": "82",
                },
            },
            {"Type": "OutBoundNAT", "Settings": {"Exceptions": ["198.51.100.0/24"]}},
        ],
    )
    code, res = exec_plugin(C_SHIM, "ADD", config, "acl1", f"/run/netns/{ns}")
    assert code == 0, res
    ip = res["ips"][0]["address"].split("/")[0]
    for port in (80, 81, 82):
        lab.spawn(ns, "socat", f"TCP-LISTEN:{port},reuseaddr,fork", f"SYSTEM:read l; echo p{port}")
        wait_listening(f"/run/netns/{ns}", port)
    assert ask(d.host, ip, 80) == "p80"
    assert ask(d.host, ip, 81, timeout=1) == "" and ask(d.host, ip, 82, timeout=1) == ""
    hns = d.json("endpoint", "inspect", "acl1")
    kinds = sorted(p["Type"] for p in hns["Policies"])
    assert kinds == ["ACL", "ACL", "OutBoundNAT"]
    assert exec_plugin(C_SHIM, "DEL", config, "acl1", f"/run/netns/{ns}")[0] == 0
    bad = conf(d, policies=[{"Type": "SDNRoute", "Settings": {"NeedEncap": True}}])
    code, res = exec_plugin(C_SHIM, "ADD", bad, "acl2", f"/run/netns/{ns}")
    assert code != 0 and "NeedEncap" in res["msg"] + res.get("details", "")
