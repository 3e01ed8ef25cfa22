"""Scale: attach and detach cost as the host fills up to 5,000 compartments, side by side with
the CNI bridge + host-local chain; parallel against serial attaches; restart and reconcile
at 5,000; daemon memory and descriptors at each size.

hostnetd runs under systemd's default soft descriptor limit (prlimit --nofile=1024:). Every
compartment is a namespace the bench makes, attached with a CNI ADD (the request the
hostnet-cni forwarder sends, timed in-process over the daemon's socket), so a kill -9 and
restart keeps them all. Networks are nat networks of at most 1,000 endpoints (a Linux
bridge takes 1,023 ports).

Probes at each size: 30 attach+detach pairs on a small network of their own (what the host's
size costs) and 30 on the fullest network (the same plus what the kernel's bridge costs
with that many ports).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any

from common import (
    Lab,
    cni_exec,
    emit,
    entered,
    machine,
    ms_since,
    netns_add,
    netns_del,
    require_root,
    summary,
)
from hostnet.client import UnixConnection  # common put the tree's src/ on the path

SIZES = (10, 1000, 5000)
PER_NET = 1000
PROBES = 30
PARALLEL, CLIENTS = 100, 16


def cni(conn: UnixConnection, command: str, net: str, cid: str, netns: str) -> float:
    conf = json.dumps({"cniVersion": "1.0.0", "name": net, "type": "hostnet"}).encode()
    headers = {
        "X-Cni-Command": command,
        "X-Cni-Containerid": cid,
        "X-Cni-Netns": netns,
        "X-Cni-Ifname": "eth0",
    }
    t0 = time.perf_counter()
    conn.request("POST", "/cni", body=conf, headers=headers)
    resp = conn.getresponse()
    out = resp.read()
    ms = ms_since(t0)
    if resp.headers.get("X-Cni-Exit") != "0":
        raise RuntimeError(f"{command} {cid[:12]}: {out[:300]!r}")
    return ms


def daemon_stats(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as fh:
        rss = next(int(ln.split()[1]) for ln in fh if ln.startswith("VmRSS:"))
    return {"rss_kib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def main() -> None:
    require_root()
    out: dict[str, Any] = {"machine": machine(), "sizes": {}, "cni_bridge": {}}
    with Lab("sc") as lab:
        d, _ = lab.host("host", "-b", "none", wrap=["prlimit", "--nofile=1024:"])
        assert d.proc is not None
        conn = UnixConnection(d.socket, 300)
        client = d.client()
        nets: list[str] = []

        def network() -> str:
            name = f"scale{len(nets)}"
            client.post("/networks", {"name": name, "subnet": f"10.{160 + len(nets)}.0.0/21"})
            nets.append(name)
            return name

        probe_net = network()
        fill = 0
        placed: list[tuple[str, str, str]] = []  # (network, container id, netns)

        def attach_one(net: str) -> None:
            nonlocal fill
            ns = f"{lab.prefix}c{fill}"
            lab.track_ns(ns)
            netns_add(ns)
            cid = f"{fill:012x}" + "c" * 52
            cni(conn, "ADD", net, cid, f"/run/netns/{ns}")
            placed.append((net, cid, ns))
            fill += 1

        def probe(net: str, tag: str) -> tuple[list[float], list[float]]:
            adds, dels = [], []
            for i in range(PROBES):
                ns = f"{lab.prefix}p{tag}{i}"
                lab.track_ns(ns)
                netns_add(ns)
                cid = f"{tag}{i:04d}".ljust(64, "f")
                adds.append(cni(conn, "ADD", net, cid, f"/run/netns/{ns}"))
                dels.append(cni(conn, "DEL", net, cid, f"/run/netns/{ns}"))
                netns_del(ns)
            return adds, dels

        current = network()
        for size in SIZES:
            while fill < size:
                if sum(1 for p in placed if p[0] == current) >= PER_NET:
                    current = network()
                attach_one(current)
            own_a, own_d = probe(probe_net, f"s{size}")
            full_a, full_d = probe(placed[-1][0], f"f{size}")
            out["sizes"][str(size)] = {
                "attach_own_net_ms": summary(own_a),
                "detach_own_net_ms": summary(own_d),
                "attach_full_net_ms": summary(full_a),
                "detach_full_net_ms": summary(full_d),
                "full_net_endpoints": sum(1 for p in placed if p[0] == placed[-1][0]),
                **daemon_stats(d.proc.pid),
            }
            print(size, out["sizes"][str(size)], flush=True)

        # parallel vs serial: 100 attaches on the probe network, then their 100 detaches,
        # one by one and from CLIENTS clients at once
        def batch(clients: int, tag: str) -> tuple[float, float]:
            spaces = [f"{lab.prefix}{tag}{i}" for i in range(PARALLEL)]
            for ns in spaces:
                lab.track_ns(ns)
                netns_add(ns)
            errors: list[str] = []

            def phase(command: str) -> float:
                work = list(enumerate(spaces))
                lock = threading.Lock()

                def run() -> None:
                    c = UnixConnection(d.socket, 300)
                    while True:
                        with lock:
                            if not work:
                                return
                            i, ns = work.pop()
                        cid = f"{tag}{i:04d}".ljust(64, "e")
                        try:
                            cni(c, command, probe_net, cid, f"/run/netns/{ns}")
                        except RuntimeError as exc:
                            errors.append(str(exc))

                t0 = time.perf_counter()
                threads = [threading.Thread(target=run) for _ in range(clients)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                if errors:
                    raise RuntimeError(errors[0])
                return round(time.perf_counter() - t0, 2)

            adds, dels = phase("ADD"), phase("DEL")
            for ns in spaces:
                netns_del(ns)
            return adds, dels

        out["serial_100_s"], out["serial_100_del_s"] = batch(1, "q")
        out["parallel_100_s"], out["parallel_100_del_s"] = batch(CLIENTS, "r")

        # kill -9 and restart with 5,000 compartments in the store
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        t0 = time.perf_counter()
        d.start("-b", "none")
        out["restart_to_ready_s"] = round(time.perf_counter() - t0, 2)
        conn = UnixConnection(d.socket, 300)
        client = d.client(timeout=600)
        t0 = time.perf_counter()
        rep = client.post("/system/reconcile", {})
        out["reconcile_s"] = round(time.perf_counter() - t0, 2)
        out["reconcile_repaired"] = len(rep.get("repaired_endpoints", []))
        out["after_restart"] = daemon_stats(d.proc.pid)
        out["restart_log_fd_abort"] = "FD_SETSIZE" in d.log()

        # removal: every compartment, timed
        dels = []
        t0 = time.perf_counter()
        for net, cid, ns in placed:
            dels.append(cni(conn, "DEL", net, cid, f"/run/netns/{ns}"))
        out["remove_all_s"] = round(time.perf_counter() - t0, 1)
        out["remove_all_ms"] = summary(dels)
        for _, _, ns in placed:
            netns_del(ns)
        out["left_after_removal"] = len(client.get("/containers"))

        # the peer: CNI bridge + host-local on one bridge, at 10 and 1,000
        peer_ns, _ = lab.node("peer")
        conf = {
            "cniVersion": "1.0.0",
            "name": "scalebr",
            "type": "bridge",
            "bridge": "cni0",
            "isGateway": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "10.90.0.0/20"}]],
                "dataDir": os.path.join(lab.tmp, "br-ipam"),
            },
        }
        peer_fill = 0
        with entered(peer_ns):
            for size in (10, 1000):
                while peer_fill < size:
                    ns = f"{lab.prefix}b{peer_fill}"
                    lab.track_ns(ns)
                    netns_add(ns)
                    cni_exec("bridge", "ADD", f"b{peer_fill}", f"/run/netns/{ns}", "eth0", conf)
                    peer_fill += 1
                adds, dels = [], []
                for i in range(PROBES):
                    ns = f"{lab.prefix}bp{size}x{i}"
                    lab.track_ns(ns)
                    netns_add(ns)
                    t0 = time.perf_counter()
                    cni_exec("bridge", "ADD", f"bp{size}x{i}", f"/run/netns/{ns}", "eth0", conf)
                    adds.append(ms_since(t0))
                    t0 = time.perf_counter()
                    cni_exec("bridge", "DEL", f"bp{size}x{i}", f"/run/netns/{ns}", "eth0", conf)
                    dels.append(ms_since(t0))
                    netns_del(ns)
                out["cni_bridge"][str(size)] = {
                    "attach_ms": summary(adds),
                    "detach_ms": summary(dels),
                }
                print("cni bridge", size, out["cni_bridge"][str(size)], flush=True)
            for i in range(peer_fill):
                cni_exec("bridge", "DEL", f"b{i}", f"/run/netns/{lab.prefix}b{i}", "eth0", conf)
        out["leftovers"] = lab.close()
    s10, s5k = out["sizes"]["10"], out["sizes"]["5000"]
    out["ratio_attach_5000_10"] = round(
        s5k["attach_own_net_ms"]["median"] / s10["attach_own_net_ms"]["median"], 3
    )
    out["ratio_detach_5000_10"] = round(
        s5k["detach_own_net_ms"]["median"] / s10["detach_own_net_ms"]["median"], 3
    )
    out["ratio_parallel_serial"] = round(out["parallel_100_s"] / out["serial_100_s"], 3)
    out["ratio_parallel_serial_del"] = round(out["parallel_100_del_s"] / out["serial_100_del_s"], 3)
    emit("scale", out)


if __name__ == "__main__":
    main()
