"""Dual stack: what IPv6 next to IPv4 costs on a nat network, side by side in one run.

(1) Attach and detach latency: CNI ADD and DEL (the request the hostnet-cni forwarder
    sends, timed in-process over hostnetd's unix socket, as bench/scale.py does) on an
    IPv4-only nat network against a dual-stack nat network (``--ipv6 --subnet
    172.20.0.0/24 --subnet fd12:3456::/64``), on the same lab host and daemon, each network
    with one resident container. Two pairs: no port mapping, and one runtimeConfig port
    mapping without hostIP (IPv4 only on the IPv4 network, both families on the dual-stack
    one). The container's namespace is made before the ADD and removed after the DEL,
    outside the timing. The four variants are interleaved, the order rotating each
    iteration, so drift on a noisy machine hits all of them.
(2) IPv6 TCP throughput (iperf3) container -> container on the dual-stack network against
    a raw IPv6 veth + bridge between two namespaces (ip commands only, no nftables).
(3) IPv6 throughput from a client namespace on the lab segment to the lab host's IPv6
    address and a mapped port (``-p 15201:5201``: DNAT in hostnet's ip6 table) against the
    same client reaching the raw baseline's server over a routed IPv6 path: client ->
    router namespace (forwarding) -> bridge -> server namespace, no NAT, no rules.

Throughput runs alternate (hostnet, baseline, baseline, hostnet, ...); medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from typing import Any

from common import (
    Daemon,
    Lab,
    emit,
    in_ns,
    machine,
    ms_since,
    netns_add,
    netns_del,
    ratio,
    require_root,
    summary,
)
from dataplane import iperf, med, paired, raw_lab, wait_listening
from hostnet.client import UnixConnection  # common put the tree's src/ on the path

SEGMENT6 = "2001:db8:100::"  # the lab segment's IPv6 /64 (the netns tests use the same)
V4_SUBNET = "172.21.0.0/24"
DS_SUBNETS = ["172.20.0.0/24", "fd12:3456::/64"]
RAW6 = "fd99:0:0:1::"  # the raw baseline's bridge /64
MAPPED_PORT = 15201

# name: (network, with one port mapping, first host port)
VARIANTS: dict[str, tuple[str, bool, int]] = {
    "v4": ("v4", False, 0),
    "ds": ("ds", False, 0),
    "v4_map": ("v4", True, 20000),
    "ds_map": ("ds", True, 21000),
}


def with_ipv6(ns: str, ip: str) -> str:
    """Give lab node ``ns`` (at IPv4 ``ip`` on the segment) an IPv6 address there too."""
    ip6 = f"{SEGMENT6}{ip.rsplit('.', 1)[1]}"
    in_ns(ns, "ip", "-6", "addr", "add", f"{ip6}/64", "dev", "eth0", "nodad")
    return ip6


def cni(
    conn: UnixConnection, command: str, net: str, cid: str, netns: str, port: int = 0
) -> tuple[float, dict[str, Any]]:
    """One CNI call through the daemon's socket; (ms, the CNI result)."""
    conf: dict[str, Any] = {"cniVersion": "1.0.0", "name": net, "type": "hostnet"}
    if port:
        conf["runtimeConfig"] = {
            "portMappings": [{"hostPort": port, "containerPort": 80, "protocol": "tcp"}]
        }
    headers = {
        "X-Cni-Command": command,
        "X-Cni-Containerid": cid,
        "X-Cni-Netns": netns,
        "X-Cni-Ifname": "eth0",
    }
    body = json.dumps(conf).encode()
    t0 = time.perf_counter()
    conn.request("POST", "/cni", body=body, headers=headers)
    resp = conn.getresponse()
    out = resp.read()
    ms = ms_since(t0)
    if resp.headers.get("X-Cni-Exit") != "0":
        raise RuntimeError(f"{command} {cid[:12]} on {net}: {out[:300]!r}")
    return ms, (json.loads(out) if out.strip() else {})


