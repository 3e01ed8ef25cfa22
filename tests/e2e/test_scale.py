"""Size: more CNI attachments than fit below FD_SETSIZE, under systemd's default descriptor
limit, then kill -9 and a restart that reconciles them all; removing them leaves nothing.

hostnetd used to abort at about 500 compartments (libnftables' select() got a descriptor
above 1023) and could not start again with them in its store.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "netns"))
from helpers import C_SHIM, ask, cni_shim, wait_listening  # noqa: E402

from lab import Lab, eventually, in_ns, sh  # noqa: E402

COUNT = 1100  # crosses 1,024 descriptors: the daemon holds two per compartment (DNS)
NETS = (("scale-a", "10.150.0.0/21", 600), ("scale-b", "10.151.0.0/21", COUNT - 600))


def _cni(sock: str, command: str, net: str, cid: str, netns: str, runtime: dict) -> dict:
    code, out = cni_shim(sock, command, net, cid, netns, runtime)
    assert code == 0, f"{command} {cid}: {out}"
    return out


def _dig(netns: str, name: str) -> str:
    return in_ns(netns, "dig", "@127.0.0.11", "+short", "+time=2", "+tries=1", name).stdout.strip()


def test_1100_cni_attachments_survive_kill_and_restart_at_low_descriptor_limit(
    lab: Lab,
) -> None:
    if not os.path.exists(C_SHIM):
        pytest.skip("hostnet-cni is not installed (scripts/install-cni.sh)")
    d, host_ip = lab.host("host", "-b", "none", wrap=["prlimit", "--nofile=1024:"])
    d.ready_timeout = 120
    client, _ = lab.node("client")
    for name, subnet, _n in NETS:
        d.cli("network", "create", "-d", "nat", "--subnet", subnet, name)
    spaces = [f"{lab.prefix}c{i}" for i in range(COUNT)]
    for ns in spaces:
        sh("ip", "netns", "add", ns)
        lab.namespaces.append(ns)
    plan = [
        (NETS[0][0] if i < NETS[0][2] else NETS[1][0], f"{i:012x}" + "c" * 52) for i in range(COUNT)
    ]
    ips = []
    for i, ((net, cid), ns) in enumerate(zip(plan, spaces, strict=True)):
        runtime = (
            {"portMappings": [{"hostPort": 20000 + i, "containerPort": 80}]} if i % 50 == 0 else {}
        )
        res = _cni(d.socket, "ADD", net, cid, f"/run/netns/{ns}", runtime)
        ips.append(res["ips"][0]["address"].split("/")[0])
    assert d.proc is not None and d.proc.poll() is None, d.log()[-3000:]
    pid = d.proc.pid
    with open(f"/proc/{pid}/limits") as fh:
        soft = next(ln for ln in fh if ln.startswith("Max open files")).split()[3]
    assert len(os.listdir(f"/proc/{pid}/fd")) > 2 * COUNT, "the test no longer crosses 1,024"
    assert "FD_SETSIZE" not in d.log()

    def works() -> None:
        last, first = spaces[-1], spaces[NETS[0][2]]  # two compartments on scale-b
        in_ns(last, "ping", "-c", "1", "-W", "2", ips[NETS[0][2]])
        assert _dig(last, f"ext-{plan[NETS[0][2]][1][:12]}") == ips[NETS[0][2]]
        assert _dig(first, f"ext-{plan[-1][1][:12]}") == ips[-1]
        # a mapped port of the last compartment that has one, from another machine
        k = max(i for i in range(COUNT) if i % 50 == 0)
        p = subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{spaces[k]}",
                "socat",
                "TCP-LISTEN:80,reuseaddr",
                "SYSTEM:read line; echo scaled",
            ],
        )
        lab.procs.append(p)
        wait_listening(f"/run/netns/{spaces[k]}", 80)
        assert ask(client, host_ip, 20000 + k) == "scaled"
        p.kill()

    works()
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(10)
    t0 = time.monotonic()
    d.start(*d.args)
    restart_s = time.monotonic() - t0
    assert "FD_SETSIZE" not in d.log()
    assert len(d.json("ps", "--format", "json")) == COUNT
    works()
    print(f"\nsoft limit {soft}, {COUNT} attachments; restart after kill -9: {restart_s:.1f} s")

    for (net, cid), ns in zip(plan, spaces, strict=True):
        _cni(d.socket, "DEL", net, cid, f"/run/netns/{ns}", {})
    assert d.json("ps", "--format", "json") == []

    def nothing_left() -> None:  # cut vNICs are deleted in the background, by name
        links = in_ns(d.host, "ip", "-o", "link", "show").stdout
        assert " hv" not in links, links[:2000]

    eventually(nothing_left, timeout=60)
    ruleset = in_ns(d.host, "nft", "list", "ruleset").stdout
    assert "20000" not in ruleset and "hv" not in ruleset.replace('"hv*"', "")
    for name, _s, _n in NETS:
        d.cli("network", "rm", name)
