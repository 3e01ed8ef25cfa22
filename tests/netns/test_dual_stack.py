"""Dual-stack nat networks with packets: IPv6 next to IPv4 between containers, through
mapped ports from another host and hairpin, masqueraded out, isolated between networks;
Docker's IPAM options (--ip-range, --aux-address, --internal); bad input changes nothing."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from typing import Any

import pytest
from helpers import ask, capture, peer_server, ping, serve, stop_capture

from lab import SEGMENT, SEGMENT6, Daemon, Lab, in_ns

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
    # from the host itself on ::1 (relayed: the kernel does not route ::1 off the host)
    assert ask(d.host, "::1", 8080) == "a" and ask(d.host, "127.0.0.1", 8080) == "a"
    serve(d, "ds", "u", 53, True, "-p", "5353:53/udp")
    assert ask(d.host, "::1", 5353, udp=True) == "u"
    assert ask(client, host6, 5353, udp=True) == "u"
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
    d.cli("rm", "a", "b", "u")
    assert ask(d.host, "::1", 8080, timeout=1) == ""  # the relay went with the mapping
    d.cli("network", "rm", "ds")


def test_ipv6_is_isolated_between_networks_and_family_bound_mappings_stay_in_their_family(
    lab: Lab,
) -> None:
    d, host_ip = lab.host()
    host6 = lab.with_ipv6(d.host, host_ip)
    client, client_ip = lab.node("client")
    lab.with_ipv6(client, client_ip)
    d.cli("network", "create", "--ipv6", "n1")  # no IPv6 subnet: a unique local /64
    d.cli("network", "create", "--ipv6", "n2", "-o", "disableicc=true")
    v1, v2 = _net(d, "n1"), _net(d, "n2")
    ula1, ula2 = (ipaddress.ip_network(v["IPAM"]["Config"][1]["Subnet"]) for v in (v1, v2))
    assert ula1.prefixlen == 64 and ula1.subnet_of(ipaddress.ip_network("fd00::/8"))
    assert ula1 != ula2 and not ula1.overlaps(ula2)
    a = serve(d, "n1", "a", 80, False, "-p", "[::]:8081:80", "-p", "0.0.0.0:8082:80")
    b = serve(d, "n2", "b")
    c = serve(d, "n2", "c")
    # another network's containers: unreachable over IPv6 as over IPv4
    assert ask(b["netns"], a["ip6"], 80, timeout=1) == ""
    assert not ping(b["netns"], a["ip6"])
    # disableicc: not even inside its own network, in either family
    assert ask(c["netns"], b["ip6"], 80, timeout=1) == "" and not ping(c["netns"], b["ip"])
    # [::]:8081 is IPv6 only, 0.0.0.0:8082 IPv4 only
    assert ask(client, host6, 8081) == "a"
    assert ask(client, host_ip, 8081, timeout=1) == ""
    assert ask(client, host_ip, 8082) == "a"
    assert ask(client, host6, 8082, timeout=1) == ""
    # a port bound per family takes the other family's binding of the same port too
    d2 = serve(d, "n1", "d2", 80, False, "-p", "0.0.0.0:8081:80")
    assert ask(client, host_ip, 8081) == "d2" and ask(client, host6, 8081) == "a"
    res = d.cli("run", "--net", "n1", "-p", "8081:80", "--", "true", check=False)
    assert res.returncode != 0 and "8081" in res.stderr, res.stderr
    d.cli("rm", "a", "b", "c", d2["name"])
    d.cli("network", "rm", "n1", "n2")


def test_an_ipv6_only_network_answers_aaaa_and_has_no_ipv4(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("network", "create", "--ipv6", "--ipv4=false", "--subnet", V6, "only6")
    view = _net(d, "only6")
    assert [c["Subnet"] for c in view["IPAM"]["Config"]] == [V6]
    a = serve(d, "only6", "a")
    b = serve(d, "only6", "b")
    assert a["ip"] == "" and a["ip6"]
    inside = in_ns(a["netns"], "ip", "-o", "addr", "show", "dev", "eth0").stdout
    assert "inet " not in inside and a["ip6"] in inside, inside
    assert ask(b["netns"], a["ip6"], 80) == "a"
    ask_dns = ("dig", "+short", "@127.0.0.11", "-q")
    dig = in_ns(b["netns"], *ask_dns, "a", "-t", "AAAA").stdout.split()
    assert dig == [a["ip6"]], dig
    assert in_ns(b["netns"], *ask_dns, "a", "-t", "A").stdout.split() == []
    # glibc, through the resolv.conf hostnet run gives: AAAA, and no IPv4 for the name
    res = d.cli("run", "--net", "only6", "--", "getent", "ahosts", "a").stdout
    assert {ln.split()[0] for ln in res.splitlines() if ln.strip()} == {a["ip6"]}, res
    rev = ipaddress.ip_address(a["ip6"]).reverse_pointer
    ptr = in_ns(b["netns"], *ask_dns, rev, "-t", "PTR").stdout.split()
    assert ptr == ["a."], ptr
    d.cli("rm", "a", "b")
    d.cli("network", "rm", "only6")


def test_ip_range_and_aux_addresses_shape_allocation_and_internal_has_no_way_out(
    lab: Lab,
) -> None:
    d, host_ip = lab.host()
    client, client_ip = lab.node("client")
    client6 = lab.with_ipv6(client, client_ip)
    lab.with_ipv6(d.host, host_ip)
    d.cli(
        "network", "create", "--subnet", "172.20.12.0/24", "--ip-range", "172.20.12.128/30",
        "--aux-address", "router=172.20.12.129", "--subnet", "fd12:3456:789a:12::/64",
        "--ip-range", "fd12:3456:789a:12::100/126", "--aux-address", "r6=fd12:3456:789a:12::100",
        "ranged",
    )  # fmt: skip
    cfg = _net(d, "ranged")["IPAM"]["Config"]
    assert cfg[0]["IPRange"] == "172.20.12.128/30"
    assert cfg[0]["AuxiliaryAddresses"] == {"router": "172.20.12.129"}
    assert cfg[1]["AuxiliaryAddresses"] == {"r6": "fd12:3456:789a:12::100"}
    got = [serve(d, "ranged", f"r{i}") for i in range(3)]
    assert [g["ip"] for g in got] == ["172.20.12.128", "172.20.12.130", "172.20.12.131"]
    assert [g["ip6"] for g in got] == [f"fd12:3456:789a:12::{x}" for x in (101, 102, 103)]
    res = d.cli("run", "--net", "ranged", "--", "true", check=False)
    assert res.returncode != 0 and "no free address left in --ip-range" in res.stderr
    # a static address outside the range but inside the subnet is fine (as Docker)
    s = serve(d, "ranged", "s", 80, False, "--ip", "172.20.12.50", "--ip6", "fd12:3456:789a:12::50")
    assert (s["ip"], s["ip6"]) == ("172.20.12.50", "fd12:3456:789a:12::50")
    res = d.cli("run", "--net", "ranged", "--ip", "172.20.12.129", "--", "true", check=False)
    assert res.returncode != 0 and "--aux-address" in res.stderr, res.stderr
    # internal: containers talk to each other, never out, and publish nothing
    d.cli("network", "create", "--internal", "--ipv6", "closed")
    assert _net(d, "closed")["Internal"] is True
    x, y = serve(d, "closed", "x"), serve(d, "closed", "y")
    assert ask(x["netns"], y["ip6"], 80) == "y" and ask(x["netns"], y["ip"], 80) == "y"
    peer_server(lab.spawn, client, 7000)
    assert ask(x["netns"], client_ip, 7000, timeout=1) == ""
    assert ask(x["netns"], client6, 7000, timeout=1) == ""
    routes = in_ns(x["netns"], "ip", "route").stdout + in_ns(x["netns"], "ip", "-6", "route").stdout
    assert "default" not in routes, routes
    res = d.cli("run", "--net", "closed", "-p", "8090:80", "--", "true", check=False)
    assert res.returncode != 0 and "internal" in res.stderr, res.stderr
    d.cli("rm", *[g["name"] for g in got], "s", "x", "y")
    d.cli("network", "rm", "ranged", "closed")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--subnet", "fd12:3456:789a:20::/127"], "too small"),
        (["--subnet", "fd12:3456:789a:21::/64", "--gateway", "fd12:3456:789a:99::1"], "outside"),
        (["--subnet", "172.20.22.0/24", "--gateway", "fd12::1"], "no IPv6 subnet"),
        (["--subnet", "fd12:3456:789a:10::/64", "--subnet", "fd12:3456:789a:11::/64"], "two IPv6"),
        (["--subnet", "fd12:3456:789a:10:8000::/65"], "overlaps network 'base'"),
        (["--ipv4=false"], "needs --ipv6"),
        (["--ipv6", "--ip-range", "fd99::/120"], "--ip-range needs --subnet"),
        (["--subnet", "fd12:3456:789a:30::/64", "--ip-range", "fd99::/120"], "not inside"),
        (["--ipv6", "--aux-address", "x=fd99::1"], "outside"),
    ],
)
def test_bad_dual_stack_input_is_a_clear_error_and_changes_nothing(
    lab: Lab, args: list[str], says: str
) -> None:
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", V6, "base")
    before = d.json("network", "ls", "--format", "json")
    res = d.cli("network", "create", *args, "bad", check=False)
    assert res.returncode != 0 and says in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert d.json("network", "ls", "--format", "json") == before
    a = serve(d, "base", "a")
    for ip6, why in (("fd12:3456:789a:11::5", "outside"), (a["ip6"], "already in use")):
        res = d.cli("run", "--net", "base", "--ip6", ip6, "--", "true", check=False)
        assert res.returncode != 0 and why in res.stderr, res.stderr
    res = d.cli("run", "--net", "base", "--ip6", "172.20.1.1", "--", "true", check=False)
    assert res.returncode != 0 and "IPv4" in res.stderr, res.stderr
    assert [c["Name"] for c in d.json("ps", "--format", "json")] == ["a"]
    d.cli("rm", "a")
    d.cli("network", "rm", "base")


def _nd_macs(pcap: str, ip6: str) -> tuple[set[str], set[str]]:
    """Ethernet source MACs of frames from ``ip6``, and the MACs in the link-layer options
    of the neighbour/router discovery messages it sent."""
    out = subprocess.run(["tcpdump", "-vvenr", pcap, "ip6"], capture_output=True, text=True)
    sources, options = set(), set()
    frame_from = False
    for line in out.stdout.splitlines():
        if not line.startswith((" ", "\t")):
            words = line.split()
            frame_from = f") {ip6} >" in line
            if frame_from:
                sources.add(words[1])
        elif frame_from and "link-address option" in line:
            options.add(line.rsplit(": ", 1)[1].strip())
    return sources, options


def test_l2bridge_hides_ipv6_endpoints_behind_the_host_mac_and_transparent_does_not(
    lab: Lab,
) -> None:
    router, gw = lab.router()
    router6 = lab.with_ipv6(router, gw)
    d, host_ip = lab.host()
    host6 = lab.with_ipv6(d.host, host_ip)
    client, client_ip = lab.node("client")
    client6 = lab.with_ipv6(client, client_ip)
    host_mac = json.loads(in_ns(d.host, "ip", "-j", "link", "show", "eth0").stdout)[0]["address"]
    prefix6 = f"{SEGMENT6}/64"
    d.cli(
        "network", "create", "-d", "l2bridge", "--subnet", f"{SEGMENT}.0/24",
        "--gateway", f"{SEGMENT}.1", "--subnet", prefix6, "--gateway", router6,
        "-o", "interface=eth0", "l2",
    )  # fmt: skip
    assert ping(client, host6)  # the host's own IPv6 address moved onto the switch with it
    a6 = f"{SEGMENT6}105"
    pcap = f"{lab.tmp}/l2v6.pcap"
    cap = capture(client, pcap)
    a = serve(d, "l2", "a", 80, False, "--ip", f"{SEGMENT}.105", "--ip6", a6)
    assert ping(a["netns"], router6)  # the endpoint resolves the router (its NS goes out)
    assert ping(client, a6) and ask(client, a6, 80) == "a"  # others resolve it (its NA)
    stop_capture(cap, lambda: all(_nd_macs(pcap, a6)))
    sources, options = _nd_macs(pcap, a6)
    assert sources == {host_mac} and options == {host_mac}, (sources, options)
    neigh = in_ns(client, "ip", "-6", "neigh", "show", a6).stdout
    assert host_mac in neigh, neigh
    assert (
        "bad"
        not in subprocess.run(
            ["tcpdump", "-vvnr", pcap, "icmp6"], capture_output=True, text=True
        ).stdout
    )  # every rewritten message kept a valid checksum
    d.cli("rm", "a")
    d.cli("network", "rm", "l2")
    # transparent: the endpoint's own MAC, static IPv6 on the physical network
    d.cli(
        "network", "create", "-d", "transparent", "--subnet", f"{SEGMENT}.0/24",
        "--gateway", f"{SEGMENT}.1", "--subnet", prefix6, "--gateway", router6,
        "-o", "interface=eth0", "tr",
    )  # fmt: skip
    t6 = f"{SEGMENT6}106"
    t = serve(d, "tr", "t", 80, False, "--ip", f"{SEGMENT}.106", "--ip6", t6)
    assert ask(client, t6, 80) == "t" and ping(t["netns"], client6)
    own = json.loads(in_ns(t["netns"], "ip", "-j", "link", "show", "eth0").stdout)[0]["address"]
    assert own in in_ns(client, "ip", "-6", "neigh", "show", t6).stdout
    d.cli("rm", "t")
    d.cli("network", "rm", "tr")
    assert ping(client, host6)  # and back on the adapter


def test_transparent_takes_ipv6_from_router_advertisements(lab: Lab) -> None:
    """SLAAC: a router on the segment advertises a prefix (dnsmasq --enable-ra); a
    transparent endpoint with --ipv6 and no IPv6 subnet takes its address from it."""
    router, gw = lab.router()
    router6 = lab.with_ipv6(router, gw)
    lab.spawn(
        router, "dnsmasq", "--no-daemon", "--port=0", "--interface=eth0", "--bind-interfaces",
        "--enable-ra", f"--dhcp-range={SEGMENT6},ra-only,64", "--ra-param=eth0,4,600",
        "--dhcp-leasefile=/dev/null",
    )  # fmt: skip
    d, host_ip = lab.host()
    client, client_ip = lab.node("client")
    client6 = lab.with_ipv6(client, client_ip)
    d.cli(
        "network", "create", "-d", "transparent", "--ipv6", "--subnet", f"{SEGMENT}.0/24",
        "--gateway", f"{SEGMENT}.1", "-o", "interface=eth0", "ra",
    )  # fmt: skip
    assert _net(d, "ra")["EnableIPv6"] is True
    t = serve(d, "ra", "t", 80, False, "--ip", f"{SEGMENT}.107")
    addr = ipaddress.ip_address(t["ip6"])
    assert addr in ipaddress.ip_network(f"{SEGMENT6}/64"), t
    routes = in_ns(t["netns"], "ip", "-6", "route", "show", "default").stdout
    assert "via fe80::" in routes, routes  # the router's link-local address, from its RA
    assert ping(client, t["ip6"]) and ask(client, t["ip6"], 80) == "t"
    assert ping(t["netns"], client6) and ping(t["netns"], router6)
    res = d.cli("run", "--net", "ra", "--ip6", f"{SEGMENT6}99", "--", "true", check=False)
    assert res.returncode != 0 and "router advertisements" in res.stderr, res.stderr
    d.cli("rm", "t")
    d.cli("network", "rm", "ra")


def test_outbound_nat_and_sdn_route_policies_in_ipv6(lab: Lab) -> None:
    d, host_ip = lab.host()
    host6 = lab.with_ipv6(d.host, host_ip)
    vip6 = f"{SEGMENT6}200"
    # deprecated: never the host's own choice of source, so only the policy uses it
    in_ns(
        d.host,
        "ip",
        "-6",
        "addr",
        "add",
        f"{vip6}/64",
        "dev",
        "eth0",
        "nodad",
        "preferred_lft",
        "0",
    )
    client, client_ip = lab.node("client")
    client6 = lab.with_ipv6(client, client_ip)
    d.cli("network", "create", "--subnet", "172.20.14.0/24", "--subnet", V6, "pol")
    nat = json.dumps({"Type": "OutBoundNAT", "Settings": {"VirtualIP": vip6}})
    route = json.dumps(
        {
            "Type": "SDNRoute",
            "Settings": {
                "DestinationPrefix": "2001:db8:99::/64",
                "NextHop": "fd12:3456:789a:10::1",
            },
        }
    )
    a = serve(d, "pol", "a", 80, False, "--policy", nat, "--policy", route)
    b = serve(d, "pol", "b")
    peer_server(lab.spawn, client, 7000)
    assert ask(a["netns"], client6, 7000) == vip6  # the policy's VirtualIP, in IPv6
    assert ask(a["netns"], client_ip, 7000) == host_ip  # IPv4: the network's masquerade
    assert ask(b["netns"], client6, 7000) == host6  # others: the host's address
    routes = in_ns(a["netns"], "ip", "-6", "route").stdout
    assert "2001:db8:99::/64 via fd12:3456:789a:10::1" in routes, routes
    bad = json.dumps(
        {
            "Type": "SDNRoute",
            "Settings": {"DestinationPrefix": "2001:db8:99::/64", "NextHop": "172.20.14.1"},
        }
    )
    res = d.cli("run", "--net", "pol", "--policy", bad, "--", "true", check=False)
    assert res.returncode != 0 and "different families" in res.stderr, res.stderr
    d.cli("rm", "a", "b")
    d.cli("network", "rm", "pol")


def test_vlan_tags_ipv6_frames_and_isolates_ipv6_as_ipv4(lab: Lab) -> None:
    """VLANs are L2: IPv6 frames (neighbour discovery included) leave tagged, and another
    VLAN's IPv6 endpoints are out of reach."""
    lab.router()
    d1, _ = lab.host("h1")
    d2, _ = lab.host("h2")
    client, client_ip = lab.node("client")
    client6 = lab.with_ipv6(client, client_ip)
    lab.adapter(d2.host, "eth1")

    def vlan_net(d: Daemon, name: str, adapter: str, vid: int) -> None:
        d.cli(
            "network", "create", "-d", "transparent", "--subnet", f"{SEGMENT}.0/24",
            "--gateway", f"{SEGMENT}.1", "--subnet", f"{SEGMENT6}/64", "-o",
            f"interface={adapter}", "-o", f"vlanid={vid}", name,
        )  # fmt: skip

    vlan_net(d1, "v11", "eth0", 11)
    vlan_net(d2, "v11", "eth0", 11)
    vlan_net(d2, "v12", "eth1", 12)
    a = serve(d1, "v11", "a", 80, False, "--ip", f"{SEGMENT}.105", "--ip6", f"{SEGMENT6}105")
    b = serve(d2, "v11", "b", 80, False, "--ip", f"{SEGMENT}.106", "--ip6", f"{SEGMENT6}106")
    c = serve(d2, "v12", "c", 80, False, "--ip", f"{SEGMENT}.107", "--ip6", f"{SEGMENT6}107")
    pcap = f"{lab.tmp}/vlan6.pcap"
    cap = capture(client, pcap)
    assert ask(a["netns"], b["ip6"], 80) == "b" and ask(b["netns"], a["ip6"], 80) == "a"
    assert ask(c["netns"], a["ip6"], 80, timeout=1) == ""  # VLAN 12 cannot reach VLAN 11
    assert ask(client, a["ip6"], 80, timeout=1) == ""  # nor can untagged traffic
    assert not ping(a["netns"], client6)
    mac_a = json.loads(in_ns(a["netns"], "ip", "-j", "link", "show", "eth0").stdout)[0]["address"]

    def from_a6() -> list[str]:
        frames = subprocess.run(["tcpdump", "-enr", pcap], capture_output=True, text=True).stdout
        return [ln for ln in frames.splitlines() if mac_a in ln.split(">")[0] and "IPv6" in ln]

    stop_capture(cap, from_a6)
    from_a6 = from_a6()
    assert from_a6 and all("vlan 11" in ln for ln in from_a6), from_a6[:3]
    d1.cli("rm", "a")
    d2.cli("rm", "b", "c")