def nft_map(host: str, family: str) -> str:
    res = in_ns(host, "nft", "list", "map", family, "hostnet", "pm_any", check=False)
    return res.stdout if res.returncode == 0 else ""


def first_add_check(
    d: Daemon, variant: str, netns: str, result: dict[str, Any], port: int
) -> dict[str, Any]:
    """What the first ADD of a variant gave: the result's addresses, the same inside the
    namespace (IPv6 not tentative: usable at once), the mapping in each family's map."""
    got = [ip["address"] for ip in result.get("ips", [])]
    inside = in_ns(netns, "ip", "-o", "addr", "show", "dev", "eth0", "scope", "global").stdout
    want6 = variant.startswith("ds")
    has6 = any(":" in a for a in got)
    check: dict[str, Any] = {
        "result_ips": got,
        "inside": all(a in inside for a in got),
        "ipv6_tentative": "tentative" in inside,
    }
    ok = check["inside"] and not check["ipv6_tentative"] and has6 == want6 and len(got) >= 1
    if port:
        in4 = f"tcp . {port} :" in nft_map(d.host, "ip")
        in6 = f"tcp . {port} :" in nft_map(d.host, "ip6")
        check.update(mapping_ip=in4, mapping_ip6=in6)
        ok = ok and in4 and in6 == want6
    check["ok"] = ok
    return check


def attach_phase(
    lab: Lab, d: Daemon, n: int, warm: int
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, Any]]:
    conn = UnixConnection(d.socket, 120)
    keepers = []
    for net in ("v4", "ds"):  # one resident container per network: steady state
        ns = f"{lab.prefix}keep{net}"
        lab.track_ns(ns)
        netns_add(ns)
        cid = f"keep{net}".ljust(64, "0")
        cni(conn, "ADD", net, cid, f"/run/netns/{ns}")
        keepers.append((net, cid, ns))
    adds: dict[str, list[float]] = {k: [] for k in VARIANTS}
    dels: dict[str, list[float]] = {k: [] for k in VARIANTS}
    checks: dict[str, Any] = {}
    names = list(VARIANTS)
    for it in range(warm + n):
        k = it % len(names)
        for v in names[k:] + names[:k]:
            net, mapped, base = VARIANTS[v]
            port = base + it if mapped else 0
            ns = f"{lab.prefix}{v.replace('_', '')}{it}"
            lab.track_ns(ns)
            netns_add(ns)
            cid = f"{v.replace('_', '')}x{it:05d}".ljust(64, "0")
            a, res = cni(conn, "ADD", net, cid, f"/run/netns/{ns}", port)
            if it == 0:
                checks[v] = first_add_check(d, v, f"/run/netns/{ns}", res, port)
            dl, _ = cni(conn, "DEL", net, cid, f"/run/netns/{ns}", port)
            netns_del(ns)
            if it >= warm:
                adds[v].append(a)
                dels[v].append(dl)
        if it % 50 == 0:
            print(f"attach iteration {it}", flush=True)
    for net, cid, ns in keepers:
        cni(conn, "DEL", net, cid, f"/run/netns/{ns}")
        netns_del(ns)
    conn.close()
    return adds, dels, checks


def paired_ms(a: list[float], b: list[float]) -> float:
    """Median of iteration-by-iteration ratios (the two ran in the same iteration)."""
    return round(statistics.median(x / y for x, y in zip(a, b, strict=True)), 3)


ACCEPTED = re.compile(r"Accepted connection from (\S+), port")


def server_saw(log: str) -> list[str]:
    """The client address of each connection an iperf3 server logged, in order."""
    try:
        with open(log, errors="replace") as fh:
            return ACCEPTED.findall(fh.read())
    except FileNotFoundError:
        return []


