"""Embedded DNS: dnsperf against hostnet's resolver and against aardvark-dns 1.4, same run.

hostnet: one lab host runs hostnetd; NAMES containers on a nat network ``svc`` (web0, web1,
...) and a client container ``cli`` on it. dnsperf runs inside cli's compartment against the
embedded resolver (127.0.0.11:53 there).
aardvark-dns (podman's resolver, Debian's 1.4): a lab namespace with a bridge at 10.89.0.1/24
where aardvark-dns listens on port 53 with a config naming the same containers, and a client
namespace at 10.89.0.2 (listed in the config as ``cli``: aardvark answers by the asker's
network) on a veth into that bridge. dnsperf runs there against 10.89.0.1.
Both get the same query file (the local names, type A, in turn), the same dnsperf options
(-q OUTSTANDING, -l SECONDS) and alternate, order swapped every round. Each round has a
plain run (queries per second, as fast as each resolver goes) and a -v run at a fixed
rate (-Q LATENCY_QPS, the same load for both: every query's latency, for p50/p99).
Those names are local to both resolvers. A second part ("forwarded") asks one external
name over and over, which both forward to an upstream dnsmasq (TTL 60): hostnet's network
has it as its dnsservers (a lab node on the segment), aardvark-dns forwards to the
nameserver of its namespace's resolv.conf (a dnsmasq on that namespace's loopback, bound
over /etc/resolv.conf for aardvark alone). hostnet answers repeats from its cache; the
upstream's query count after each run says how many reached it.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from typing import Any

from common import Lab, emit, in_ns, machine, quantile, ratio, require_root, summary

AARDVARK = "/usr/lib/podman/aardvark-dns"


def run_dnsperf(
    ns: str,
    server: str,
    qfile: str,
    seconds: float,
    outstanding: int,
    verbose: bool,
    max_qps: int = 0,
) -> dict[str, Any]:
    args = ["dnsperf", "-s", server, "-d", qfile, "-l", str(seconds), "-q", str(outstanding)]
    args += ["-Q", str(max_qps)] if max_qps else []
    res = in_ns(ns, *args, *(["-v"] if verbose else []), timeout=seconds + 60)
    out = res.stdout
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    codes = re.search(r"Response codes:\s+(.*)", out)
    r: dict[str, Any] = {
        "qps": round(float(qps.group(1)), 1) if qps else 0.0,
        "lost": int(lost.group(1)) if lost else -1,
        "codes": codes.group(1).strip() if codes else "",
    }
    if verbose:
        lat = [float(ln.split()[-1]) * 1000 for ln in out.splitlines() if ln.startswith("> ")]
        ok = [ln for ln in out.splitlines() if ln.startswith("> NOERROR")]
        r["n"] = len(lat)
        r["noerror"] = len(ok)
        if lat:
            r["p50_ms"] = round(quantile(lat, 0.5), 3)
            r["p99_ms"] = round(quantile(lat, 0.99), 3)
    return r


UPSTREAM_ARGS = ["--no-resolv", "--no-hosts", "--address=/ext.test/192.0.2.55", "--local-ttl=60"]
EXTERNAL = "www.ext.test"


def upstream(lab: Lab, ns: str, ip: str, tag: str) -> str:
    """dnsmasq answering *.ext.test with TTL 60; its log counts the queries it got."""
    log = os.path.join(lab.tmp, f"upstream-{tag}.log")
    lab.spawn(
        ns,
        "dnsmasq",
        "--no-daemon",
        *UPSTREAM_ARGS,
        f"--listen-address={ip}",
        "--bind-interfaces",
        "--log-queries",
        f"--log-facility={log}",
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if in_ns(ns, "dig", f"@{ip}", "+short", EXTERNAL, check=False).stdout.strip():
            return log
        time.sleep(0.1)
    raise RuntimeError(f"upstream dnsmasq at {ip} does not answer")


def upstream_queries(log: str) -> int:
    with open(log, errors="replace") as fh:
        return sum(1 for ln in fh if f"query[A] {EXTERNAL}" in ln)


def hostnet_side(lab: Lab, names: list[str]) -> tuple[Any, str, str]:
    d, _ = lab.host("hn")
    up_ns, up_ip = lab.node("up")
    up_log = upstream(lab, up_ns, up_ip, "hostnet")
    c = d.client()
    c.post(
        "/networks",
        {
            "name": "svc",
            "driver": "nat",
            "subnet": "172.30.0.0/24",
            "options": {"dnsservers": up_ip},
        },
    )
    for n in names:
        c.post("/containers", {"name": n, "networks": [{"network": "svc"}]})
    view = c.post("/containers", {"name": "cli", "networks": [{"network": "svc"}]})
    return d, view["NetnsPath"], up_log


def aardvark_side(lab: Lab, names: list[str]) -> tuple[str, str, str]:
    srv = lab.ns("aard")
    cli = lab.ns("aardcli")
    in_ns(srv, "ip", "link", "add", "br0", "type", "bridge")
    in_ns(srv, "ip", "addr", "add", "10.89.0.1/24", "dev", "br0")
    in_ns(srv, "ip", "link", "set", "br0", "up")
    in_ns(srv, "ip", "link", "add", "v0", "type", "veth", "peer", "name", "eth0", "netns", cli)
    in_ns(srv, "ip", "link", "set", "v0", "master", "br0", "up")
    in_ns(cli, "ip", "addr", "add", "10.89.0.2/24", "dev", "eth0")
    in_ns(cli, "ip", "link", "set", "eth0", "up")
    conf = os.path.join(lab.tmp, "aardvark")
    os.makedirs(conf)
    lines = ["10.89.0.1", f"{'c' * 64} 10.89.0.2  cli"]
    lines += [f"{i:064x} 10.89.0.{i + 3}  {n}" for i, n in enumerate(names)]
    with open(os.path.join(conf, "svc"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    up_log = upstream(lab, srv, "127.0.0.53", "aardvark")
    resolv = os.path.join(lab.tmp, "aardvark-resolv.conf")
    with open(resolv, "w") as fh:
        fh.write("nameserver 127.0.0.53\n")
    # aardvark-dns forwards to its resolv.conf's nameservers: that file, in a mount
    # namespace of its own; it daemonizes itself and writes its pid next to its config
    in_ns(
        srv,
        "unshare",
        "-m",
        "sh",
        "-c",
        f"mount --bind {resolv} /etc/resolv.conf && exec {AARDVARK} --config {conf} -p 53 run",
    )
    pidfile = os.path.join(conf, "aardvark.pid")
    deadline = time.monotonic() + 10
    while not os.path.exists(pidfile) and time.monotonic() < deadline:
        time.sleep(0.05)
    return cli, pidfile, up_log


def main() -> None:
    require_root()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--names", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_DNS_ROUNDS", "3")))
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--outstanding", type=int, default=100, help="dnsperf -q")
    ap.add_argument(
        "--latency-qps", type=int, default=10000, help="dnsperf -Q of the latency (-v) runs"
    )
    args = ap.parse_args()
    started = machine()
    names = [f"web{i}" for i in range(args.names)]
    aard_pid = 0
    with Lab("d") as lab:
        qfile = os.path.join(lab.tmp, "queries.txt")
        with open(qfile, "w") as fh:
            fh.write("".join(f"{n} A\n" for n in names))
        daemon, hn_cli, hn_up = hostnet_side(lab, names)
        aard_cli, pidfile, aard_up = aardvark_side(lab, names)
        ext_file = os.path.join(lab.tmp, "external.txt")
        with open(ext_file, "w") as fh:
            fh.write(f"{EXTERNAL} A\n")
        try:
            with open(pidfile) as fh:
                aard_pid = int(fh.read().strip())
            targets = {"hostnet": (hn_cli, "127.0.0.11"), "aardvark": (aard_cli, "10.89.0.1")}
            check = {
                k: in_ns(ns, "dig", f"@{ip}", "+short", "-q", names[-1], "-t", "A").stdout.strip()
                for k, (ns, ip) in targets.items()
            }
            if not all(check.values()):
                raise RuntimeError(f"a resolver does not answer {names[-1]}: {check}")
            for ns, ip in targets.values():  # warm-up
                run_dnsperf(ns, ip, qfile, 1, args.outstanding, False)
            runs: dict[str, list[dict[str, Any]]] = {k: [] for k in targets}
            lat: dict[str, list[dict[str, Any]]] = {k: [] for k in targets}
            for rnd in range(args.rounds):
                order = list(targets) if rnd % 2 == 0 else list(targets)[::-1]
                for k in order:
                    ns, ip = targets[k]
                    runs[k].append(
                        run_dnsperf(ns, ip, qfile, args.seconds, args.outstanding, False)
                    )
                    lat[k].append(
                        run_dnsperf(
                            ns, ip, qfile, args.seconds, args.outstanding, True, args.latency_qps
                        )
                    )
                print(
                    f"round {rnd + 1}: " + ", ".join(f"{k} {runs[k][-1]['qps']} qps" for k in order)
                )
            fwd: dict[str, list[dict[str, Any]]] = {k: [] for k in targets}
            ups = {"hostnet": hn_up, "aardvark": aard_up}
            for rnd in range(args.rounds):
                order = list(targets) if rnd % 2 == 0 else list(targets)[::-1]
                for k in order:
                    ns, ip = targets[k]
                    before = upstream_queries(ups[k])
                    r = run_dnsperf(ns, ip, ext_file, args.seconds, args.outstanding, False)
                    r["upstream_queries"] = upstream_queries(ups[k]) - before
                    fwd[k].append(r)
                print(
                    f"forwarded round {rnd + 1}: "
                    + ", ".join(f"{k} {fwd[k][-1]['qps']} qps" for k in order)
                )
            rss = daemon.rss_kib()
            errors = [ln for ln in daemon.log().splitlines() if "ERROR" in ln or "Traceback" in ln]
        finally:
            if aard_pid:
                os.kill(aard_pid, 15)
        leftovers = lab.close()

    qps = {k: [r["qps"] for r in v] for k, v in runs.items()}
    p99 = {k: [r.get("p99_ms", 0.0) for r in v] for k, v in lat.items()}
    p50 = {k: [r.get("p50_ms", 0.0) for r in v] for k, v in lat.items()}
    med = {k: statistics.median(v) for k, v in qps.items()}
    result = {
        "machine": started,
        "names": args.names,
        "rounds": args.rounds,
        "seconds_per_run": args.seconds,
        "outstanding": args.outstanding,
        "latency_qps": args.latency_qps,
        "target_qps_ratio": 2.0,
        "target_p99_ms": 2.0,
        "qps": {k: summary(v, 1) for k, v in qps.items()},
        "qps_all": qps,
        "qps_ratio": ratio(med["hostnet"], med["aardvark"]),
        "p99_ms": {k: summary(v, 3) for k, v in p99.items()},
        "p50_ms": {k: summary(v, 3) for k, v in p50.items()},
        "verbose_qps": {k: [r["qps"] for r in v] for k, v in lat.items()},
        "lost": {k: sum(r["lost"] for r in v + lat[k]) for k, v in runs.items()},
        "codes": {k: v[-1]["codes"] for k, v in runs.items()},
        "forwarded": {
            "name": EXTERNAL,
            "qps": {k: summary([r["qps"] for r in v], 1) for k, v in fwd.items()},
            "qps_ratio": ratio(
                statistics.median(r["qps"] for r in fwd["hostnet"]),
                statistics.median(r["qps"] for r in fwd["aardvark"]),
            ),
            "upstream_queries": {k: [r["upstream_queries"] for r in v] for k, v in fwd.items()},
            "codes": {k: v[-1]["codes"] for k, v in fwd.items()},
            "lost": {k: sum(r["lost"] for r in v) for k, v in fwd.items()},
        },
        "sanity": check,
        "hostnetd_rss_kib_end": rss,
        "hostnetd_log_errors": errors[:5],
        "leftovers": leftovers,
    }
    emit("dnsperf", result)


if __name__ == "__main__":
    main()
