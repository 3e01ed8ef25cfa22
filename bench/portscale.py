"""Port-mapping scale: 10,000 mappings added one at a time to one hostnet container.

Each add is POST /containers/NAME/ports {"ports": ["HOSTPORT:80"]} (host ports 20000 up),
timed on the client. Then new-TCP-connection time through a mapping (a client namespace on
the lab segment connects to hostIP:port, a server in the container accepts and closes) with
1 mapping (on the same host before the adds, and on a second host at the same time as the
measurement with all of them, interleaved) and with all of them. A time budget stops the adds
early on a slow build and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from common import (
    Lab,
    emit,
    in_ns,
    machine,
    ms_since,
    ratio,
    require_root,
    summary,
)

SERVER = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80))
s.listen(4096)
while True:
    c, _ = s.accept()
    c.close()
"""

CONNECTOR = """
import json, socket, sys, time
host, port, n, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = []
for i in range(warm + n):
    s = socket.socket()
    s.settimeout(5)
    t0 = time.perf_counter()
    s.connect((host, port))
    dt = time.perf_counter() - t0
    s.close()
    if i >= warm:
        out.append(dt * 1e6)
    time.sleep(0.002)
print(json.dumps(out))
"""


def connect_times(
    client_ns: str, host: str, port: int, n: int = 200, warm: int = 50
) -> list[float]:
    """Microseconds per connect() from the client namespace to host:port."""
    res = in_ns(
        client_ns, "python3", "-c", CONNECTOR, host, str(port), str(n), str(warm), timeout=120
    )
    return [float(x) for x in json.loads(res.stdout)]


def nft_elements(host_ns: str, name: str) -> int:
    """How many elements hostnet's map holds in the kernel (counted from nft's JSON)."""
    res = in_ns(
        host_ns, "nft", "-j", "list", "map", "ip", "hostnet", name, check=False, timeout=120
    )
    if res.returncode != 0:
        return -1
    for obj in json.loads(res.stdout).get("nftables", []):
        if "map" in obj:
            return len(obj["map"].get("elem", []))
    return 0


def buckets(values: list[float], size: int) -> list[dict[str, Any]]:
    return [
        {
            "from": i + 1,
            "to": min(i + size, len(values)),
            "median": round(statistics.median(values[i : i + size]), 2),
        }
        for i in range(0, len(values), size)
    ]


def main() -> None:
    require_root()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mappings", type=int, default=int(os.environ.get("BENCH_PORTS_N", "10000")))
    ap.add_argument("--first-port", type=int, default=20000)
    ap.add_argument(
        "--budget",
        type=float,
        default=float(os.environ.get("BENCH_PORTS_BUDGET", "300")),
        help="seconds allowed for the adds; stop early past it",
    )
    args = ap.parse_args()

    started = machine()
    with Lab("p") as lab:
        daemon, host_ip = lab.host("hn")
        ref_daemon, ref_ip = lab.host("ref")
        client_ns, _ = lab.node("client")
        c = daemon.client()
        view = c.post("/containers", {"name": "ps", "networks": [{"network": "nat"}], "ports": []})
        lab.spawn(view["NetnsPath"], "python3", "-c", SERVER)
        ref = ref_daemon.client().post(
            "/containers",
            {"name": "ref", "networks": [{"network": "nat"}], "ports": [f"{args.first_port}:80"]},
        )
        lab.spawn(ref["NetnsPath"], "python3", "-c", SERVER)
        rss0 = daemon.rss_kib()

        adds: list[float] = []
        conn_1: list[float] = []
        stopped_early = False
        t_start = time.monotonic()
        for k in range(args.mappings):
            port = args.first_port + k
            t0 = time.perf_counter()
            c.post("/containers/ps/ports", {"ports": [f"{port}:80"]})
            adds.append(ms_since(t0))
            if k == 0:
                time.sleep(0.2)
                conn_1 = connect_times(client_ns, host_ip, port)
            if time.monotonic() - t_start > args.budget:
                stopped_early = True
                break
        add_seconds = time.monotonic() - t_start
        done = len(adds)
        last_port = args.first_port + done - 1
        kernel_elems = nft_elements(daemon.host, "pm_any")
        time.sleep(0.2)
        # same time, same conditions: a second host whose container has 1 mapping, interleaved
        conn_ref: list[float] = []
        conn_n_first: list[float] = []
        conn_n_last: list[float] = []
        for _ in range(4):
            conn_ref += connect_times(client_ns, ref_ip, args.first_port, n=50, warm=10)
            conn_n_first += connect_times(client_ns, host_ip, args.first_port, n=50, warm=10)
            conn_n_last += connect_times(client_ns, host_ip, last_port, n=50, warm=10)
        rss1 = daemon.rss_kib()
        t0 = time.perf_counter()
        c.delete("/containers/ps")
        remove_ms = ms_since(t0)
        leftovers = lab.close()

    head, tail = adds[:100], adds[-100:]
    med_1, med_ref = statistics.median(conn_1), statistics.median(conn_ref)
    med_first, med_last = statistics.median(conn_n_first), statistics.median(conn_n_last)
    result = {
        "machine": started,
        "requested": args.mappings,
        "added": done,
        "stopped_early_after_budget_s": args.budget if stopped_early else None,
        "add_total_s": round(add_seconds, 1),
        "add_ms_first100": summary(head),
        "add_ms_last100": summary(tail),
        "add_ratio_last100_over_first100": ratio(statistics.median(tail), statistics.median(head)),
        "add_ms_by_1000": buckets(adds, 1000),
        "kernel_pm_any_elements": kernel_elems,
        "connect_us_1_mapping_before": summary(conn_1, 1),
        "connect_us_1_mapping_reference_host": summary(conn_ref, 1),
        "connect_us_n_mappings_first_port": summary(conn_n_first, 1),
        "connect_us_n_mappings_last_port": summary(conn_n_last, 1),
        "connect_ratio_n_over_1_before": ratio(med_first, med_1),
        "connect_ratio_n_over_reference": ratio(med_first, med_ref),
        "connect_ratio_n_last_over_reference": ratio(med_last, med_ref),
        "hostnetd_rss_kib_before_after": [rss0, rss1],
        "remove_container_with_all_mappings_ms": round(remove_ms, 1),
        "leftovers": leftovers,
    }
    emit("portscale", result)


if __name__ == "__main__":
    main()
