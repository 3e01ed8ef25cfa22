"""Overlay across hosts: convergence, throughput against the underlay, and 1,000 endpoints.

Lab: three hosts on the segment, each running an etcd member (Debian's etcd-server, a
3-member cluster) and hostnetd with ``--store etcd://h1,h2,h3``; one overlay network.

1. Convergence: a prober on host B (a python raw-ICMP loop in a container's compartment,
   an echo request every 2 ms) targets the address a new container on host A will get
   (``--ip``); the container is attached on host A (POST /containers); the time from the
   attach call returning to the prober's first echo reply. Both clocks are the machine's.
   The prober's compartment retries ARP every 10 ms instead of the kernel's 1 s.
2. iperf3 TCP, container on host A -> container on host B over the overlay, against host A
   -> host B over the underlay (the lab hosts' own addresses), interleaved, order swapped.
3. 1,000 endpoints spread over the three hosts (one client thread per host, serial attaches
   on each): attach rate, each daemon's resident memory before and after, then removal.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import threading
import time
from typing import Any

from common import Daemon, Lab, emit, in_ns, machine, ratio, require_root, summary
from dataplane import iperf

PROBE = r"""
import os, socket, struct, sys, time
target, timeout = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.setblocking(False)
ident = os.getpid() & 0xFFFF
def packet(seq):
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    data = b"hostnet-probe"
    csum = 0
    raw = hdr + data
    for i in range(0, len(raw), 2):
        csum += (raw[i] << 8) + (raw[i + 1] if i + 1 < len(raw) else 0)
    csum = (csum >> 16) + (csum & 0xFFFF)
    csum = ~(csum + (csum >> 16)) & 0xFFFF
    return struct.pack("!BBHHH", 8, 0, csum, ident, seq) + data
print("ready", flush=True)
end = time.time() + timeout
seq = 0
while time.time() < end:
    seq = (seq + 1) & 0xFFFF
    try:
        s.sendto(packet(seq), (target, 0))
    except OSError:
        pass
    t = time.time() + 0.002
    while time.time() < t:
        try:
            data, addr = s.recvfrom(1024)
        except BlockingIOError:
            time.sleep(0.0002)
            continue
        if addr[0] == target and data[20] == 0 and struct.unpack("!H", data[24:26])[0] == ident:
            print(f"{time.time():.6f}", flush=True)
            sys.exit(0)