def mtu(ns: str) -> int:
    out = in_ns(ns, "cat", "/sys/class/net/eth0/mtu", check=False).stdout.strip()
    return int(out) if out.isdigit() else 0


def main() -> None:
    require_root()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=int(os.environ.get("BENCH_DS_N", "200")))
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_DS_RUNS", "6")))
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_DS_SECONDS", "4")))
    args = ap.parse_args()

    t_start = time.monotonic()
    started = machine()
    with Lab("ds") as lab:
        daemon, host_ip = lab.host("hn")
        host6 = with_ipv6(daemon.host, host_ip)
        client, client_ip = lab.node("client")
        client6 = with_ipv6(client, client_ip)
        c = daemon.client()
        c.post("/networks", {"name": "v4", "subnet": V4_SUBNET})
        c.post("/networks", {"name": "ds", "subnets": DS_SUBNETS, "ipv6": True})

        # (1) attach / detach
        t0 = time.monotonic()
        adds, dels, checks = attach_phase(lab, daemon, args.iterations, args.warmup)
        attach_s = round(time.monotonic() - t0, 1)
        print(f"attach phase {attach_s} s", flush=True)

        # (2), (3) throughput: the raw IPv6 baseline next to the hostnet containers
        router_ip, raw_a, raw_b, _ = raw_lab(lab)
        router = lab.prefix + "raw"  # raw_lab's router namespace
        router6 = with_ipv6(router, router_ip)
        in_ns(router, "ip", "-6", "addr", "add", f"{RAW6}1/64", "dev", "br0", "nodad")
        in_ns(router, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        for ns, idx in ((raw_a, 2), (raw_b, 3)):
            in_ns(ns, "ip", "-6", "addr", "add", f"{RAW6}{idx}/64", "dev", "eth0", "nodad")
            in_ns(ns, "ip", "-6", "route", "add", "default", "via", f"{RAW6}1")
        raw_b6 = f"{RAW6}3"
        in_ns(client, "ip", "-6", "route", "add", f"{RAW6}/64", "via", router6)

        a = c.post("/containers", {"name": "ipa", "networks": [{"network": "ds"}]})
        b = c.post(
            "/containers",
            {"name": "ipb", "networks": [{"network": "ds"}], "ports": [f"{MAPPED_PORT}:5201"]},
        )
        b_ip6 = b["Networks"]["ds"]["GlobalIPv6Address"]
        logs = {
            "hostnet": os.path.join(lab.tmp, "iperf-b.log"),
            "raw": os.path.join(lab.tmp, "iperf-raw.log"),
        }
        lab.spawn(b["NetnsPath"], "iperf3", "-s", "--forceflush", log=logs["hostnet"])
        lab.spawn(raw_b, "iperf3", "-s", "--forceflush", log=logs["raw"])
        wait_listening(b["NetnsPath"], 5201)
        wait_listening(raw_b, 5201)
        brnf = in_ns(
            daemon.host, "cat", "/proc/sys/net/bridge/bridge-nf-call-ip6tables", check=False
        ).stdout.strip()
        fwd6 = in_ns(
            daemon.host, "cat", "/proc/sys/net/ipv6/conf/all/forwarding", check=False
        ).stdout.strip()

        cases: dict[str, tuple[str, str, int]] = {
            "c2c_hostnet6": (a["NetnsPath"], b_ip6, 5201),
            "c2c_raw6_bridge": (raw_a, raw_b6, 5201),
            "mapped_hostnet6": (client, host6, MAPPED_PORT),
            "mapped_raw6_routed": (client, raw_b6, 5201),
        }
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in cases}
        order = list(cases)
        saw: dict[str, list[str]] = {}
        read = {"hostnet": 0, "raw": 0}
        t0 = time.monotonic()
        for r in range(args.runs):
            for pair in (order[0:2], order[2:4]):
                for name in pair if r % 2 == 0 else pair[::-1]:
                    ns, server, port = cases[name]
                    runs[name].append(iperf(ns, server, port, args.seconds))
                    if r == 0:  # who each server saw as the client, per path
                        time.sleep(0.2)
                        which = "hostnet" if "hostnet" in name else "raw"
                        accepted = server_saw(logs[which])
                        saw[name] = sorted(set(accepted[read[which] :]))
                        read[which] = len(accepted)
            print(
                f"iperf round {r}: "
                + ", ".join(f"{k} {v[-1]['gbps']:.2f}" for k, v in runs.items()),
                flush=True,
            )
        iperf_s = round(time.monotonic() - t0, 1)
        mtus = {"hostnet_container": mtu(b["NetnsPath"]), "raw_namespace": mtu(raw_b)}
        a_ip6 = a["Networks"]["ds"]["GlobalIPv6Address"]
        leftovers = lab.close()

    amed = {k: summary(v)["median"] for k, v in adds.items()}
    dmed = {k: summary(v)["median"] for k, v in dels.items()}
    gbps = {k: med(v) for k, v in runs.items()}
    result: dict[str, Any] = {
        "machine": started,
        "iterations": args.iterations,
        "warmup": args.warmup,
        "networks": {
            "v4": f"nat, --subnet {V4_SUBNET}",
            "ds": "nat, --ipv6 " + " ".join(f"--subnet {s}" for s in DS_SUBNETS),
        },
        "add_ms": {k: summary(v) for k, v in adds.items()},
        "del_ms": {k: summary(v) for k, v in dels.items()},
        "attach_ratios": {
            "add_ds_over_v4": ratio(amed["ds"], amed["v4"]),
            "add_ds_map_over_v4_map": ratio(amed["ds_map"], amed["v4_map"]),
            "del_ds_over_v4": ratio(dmed["ds"], dmed["v4"]),
            "del_ds_map_over_v4_map": ratio(dmed["ds_map"], dmed["v4_map"]),
        },
        "attach_paired_ratio_median": {
            "add_ds_over_v4": paired_ms(adds["ds"], adds["v4"]),
            "add_ds_map_over_v4_map": paired_ms(adds["ds_map"], adds["v4_map"]),
        },
        "first_add_check": checks,
        "attach_phase_s": attach_s,
        "runs": args.runs,
        "seconds": args.seconds,
        "gbps_median": gbps,
        "gbps_all": {k: [round(r["gbps"], 2) for r in v] for k, v in runs.items()},
        "retransmits_median": {k: med(v, "retransmits") for k, v in runs.items()},
        "iperf_phase_s": iperf_s,
        "addresses": {
            "host6": host6,
            "client6": client6,
            "container_a6": a_ip6,
            "container_b6": b_ip6,
            "raw_b6": raw_b6,
            "router6": router6,
        },
        "server_saw_client_as": saw,
        "mtu": mtus,
        "bridge_nf_call_ip6tables": brnf or "absent (br_netfilter not loaded)",
        "host_ipv6_forwarding": fwd6,
        "throughput_ratios": {
            "c2c_hostnet6_over_raw6": ratio(gbps["c2c_hostnet6"], gbps["c2c_raw6_bridge"]),
            "mapped_hostnet6_over_raw6": ratio(gbps["mapped_hostnet6"], gbps["mapped_raw6_routed"]),
        },
        "throughput_paired_ratio_median": {
            "c2c_hostnet6_over_raw6": paired(runs["c2c_hostnet6"], runs["c2c_raw6_bridge"]),
            "mapped_hostnet6_over_raw6": paired(
                runs["mapped_hostnet6"], runs["mapped_raw6_routed"]
            ),
        },
        "targets": {"attach_ratio_at_most": 1.2, "throughput_ratio_at_least": 0.95},
        "elapsed_s": round(time.monotonic() - t_start, 1),
        "leftovers": leftovers,
    }
    emit("dualstack", result)


if __name__ == "__main__":
    main()
