"""l2tunnel in IPv6, with packets: two endpoints of one host meet only through the upstream
switch (hair-pinned on the host's port) as in IPv4; neighbour discovery works across it and
no endpoint MAC ever reaches the wire (the link-layer options of NS and NA carry the host's
MAC with a valid checksum)."""

from __future__ import annotations

import subprocess
import time

from helpers import ask, capture, peer_server, ping, serve
from test_dual_stack import _nd_macs
from test_external import mac_of

from lab import SEGMENT, SEGMENT6, Lab, in_ns


def _frames(pcap: str, src: str, dst: str, what: str) -> int:
    """How many captured frames carry an IPv6 packet from ``src`` to ``dst`` whose summary
    contains ``what``."""
    out = subprocess.run(["tcpdump", "-enr", pcap, "ip6"], capture_output=True, text=True).stdout
    return sum(
        1 for line in out.splitlines() if f" {src}" in line and f"> {dst}" in line and what in line
    )


def _macs_sent(pcap: str) -> set[str]:
    """The MACs the capture's frames were sent from: Ethernet sources, link-layer options."""
    out = subprocess.run(["tcpdump", "-vvenr", pcap], capture_output=True, text=True).stdout
    macs: set[str] = set()
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):
            words = line.split()
            if len(words) > 3 and words[2] == ">":
                macs.add(words[1])
        elif "link-address option" in line:
            macs.add(line.rsplit(": ", 1)[1].strip())
    return macs


def test_l2tunnel_hairpins_ipv6_through_the_upstream_switch(lab: Lab) -> None:
    router, gw = lab.router()
    router6 = lab.with_ipv6(router, gw)
    d, host_ip = lab.host()
    host6 = lab.with_ipv6(d.host, host_ip)
    host_mac = mac_of(d.host)
    d.cli(
        "network", "create", "-d", "l2tunnel", "--subnet", f"{SEGMENT}.0/24",
        "--gateway", f"{SEGMENT}.1", "--subnet", f"{SEGMENT6}/64", "--gateway", router6,
        "-o", "interface=eth0", "tun6",
    )  # fmt: skip
    port = lab.seg_port(host_ip)
    # the upstream switch: hair-pins on the host's port, counts and can drop
    in_ns(lab.seg, "bridge", "link", "set", "dev", port, "hairpin", "on")
    upstream = "table bridge upstream {\n chain relay { type filter hook forward priority 0; }\n}\n"
    in_ns(lab.seg, "nft", "-f", "-", input=upstream)
    a6, b6 = f"{SEGMENT6}105", f"{SEGMENT6}106"
    in_ns(
        lab.seg,
        "nft",
        f'add rule bridge upstream relay iifname "{port}" ip6 saddr {a6} ip6 daddr {b6} counter',
    )
    peer_server(lab.spawn, router, 7000)
    pcap = f"{lab.tmp}/tun6.pcap"
    cap = capture(lab.seg, pcap, port)  # the upstream switch's port facing the host
    lab.procs.append(cap)  # ended by the lab, should an assertion fail first
    a = serve(d, "tun6", "a", 80, False, "--ip", f"{SEGMENT}.105", "--ip6", a6)
    b = serve(d, "tun6", "b", 80, False, "--ip", f"{SEGMENT}.106", "--ip6", b6)
    # container to container over IPv6 (neighbour discovery first), ICMPv6 and TCP
    assert ping(a["netns"], b6)
    assert ask(a["netns"], b6, 80) == "b" and ask(b["netns"], a6, 80) == "a"
    # to an upstream address, not NATed (the router sees the endpoint's own address)
    assert ping(a["netns"], router6)
    assert ask(a["netns"], router6, 7000) == a6
    # from the host itself and back
    assert ask(d.host, a6, 80) == "a"
    time.sleep(0.3)  # the last frames reach the file (tcpdump writes each as it comes)
    cap.terminate()
    cap.wait(5)
    # the upstream switch relayed the endpoints' frames to each other: counted on its
    # forward hook, and seen twice on the host's port (in from the host, hair-pinned back)
    counted = in_ns(lab.seg, "nft", "list", "chain", "bridge", "upstream", "relay").stdout
    assert "counter packets 0 " not in counted and "counter packets" in counted, counted
    assert _frames(pcap, a6, b6, "ICMP6, echo request") >= 2
    assert _frames(pcap, b6, a6, "ICMP6, echo reply") >= 2
    assert _frames(pcap, f"{a6}.", f"{b6}.80", "Flags [S]") >= 2
    # neighbour discovery went over the wire too, behind the host's MAC, checksums valid
    for ip6 in (a6, b6):
        sources, options = _nd_macs(pcap, ip6)
        assert sources == {host_mac} and options == {host_mac}, (ip6, sources, options)
    checked = subprocess.run(["tcpdump", "-vvnr", pcap, "icmp6"], capture_output=True, text=True)
    assert "bad" not in checked.stdout and "neighbor advertisement" in checked.stdout
    # no frame on the wire came from an endpoint's own MAC; the router knows the endpoint
    # by the host's MAC
    endpoint_macs = {mac_of(a["netns"]), mac_of(b["netns"])}
    assert not endpoint_macs & _macs_sent(pcap), endpoint_macs
    assert host_mac in in_ns(router, "ip", "-6", "neigh", "show", a6).stdout
    # a policy on the upstream switch blocks the two endpoints of one host from each other
    in_ns(lab.seg, "nft", f"insert rule bridge upstream relay ip6 saddr {a6} ip6 daddr {b6} drop")
    assert ask(a["netns"], b6, 80, timeout=1) == ""
    assert not ping(a["netns"], b6)
    assert ping(a["netns"], router6)  # other traffic still flows
    assert ask(d.host, b6, 80) == "b" and ping(b["netns"], host6)
    d.cli("rm", "a", "b")
    d.cli("network", "rm", "tun6")
    assert ping(router, host6)  # the host's IPv6 address back on its adapter
