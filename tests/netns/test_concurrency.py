"""Requests do not wait behind a slow one: a DHCP lease wait or a store round trip, held
open until the test releases it, leaves the daemon free for other attaches, ls and inspect;
parallel attaches and removals stay correct. Verdicts are states, never durations."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from daemon_knobs import knobs
from helpers import C_SHIM, ask, cni_shim, serve

from lab import SEGMENT, Lab, etcd_member, eventually, in_ns, sh, wait_etcd

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src"))
from hostnet.client import Client  # noqa: E402

# the daemon's own deadlines widened past any test: a slow operation stays pending until the
# test releases it, so no verdict races a deadline (DHCP: 15 s; a store round trip: 1 s)
DHCP_HELD = knobs("hostnet.kernel.dhcp:DhcpClients.start.__defaults__=(3600.0,)")
STORE_HELD = knobs("hostnet.store.etcdv3:Etcd.__init__.__defaults__=(3600.0, None, None)")
HANG_GUARD_S = 30  # only so that a hang fails the test instead of stalling the suite


def test_a_dhcp_lease_wait_blocks_no_other_request(lab: Lab) -> None:
    """No DHCP server on the segment until the test starts one: the attach waiting for its
    lease stays pending while ls, inspect and a nat attach complete; then a server answers
    and the waiting attach completes with its lease."""
    d, host_ip = lab.host("host", wrap=DHCP_HELD)
    client, _ = lab.node("client")
    d.cli("network", "create", "-d", "transparent", "-o", "interface=eth0", "dhcp")
    result: dict[str, Any] = {}

    def slow() -> None:
        result["res"] = d.cli(
            "run", "--net", "dhcp", "--", "ip", "-4", "-o", "addr", "show", "eth0",
            check=False, timeout=300,
        )  # fmt: skip

    waiting = threading.Thread(target=slow)
    waiting.start()
    api = Client(d.socket, timeout=HANG_GUARD_S)
    try:

        def on_dhcp() -> None:  # the slow request has its compartment and waits for a lease
            assert any("dhcp" in c["Networks"] for c in api.get("/containers"))

        eventually(on_dhcp, HANG_GUARD_S)
        assert waiting.is_alive(), result  # pending: no server has answered
        for path in ("/networks", "/containers", "/networks/nat", "/networks/dhcp"):
            api.get(path)  # each answers (or the hang guard fails the test)
        serve(d, "nat", "web", 80, False, "-p", "8080:80")
        assert ask(client, host_ip, 8080) == "web"
        assert waiting.is_alive(), f"the DHCP attach ended unreleased: {result}"
    finally:  # release: a DHCP server on the segment
        lab.spawn(
            client, "dnsmasq", "--no-daemon", "--port=0", "--interface=eth0",
            "--bind-interfaces", f"--dhcp-range={SEGMENT}.150,{SEGMENT}.199,255.255.255.0,2m",
            f"--dhcp-leasefile={lab.tmp}/dnsmasq.leases",
        )  # fmt: skip
        waiting.join(HANG_GUARD_S * 2)
    assert not waiting.is_alive(), "the DHCP attach never completed after its lease came"
    res = result["res"]
    assert res.returncode == 0 and f"inet {SEGMENT}.1" in res.stdout, (res.stdout, res.stderr)
    assert ask(client, host_ip, 8080) == "web"  # the nat endpoint was left alone meanwhile
    for c in d.json("ps", "-a", "--format", "json"):
        d.cli("rm", c["Name"])
    d.cli("network", "rm", "dhcp")


SLOW_PROXY = os.path.join(os.path.dirname(__file__), "slow_proxy.py")


def _held(status: str) -> list[dict[str, Any]]:
    with open(status) as fh:
        return list(json.load(fh))


def test_a_held_store_round_trip_blocks_no_other_request(lab: Lab) -> None:
    """etcd not answering (a proxy holds every key-value request until the test lets them
    go): attaches on two networks wait at the store side by side (two round trips held at
    once, where one after another would hold one), ls/inspect answer from memory
    meanwhile, and a removal waiting at the store holds up no inspect either."""
    if shutil.which("etcd") is None:
        pytest.skip("needs etcd (scripts/test.sh installs etcd-server)")
    ens, eip = lab.node("etcd")
    etcd_member(lab, "m1", ens, eip, f"m1=http://{eip}:2380", os.path.join(lab.tmp, "etcd-m1"))
    wait_etcd(ens, eip)
    hold, status = os.path.join(lab.tmp, "hold"), os.path.join(lab.tmp, "held.json")
    lab.spawn(ens, sys.executable, SLOW_PROXY, f"{eip}:2479", f"{eip}:2379", hold, status)
    d, _ = lab.host("host", "--store", f"etcd://{eip}:2479", wrap=STORE_HELD)
    d.cli("network", "create", "--subnet", "10.0.31.0/24", "s1")
    d.cli("network", "create", "--subnet", "10.0.32.0/24", "s2")
    api = Client(d.socket, timeout=HANG_GUARD_S)
    started: dict[str, dict[str, Any]] = {}

    def attach(net: str, name: str) -> None:
        started[name] = serve(d, net, name)

    open(hold, "w").close()  # noqa: SIM115 - from here no store request is answered
    attaches = [threading.Thread(target=attach, args=a) for a in (("s1", "p1"), ("s2", "p2"))]
    try:
        for t in attaches:
            t.start()

        def side_by_side() -> None:
            held = _held(status)
            assert len({h["conn"] for h in held}) >= 2, held

        eventually(side_by_side, HANG_GUARD_S)
        assert all(t.is_alive() for t in attaches), started  # both still waiting
        for path in ("/networks", "/containers", "/networks/s1", "/networks/s2"):
            api.get(path)  # from memory: answered while the store holds everything
        side_by_side()
        assert all(t.is_alive() for t in attaches), started
    finally:
        os.remove(hold)
        for t in attaches:
            t.join(HANG_GUARD_S * 2)
    assert sorted(started) == ["p1", "p2"], started
    assert started["p1"]["ip"].startswith("10.0.31."), started
    assert started["p2"]["ip"].startswith("10.0.32."), started
    for c in started.values():
        assert ask(d.host, c["ip"], 80) == c["name"]
    # a removal waiting at the store: inspect and ls go on meanwhile
    gone: dict[str, Any] = {}
    open(hold, "w").close()  # noqa: SIM115
    removal = threading.Thread(target=lambda: gone.update(res=d.cli("rm", "p1", check=False)))
    try:
        removal.start()
        eventually(lambda: len(_held(status)) >= 1, HANG_GUARD_S)
        assert removal.is_alive(), gone
        assert "p2" in {c["Name"] for c in api.get("/containers")}
        api.get("/networks/s2")
        assert removal.is_alive() and _held(status), gone
    finally:
        os.remove(hold)
        removal.join(HANG_GUARD_S * 2)
    assert gone["res"].returncode == 0, gone["res"].stderr
    names = {c["Name"] for c in api.get("/containers")}
    assert "p1" not in names and "p2" in names, names
    d.cli("rm", "p2")
    for net in ("s1", "s2"):
        d.cli("network", "rm", net)


def _cni(
    sock: str, command: str, cid: str, netns: str, port: int = 0
) -> tuple[int, dict[str, Any]]:
    runtime = {"portMappings": [{"hostPort": port, "containerPort": 80}]} if port else None
    return cni_shim(sock, command, "par", cid, netns, runtime)


def _in_parallel(jobs: list[Any], clients: int = 16) -> list[Any]:
    with ThreadPoolExecutor(max_workers=clients) as pool:
        return list(pool.map(lambda job: job(), jobs))


def test_parallel_adds_and_dels_give_nothing_twice_and_dels_hold_up_no_one(lab: Lab) -> None:
    """16 runtimes at once: every address once, a host port to one of the two asking for it
    (the other refused and rolled back), and removals (whose vNIC deletion waits for the
    kernel) let every inspect answer meanwhile, each a state they passed through;
    afterwards nothing is left."""
    if not os.path.exists(C_SHIM):
        pytest.skip("hostnet-cni is not installed (scripts/install-cni.sh)")
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "10.160.0.0/22", "par")
    count, pairs = 96, 8  # the first 2 * pairs ask for a host port two at a time
    spaces = [f"{lab.prefix}p{i}" for i in range(count)]
    for ns in spaces:
        sh("ip", "netns", "add", ns)
        lab.namespaces.append(ns)
    cids = [f"{i:012x}" + "d" * 52 for i in range(count)]
    ports = [21000 + i // 2 if i < 2 * pairs else 0 for i in range(count)]
    adds = [
        (lambda i=i: _cni(d.socket, "ADD", cids[i], f"/run/netns/{spaces[i]}", ports[i]))
        for i in range(count)
    ]
    results = _in_parallel(adds)
    for i in range(2 * pairs, count):
        assert results[i][0] == 0, results[i]
    for p in range(pairs):
        a, b = results[2 * p], results[2 * p + 1]
        assert sorted([a[0], b[0]]) == [0, 1], (a, b)  # one got the port, one was refused
        lost = 2 * p + (1 if a[0] == 0 else 0)
        assert "21" in results[lost][1].get("msg", "") + results[lost][1].get("details", ""), (
            results[lost]
        )
        assert "eth0" not in in_ns(spaces[lost], "ip", "-o", "link").stdout  # rolled back
    won = [r[1] for r in results if r[0] == 0]
    ips = [r["ips"][0]["address"] for r in won]
    assert len(ips) == len(set(ips)) == count - pairs, "an address was given twice"
    eps = d.json("network", "inspect", "par")[0]["Containers"]
    assert len(eps) == count - pairs
    api = Client(d.socket, timeout=HANG_GUARD_S)
    seen: list[int] = []  # endpoints inspect listed, in order, while the DELs ran
    stop = threading.Event()

    def inspect_meanwhile() -> None:
        while not stop.is_set():
            seen.append(len(api.get("/networks/par")["Containers"]))
            time.sleep(0.01)

    watcher = threading.Thread(target=inspect_meanwhile)
    watcher.start()
    dels = [
        (lambda i=i: _cni(d.socket, "DEL", cids[i], f"/run/netns/{spaces[i]}"))
        for i in range(count)
    ]
    t0 = time.monotonic()
    try:
        gone = _in_parallel(dels)
    finally:
        stop.set()
        watcher.join(HANG_GUARD_S)
    del_s = time.monotonic() - t0
    assert not watcher.is_alive(), "an inspect never answered during the DELs"
    assert all(r[0] == 0 for r in gone), [r for r in gone if r[0]]
    # every inspect answered, each a state the DELs passed through: none came back (how
    # fast inspect answers meanwhile is a figure for bench/, not a verdict here; a DEL
    # held at the store holding up no inspect: test_a_held_store_round_trip_...)
    assert seen == sorted(seen, reverse=True), seen
    assert all(0 <= n <= count - pairs for n in seen), seen
    assert d.json("network", "inspect", "par")[0]["Containers"] == {}

    def no_vnics() -> None:  # cut at once, deleted by the daemon a moment later
        left = in_ns(d.host, "ip", "-o", "link", "show", "type", "veth").stdout
        assert "hv" not in left, left

    eventually(no_vnics, HANG_GUARD_S)
    for ns in spaces:
        assert "eth0" not in in_ns(ns, "ip", "-o", "link").stdout
    print(f"{count} DELs from 16 clients: {del_s:.2f} s; {len(seen)} inspects meanwhile")
    d.cli("network", "rm", "par")


def test_a_cut_vnic_frees_its_name_at_once_and_is_deleted_soon_after(lab: Lab) -> None:
    """CNI DEL returns before the kernel's RCU wait: the interface is gone from the
    compartment on return (a runtime may ADD it again at once), the pair a moment later."""
    if not os.path.exists(C_SHIM):
        pytest.skip("hostnet-cni is not installed (scripts/install-cni.sh)")
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "10.161.0.0/24", "par")
    ns = f"{lab.prefix}again"
    sh("ip", "netns", "add", ns)
    lab.namespaces.append(ns)
    cid, path = "a" * 64, f"/run/netns/{ns}"
    for _ in range(3):  # ADD, DEL and ADD again at once, three times
        code, res = _cni(d.socket, "ADD", cid, path)
        assert code == 0, res
        host_end = res["interfaces"][0]["name"]
        assert "eth0" in in_ns(ns, "ip", "-o", "link").stdout
        assert _cni(d.socket, "DEL", cid, path)[0] == 0
        assert "eth0" not in in_ns(ns, "ip", "-o", "link").stdout
        eventually(lambda h=host_end: h not in in_ns(d.host, "ip", "-o", "link").stdout)
    assert in_ns(ns, "ip", "-o", "link", "show", "type", "veth").stdout.strip() == ""
    d.cli("network", "rm", "par")


def test_a_full_switch_is_a_clear_error_and_a_removal_makes_room_at_once(lab: Lab) -> None:
    """A Linux bridge takes 1,023 ports: the next attach is refused naming the network;
    after a DEL the next ADD fits at once (the cut vNIC's port is given back first)."""
    if not os.path.exists(C_SHIM):
        pytest.skip("hostnet-cni is not installed (scripts/install-cni.sh)")
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "10.162.0.0/20", "par")
    spaces = [f"{lab.prefix}f{i}" for i in range(1025)]
    for ns in spaces:
        sh("ip", "netns", "add", ns)
        lab.namespaces.append(ns)
    cids = [f"{i:012x}" + "f" * 52 for i in range(1025)]
    adds = [
        (lambda i=i: _cni(d.socket, "ADD", cids[i], f"/run/netns/{spaces[i]}")) for i in range(1023)
    ]
    assert all(code == 0 for code, _ in _in_parallel(adds, 8))
    code, err = _cni(d.socket, "ADD", cids[1023], f"/run/netns/{spaces[1023]}")
    assert code != 0 and "network 'par' is full" in err["msg"], err
    assert "eth0" not in in_ns(spaces[1023], "ip", "-o", "link").stdout  # nothing half-made
    assert _cni(d.socket, "DEL", cids[0], f"/run/netns/{spaces[0]}")[0] == 0
    code, res = _cni(d.socket, "ADD", cids[1024], f"/run/netns/{spaces[1024]}")
    assert code == 0, res
    dels = [
        (lambda i=i: _cni(d.socket, "DEL", cids[i], f"/run/netns/{spaces[i]}"))
        for i in [*range(1, 1023), 1024]
    ]
    assert all(code == 0 for code, _ in _in_parallel(dels, 8))
    eventually(lambda: "hv" not in in_ns(d.host, "ip", "-o", "link").stdout, 60)
    d.cli("network", "rm", "par")
