"""Windows CNI configs (win-bridge's sample, type changed to hostnet) through the real
shim into lab namespaces: results in 0.2.0 and 0.3.1 shapes, the gateway answers, an
OutBoundNAT exception list shown with packets, refused policies change nothing."""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "netns"))
from cni_runner import exec_plugin  # noqa: E402
from helpers import ask, peer_server, ping  # noqa: E402

from lab import Daemon, Lab, in_ns, sh  # noqa: E402

C_SHIM = "/opt/cni/bin/hostnet"
SUBNET, GATEWAY = "172.20.9.0/24", "172.20.9.1"
PORT = 7000


def ep(value: dict[str, Any]) -> dict[str, Any]:
    return {"name": "EndpointPolicy", "value": value}


# win-bridge/sample-v2.conf's delegate and sample-v1.conf, "type" changed to hostnet;
# loopbackDSR left out (hostnet refuses it: DSR is not implemented)
V2_POLICIES = [
    ep({"Type": "OutBoundNAT", "Settings": {"Exceptions": ["192.168.0.0/16", "11.0.0.0/8"]}}),
    ep({"Type": "SDNRoute", "Settings": {"DestinationPrefix": "11.0.0.0/8", "NeedEncap": True}}),
    ep(
        {
            "Type": "SDNRoute",
            "Settings": {"DestinationPrefix": "10.137.198.27/32", "NeedEncap": True},
        }
    ),
]
V1_POLICIES = [
    ep({"Type": "OutBoundNAT", "ExceptionList": ["192.168.0.0/16", "11.0.0.0/8"]}),
    ep({"Type": "ROUTE", "DestinationPrefix": "11.0.0.0/8", "NeedEncap": True}),
    ep({"Type": "ROUTE", "DestinationPrefix": "10.137.198.27/32", "NeedEncap": True}),
]


def win_bridge(d: Daemon, version: str, api: int, **extra: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "cniVersion": version,
        "name": "cbr0",
        "type": "hostnet",
        "socket": d.socket,
        "dns": {"nameservers": ["11.0.0.10"], "search": ["svc.cluster.local"]},
        "policies": copy.deepcopy(V2_POLICIES if api == 2 else V1_POLICIES),
    }
    if api == 2:
        conf["apiVersion"] = 2
    return {**conf, **extra}


@pytest.fixture
def world(lab: Lab) -> Iterator[tuple[Lab, Daemon, str, str]]:
    if not os.path.exists(C_SHIM):
        pytest.skip("hostnet-cni is not installed (scripts/install-cni.sh)")
    d, host_ip = lab.host()
    d.cli("network", "create", "--subnet", SUBNET, "cbr0")
    ns = lab.prefix + "pod"
    sh("ip", "netns", "add", ns)
    try:
        yield lab, d, host_ip, ns
    finally:
        sh("ip", "netns", "del", ns, check=False)


@pytest.mark.parametrize("api", [2, 1], ids=["v2-policies", "v1-policies"])
@pytest.mark.parametrize("version", ["0.3.1", "0.2.0"])
def test_win_bridge_config_attaches_in_its_versions_shape(
    world: tuple[Lab, Daemon, str, str], version: str, api: int
) -> None:
    _, d, _, ns = world
    netns = f"/run/netns/{ns}"
    code, res = exec_plugin(C_SHIM, "ADD", win_bridge(d, version, api), "win1", netns)
    assert code == 0, res
    assert res["cniVersion"] == version
    dns = {"nameservers": ["11.0.0.10"], "search": ["svc.cluster.local"]}
    if version == "0.2.0":
        assert set(res) == {"cniVersion", "ip4", "dns"}, res
        ip = res["ip4"]["ip"].split("/")[0]
        assert res["ip4"]["gateway"] == GATEWAY
        assert res["ip4"]["routes"] == [{"dst": "0.0.0.0/0", "gw": GATEWAY}]
    else:
        assert res["interfaces"][1]["sandbox"] == netns
        assert [(e["version"], e["gateway"], e["interface"]) for e in res["ips"]] == [
            ("4", GATEWAY, 1)
        ]
        ip = res["ips"][0]["address"].split("/")[0]
        assert res["routes"] == [{"dst": "0.0.0.0/0", "gw": GATEWAY}]
    assert res["dns"] == dns
    assert ping(ns, GATEWAY)
    # NeedEncap without a NextHop on a nat network: the prefix goes via the host
    routes = in_ns(ns, "ip", "route").stdout
    assert f"11.0.0.0/8 via {GATEWAY} dev eth0" in routes, routes
    assert f"10.137.198.27 via {GATEWAY} dev eth0" in routes, routes
    hns = d.json("endpoint", "inspect", "win1")
    assert {
        "Type": "OutBoundNAT",
        "Settings": {"Exceptions": ["192.168.0.0/16", "11.0.0.0/8"]},
    } in hns["Policies"]
    assert ip in in_ns(ns, "ip", "-4", "-o", "addr", "show", "eth0").stdout
    # CHECK came with CNI 0.4.0: refused for these versions (libcni's skel does the same)
    code, out = exec_plugin(C_SHIM, "CHECK", win_bridge(d, version, api), "win1", netns)
    assert code != 0 and out["code"] == 1, out
    assert exec_plugin(C_SHIM, "DEL", win_bridge(d, version, api), "win1", netns)[0] == 0
    assert d.json("ps", "--format", "json") == []
    assert in_ns(ns, "ip", "link", "show", "eth0", check=False).returncode != 0


