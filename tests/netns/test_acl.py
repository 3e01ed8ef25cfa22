"""Port ACLs with real traffic: defaults, block/allow by port, protocol and address, priority."""

from __future__ import annotations

import json
import signal
import sys

from helpers import ask, ping, serve, wait_listening

from lab import Daemon, Lab, in_ns

RAW_RECV = (
    "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_RAW, 253); s.settimeout(2)\n"
    "try:\n    s.recvfrom(100); print('got')\nexcept socket.timeout:\n    print('none')\n"
)
RAW_SEND = (
    "import socket,sys,time\nfor _ in range(5):\n"
    "    socket.socket(socket.AF_INET, socket.SOCK_RAW, 253).sendto(b'x' * 8, (sys.argv[1], 0)); time.sleep(0.1)\n"
)


def raw_253_arrives(lab: Lab, src_ns: str, dst_netns: str, dst_ip: str) -> bool:
    import subprocess

    recv = subprocess.Popen(
        ["nsenter", f"--net={dst_netns}", sys.executable, "-c", RAW_RECV],
        stdout=subprocess.PIPE,
        text=True,
    )
    in_ns(src_ns, sys.executable, "-c", RAW_SEND, dst_ip)
    out, _ = recv.communicate(timeout=10)
    return out.strip() == "got"


def two_port_server(d: Daemon, name: str, *acl: str) -> dict[str, str]:
    args = [a for spec in acl for a in ("--acl", spec)]
    d.cli(
        "run",
        "-d",
        "--name",
        name,
        *args,
        "--",
        "sh",
        "-c",
        f"socat TCP-LISTEN:80,fork 'SYSTEM:read l; echo {name}80' & "
        f"exec socat TCP-LISTEN:81,fork 'SYSTEM:read l; echo {name}81'",
    )
    c = next(x for x in d.json("ps", "--format", "json") if x["Name"] == name)
    wait_listening(c["NetnsPath"], 80)
    wait_listening(c["NetnsPath"], 81)
    return {"ip": c["Networks"]["nat"]["IPAddress"], "netns": c["NetnsPath"]}


def test_inbound_default_blocks_other_protocols_but_not_tcp_udp_icmp(lab: Lab) -> None:
    d, _ = lab.host()
    a = serve(d, "nat", "a")
    assert ask(d.host, a["ip"], 80) == "a" and ping(d.host, a["ip"])
    assert not raw_253_arrives(lab, d.host, a["netns"], a["ip"])
    d.cli("endpoint", "acl", "add", "a", "action=allow;dir=in;proto=253;prio=1")
    assert raw_253_arrives(lab, d.host, a["netns"], a["ip"])


def test_block_rules_drop_exactly_what_they_name(lab: Lab) -> None:
    d, _ = lab.host()
    web = two_port_server(d, "web", "action=block;dir=in;proto=tcp;lport=80")
    peer = serve(d, "nat", "peer")
    assert ask(d.host, web["ip"], 80, timeout=1) == ""  # the named port
    assert ask(d.host, web["ip"], 81) == "web81"  # not the other one
    assert ping(d.host, web["ip"])  # nor ICMP
    # outbound ICMP blocked; TCP out still flows
    d.cli("endpoint", "acl", "add", "web", "action=block;dir=out;proto=icmp")
    assert not ping(web["netns"], peer["ip"])
    assert ask(web["netns"], peer["ip"], 80) == "peer"
    # a remote prefix
    d.cli("endpoint", "acl", "add", "web", f"action=block;dir=out;raddr={peer['ip']}/32")
    assert ask(web["netns"], peer["ip"], 80, timeout=1) == ""
    assert (
        ask(web["netns"], "172.16.0.1", 1, timeout=1) == ""
    )  # (nothing listens; reachability below)
    assert ask(d.host, web["ip"], 81) == "web81"
    rules = d.json("endpoint", "acl", "ls", "web", "--format", "json")
    assert [r["Direction"] for r in rules] == ["In", "Out", "Out"]
    d.cli("endpoint", "acl", "rm", "web", "2", "1")
    assert ask(web["netns"], peer["ip"], 80) == "peer" and ping(web["netns"], peer["ip"])
    assert ask(d.host, web["ip"], 80, timeout=1) == ""  # rule 0 is still there


def test_priority_decides_between_allow_and_block(lab: Lab) -> None:
    d, _ = lab.host()
    friend = serve(d, "nat", "friend")
    web = two_port_server(
        d,
        "web",
        "action=block;dir=in;proto=tcp;lport=80;prio=200",
        f"action=allow;dir=in;proto=tcp;lport=80;raddr={friend['ip']};prio=100",
    )
    assert ask(friend["netns"], web["ip"], 80) == "web80"  # the allow comes first for it
    assert ask(d.host, web["ip"], 80, timeout=1) == ""  # everyone else meets the block
    # swap priorities: now the block wins for the friend too
    d.cli("endpoint", "acl", "rm", "web", "0", "1")
    d.cli(
        "endpoint",
        "acl",
        "add",
        "web",
        "action=block;dir=in;proto=tcp;lport=80;prio=10",
        f"action=allow;dir=in;proto=tcp;lport=80;raddr={friend['ip']};prio=100",
    )
    assert ask(friend["netns"], web["ip"], 80, timeout=1) == ""


