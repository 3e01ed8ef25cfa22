"""Endpoint policies with real traffic: OutBoundNAT (exceptions, destinations, virtual IP)
and SDNRoute; shown in HNS form; kept across a daemon kill and a flushed ruleset."""

from __future__ import annotations

import json
import signal

from helpers import ask, peer_server, ping

from lab import SEGMENT, Daemon, Lab, in_ns

SUBNET = "172.20.8.0/24"
VIP = f"{SEGMENT}.77"
PORT = 7000


def policy(kind: str, **settings: object) -> str:
    return json.dumps({"Type": kind, "Settings": settings})


def peers(lab: Lab, host_ip: str) -> tuple[str, str, str, str]:
    """Two segment nodes that route the NAT subnet back via the host and say who called."""
    p1, ip1 = lab.node("p1")
    p2, ip2 = lab.node("p2")
    for ns in (p1, p2):
        in_ns(ns, "ip", "route", "add", SUBNET, "via", host_ip)
        peer_server(lab.spawn, ns, PORT)
    return p1, ip1, p2, ip2


def client(d: Daemon, name: str, *pol: str) -> dict[str, str]:
    args = [a for p in pol for a in ("--policy", p)]
    d.cli("run", "-d", "--net", "n1", "--name", name, *args, "--", "sleep", "600")
    c = next(x for x in d.json("ps", "--format", "json") if x["Name"] == name)
    return {"ip": c["Networks"]["n1"]["IPAddress"], "netns": c["NetnsPath"]}


def seen_from(c: dict[str, str], peer_ip: str) -> str:
    return ask(c["netns"], peer_ip, PORT)


def test_outbound_nat_exceptions_destinations_and_virtual_ip(lab: Lab) -> None:
    d, host_ip = lab.host()
    in_ns(d.host, "ip", "addr", "add", f"{VIP}/24", "dev", "eth0")
    p1, ip1, p2, ip2 = peers(lab, host_ip)
    d.cli("network", "create", "--subnet", SUBNET, "n1")
    plain = client(d, "plain")
    exc = client(d, "exc", policy("OutBoundNAT", Exceptions=[f"{ip1}/32"]))
    dst = client(d, "dst", policy("OutBoundNAT", Destinations=[f"{ip2}/32"]))
    vip = client(d, "vip", policy("OutBoundNAT", VirtualIP=VIP, Exceptions=[f"{ip1}/32"]))
    # the network's default: everything leaves with the host's address
    assert seen_from(plain, ip1) == host_ip and seen_from(plain, ip2) == host_ip
    # an exception leaves with the container's own address; everything else is NATed
    assert seen_from(exc, ip1) == exc["ip"] and seen_from(exc, ip2) == host_ip
    # Destinations: only those are NATed
    assert seen_from(dst, ip2) == host_ip and seen_from(dst, ip1) == dst["ip"]
    # a virtual IP instead of the host's address
    assert seen_from(vip, ip2) == VIP and seen_from(vip, ip1) == vip["ip"]
    hns = d.json("endpoint", "inspect", "vip")
    pols = [p for p in hns["Policies"] if p["Type"] == "OutBoundNAT"]
    assert pols == [
        {"Type": "OutBoundNAT", "Settings": {"VirtualIP": VIP, "Exceptions": [f"{ip1}/32"]}}
    ]
    # kept across a kill -9 and a flushed ruleset (reconcile re-renders)
    d.stop(signal.SIGKILL)
    d.start(*d.args)
    in_ns(d.host, "nft", "flush", "ruleset")
    d.cli("system", "reconcile")
    assert seen_from(vip, ip2) == VIP and seen_from(exc, ip1) == exc["ip"]
    # removing the endpoint removes its rules
    d.cli("rm", "vip")
    assert VIP not in in_ns(d.host, "nft", "list", "table", "ip", "hostnet").stdout


