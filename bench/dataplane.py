"""Data plane throughput (iperf3 TCP) through hostnet against raw kernel baselines.

(i)  container -> container on one hostnet NAT network, against a raw veth + bridge between
     two namespaces (no hostnet, no firewall).
(ii) a client on the lab segment -> hostIP:mapped port -> iperf3 server in a hostnet container,
     against a raw routed path client -> router namespace -> bridge -> server (no NAT).

Runs are interleaved (hostnet, baseline, hostnet, ...) and the median of each is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from common import Lab, emit, in_ns, machine, ratio, require_root

RAW_NET = "10.99.0"
MAPPED_PORT = 15201


# BENCH_IPERF_PIN=1: client on CPU 0, server on CPU 1 (tried here: lower and no steadier)
PIN = os.environ.get("BENCH_IPERF_PIN") == "1" and (os.cpu_count() or 1) >= 2


def iperf(ns: str, server: str, port: int, seconds: int) -> dict[str, float]:
    """One iperf3 TCP run from ``ns``; Gbit/s received and retransmits."""
    pin = ["-A", "0"] if PIN else []
    res = in_ns(
        ns,
        "iperf3",
        "-c",
        server,
        "-p",
        str(port),
        "-t",
        str(seconds),
        "-O",
        "1",
        "-J",
        *pin,
        timeout=seconds + 60,
        check=False,
    )
    data = json.loads(res.stdout or "{}")
    if res.returncode != 0 or "error" in data:
        raise RuntimeError(f"iperf3 to {server}:{port} failed: {data.get('error', res.stderr)}")
    end = data["end"]
    return {
        "gbps": end["sum_received"]["bits_per_second"] / 1e9,
        "retransmits": float(end["sum_sent"].get("retransmits", 0)),
    }


def wait_listening(ns: str, port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = in_ns(ns, "ss", "-Hltn", f"sport = :{port}", check=False).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} in {ns}")


def raw_lab(lab: Lab) -> tuple[str, str, str, str]:
    """A router namespace on the segment with a bridge and two namespaces behind it.

    Returns (router segment address, ns A, ns B, B's address).
    """
    router, router_ip = lab.node("raw")
    in_ns(router, "ip", "link", "add", "br0", "type", "bridge")
    in_ns(router, "ip", "addr", "add", f"{RAW_NET}.1/24", "dev", "br0")
    in_ns(router, "ip", "link", "set", "br0", "up")
    in_ns(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    names = []
    for idx, name in ((2, "rawa"), (3, "rawb")):
        ns = lab.ns(name)
        in_ns(
            router,
            "ip",
            "link",
            "add",
            f"v{name}",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            f"/run/netns/{ns}",
        )
        in_ns(router, "ip", "link", "set", f"v{name}", "master", "br0", "up")
        in_ns(ns, "ip", "addr", "add", f"{RAW_NET}.{idx}/24", "dev", "eth0")
        in_ns(ns, "ip", "link", "set", "eth0", "up")
        in_ns(ns, "ip", "route", "add", "default", "via", f"{RAW_NET}.1")
        names.append(ns)
    return router_ip, names[0], names[1], f"{RAW_NET}.3"


def med(runs: list[dict[str, float]], key: str = "gbps") -> float:
    return round(statistics.median(r[key] for r in runs), 2)


def paired(a: list[dict[str, float]], b: list[dict[str, float]]) -> float:
    """Median of run-by-run ratios (each hostnet run against the baseline run beside it)."""
    return round(statistics.median(x["gbps"] / y["gbps"] for x, y in zip(a, b, strict=True)), 3)


def main() -> None:
    require_root()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_IPERF_RUNS", "7")))
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_IPERF_SECONDS", "5")))
    args = ap.parse_args()

    started = machine()
    with Lab("d") as lab:
        daemon, host_ip = lab.host("hn")
        client, _ = lab.node("client")
        router_ip, raw_a, raw_b, raw_b_ip = raw_lab(lab)
        in_ns(client, "ip", "route", "add", f"{RAW_NET}.0/24", "via", router_ip)

        brnf = in_ns(
            daemon.host, "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables", check=False
        ).stdout.strip()
        c = daemon.client()
        a = c.post("/containers", {"name": "ipa", "networks": [{"network": "nat"}]})
        b = c.post(
            "/containers",
            {"name": "ipb", "networks": [{"network": "nat"}], "ports": [f"{MAPPED_PORT}:5201"]},
        )
        b_ip = b["Networks"]["nat"]["IPAddress"]
        server_pin = ["-A", "1"] if PIN else []
        lab.spawn(b["NetnsPath"], "iperf3", "-s", *server_pin)
        lab.spawn(raw_b, "iperf3", "-s", *server_pin)
        wait_listening(b["NetnsPath"], 5201)
        wait_listening(raw_b, 5201)

        cases: dict[str, tuple[str, str, int]] = {
            "c2c_hostnet": (a["NetnsPath"], b_ip, 5201),
            "c2c_raw_bridge": (raw_a, raw_b_ip, 5201),
            "mapped_hostnet": (client, host_ip, MAPPED_PORT),
            "mapped_raw_routed": (client, raw_b_ip, 5201),
        }
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in cases}
        order = list(cases)
        for r in range(args.runs):
            # each hostnet run sits next to its baseline; which goes first alternates
            for pair in (order[0:2], order[2:4]):
                for name in pair if r % 2 == 0 else pair[::-1]:
                    ns, server, port = cases[name]
                    runs[name].append(iperf(ns, server, port, args.seconds))
        leftovers = lab.close()

    gbps = {k: med(v) for k, v in runs.items()}
    result: dict[str, Any] = {
        "machine": started,
        "runs": args.runs,
        "seconds": args.seconds,
        "gbps_median": gbps,
        "gbps_all": {k: [round(r["gbps"], 2) for r in v] for k, v in runs.items()},
        "retransmits_median": {k: med(v, "retransmits") for k, v in runs.items()},
        "cpu_pinning": PIN,
        "bridge_nf_call_iptables": brnf or "absent (br_netfilter not loaded)",
        "ratios": {
            "c2c_hostnet_over_raw": ratio(gbps["c2c_hostnet"], gbps["c2c_raw_bridge"]),
            "mapped_hostnet_over_raw": ratio(gbps["mapped_hostnet"], gbps["mapped_raw_routed"]),
        },
        "paired_ratio_median": {
            "c2c_hostnet_over_raw": paired(runs["c2c_hostnet"], runs["c2c_raw_bridge"]),
            "mapped_hostnet_over_raw": paired(runs["mapped_hostnet"], runs["mapped_raw_routed"]),
        },
        "leftovers": leftovers,
    }
    emit("dataplane", result)


if __name__ == "__main__":
    main()
