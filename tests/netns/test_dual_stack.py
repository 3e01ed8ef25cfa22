"""Dual-stack nat networks with packets: IPv6 next to IPv4 between containers, through
mapped ports from another host and hairpin, masqueraded out, isolated between networks;
Docker's IPAM options (--ip-range, --aux-address, --internal); bad input changes nothing."""

from __future__ import annotations

import ipaddress
from typing import Any

from helpers import ask, peer_server, ping, serve

from lab import Daemon, Lab, in_ns

V4, V6 = "172.20.10.0/24", "fd12:3456:789a:10::/64"


def _net(d: Daemon, name: str) -> dict[str, Any]:
    view: dict[str, Any] = d.json("network", "inspect", name)[0]
    return view


def test_containers_talk_over_both_families_and_mapped_ports_answer_on_both(lab: Lab) -> None:
    d, host_ip = lab.host()
    host6 = lab.with_ipv6(d.host, host_ip)
    client, client_ip = lab.node("client")
    client6 = lab.with_ipv6(client, client_ip)
    d.cli("network", "create", "--ipv6", "--subnet", V4, "--subnet", V6, "ds")
    view = _net(d, "ds")
    assert view["EnableIPv6"] is True
    assert view["IPAM"]["Config"] == [
        {"Subnet": V4, "Gateway": "172.20.10.1"},
        {"Subnet": V6, "Gateway": "fd12:3456:789a:10::1"},
    ]
    a = serve(d, "ds", "a", 80, False, "-p", "8080:80")
    b = serve(d, "ds", "b")
    assert ipaddress.ip_address(a["ip6"]) in ipaddress.ip_network(V6), a
    # container to container, both families, no NAT between them
    assert ping(b["netns"], a["ip6"]) and ping(b["netns"], a["ip"])
    assert ask(b["netns"], a["ip6"], 80) == "a" and ask(b["netns"], a["ip"], 80) == "a"
    # -p 8080:80 answers on both families: from another host, from the host, hairpin
    assert ask(client, host6, 8080) == "a"
    assert ask(client, host_ip, 8080) == "a"
    assert ask(d.host, host6, 8080) == "a"
    assert ask(b["netns"], host6, 8080) == "a"
    # out: masqueraded to the host's IPv6 address
    peer_server(lab.spawn, client, 7000)
    assert ask(a["netns"], client6, 7000) == host6
    assert ask(a["netns"], client_ip, 7000) == host_ip
    # the private IPv6 prefix is not reachable from outside, even with a route to it
    in_ns(client, "ip", "-6", "route", "add", V6, "via", host6)
    assert ask(client, a["ip6"], 80, timeout=1) == ""
    nat = d.json("nat", "ls", "--format", "json")
    assert {(r["External"], r["Internal"]) for r in nat if r["Container"] == "a"} == {
        ("0.0.0.0:8080", f"{a['ip']}:80"),
        ("[::]:8080", f"[{a['ip6']}]:80"),
    }
    d.cli("rm", "a", "b")
    d.cli("network", "rm", "ds")