def test_l2bridge_outbound_nat_in_ipv6_with_exceptions(lab: Lab) -> None:
    router, gw = lab.router()
    router6 = lab.with_ipv6(router, gw)
    for addr in ("2001:db8:77::1/128", "2001:db8:77::2/128"):
        in_ns(router, "ip", "-6", "addr", "add", addr, "dev", "lo")
    lab.spawn(
        router, "socat", "TCP6-LISTEN:7001,reuseaddr,fork", "SYSTEM:read l; echo $SOCAT_PEERADDR"
    )
    d, host_ip = lab.host()
    host6 = lab.with_ipv6(d.host, host_ip)
    in_ns(d.host, "ip", "-6", "route", "add", "default", "via", router6)
    d.cli(
        "network", "create", "-d", "l2bridge", "--subnet", f"{SEGMENT}.0/24", "--gateway", gw,
        "--subnet", f"{SEGMENT6}/64", "--gateway", router6, "-o", "interface=eth0",
        "-o", "enable_outboundnat=true", "-o", "outboundnat_exceptions=2001:db8:77::2/128",
        "onat6",
    )  # fmt: skip
    a6 = f"{SEGMENT6}105"
    a = serve(d, "onat6", "a", 80, False, "--ip", f"{SEGMENT}.105", "--ip6", a6)
    assert ask(a["netns"], "2001:db8:77::1", 7001) == host6  # NATed to the host's address
    assert ask(a["netns"], "2001:db8:77::2", 7001) == a6  # the exception keeps its own
    assert ask(a["netns"], router6, 7001) == a6  # its own subnet is never NATed
    redirects = in_ns(a["netns"], "ip", "-6", "route", "show", "cache").stdout
    assert "2001:db8:77::1" not in redirects, redirects  # no redirect around the NAT
    d.cli("rm", "a")
    d.cli("network", "rm", "onat6")