print("none", flush=True)
"""


def etcd(lab: Lab, name: str, ns: str, ip: str, cluster: str) -> None:
    data = os.path.join(lab.tmp, f"etcd-{name}")
    lab.spawn(
        ns,
        "etcd",
        "--name",
        name,
        "--data-dir",
        data,
        "--listen-client-urls",
        f"http://{ip}:2379",
        "--advertise-client-urls",
        f"http://{ip}:2379",
        "--listen-peer-urls",
        f"http://{ip}:2380",
        "--initial-advertise-peer-urls",
        f"http://{ip}:2380",
        "--initial-cluster",
        cluster,
        "--heartbeat-interval",
        "50",
        "--election-timeout",
        "500",
        log=f"{data}.log",
    )


def wait_etcd(ns: str, ip: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        res = in_ns(
            ns, "etcdctl", f"--endpoints=http://{ip}:2379", "endpoint", "health", check=False
        )
        if res.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"etcd at {ip} not healthy")


def cluster(lab: Lab) -> list[Daemon]:
    nodes = [lab.node(f"h{i}") for i in range(1, 4)]
    members = ",".join(f"m{i}=http://{ip}:2380" for i, (_, ip) in enumerate(nodes, 1))
    for i, (ns, ip) in enumerate(nodes, 1):
        etcd(lab, f"m{i}", ns, ip, members)
    for ns, ip in nodes:
        wait_etcd(ns, ip)
    store = "etcd://" + ",".join(f"{ip}:2379" for _, ip in nodes)
    daemons = []
    for i, (ns, ip) in enumerate(nodes, 1):
        state = os.path.join(lab.tmp, f"h{i}")
        os.makedirs(state)
        d = Daemon(ns, state, os.path.join(state, "hostnet.sock"))
        lab.daemons.append(d)
        d.start("--store", store, "--host-id", f"h{i}", "--advertise-addr", ip, "-b", "none")
        daemons.append(d)
    return daemons


def wait_network(d: Daemon, name: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(n["Name"] == name for n in d.client().get("/networks")):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} never appeared on {d.host}")


def convergence(a: Daemon, b_netns: str, n: int) -> dict[str, Any]:
    ca = a.client()
    # the prober's ARP retries every 10 ms (the kernel's default is 1 s): what is measured is
    # hostnet's convergence, not the prober's back-off
    in_ns(b_netns, "sysctl", "-qw", "net.ipv4.neigh.eth0.retrans_time_ms=10")
    samples: list[float] = []
    from_sent: list[float] = []
    attach_ms: list[float] = []
    misses = 0
    for k in range(n):
        ip = f"10.0.20.{100 + k}"
        probe = subprocess.Popen(
            ["nsenter", f"--net={b_netns}", "python3", "-c", PROBE, ip, "5"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert probe.stdout is not None
        probe.stdout.readline()  # ready
        sent = time.time()
        ca.post("/containers", {"name": f"conv{k}", "networks": [{"network": "ov", "ip": ip}]})
        returned = time.time()
        out, _ = probe.communicate(timeout=30)
        if out.strip() == "none":
            misses += 1
        else:
            samples.append((float(out.strip()) - returned) * 1000)
            from_sent.append((float(out.strip()) - sent) * 1000)
            attach_ms.append((returned - sent) * 1000)
        ca.delete(f"/containers/conv{k}")
    return {
        "ms": summary(samples, 1),
        "all_ms": [round(x, 1) for x in samples],
        "from_sent_ms": summary(from_sent, 1),
        "attach_ms": summary(attach_ms, 1),
        "misses": misses,
    }


def etcd_put_ms(ns: str, ip: str, n: int = 50) -> dict[str, Any]:
    """How long one etcd write takes here (raft commit + fsync): the unit attach pays."""
    from common import entered
    from hostnet.store.etcdv3 import Etcd

    e = Etcd([f"http://{ip}:2379"], socket_factory=lambda: entered(ns))
    took = []
    for k in range(n):
        t0 = time.perf_counter()
        e.put(f"/bench/put/{k}", "x" * 200)
        took.append((time.perf_counter() - t0) * 1000)
    e.delete("/bench/", prefix=True)
    return summary(took, 2)


def main() -> None:
    require_root()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--endpoints", type=int, default=1000)
    args = ap.parse_args()
    started = machine()
    with Lab("o") as lab:
        h1, h2, h3 = cluster(lab)
        c1, c2 = h1.client(), h2.client()
        c1.post("/networks", {"name": "ov", "driver": "overlay", "subnet": "10.0.20.0/22"})
        for d in (h2, h3):
            wait_network(d, "ov")
        srv = c1.post("/containers", {"name": "srv", "networks": [{"network": "ov"}]})
        cli = c2.post("/containers", {"name": "cli", "networks": [{"network": "ov"}]})
        srv_ip = srv["Networks"]["ov"]["IPAddress"]

        h1_addr = in_ns(h1.host, "ip", "-4", "-o", "addr", "show", "eth0").stdout.split()[3]
        put_ms = etcd_put_ms(h1.host, h1_addr.split("/")[0])
        conv = convergence(h1, cli["NetnsPath"], args.probes)
        print("convergence", conv["ms"])

        lab.spawn(srv["NetnsPath"], "iperf3", "-s", "-p", "5301")
        lab.spawn(h1.host, "iperf3", "-s", "-p", "5302")
        time.sleep(0.5)
        h1_ip = (
            in_ns(h1.host, "ip", "-4", "-o", "addr", "show", "eth0").stdout.split()[3].split("/")[0]
        )
        runs: dict[str, list[float]] = {"overlay": [], "underlay": []}
        for rnd in range(args.rounds):
            order = ["overlay", "underlay"] if rnd % 2 == 0 else ["underlay", "overlay"]
            for k in order:
                if k == "overlay":
                    runs[k].append(
                        round(iperf(cli["NetnsPath"], srv_ip, 5301, args.seconds)["gbps"], 3)
                    )
                else:
                    runs[k].append(round(iperf(h2.host, h1_ip, 5302, args.seconds)["gbps"], 3))
            print(f"round {rnd + 1}: " + ", ".join(f"{k} {runs[k][-1]} Gbit/s" for k in order))

        for c, name in ((c1, "srv"), (c2, "cli")):
            c.delete(f"/containers/{name}")
        rss_before = {d.host[-2:]: d.rss_kib() for d in (h1, h2, h3)}
        per_host = [args.endpoints // 3 + (1 if i < args.endpoints % 3 else 0) for i in range(3)]
        times: dict[str, float] = {}
        errors: list[str] = []

        def attach_many(d: Daemon, count: int) -> None:
            c = d.client()
            t0 = time.perf_counter()
            for k in range(count):
                try:
                    c.post("/containers", {"name": f"e{k}", "networks": [{"network": "ov"}]})
                except Exception as exc:  # noqa: BLE001 - reported
                    errors.append(str(exc))
            times[d.host[-2:]] = time.perf_counter() - t0

        t0 = time.perf_counter()
        threads = [
            threading.Thread(target=attach_many, args=(d, n))
            for d, n in zip((h1, h2, h3), per_host, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        rss_after = {d.host[-2:]: d.rss_kib() for d in (h1, h2, h3)}
        seen = {
            d.host[-2:]: sum(h["Endpoints"] for h in d.client().get("/cluster/hosts"))
            for d in (h1, h2, h3)
        }

        def remove_all(d: Daemon) -> None:
            c = d.client()
            for row in c.get("/containers"):
                c.delete(f"/containers/{row['Id']}")

        # as they were added: one client per host, serial on each, hosts in parallel
        t0 = time.perf_counter()
        threads = [threading.Thread(target=remove_all, args=(d,)) for d in (h1, h2, h3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        removal = time.perf_counter() - t0
        log_errors = [ln for d in (h1, h2, h3) for ln in d.log().splitlines() if "ERROR" in ln]
        leftovers = lab.close()

    under = statistics.median(runs["underlay"])
    over = statistics.median(runs["overlay"])
    result = {
        "machine": started,
        "convergence": conv,
        "etcd_put_ms": put_ms,
        "target_convergence_ms": 200,
        "iperf_gbps": runs,
        "iperf_ratio": ratio(over, under),
        "target_iperf_ratio": 0.7,
        "endpoints": args.endpoints,
        "attach_wall_s": round(wall, 2),
        "attach_per_s": round(args.endpoints / wall, 1),
        "attach_s_per_host": {k: round(v, 2) for k, v in times.items()},
        "attach_errors": errors[:5],
        "registry_seen": seen,
        "rss_kib_before": rss_before,
        "rss_kib_after": rss_after,
        "removal_s": round(removal, 2),
        "hostnetd_log_errors": log_errors[:5],
        "leftovers": leftovers,
    }
    emit("overlay", result)


if __name__ == "__main__":
    main()