def test_acls_show_in_hns_form_and_survive_restart_and_reconcile(lab: Lab) -> None:
    d, _ = lab.host()
    web = two_port_server(d, "web", "action=block;dir=in;proto=tcp;lport=80")
    ep = d.json("endpoint", "inspect", "web")
    acl = [p for p in ep["Policies"] if p["Type"] == "ACL"]
    assert (
        acl
        and acl[0]["Settings"]["Action"] == "Block"
        and acl[0]["Settings"]["LocalPorts"] == ["80"]
    )
    d.stop(signal.SIGKILL)
    d.start()
    assert ask(d.host, web["ip"], 80, timeout=1) == ""
    in_ns(d.host, "nft", "flush", "ruleset")
    assert ask(d.host, web["ip"], 80) == "web80"  # the ACL went with the ruleset...
    report = json.loads(d.cli("system", "reconcile").stdout)
    assert report["errors"] == []
    assert ask(d.host, web["ip"], 80, timeout=1) == ""  # ...and reconcile put it back
    assert ask(d.host, web["ip"], 81) == "web81"


def test_bad_acl_is_refused_and_changes_nothing(lab: Lab) -> None:
    d, _ = lab.host()
    res = d.cli("run", "--acl", "action=block;dir=sideways", "--", "true", check=False)
    assert (
        res.returncode != 0 and "dir must be in or out" in res.stderr and "what to do" in res.stderr
    )
    assert d.json("ps", "--format", "json") == []
    serve(d, "nat", "a")
    res = d.cli(
        "endpoint", "acl", "add", "a", "action=block;dir=in;proto=icmp;lport=80", check=False
    )
    assert res.returncode != 0 and "ports need proto=tcp" in res.stderr
    assert d.json("endpoint", "acl", "ls", "a", "--format", "json") == []


def test_network_acl_applies_to_every_endpoint(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli(
        "network",
        "create",
        "--subnet",
        "172.16.3.0/24",
        "--acl",
        "action=block;dir=in;proto=tcp;lport=80",
        "guarded",
    )
    a = serve(d, "guarded", "a", 80)
    b = serve(d, "guarded", "b", 81)
    assert ask(d.host, a["ip"], 80, timeout=1) == ""
    assert ask(d.host, b["ip"], 81) == "b"  # another port of another endpoint: untouched
    # an endpoint rule with a lower priority number comes before the network's
    d.cli("endpoint", "acl", "add", "a", "action=allow;dir=in;proto=tcp;lport=80;prio=1")
    assert ask(d.host, a["ip"], 80) == "a"


def test_max_bandwidth_limits_egress(lab: Lab) -> None:
    """The cap is an upper bound the shaper keeps on any machine; from below it only has
    to come near what the same machine does without a cap, measured in this test (a low
    cap, 1 Mbit/s, which any machine reaches uncapped many times over)."""
    d, _ = lab.host()
    limit = 125_000  # bytes/s = 1 Mbit/s
    d.cli("run", "-d", "--name", "slow", "--max-bandwidth", "125k", "--", "sleep", "infinity")
    d.cli("run", "-d", "--name", "free", "--", "sleep", "infinity")
    ps = {c["Name"]: c for c in d.json("ps", "--format", "json")}
    ep = d.json("endpoint", "inspect", "slow")
    qos = [p for p in ep["Policies"] if p["Type"] == "QOS"]
    assert qos == [{"Type": "QOS", "Settings": {"MaximumOutgoingBandwidthInBytes": limit}}]

    def received(name: str, port: int) -> float:  # bytes/s the server got in 4 s
        lab.spawn(d.host, "iperf3", "-s", "-1", "-p", str(port))
        wait_listening(f"/run/netns/{d.host}", port)
        out = in_ns(
            ps[name]["NetnsPath"],
            "iperf3", "-c", "172.16.0.1", "-p", str(port), "-t", "4", "-J",
            timeout=60,
        ).stdout  # fmt: skip
        return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 8

    free = received("free", 5402)
    assert free > 4 * limit, f"uncapped {free:.0f} B/s: too little to show a cap"
    got = received("slow", 5401)
    assert got <= limit * 1.10, f"capped at {limit} B/s, got {got:.0f}"
    assert got >= 0.5 * min(limit, free), f"capped at {limit} B/s, got only {got:.0f}"
    res = d.cli("run", "--max-bandwidth", "fast", "--", "true", check=False)
    assert res.returncode != 0 and "--max-bandwidth 'fast'" in res.stderr
