"""transparent, l2bridge and l2tunnel: containers on an external switch bound to a host adapter."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from helpers import ask, capture, capturing, ping, serve, stop_capture, wait_listening

from lab import SEGMENT, Daemon, Lab, eventually, in_ns

SUBNET = f"{SEGMENT}.0/24"


def mac_of(ns: str, ifname: str = "eth0") -> str:
    return str(json.loads(in_ns(ns, "ip", "-j", "link", "show", ifname).stdout)[0]["address"])


def external(d: Daemon, driver: str, name: str = "ext", adapter: str = "eth0", *extra: str) -> None:
    d.cli(
        "network",
        "create",
        "-d",
        driver,
        "--subnet",
        SUBNET,
        "--gateway",
        f"{SEGMENT}.1",
        "-o",
        f"com.docker.network.windowsshim.interface={adapter}",
        *extra,
        name,
    )


class Capture:
    """tcpdump on a lab node: which source MACs did frames from given addresses carry?"""

    def __init__(self, ns: str, path: str) -> None:
        self.path = path
        self.proc = subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{ns}",
                "tcpdump",
                "--immediate-mode",
                "-U",
                "-eni",
                "eth0",
                "-w",
                path,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        capturing(path)

    def stop(self, *ips: str) -> None:
        """Stop once frames from each of ``ips`` are in the file."""
        stop_capture(self.proc, lambda: all(self.source_macs(ip) for ip in ips))

    def source_macs(self, ip: str) -> set[str]:
        out = subprocess.run(["tcpdump", "-enr", self.path], capture_output=True, text=True).stdout
        macs = set()
        for line in out.splitlines():
            words = line.split()
            if (
                f" {ip}." in line.split(">")[0] + " "
                or f"tell {ip}" in line
                or f"{ip} is-at" in line
                or f" {ip} >" in line
            ):
                macs.add(words[1])
        return macs


def test_transparent_endpoint_is_on_the_physical_network(lab: Lab) -> None:
    router, gw = lab.router()
    d, host_ip = lab.host()
    client, _ = lab.node("client")
    before = in_ns(d.host, "ip", "-4", "-o", "addr", "show").stdout.split()
    pinger = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{client}", "ping", "-i", "0.05", "-c", "60", host_ip],
        stdout=subprocess.PIPE,
        text=True,
    )
    external(d, "transparent", "MyTransparentNet")
    out, _ = pinger.communicate(timeout=30)
    assert " 0% packet loss" in out  # the host stayed reachable while its adapter moved
    web = serve(d, "MyTransparentNet", "web", 80, False, "--ip", f"{SEGMENT}.105")
    assert ask(client, f"{SEGMENT}.105", 80) == "web"  # from another host on the segment
    assert ask(d.host, f"{SEGMENT}.105", 80) == "web"  # from its own container host
    assert ping(web["netns"], gw)  # reaches the segment's gateway
    neigh = in_ns(client, "ip", "neigh", "show", f"{SEGMENT}.105").stdout
    assert mac_of(web["netns"]) in neigh  # its own MAC on the wire
    sw = d.json("switch", "ls", "--format", "json")
    assert {
        "Switch": "MyTransparentNet",
        "SwitchType": "External",
        "Adapter": "eth0",
    }.items() <= next(s for s in sw if s["Switch"] == "MyTransparentNet").items()
    d.cli("rm", "web")
    d.cli("network", "rm", "MyTransparentNet")
    # the host's addresses and routes are back on the adapter
    assert in_ns(d.host, "ip", "-4", "-o", "addr", "show").stdout.split() == before
    assert "default via" in in_ns(d.host, "ip", "route", "show", "dev", "eth0").stdout
    assert ping(client, host_ip)


def test_l2bridge_frames_carry_the_host_mac(lab: Lab) -> None:
    router, gw = lab.router()
    d, host_ip = lab.host()
    client, _ = lab.node("client")
    host_mac = mac_of(d.host)
    external(d, "l2bridge", "l2")
    a = serve(d, "l2", "a", 80, False, "--ip", f"{SEGMENT}.105")
    b = serve(d, "l2", "b", 80, False, "--ip", f"{SEGMENT}.106")
    cap = Capture(client, f"{lab.tmp}/l2bridge.pcap")
    assert ask(client, f"{SEGMENT}.105", 80) == "a"  # others reach the endpoint's address
    assert ping(a["netns"], gw) and ping(b["netns"], gw)
    in_ns(b["netns"], "ping", "-c", "2", "-b", "-W", "1", f"{SEGMENT}.255", check=False)
    cap.stop(f"{SEGMENT}.105", f"{SEGMENT}.106")
    macs = cap.source_macs(f"{SEGMENT}.105") | cap.source_macs(f"{SEGMENT}.106")
    assert macs == {host_mac}, macs
    assert host_mac in in_ns(client, "ip", "neigh", "show", f"{SEGMENT}.105").stdout
    # endpoints on the same host talk directly, not through the segment
    seg_before = in_ns(lab.seg, "ip", "-s", "-j", "link", "show", lab.seg_port(host_ip)).stdout
    assert ask(a["netns"], f"{SEGMENT}.106", 80) == "b"
    seg_after = in_ns(lab.seg, "ip", "-s", "-j", "link", "show", lab.seg_port(host_ip)).stdout
    rx = [json.loads(x)[0]["stats64"]["rx"]["packets"] for x in (seg_before, seg_after)]
    assert rx[1] - rx[0] < 3
    assert ask(d.host, f"{SEGMENT}.106", 80) == "b"


def test_l2tunnel_hairpins_everything_through_the_upstream_switch(lab: Lab) -> None:
    router, gw = lab.router()
    d, host_ip = lab.host()
    external(d, "l2tunnel", "tun")
    a = serve(d, "tun", "a", 80, False, "--ip", f"{SEGMENT}.105")
    serve(d, "tun", "b", 80, False, "--ip", f"{SEGMENT}.106")
    port = lab.seg_port(host_ip)
    # the upstream switch: hair-pins on the host's port, counts and can drop
    in_ns(lab.seg, "bridge", "link", "set", "dev", port, "hairpin", "on")
    upstream = "table bridge upstream {\n chain relay { type filter hook forward priority 0; }\n}\n"
    in_ns(lab.seg, "nft", "-f", "-", input=upstream)
    in_ns(
        lab.seg,
        "nft",
        f'add rule bridge upstream relay iifname "{port}" ip saddr {SEGMENT}.105 '
        f"ip daddr {SEGMENT}.106 counter",
    )
    assert ask(a["netns"], f"{SEGMENT}.106", 80) == "b"
    counted = in_ns(lab.seg, "nft", "list", "chain", "bridge", "upstream", "relay").stdout
    assert "packets 0 " not in counted and "counter packets" in counted
    # a policy on the upstream switch blocks two endpoints of the same host
    in_ns(
        lab.seg,
        "nft",
        f"insert rule bridge upstream relay ip saddr {SEGMENT}.105 ip daddr {SEGMENT}.106 drop",
    )
    assert ask(a["netns"], f"{SEGMENT}.106", 80, timeout=1) == ""
    assert ping(a["netns"], gw)  # other traffic still flows
    assert ask(d.host, f"{SEGMENT}.105", 80) == "a"


@pytest.mark.parametrize("driver", ["nat", "transparent", "l2bridge", "l2tunnel"])
def test_connectivity_table(lab: Lab, driver: str) -> None:
    """shared/REFERENCES.md section 3: same host, to external, across hosts."""
    router, gw = lab.router()
    lab.spawn(router, "socat", "TCP-LISTEN:7000,reuseaddr,fork", "SYSTEM:read l; echo router")
    d1, ip1 = lab.host("h1")
    d2, ip2 = lab.host("h2")
    for i, h in enumerate((d1, d2), start=1):
        if driver != "nat":
            external(h, driver, "net")
        else:
            h.cli("network", "create", "--subnet", f"172.16.{i}.0/24", "net")
    if driver == "l2tunnel":
        for ip in (ip1, ip2):
            in_ns(lab.seg, "bridge", "link", "set", "dev", lab.seg_port(ip), "hairpin", "on")
    static = (lambda n: ["--ip", f"{SEGMENT}.{n}"]) if driver != "nat" else (lambda n: [])
    a = serve(
        d1, "net", "a", 80, False, *static(105), *(["-p", "8080:80"] if driver == "nat" else [])
    )
    b = serve(d1, "net", "b", 80, False, *static(106))
    c = serve(d2, "net", "c", 80, False, *static(107))
    assert ask(b["netns"], a["ip"], 80) == "a"  # same host
    assert ask(a["netns"], gw, 7000) != ""  # to the external network
    if driver == "nat":
        assert ask(c["netns"], a["ip"], 80, timeout=1) == ""  # across hosts: not directly...
        assert ask(c["netns"], ip1, 8080) == "a"  # ...only through published ports
    else:
        assert ask(c["netns"], a["ip"], 80) == "a"  # across hosts: bridged on the segment
        assert ask(a["netns"], c["ip"], 80) == "c"


def test_external_pitfalls_are_clear_errors(lab: Lab) -> None:
    router, gw = lab.router()
    d, _ = lab.host()
    in_ns(d.host, "ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
    in_ns(d.host, "ip", "link", "add", "eth2", "type", "veth", "peer", "name", "eth2p")
    in_ns(d.host, "ip", "link", "add", "foreignbr", "type", "bridge")
    in_ns(d.host, "ip", "link", "set", "eth2", "master", "foreignbr")
    external(d, "transparent", "t1", "eth1")
    cases = [
        (
            ["network", "create", "-d", "transparent", "--gateway", "10.1.1.1", "x"],
            "--gateway needs --subnet",
        ),
        (["network", "create", "-d", "l2bridge", "x"], "needs --subnet and --gateway"),
        (
            [
                "network",
                "create",
                "-d",
                "transparent",
                "--subnet",
                "10.9.9.0/24",
                "-o",
                "interface=eth1",
                "x",
            ],
            "already carries the external network 't1'",
        ),
        (
            [
                "network",
                "create",
                "-d",
                "transparent",
                "--subnet",
                "10.9.8.0/24",
                "-o",
                "interface=eth2",
                "x",
            ],
            "already a port of bridge foreignbr",
        ),
        (
            [
                "network",
                "create",
                "-d",
                "transparent",
                "--subnet",
                "10.9.7.0/24",
                "-o",
                "interface=nope0",
                "x",
            ],
            "adapter 'nope0' does not exist",
        ),
        (
            [
                "network",
                "create",
                "-d",
                "transparent",
                "--subnet",
                "10.9.6.0/24",
                "-o",
                "vsid=11",
                "x",
            ],
            "'vsid' (virtual subnet ids) is not supported",
        ),
        (
            [
                "network",
                "create",
                "-d",
                "transparent",
                "--subnet",
                "10.9.5.0/24",
                "-o",
                "interface=eth2,eth2",
                "x",
            ],
            "names one twice",
        ),
        (["run", "--net", "t1", "-p", "80:80", "--", "true"], "publishes no ports"),
    ]
    failures = []
    for argv, words in cases:
        res = d.cli(*argv, check=False)
        if res.returncode == 0 or words not in res.stderr or "what to do" not in res.stderr:
            failures.append(f"{argv}: {res.returncode} {res.stderr.strip()}")
    assert not failures, "\n".join(failures)
    assert [n["Name"] for n in d.json("network", "ls", "--format", "json")] == ["nat", "t1"]
    d.cli("network", "rm", "t1")

    def eth1_free() -> None:
        assert "master" not in in_ns(d.host, "ip", "-o", "link", "show", "eth1").stdout

    eventually(eth1_free)


def test_transparent_with_dhcp_from_the_segment(lab: Lab) -> None:
    router, gw = lab.router()
    leases = f"{lab.tmp}/dnsmasq.leases"
    lab.spawn(
        router,
        "dnsmasq",
        "--no-daemon",
        "--port=0",
        "--interface=eth0",
        "--bind-interfaces",
        f"--dhcp-range={SEGMENT}.150,{SEGMENT}.199,255.255.255.0,2m",
        f"--dhcp-option=3,{gw}",
        f"--dhcp-option=6,{SEGMENT}.53",
        "--dhcp-option=15,lab.example",
        f"--dhcp-leasefile={leases}",
    )
    d, _ = lab.host()
    client, _ = lab.node("client")
    d.cli("network", "create", "-d", "transparent", "-o", "interface=eth0", "dhcpnet")
    # the lease is there before the command starts: address, gateway and DNS applied
    out = d.cli(
        "run",
        "--net",
        "dhcpnet",
        "--",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; ip route; cat /etc/resolv.conf",
    ).stdout
    assert f"inet {SEGMENT}.1" in out and f"default via {gw}" in out
    # the embedded resolver answers in the compartment and forwards to the lease's server
    assert "nameserver 127.0.0.11" in out and "search lab.example" in out
    web = serve(d, "dhcpnet", "web")
    assert 150 <= int(web["ip"].rsplit(".", 1)[1]) <= 199
    assert ask(client, web["ip"], 80) == "web"
    with open(leases) as fh:
        assert web["ip"] in fh.read()
    # a DHCP client keeps the lease renewed while the endpoint lives
    inode = os.stat(web["netns"]).st_ino
    cmdlines = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino == inode:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    cmdlines.append(fh.read().replace(b"\0", b" ").decode())
        except OSError:
            continue
    assert any("udhcpc" in c and " -R " in c for c in cmdlines), cmdlines
    d.cli("rm", "web")

    def released() -> None:
        with open(leases) as fh:
            assert web["ip"] not in fh.read()

    eventually(released)
    res = d.cli("run", "--net", "dhcpnet", "--ip", f"{SEGMENT}.120", "--", "true", check=False)
    assert res.returncode != 0 and "takes addresses from DHCP" in res.stderr
    d.cli("network", "rm", "dhcpnet")


def test_vlan_tags_on_the_wire_and_isolation(lab: Lab) -> None:
    router, gw = lab.router()
    d1, _ = lab.host("h1")
    d2, _ = lab.host("h2")
    client, _ = lab.node("client")
    lab.adapter(d2.host, "eth1")
    external(d1, "transparent", "v11", "eth0", "-o", "com.docker.network.windowsshim.vlanid=11")
    external(d2, "transparent", "v11", "eth0", "-o", "vlanid=11")
    external(d2, "transparent", "v12", "eth1", "-o", "vlanid=12")
    a = serve(d1, "v11", "a", 80, False, "--ip", f"{SEGMENT}.105")
    b = serve(d2, "v11", "b", 80, False, "--ip", f"{SEGMENT}.106")
    c = serve(d2, "v12", "c", 80, False, "--ip", f"{SEGMENT}.107")
    cap = capture(client, f"{lab.tmp}/vlan.pcap")
    assert ask(a["netns"], b["ip"], 80) == "b"  # VLAN 11 across hosts
    assert ask(b["netns"], a["ip"], 80) == "a"
    assert ask(c["netns"], a["ip"], 80, timeout=1) == ""  # VLAN 12 cannot reach VLAN 11
    assert ask(c["netns"], b["ip"], 80, timeout=1) == ""
    assert ask(client, a["ip"], 80, timeout=1) == ""  # untagged traffic does not reach them

    def read() -> str:
        return subprocess.run(
            ["tcpdump", "-enr", f"{lab.tmp}/vlan.pcap"], capture_output=True, text=True
        ).stdout

    mac_a = mac_of(a["netns"])

    def from_a_and_c() -> bool:  # what the verdict looks at: frames of a, c's tagged 12
        lines = read().splitlines()
        tagged_12 = any("vlan 12" in ln for ln in lines)
        return tagged_12 and any(mac_a in ln.split(">")[0] for ln in lines)

    stop_capture(cap, from_a_and_c)
    frames = read()
    from_a = [ln for ln in frames.splitlines() if mac_a in ln.split(">")[0]]
    assert from_a and all("vlan 11" in ln for ln in from_a), from_a[:3]
    assert any("vlan 12" in ln for ln in frames.splitlines())  # c's ARP went out tagged 12
    sw = {s["Switch"]: s for s in d2.json("switch", "ls", "--format", "json")}
    assert sw["v11"]["VLAN"] == "11" and sw["v12"]["VLAN"] == "12"


def _tx_bytes(ns: str, ifname: str) -> int:
    return int(
        json.loads(in_ns(ns, "ip", "-s", "-j", "link", "show", ifname).stdout)[0]["stats64"]["tx"][
            "bytes"
        ]
    )


def test_team_spreads_traffic_and_survives_a_member_going_down(lab: Lab) -> None:
    router, gw = lab.router()
    d, _ = lab.host()
    client, client_ip = lab.node("client")
    lab.adapter(d.host, "eth1")
    lab.adapter(d.host, "eth2")
    external(d, "transparent", "teamed", "eth1,eth2")
    a = serve(d, "teamed", "a", 80, False, "--ip", f"{SEGMENT}.105")
    assert ask(client, a["ip"], 80) == "a"
    sw = next(s for s in d.json("switch", "ls", "--format", "json") if s["Switch"] == "teamed")
    assert sw["Adapter"] == "eth1,eth2"
    # both members carry traffic: parallel flows are spread by hash (16 flows: the chance
    # that all of them hash to one member, 2 in 65,536, no longer fails a run now and then)
    before = {m: _tx_bytes(d.host, m) for m in ("eth1", "eth2")}
    lab.spawn(client, "iperf3", "-s", "-1", "-p", "5301")
    wait_listening(f"/run/netns/{client}", 5301)
    in_ns(a["netns"], "iperf3", "-c", client_ip, "-p", "5301", "-t", "2", "-P", "16", timeout=30)
    sent = {m: _tx_bytes(d.host, m) - before[m] for m in before}
    assert all(v > 1_000_000 for v in sent.values()), sent
    # a member goes down mid-transfer: the connection carries on over the other
    lab.spawn(client, "iperf3", "-s", "-1", "-p", "5302")
    wait_listening(f"/run/netns/{client}", 5302)
    run = subprocess.Popen(
        [
            "nsenter",
            f"--net={a['netns']}",
            "iperf3",
            "-c",
            client_ip,
            "-p",
            "5302",
            "-t",
            "6",
            "-J",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)
    in_ns(d.host, "ip", "link", "set", "eth1", "down")
    out, _ = run.communicate(timeout=30)
    intervals = json.loads(out)["intervals"]
    late = [i["sum"]["bits_per_second"] for i in intervals[4:]]
    assert late and all(bps > 1e6 for bps in late), late
    assert ask(client, a["ip"], 80) == "a"
    in_ns(d.host, "ip", "link", "set", "eth1", "up")


def test_l2bridge_outbound_nat_with_exceptions(lab: Lab) -> None:
    router, gw = lab.router()
    for addr in ("203.0.113.1/32", "203.0.113.2/32"):
        in_ns(router, "ip", "addr", "add", addr, "dev", "lo")
    lab.spawn(
        router, "socat", "TCP-LISTEN:7001,reuseaddr,fork", "SYSTEM:read l; echo $SOCAT_PEERADDR"
    )
    d, host_ip = lab.host()
    external(
        d,
        "l2bridge",
        "onat",
        "eth0",
        "-o",
        "com.docker.network.windowsshim.enable_outboundnat=true",
        "-o",
        "outboundnat_exceptions=203.0.113.2/32",
    )
    a = serve(d, "onat", "a", 80, False, "--ip", f"{SEGMENT}.105")
    time.sleep(0.3)
    assert ask(a["netns"], "203.0.113.1", 7001) == host_ip  # NATed to the host's address
    assert ask(a["netns"], "203.0.113.2", 7001) == a["ip"]  # the exception keeps its own
    assert ask(a["netns"], gw, 7001) == a["ip"]  # its own subnet is never NATed
