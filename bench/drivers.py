"""Throughput of each driver, container -> another host, against the host's own adapter.

Lab: the segment (a bridge in its own namespace), host A (runs hostnetd, adapter eth0) and
host B (a plain namespace on the segment running ``iperf3 -s``). For each driver in turn
(nat, transparent, l2bridge, l2tunnel) one container on host A runs ``iperf3 -c <host B>``;
the baseline is host A itself (no container) -> host B, its runs interleaved with the
driver's (order alternating), so every ratio compares runs made minutes apart at most.

- nat: the default ``nat`` network; the container reaches host B through masquerade.
- transparent, l2bridge, l2tunnel: ``hostnet network create -d DRIVER ... -o
  com.docker.network.windowsshim.interface=eth0 ext``, re-created per driver (one adapter
  carries one external network; the previous one is removed first). The container gets a
  static address on the segment. For l2tunnel the segment port facing host A hair-pins
  (``bridge link set dev PORT hairpin on``), as an upstream switch of a real deployment would.

While an external network exists host A's own address lives on the external switch, so the
baseline of that phase runs host A -> switch -> adapter -> host B. The nat phase runs first,
with host A's address still on eth0: its baseline is the adapter alone, and every driver is
also reported against it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import time
from typing import Any

from common import RUN_DIR, SEGMENT, Daemon, Lab, emit, in_ns, machine, ratio, require_root, sh

DRIVERS = ("nat", "transparent", "l2bridge", "l2tunnel")
EXT_NET = "ext"
TARGET = 0.9


def cli(d: Daemon, *args: str, timeout: float = 60) -> str:
    """``hostnet ARGS`` against this lab's daemon; its stdout."""
    res = sh("env", f"HOSTNET_SOCKET={d.socket}", "hostnet", *args, timeout=timeout, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"hostnet {' '.join(args)} failed ({res.returncode}): {res.stderr}")
    return res.stdout


def iperf(ns: str, server: str, seconds: int) -> dict[str, Any]:
    """One iperf3 TCP run from ``ns`` to ``server``: Gbit/s received, retransmits, sender CPU,
    and the client address the server saw (from --get-server-output)."""
    res = in_ns(
        ns,
        "iperf3",
        "-c",
        server,
        "-t",
        str(seconds),
        "-O",
        "1",
        "-J",
        "--get-server-output",
        timeout=seconds + 60,
        check=False,
    )
    try:
        data = json.loads(res.stdout or "{}")
    except json.JSONDecodeError:
        data = {"error": res.stdout[-500:]}
    if res.returncode != 0 or "error" in data:
        raise RuntimeError(f"iperf3 {ns} -> {server} failed: {data.get('error', res.stderr)}")
    end = data["end"]
    # the server's own log of the run: "[  5] local B port 5201 connected to A port N"
    seen = ""
    for line in str(data.get("server_output_text", "")).splitlines():
        if " connected to " in line:
            seen = line.split(" connected to ", 1)[1].split()[0]
    return {
        "gbps": end["sum_received"]["bits_per_second"] / 1e9,
        "retransmits": float(end["sum_sent"].get("retransmits", 0)),
        "cpu_sender": float(end.get("cpu_utilization_percent", {}).get("host_total", 0.0)),
        "seen_as": seen,
    }


def wait_listening(ns: str, port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if in_ns(ns, "ss", "-Hltn", f"sport = :{port}", check=False).stdout.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} in {ns}")


def v4_addrs(ns: str) -> list[str]:
    """'dev address/len' of every IPv4 address in ``ns`` (loopback left out)."""
    rows = json.loads(in_ns(ns, "ip", "-j", "-4", "addr", "show").stdout)
    return sorted(
        f"{r['ifname']} {a['local']}/{a['prefixlen']}"
        for r in rows
        if r["ifname"] != "lo"
        for a in r.get("addr_info", [])
    )


def mac_of(ns: str, ifname: str = "eth0") -> str:
    return str(json.loads(in_ns(ns, "ip", "-j", "link", "show", ifname).stdout)[0]["address"])


def neigh_mac(ns: str, ip: str) -> str:
    rows = json.loads(in_ns(ns, "ip", "-j", "neigh", "show", ip).stdout or "[]")
    return str(rows[0].get("lladdr", "")) if rows else ""


def med(runs: list[dict[str, Any]], key: str = "gbps") -> float:
    return round(statistics.median(float(r[key]) for r in runs), 2)


