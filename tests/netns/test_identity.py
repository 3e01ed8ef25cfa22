"""Cluster identity: daemons on hosts that share a hostname (every lab host here does, as
cloned VMs do) are distinct cluster hosts; an identity a live daemon holds is refused
elsewhere; a watch on a silently cut path notices within 10 s and recovers."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from helpers import ping, serve

from lab import Daemon, Lab, etcd_member, eventually, in_ns, wait_etcd

SUBNET = "10.0.19.0/24"


@contextlib.contextmanager
def _etcd_and_hosts(lab: Lab, n: int = 3) -> Iterator[tuple[str, str, list[Daemon]]]:
    """One etcd member and ``n`` daemons; the daemons stop (and clean up) before etcd."""
    if shutil.which("etcd") is None:
        pytest.skip("needs etcd (scripts/test.sh installs etcd-server)")
    ens, eip = lab.node("etcd")
    data = os.path.join(lab.tmp, "etcd-m1")
    etcd = etcd_member(lab, "m1", ens, eip, f"m1=http://{eip}:2380", data, False)
    wait_etcd(ens, eip)
    store = f"etcd://{eip}:2379"
    daemons = []
    for i in range(1, n + 1):
        ns, ip = lab.node(f"h{i}")
        state = os.path.join(lab.tmp, f"h{i}")
        os.makedirs(state)
        d = Daemon(ns, state, os.path.join(state, "hostnet.sock"))
        lab.daemons.append(d)
        d.start("--store", store, "--advertise-addr", ip)  # no --host-id: one is made
        daemons.append(d)
    try:
        yield store, eip, daemons
    finally:
        for d in daemons:  # remove the containers while the store is there
            if d.proc is not None:
                for c in d.json("ps", "--format", "json"):
                    d.cli("rm", c["Id"], check=False)
        etcd.kill()
        etcd.wait(10)


def _kept_id(d: Daemon) -> str:
    with open(os.path.join(d.state_dir, "host-id")) as fh:
        return fh.read().strip()


def test_hosts_sharing_a_hostname_are_distinct_and_an_identity_is_held_once(lab: Lab) -> None:
    with _etcd_and_hosts(lab) as (store, _, daemons):
        _distinct_and_held_once(lab, store, daemons)


def _distinct_and_held_once(lab: Lab, store: str, daemons: list[Daemon]) -> None:
    h1, h2, h3 = daemons
    ids = [_kept_id(d) for d in daemons]
    assert len(set(ids)) == 3, ids  # the same hostname, three identities
    h1.cli("network", "create", "-d", "overlay", "--subnet", SUBNET, "ov")
    for d in (h2, h3):
        eventually(lambda d=d: "ov" in d.cli("network", "ls").stdout, 10)
    a, b, c = serve(h1, "ov", "a"), serve(h2, "ov", "b"), serve(h3, "ov", "c")
    hosts = {x["Host"] for x in h1.json("node", "ls", "--format", "json")}
    assert hosts == set(ids), hosts
    assert ping(b["netns"], a["ip"]) and ping(c["netns"], a["ip"]) and ping(a["netns"], c["ip"])
    # a copied state directory (a machine cloned after hostnet ran): refused, and says why
    clone_state = os.path.join(lab.tmp, "clone")
    os.makedirs(clone_state)
    shutil.copy(os.path.join(h1.state_dir, "host-id"), clone_state)
    ns, ip = lab.node("clone")
    clone = Daemon(ns, clone_state, os.path.join(clone_state, "hostnet.sock"))
    lab.daemons.append(clone)
    with pytest.raises(RuntimeError) as err:
        clone.start("--store", store, "--advertise-addr", ip)
    text = str(err.value)
    assert f"host id {ids[0]!r} is held by another live hostnetd" in text, text
    assert h1.args[-1] in text and "--host-id" in text, text  # names the holder and a remedy
    clone.proc = None
    # the holder itself restarts at once after kill -9 (same machine, same state directory)
    h1.stop(sig=9)
    h1.start(*h1.args)
    assert ping(b["netns"], a["ip"])
    assert h1.cli("run", "--net", "ov", "--", "true").returncode == 0


def test_a_silently_cut_watch_notices_within_10_s_and_recovers(lab: Lab) -> None:
    with _etcd_and_hosts(lab, 2) as (_, eip, daemons):
        _cut_and_back(daemons, eip)


def _cut_and_back(daemons: list[Daemon], eip: str) -> None:
    h1, h2 = daemons
    h1.cli("network", "create", "-d", "overlay", "--subnet", SUBNET, "ov")
    eventually(lambda: "ov" in h2.cli("network", "ls").stdout, 10)
    a = serve(h1, "ov", "a")
    b = serve(h2, "ov", "b")
    assert ping(b["netns"], a["ip"])
    cut = (
        "table inet cut {\n"
        f"  chain out {{ type filter hook output priority 0; ip daddr {eip} drop; }}\n"
        "}\n"
    )  # every packet to etcd dropped: no reset, no error, just silence
    subprocess.run(
        ["ip", "netns", "exec", h2.host, "nft", "-f", "-"], input=cut, text=True, check=True
    )
    t0 = time.monotonic()
    before = h2.log().count("cluster store:")
    eventually(lambda: h2.log().count("cluster store:") > before, 12)
    noticed = time.monotonic() - t0
    assert noticed < 10.5, f"the cut was noticed after {noticed:.1f} s"
    in_ns(h2.host, "nft", "delete", "table", "inet", "cut")
    c = serve(h1, "ov", "c")  # made while h2 was catching up: it must learn of it
    eventually(lambda: ping(b["netns"], c["ip"]), 15)
    hosts = {x["Host"]: x["Endpoints"] for x in h2.json("node", "ls", "--format", "json")}
    assert sorted(hosts.values()) == [1, 2], hosts