def test_sdn_route_in_the_compartment(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", SUBNET, "n1")
    router = client(d, "router")
    # the router container owns 192.0.2.1, which no one else routes to
    in_ns(router["netns"], "ip", "addr", "add", "192.0.2.1/32", "dev", "lo")
    in_ns(router["netns"], "sysctl", "-qw", "net.ipv4.ip_forward=1")
    routed = client(
        d, "routed", policy("SDNRoute", DestinationPrefix="192.0.2.0/24", NextHop=router["ip"])
    )
    plain = client(d, "plain")
    assert ping(routed["netns"], "192.0.2.1")
    assert not ping(plain["netns"], "192.0.2.1")
    routes = in_ns(routed["netns"], "ip", "route").stdout
    assert f"192.0.2.0/24 via {router['ip']} dev eth0" in routes
    hns = d.json("endpoint", "inspect", "routed")
    assert {
        "Type": "SDNRoute",
        "Settings": {"DestinationPrefix": "192.0.2.0/24", "NextHop": router["ip"]},
    } in hns["Policies"]


def test_bad_policies_are_refused_and_change_nothing(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", SUBNET, "n1")
    before = d.json("ps", "--format", "json")
    cases = [
        ("not json", "not JSON"),
        (policy("Bogus"), "type 'Bogus' is not supported"),
        (policy("OutBoundNAT", Exceptions="10.0.0.0/8"), "must be a list"),
        (policy("OutBoundNAT", Exceptions=["10.0.0.300/8"]), "is not a prefix"),
        (policy("OutBoundNAT", VIP="1.2.3.4"), "VIP not supported"),
        (policy("SDNRoute", DestinationPrefix="10.0.0.0/8"), "needs DestinationPrefix and NextHop"),
        (
            policy("SDNRoute", DestinationPrefix="10.0.0.0/8", NextHop="10.1.1.1", NeedEncap=True),
            "NeedEncap is not supported",
        ),
        (
            policy("SDNRoute", DestinationPrefix="10.0.0.0/8", NextHop="10.1.1.1"),
            "not on the endpoint's subnet",
        ),
    ]
    for pol, words in cases:
        res = d.cli("run", "--net", "n1", "--policy", pol, "--", "true", check=False)
        assert res.returncode != 0 and words in res.stderr, (pol, res.stderr)
    assert d.json("ps", "--format", "json") == before


def test_connect_takes_bandwidth_aliases_and_policies(lab: Lab) -> None:
    d, host_ip = lab.host()
    p1, ip1, _, _ = peers(lab, host_ip)
    d.cli("network", "create", "--subnet", SUBNET, "n1")
    d.cli("network", "create", "--subnet", "172.20.9.0/24", "n2")
    d.cli("run", "-d", "--net", "n2", "--name", "c", "--", "sleep", "600")
    d.cli(
        "network",
        "connect",
        "--max-bandwidth",
        "2500k",
        "--alias",
        "cache",
        "--policy",
        policy("OutBoundNAT", Exceptions=[f"{ip1}/32"]),
        "n1",
        "c",
    )
    hns = d.json("endpoint", "inspect", "--network", "n1", "c")
    kinds = {p["Type"]: p["Settings"] for p in hns["Policies"]}
    assert kinds["QOS"] == {"MaximumOutgoingBandwidthInBytes": 2500000}
    assert kinds["OutBoundNAT"] == {"Exceptions": [f"{ip1}/32"]}
    c = next(x for x in d.json("ps", "--format", "json") if x["Name"] == "c")
    qdisc = in_ns(c["NetnsPath"], "tc", "qdisc", "show", "dev", "eth1").stdout
    assert "tbf" in qdisc and "rate 20Mbit" in qdisc
    # the hot-added endpoint's exception is in force: the peer sees the container's address
    # (the default route stays on n2; the peer's subnet route goes via the host)
    in_ns(c["NetnsPath"], "ip", "route", "add", f"{ip1}/32", "via", "172.20.8.1")
    assert ask(c["NetnsPath"], ip1, PORT) == c["Networks"]["n1"]["IPAddress"]