def paired(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> float:
    """Median of run-by-run ratios (each driver run against the baseline run beside it)."""
    return round(
        statistics.median(float(x["gbps"]) / float(y["gbps"]) for x, y in zip(a, b, strict=True)), 3
    )


def lab_processes(lab: Lab, daemon: Daemon) -> list[int]:
    """Pids of processes whose network namespace is one of this lab's (compartments too)."""
    names = list(lab.namespaces)
    with contextlib.suppress(FileNotFoundError):
        names += [n for n in os.listdir(RUN_DIR) if n.startswith(daemon.compartment_prefix())]
    inodes: set[int] = set()
    for n in names:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(os.path.join(RUN_DIR, n)).st_ino)
    mine = {os.getpid()}
    mine |= {p.pid for p in lab.procs}
    mine |= {d.proc.pid for d in lab.daemons if d.proc is not None}
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if int(pid) not in mine and os.stat(f"/proc/{pid}/ns/net").st_ino in inodes:
                pids.append(int(pid))
    return pids


def phase(
    lab: Lab,
    daemon: Daemon,
    driver: str,
    idx: int,
    host_a_ip: str,
    host_b: str,
    host_b_ip: str,
    runs: int,
    seconds: int,
) -> dict[str, Any]:
    """Set the driver up, run container and baseline interleaved, tear it down."""
    host = daemon.host
    info: dict[str, Any] = {}
    net = "nat"
    opts: list[str] = []
    if driver != "nat":
        net = EXT_NET
        info["host_a_addrs_before"] = v4_addrs(host)
        t0 = time.perf_counter()
        cli(
            daemon,
            "network",
            "create",
            "-d",
            driver,
            "--subnet",
            f"{SEGMENT}.0/24",
            "--gateway",
            f"{SEGMENT}.1",
            "-o",
            "com.docker.network.windowsshim.interface=eth0",
            net,
        )
        info["network_create_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        opts = ["--ip", f"{SEGMENT}.{105 + idx}"]
    if driver == "l2tunnel":
        # the segment's port facing host A (Lab.node names it s<last octet>)
        port = f"s{host_a_ip.rsplit('.', 1)[1]}"
        in_ns(lab.seg, "bridge", "link", "set", "dev", port, "hairpin", "on")
        info["hairpin_port"] = port
    name = f"ip{driver}"
    cli(daemon, "run", "-d", "--net", net, "--name", name, *opts, "--", "sleep", "3600")
    rows = json.loads(cli(daemon, "ps", "--format", "json"))
    netns = next(r["NetnsPath"] for r in rows if r["Name"] == name)
    inspect = json.loads(cli(daemon, "network", "inspect", net))[0]
    ep = next(v for v in inspect["Containers"].values() if v["Name"] == name)
    info["container_ip"] = ep["IPv4Address"]
    info["host_a_addrs"] = v4_addrs(host)

    cases = {driver: netns, "baseline": host}
    res: dict[str, list[dict[str, Any]]] = {k: [] for k in cases}
    for r in range(runs):
        order = list(cases) if r % 2 == 0 else list(cases)[::-1]
        for k in order:
            res[k].append(iperf(cases[k], host_b_ip, seconds))

    c_ip = ep["IPv4Address"].split("/")[0]
    info["server_saw_container_as"] = sorted({x["seen_as"] for x in res[driver]})
    info["server_saw_baseline_as"] = sorted({x["seen_as"] for x in res["baseline"]})
    if driver != "nat":
        info["host_b_neigh_mac_for_container"] = neigh_mac(host_b, c_ip)
        info["container_mac"] = mac_of(netns)
        info["host_a_adapter_mac"] = mac_of(host)
    cli(daemon, "rm", name)
    if driver != "nat":
        t0 = time.perf_counter()
        cli(daemon, "network", "rm", net)
        info["network_rm_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        info["host_a_addrs_after_rm"] = v4_addrs(host)
        info["host_a_addrs_restored"] = info["host_a_addrs_after_rm"] == info.pop(
            "host_a_addrs_before"
        )
    if driver == "l2tunnel":
        in_ns(lab.seg, "bridge", "link", "set", "dev", info["hairpin_port"], "hairpin", "off")
    return {"runs": res, "info": info}


def check(driver: str, info: dict[str, Any], host_a_ip: str) -> list[str]:
    """What should hold for this driver's traffic; returns the problems found."""
    bad = []
    c_ip = info["container_ip"].split("/")[0]
    want = host_a_ip if driver == "nat" else c_ip
    if info["server_saw_container_as"] != [want]:
        bad.append(f"host B saw the container as {info['server_saw_container_as']}, not {want}")
    if info["server_saw_baseline_as"] != [host_a_ip]:
        bad.append(f"host B saw host A as {info['server_saw_baseline_as']}")
    if driver != "nat":
        want_mac = info["container_mac"] if driver == "transparent" else info["host_a_adapter_mac"]
        if info["host_b_neigh_mac_for_container"] != want_mac:
            bad.append(
                f"host B's neighbour entry for {c_ip} is "
                f"{info['host_b_neigh_mac_for_container'] or 'missing'}, not {want_mac}"
            )
        if not info["host_a_addrs_restored"]:
            bad.append(f"host A's addresses after network rm: {info['host_a_addrs_after_rm']}")
    return bad


def main() -> None:
    require_root()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_DRIVERS_RUNS", "3")))
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_IPERF_SECONDS", "5")))
    ap.add_argument("--drivers", default=",".join(DRIVERS))
    args = ap.parse_args()
    drivers = [d for d in args.drivers.split(",") if d]

    started = machine()
    phases: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    stray: list[str] = []
    leftovers: list[str] = []
    hostnetd_log_errors: list[str] = []
    host_a_ip = ""
    with Lab("x") as lab:
        try:
            daemon, host_a_ip = lab.host("hosta")
            host_b, host_b_ip = lab.node("hostb")
            lab.spawn(host_b, "iperf3", "-s")
            wait_listening(host_b, 5201)
            for i, drv in enumerate(drivers):
                print(f"-- {drv} ({time.strftime('%H:%M:%S')})", flush=True)
                try:
                    phases[drv] = phase(
                        lab, daemon, drv, i, host_a_ip, host_b, host_b_ip, args.runs, args.seconds
                    )
                except Exception as exc:  # one driver failing must not hide the others
                    failures[drv] = f"{type(exc).__name__}: {exc}"[:2000]
                    print(f"   {drv} FAILED: {failures[drv]}", flush=True)
                    with contextlib.suppress(Exception):
                        for row in json.loads(cli(daemon, "ps", "--format", "json")):
                            cli(daemon, "rm", row["Id"])
                    with contextlib.suppress(Exception):
                        cli(daemon, "network", "rm", EXT_NET)
            hostnetd_log_errors = [
                ln for ln in daemon.log().splitlines() if " ERROR " in ln or "Traceback" in ln
            ][:20]
        finally:
            # containers were removed by each phase: anything still running in the lab is a leak
            for d in lab.daemons:
                with contextlib.suppress(Exception):
                    for row in json.loads(cli(d, "ps", "--format", "json")):
                        stray.append(f"container {row.get('Name')}")
                        cli(d, "rm", row["Id"])
                for pid in lab_processes(lab, d):
                    with contextlib.suppress(OSError):
                        with open(f"/proc/{pid}/comm") as fh:
                            stray.append(f"process {pid} ({fh.read().strip()})")
                        os.kill(pid, signal.SIGKILL)
            leftovers = lab.close()

    per: dict[str, Any] = {}
    for drv, ph in phases.items():
        runs, info = ph["runs"], ph["info"]
        g, b = med(runs[drv]), med(runs["baseline"])
        per[drv] = {
            "gbps_median": g,
            "baseline_gbps_median": b,
            "ratio": ratio(g, b),
            "paired_ratio_median": paired(runs[drv], runs["baseline"]),
            "gbps_all": [round(r["gbps"], 2) for r in runs[drv]],
            "baseline_gbps_all": [round(r["gbps"], 2) for r in runs["baseline"]],
            "retransmits_median": med(runs[drv], "retransmits"),
            "baseline_retransmits_median": med(runs["baseline"], "retransmits"),
            "sender_cpu_median": med(runs[drv], "cpu_sender"),
            "baseline_sender_cpu_median": med(runs["baseline"], "cpu_sender"),
            "info": info,
            "problems": check(drv, info, host_a_ip),
        }
    # the nat phase's baseline is host A's adapter alone (no external switch exists then)
    adapter = per.get("nat", {}).get("baseline_gbps_median")
    result: dict[str, Any] = {
        "machine": started,
        "runs": args.runs,
        "seconds": args.seconds,
        "target_ratio": TARGET,
        "drivers": drivers,
        "per_driver": per,
        "ratio_over_adapter_alone": {
            drv: ratio(p["gbps_median"], adapter) for drv, p in per.items()
        },
        "failures": failures,
        "hostnetd_log_errors": hostnetd_log_errors,
        "stray_in_lab_at_end": stray,
        "leftovers": leftovers,
    }
    emit("drivers", result)
    if failures:
        raise SystemExit(f"drivers failed: {', '.join(failures)}")


if __name__ == "__main__":
    main()