def test_outbound_nat_exceptions_from_windows_configs(world: tuple[Lab, Daemon, str, str]) -> None:
    lab, d, host_ip, ns = world
    p1, ip1 = lab.node("p1")
    p2, ip2 = lab.node("p2")
    for peer in (p1, p2):
        in_ns(peer, "ip", "route", "add", SUBNET, "via", host_ip)
        peer_server(lab.spawn, peer, PORT)
    ns2 = lab.prefix + "pod2"
    sh("ip", "netns", "add", ns2)
    try:
        # v2 Exceptions in any case; v1 ExceptionList through win-bridge's ipMasqNetwork
        v2 = win_bridge(
            d,
            "0.3.1",
            2,
            policies=[ep({"type": "outboundnat", "SETTINGS": {"exceptions": [f"{ip1}/32"]}})],
        )
        v1 = win_bridge(d, "0.2.0", 1, policies=[], ipMasqNetwork=f"{ip2}/32")
        code, a = exec_plugin(C_SHIM, "ADD", v2, "exc1", f"/run/netns/{ns}")
        assert code == 0, a
        code, b = exec_plugin(C_SHIM, "ADD", v1, "exc2", f"/run/netns/{ns2}")
        assert code == 0, b
        ip_a, ip_b = a["ips"][0]["address"].split("/")[0], b["ip4"]["ip"].split("/")[0]
        # an excepted prefix sees the container's own address; everything else the host's
        assert ask(ns, ip1, PORT) == ip_a and ask(ns, ip2, PORT) == host_ip
        assert ask(ns2, ip2, PORT) == ip_b and ask(ns2, ip1, PORT) == host_ip
        assert exec_plugin(C_SHIM, "DEL", v2, "exc1", f"/run/netns/{ns}")[0] == 0
        assert exec_plugin(C_SHIM, "DEL", v1, "exc2", f"/run/netns/{ns2}")[0] == 0
    finally:
        sh("ip", "netns", "del", ns2, check=False)


@pytest.mark.parametrize(
    ("extra", "code", "words"),
    [
        ({"loopbackDSR": True}, 7, "loopbackDSR needs Direct Server Return"),
        ({"policies": [ep({"Type": "Bogus", "Settings": {}})]}, 7, "unknown endpoint policy"),
        (
            {"policies": [ep({"Type": "ProviderAddress", "Settings": {"ProviderAddress": "10.0.0.1"}})]},
            7,
            "'ProviderAddress' is not supported",
        ),
        ({"policies": [ep({"Type": "L2Driver", "Settings": {}})]}, 7, "MAC rewrite"),
        ({"name": "OVNKubernetesHybridOverlayNetwork"}, 3, "no network named"),
    ],
)  # fmt: skip
def test_refused_windows_configs_change_nothing(
    world: tuple[Lab, Daemon, str, str], extra: dict[str, Any], code: int, words: str
) -> None:
    _, d, _, ns = world
    before = in_ns(d.host, "nft", "list", "ruleset").stdout
    conf = win_bridge(d, "0.3.1", 2, **extra)
    rc, out = exec_plugin(C_SHIM, "ADD", conf, "bad1", f"/run/netns/{ns}")
    assert rc != 0 and out["code"] == code and words in out["msg"], out
    assert out["details"], out
    assert d.json("ps", "--format", "json") == []
    assert in_ns(ns, "ip", "link", "show", "eth0", check=False).returncode != 0
    assert in_ns(d.host, "nft", "list", "ruleset").stdout == before
