"""Assemble bench/RESULTS.md from the JSON summaries the parts wrote (attach, cni, portscale,
dataplane, dockerrun, drivers, aclcost)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))

# seen on this kind of machine before (from the issue), for orientation only
SEEN_BEFORE = {
    ("attach", "cnichain"): 92,
    ("attach", "cnibridge"): 12,
    ("attach", "netavark"): 67,
    ("detach", "cnichain"): 211,
    ("detach", "netavark"): 109,
}
LABELS = {
    "hostnet": "hostnet (POST /containers, NAT + 1 port mapping)",
    "cnichain": "(a) CNI bridge + host-local + portmap (ipMasq, 1 mapping)",
    "cnibridge": "(b) CNI bridge + host-local alone (no masq, no mapping)",
    "netavark": "(c) netavark 1.4 setup (1 mapping, iptables driver)",
}


def load(out_dir: str, name: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(out_dir, f"{name}.json")) as fh:
            data: dict[str, Any] = json.load(fh)
            return data
    except (OSError, json.JSONDecodeError):
        return None


def verdict(value: float | None, target: float, at_most: bool) -> str:
    if value is None:
        return "n/a"
    ok = value <= target if at_most else value >= target
    return f"{'met' if ok else 'NOT met'} (target {'≤' if at_most else '≥'} {target})"


def fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v}"


def machine_section(m: dict[str, Any], revs: list[str]) -> list[str]:
    return [
        f"- machine: {m.get('nproc')} CPUs (nproc), kernel {m.get('kernel')}, "
        f"Python {m.get('python')}",
        f"- date: {m.get('date')}; hostnet at git {' then '.join(revs) or 'unknown'}"
        + (" (src/ changed during the run)" if len(revs) > 1 else ""),
        "- one run of `bench/run.sh` (as root); this is a small shared VM (other work may run "
        "beside the benchmark), so numbers move by 10-30 % between runs: read ratios "
        "measured in the same run, not absolute values.",
    ]


def attach_section(d: dict[str, Any] | None) -> list[str]:
    out = ["## 1. Attach and detach latency", ""]
    if d is None:
        return [*out, "**Did not run or failed**: see `bench/out/attach.log`.", ""]
    out += [
        f"{d['iterations']} timed iterations per variant after {d['warmup']} warm-ups, "
        "variants interleaved (rotating order). Each variant has its own lab host namespace "
        "and one resident container, so every attach lands on an existing network. "
        "Peer times include creating the namespace (in-process unshare + bind mount, as "
        "hostnet does; "
        f"median {d['netns_create_ms']['median']} ms on its own) and exec of each plugin "
        "binary; detach includes deleting the namespace. hostnet's time is the wall time of "
        "the HTTP call over hostnetd's unix socket (the daemon creates the namespace).",
        "",
        "| variant | attach median ms | attach p90 ms | detach median ms | detach p90 ms "
        "| seen before (attach / detach) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for k, label in LABELS.items():
        a, de = d["attach_ms"].get(k, {}), d["detach_ms"].get(k, {})
        seen = f"{SEEN_BEFORE.get(('attach', k), '–')} / {SEEN_BEFORE.get(('detach', k), '–')}"
        out.append(
            f"| {label} | {fmt(a.get('median'))} | {fmt(a.get('p90'))} "
            f"| {fmt(de.get('median'))} | {fmt(de.get('p90'))} | {seen} |"
        )
    r = d["ratios"]
    out += [
        "",
        f"- **hostnet / (b) attach = {fmt(r['attach_hostnet_over_cnibridge'])}**: "
        f"{verdict(r['attach_hostnet_over_cnibridge'], 0.5, True)}",
        f"- hostnet / (a) attach = {fmt(r['attach_hostnet_over_cnichain'])}; "
        f"hostnet / (c) attach = {fmt(r['attach_hostnet_over_netavark'])}",
        f"- detach ratios: hostnet / (a) = {fmt(r['detach_hostnet_over_cnichain'])}, "
        f"hostnet / (b) = {fmt(r['detach_hostnet_over_cnibridge'])}, "
        f"hostnet / (c) = {fmt(r['detach_hostnet_over_netavark'])}",
        f"- REST round trip alone (GET /_ping on the same connection): median "
        f"{d['hostnet_rest_ping_ms']['median']} ms; hostnetd RSS {d['hostnetd_rss_kib']} KiB",
        "- hostnet removes an empty compartment and lets the kernel take the veth with it: "
        "the host-side veth was gone from the host namespace a median "
        f"{d['hostnet_veth_gone_after_delete_ms'].get('median')} ms (p90 "
        f"{d['hostnet_veth_gone_after_delete_ms'].get('p90')} ms) after DELETE was called "
        "(the detach figure above is the call alone; the peers delete their veth inside DEL).",
        "- sanity check right after the first attach of each variant (IPv4 address inside the "
        "container; the port mapping present in the kernel): "
        + "; ".join(f"{k}: {v}" for k, v in d["address_check"].items()),
        "",
    ]
    return out


def portscale_section(d: dict[str, Any] | None) -> list[str]:
    out = ["## 2. Port-mapping scale", ""]
    if d is None:
        return [*out, "**Did not run or failed**: see `bench/out/portscale.log`.", ""]
    early = d.get("stopped_early_after_budget_s")
    out += [
        f"One container; {d['added']} of {d['requested']} mappings added one at a time "
        f"(POST /containers/ps/ports, host ports from 20000) in {d['add_total_s']} s"
        + (f" (**stopped by the {early} s budget**)" if early else "")
        + f". The kernel map `pm_any` held {d['kernel_pm_any_elements']} elements afterwards.",
        "",
        "| | median ms | p90 ms | max ms |",
        "|---|---:|---:|---:|",
        f"| first 100 adds | {d['add_ms_first100']['median']} | {d['add_ms_first100']['p90']} "
        f"| {d['add_ms_first100']['max']} |",
        f"| last 100 adds | {d['add_ms_last100']['median']} | {d['add_ms_last100']['p90']} "
        f"| {d['add_ms_last100']['max']} |",
        "",
        f"- **last 100 / first 100 = {fmt(d['add_ratio_last100_over_first100'])}**: "
        f"{verdict(d['add_ratio_last100_over_first100'], 1.5, True)}",
        "- median add latency per 1,000 adds: "
        + ", ".join(f"{b['from']}-{b['to']}: {b['median']}" for b in d["add_ms_by_1000"]),
        f"- removing the container with all its mappings: {d['remove_container_with_all_mappings_ms']} ms; "
        f"hostnetd RSS before/after: {d['hostnetd_rss_kib_before_after']} KiB",
        "",
        "New TCP connection through a mapping (client namespace on the segment -> "
        "hostIP:port -> server accepting in the container; time of `connect()` in µs). "
        "The reference host is a second lab host with its own hostnetd whose container has "
        "1 mapping, measured in the same interleaved rounds as the 10,000-mapping host:",
        "",
        "| mappings installed | when | port | median µs | p90 µs |",
        "|---|---|---|---:|---:|",
        f"| 1 | before the adds (200 connects) | first "
        f"| {d['connect_us_1_mapping_before']['median']} "
        f"| {d['connect_us_1_mapping_before']['p90']} |",
        f"| 1 (reference host) | after, interleaved (4 × 50) | first "
        f"| {d['connect_us_1_mapping_reference_host']['median']} "
        f"| {d['connect_us_1_mapping_reference_host']['p90']} |",
        f"| {d['added']} | after, interleaved (4 × 50) | first "
        f"| {d['connect_us_n_mappings_first_port']['median']} "
        f"| {d['connect_us_n_mappings_first_port']['p90']} |",
        f"| {d['added']} | after, interleaved (4 × 50) | last "
        f"| {d['connect_us_n_mappings_last_port']['median']} "
        f"| {d['connect_us_n_mappings_last_port']['p90']} |",
        "",
        f"- **connect time, {d['added']} mappings / 1 mapping (same time, reference host) = "
        f"{fmt(d['connect_ratio_n_over_reference'])}** (last port: "
        f"{fmt(d['connect_ratio_n_last_over_reference'])}); against the same host before "
        f"the adds: {fmt(d['connect_ratio_n_over_1_before'])}",
        "",
    ]
    return out


def dataplane_section(d: dict[str, Any] | None) -> list[str]:
    out = ["## 3. Data plane (iperf3 TCP)", ""]
    if d is None:
        return [*out, "**Did not run or failed**: see `bench/out/dataplane.log`.", ""]
    g, a, rt = d["gbps_median"], d["gbps_all"], d["retransmits_median"]
    r, pr = d["ratios"], d["paired_ratio_median"]
    pin = "client pinned to CPU 0, server to CPU 1" if d.get("cpu_pinning") else "not pinned"
    out += [
        f"{d['runs']} runs of {d['seconds']} s each (first second omitted); each hostnet run "
        "sits next to its baseline run, the order alternating; median Gbit/s received. "
        f"iperf3 {pin}; load average at start / end of the part: "
        f"{d['machine'].get('loadavg_start')} / {d['machine'].get('loadavg_end')}. "
        "`net.bridge.bridge-nf-call-iptables` in the lab host namespace: "
        f"{d.get('bridge_nf_call_iptables', 'n/a')} (1 means bridged container-to-container "
        "packets pass the host namespace's netfilter hooks, hostnet's conntrack and forward "
        "chain included; the raw baseline namespace has no rules, so no conntrack).",
        "",
        "| path | median Gbit/s | all runs | retransmits (median) |",
        "|---|---:|---|---:|",
    ]
    rows = {
        "c2c_hostnet": "(i) container -> container, hostnet NAT network",
        "c2c_raw_bridge": "(i) baseline: raw veth + bridge, two namespaces",
        "mapped_hostnet": "(ii) client -> hostIP:port -> container (hostnet mapping)",
        "mapped_raw_routed": "(ii) baseline: client -> router -> bridge -> namespace, no NAT",
    }
    for k, label in rows.items():
        out.append(f"| {label} | {g[k]} | {', '.join(map(str, a[k]))} | {rt[k]} |")
    out += [
        "",
        f"- **(i) hostnet / raw = {fmt(r['c2c_hostnet_over_raw'])}** (ratio of medians): "
        f"{verdict(r['c2c_hostnet_over_raw'], 0.95, False)}; median of run-by-run ratios "
        f"{fmt(pr['c2c_hostnet_over_raw'])}",
        f"- **(ii) hostnet / raw = {fmt(r['mapped_hostnet_over_raw'])}** (ratio of medians): "
        f"{verdict(r['mapped_hostnet_over_raw'], 0.85, False)}; median of run-by-run ratios "
        f"{fmt(pr['mapped_hostnet_over_raw'])}",
        "",
    ]
    return out


CNI_LABELS = {
    "hostnet": "hostnet CNI plugin (C forwarder → hostnetd; NAT + 1 port mapping)",
    "cnichain": "(a) bridge + host-local + portmap (ipMasq, 1 mapping)",
    "cnibridge": "(b) bridge + host-local alone (no masq, no mapping)",
}
CNI_SEEN_BEFORE = {"cnichain": 92, "cnibridge": 12}


def cni_section(d: dict[str, Any] | None) -> list[str]:
    out = ["## 4. CNI ADD and DEL latency", ""]
    if d is None:
        return [*out, "**Did not run or failed**: see `bench/out/cni.log`.", ""]
    out += [
        f"{d['iterations']} timed iterations per variant after {d['warmup']} warm-ups, "
        "variants interleaved (rotating order), each in its own lab host namespace with one "
        "resident container. Every plugin binary is exec'd the same way: by the benchmark's "
        "Python process after `setns` into the lab host, config on stdin, "
        f"cniVersion {d['cni_version']}; a conflist is run as libcni runs it (ADD in order "
        "with prevResult, DEL in reverse with the cached result, runtimeConfig.portMappings "
        "only to plugins whose capabilities name it). The container's namespace is created "
        "before the ADD and deleted after the DEL, **outside** the timing: only the plugin "
        f"calls are timed (unlike section 1). hostnet's plugin: `{d['hostnet_plugin']}`.",
        "",
        "| variant | ADD median ms | ADD p90 ms | DEL median ms | DEL p90 ms "
        "| ADD+DEL median ms | ADD seen before |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k, label in CNI_LABELS.items():
        a, de, both = d["add_ms"].get(k, {}), d["del_ms"].get(k, {}), d["add_del_ms"].get(k, {})
        out.append(
            f"| {label} | {fmt(a.get('median'))} | {fmt(a.get('p90'))} "
            f"| {fmt(de.get('median'))} | {fmt(de.get('p90'))} | {fmt(both.get('median'))} "
            f"| {CNI_SEEN_BEFORE.get(k, '–')} |"
        )
    r = d["ratios"]
    veth = d.get("kernel_veth_delete_ms", {})
    out += [
        "",
        f"- **ADD hostnet / (b) = {fmt(r['add_hostnet_over_cnibridge'])}**: "
        f"{verdict(r['add_hostnet_over_cnibridge'], 1.0, True)}; "
        f"ADD hostnet / (a) = {fmt(r['add_hostnet_over_cnichain'])}",
        f"- DEL hostnet / (b) = {fmt(r['del_hostnet_over_cnibridge'])}; "
        f"DEL hostnet / (a) = {fmt(r['del_hostnet_over_cnichain'])}",
        "- floor of every DEL here: the kernel deleting one veth whose peer is in a live "
        f"namespace (one RTM_DELLINK on an open netlink socket, no exec) took a median "
        f"{veth.get('median')} ms (p90 {veth.get('p90')} ms). In CNI the runtime deletes "
        "the namespace only after DEL, so every plugin must delete the veth inside DEL and "
        "wait for it (section 1's hostnet detach instead lets the namespace deletion take it).",
        "- sanity check right after the first ADD of each variant (address inside the "
        "container = the result's address; the port mapping in the kernel: hostnet's nft map "
        "`pm_any`, portmap's iptables DNAT rule): "
        + "; ".join(
            f"{k}: {v.get('address')}"
            + (f", mapping in kernel: {v['mapping_in_kernel']}" if "mapping_in_kernel" in v else "")
            + ("" if v.get("ok") else " **FAILED**")
            for k, v in d["first_add_check"].items()
        ),
        "",
    ]
    return out


def dockerrun_section(d: dict[str, Any] | None) -> list[str]:
    out = ["## 5. `docker run --rm` on a hostnet network vs Docker's bridge", ""]
    if d is None:
        return [*out, "**Did not run or failed**: see `bench/out/dockerrun.log`.", ""]
    r, nets = d["ratios"], d["networks"]
    out += [
        f"`docker run --rm --network NET busybox true`, wall time of the docker CLI "
        f"(`/usr/bin/docker`; with `--rm` it returns once the container is removed). "
        f"{d['iterations']} timed runs per network after {d['warmup']} warm-up round(s), "
        "alternating networks (order swapped every round), one dockerd "
        f"({d['docker_version']}) in one run. Networks: `docker network create "
        f"{nets['hostnet']}` (hostnet's remote driver) and `docker network create "
        f"{nets['bridge']}` (Docker's own bridge driver). busybox is a local image "
        "(Debian's busybox-static + applet links, `docker import`).",
        "",
        f"**dockerd runs with `{d['dockerd_flags']}`** (in a lab namespace, as the e2e tests "
        "run it), so Docker's bridge driver does no iptables work at all here: no NAT, no "
        "DOCKER/isolation chains. hostnet's nat network still installs its nftables state "
        "(masquerade, forward rules). Docker's bridge is therefore measured at its cheapest: "
        "with `--iptables=true` Docker would also program iptables for the network and for "
        "every published port (these runs publish none).",
        "",
        "| network | median ms | p90 ms | min ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for k, label in (("hostnet", "hostnet `nat` (hnnat)"), ("bridge", "Docker `bridge` (dkbr)")):
        s = d["run_ms"][k]
        out.append(f"| {label} | {s['median']} | {s['p90']} | {s['min']} | {s['max']} |")
    b = d.get("hostnet_plugin_breakdown") or {}
    calls = b.get("ms_median_per_call") or {}
    per_run = b.get("plugin_ms_per_run") or {}
    out += [
        "",
        f"- **hostnet / bridge = {fmt(r['hostnet_over_bridge'])}** (ratio of medians): "
        f"{verdict(r['hostnet_over_bridge'], 1.1, True)}; p90 ratio "
        f"{fmt(r['hostnet_over_bridge_p90'])}; median of run-by-run ratios "
        f"{fmt(d['paired_ratio_median'])}",
        "- all runs (ms): hostnet "
        + ", ".join(map(str, d["run_ms_all"]["hostnet"]))
        + "; bridge "
        + ", ".join(map(str, d["run_ms_all"]["bridge"])),
        f"- where hostnet's share goes ({b.get('runs')} extra runs after the timed ones, on a "
        "third hostnet network reached through a timing relay socket, not part of the "
        "comparison): Docker made these plugin calls per run, median ms each as hostnet "
        "answered them: "
        + ", ".join(
            f"{k} {v}" + (f" (×{b['calls_per_run'][k]:g})" if b["calls_per_run"][k] != 1 else "")
            for k, v in calls.items()
        )
        + f"; together {per_run.get('median')} ms (p90 {per_run.get('p90')}) of a "
        f"{(b.get('wall_ms_per_run') or {}).get('median')} ms run.",
        "- sanity check (a container on each network before the timed runs: its eth0 "
        "address and a default route): "
        + "; ".join(
            f"{k}: {', '.join(v['eth0'])}, default route {v['default_route']}"
            + ("" if v["ok"] else " **FAILED**")
            for k, v in d["first_run_check"].items()
        )
        + f". After the runs: {d['containers_left_after_runs']} containers and "
        f"{d['veths_left_after_runs']} container veths left; dockerd answered after "
        f"{d['dockerd_startup_s']} s; "
        + (
            "dockerd and its containerd stopped on SIGTERM."
            if not d["forced_stop"]
            else f"had to be killed: {', '.join(d['forced_stop'])}."
        ),
        "",
    ]
    return out


DRIVER_PATHS = {
    "nat": "container -> nat bridge -> routed + masquerade -> eth0",
    "transparent": "container -> external switch -> eth0 (own MAC)",
    "l2bridge": "container -> external switch, MAC rewritten -> eth0",
    "l2tunnel": "container -> netdev fwd, MAC rewritten -> eth0 (hairpin on)",
}


def drivers_section(d: dict[str, Any] | None) -> list[str]:
    out = ["## 6. Drivers: container -> another host (iperf3 TCP)", ""]
    if d is None:
        return [*out, "**Did not run or failed**: see `bench/out/drivers.log`.", ""]
    target = d["target_ratio"]
    per: dict[str, Any] = d["per_driver"]
    m = d["machine"]
    out += [
        "Host A runs hostnetd; host B is a plain namespace on the lab segment running "
        "`iperf3 -s`. Per driver, one container on host A runs `iperf3 -c <host B>`; the "
        "baseline is host A itself (no container) -> host B. "
        f"{d['runs']} runs of {d['seconds']} s each (first second omitted) per side, "
        "container and baseline runs interleaved (order alternating), median Gbit/s "
        "received. Drivers run one after the other: nat on the default `nat` network "
        "(masquerade to host B), then `hostnet network create -d DRIVER --subnet "
        "198.51.100.0/24 --gateway 198.51.100.1 -o "
        "com.docker.network.windowsshim.interface=eth0 ext` with a static container "
        "address, removed (`hostnet network rm`) before the next driver; for l2tunnel the "
        "segment port facing host A hair-pins. While an external network exists host A's "
        "own address lives on the external switch, so that phase's baseline crosses the "
        "switch too; the nat phase's baseline is the adapter alone (last column). "
        f"Load average at start / end of the part: {m.get('loadavg_start')} / "
        f"{m.get('loadavg_end')}.",
        "",
        "| driver | container's path | median Gbit/s | baseline median Gbit/s "
        "| **ratio** (medians) | paired ratio (median) | vs adapter alone (nat-phase baseline) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    over_adapter = d.get("ratio_over_adapter_alone", {})
    for drv in d["drivers"]:
        p = per.get(drv)
        if p is None:
            out.append(f"| {drv} | {DRIVER_PATHS.get(drv, '')} | **failed** | | | | |")
            continue
        out.append(
            f"| {drv} | {DRIVER_PATHS.get(drv, '')} | {p['gbps_median']} "
            f"| {p['baseline_gbps_median']} | **{fmt(p['ratio'])}** "
            f"| {fmt(p['paired_ratio_median'])} | {fmt(over_adapter.get(drv))} |"
        )
    out += ["", f"Against the target (ratio ≥ {target}):", ""]
    for drv in d["drivers"]:
        p = per.get(drv)
        if p is None:
            out.append(f"- **{drv}: did not run**: {d['failures'].get(drv, 'see the log')}")
        else:
            out.append(
                f"- **{drv} = {fmt(p['ratio'])}**: {verdict(p['ratio'], target, False)}; "
                f"paired {fmt(p['paired_ratio_median'])}"
            )
    out += [
        "",
        "| driver | container runs Gbit/s | baseline runs Gbit/s | retransmits median "
        "(container / baseline) | sender CPU % median (container / baseline) |",
        "|---|---|---|---|---|",
    ]
    for drv, p in per.items():
        out.append(
            f"| {drv} | {', '.join(map(str, p['gbps_all']))} "
            f"| {', '.join(map(str, p['baseline_gbps_all']))} "
            f"| {p['retransmits_median']} / {p['baseline_retransmits_median']} "
            f"| {p['sender_cpu_median']} / {p['baseline_sender_cpu_median']} |"
        )
    checks = []
    for drv, p in per.items():
        i = p["info"]
        words = [
            f"container {i['container_ip']}, host B saw it as "
            f"{', '.join(i['server_saw_container_as']) or '?'}"
        ]
        if "host_b_neigh_mac_for_container" in i:
            mac = i["host_b_neigh_mac_for_container"]
            whose = (
                "the container's own MAC"
                if mac == i["container_mac"]
                else "host A's adapter MAC"
                if mac == i["host_a_adapter_mac"]
                else "an unknown MAC"
            )
            words.append(f"host B's neighbour entry for it: {mac} ({whose})")
        if "network_create_ms" in i:
            words.append(
                f"network create {i['network_create_ms']} ms / rm {i['network_rm_ms']} ms, "
                "host A's addresses "
                + ("back on eth0 after rm" if i.get("host_a_addrs_restored") else "NOT restored")
            )
        status = "ok" if not p["problems"] else "**PROBLEMS: " + "; ".join(p["problems"]) + "**"
        checks.append(f"{drv}: " + ", ".join(words) + f" ({status})")
    out += [
        "",
        "- sanity checks per driver (the client address host B's iperf3 server logged; "
        "for the external drivers host B's ARP entry for the container, which must be the "
        "container's MAC for transparent and host A's MAC for l2bridge and l2tunnel): "
        + "; ".join(checks),
    ]
    if d.get("failures"):
        out.append("- **failed**: " + "; ".join(f"{k}: {v}" for k, v in d["failures"].items()))
    errs = d.get("hostnetd_log_errors") or []
    out.append(
        "- hostnetd's log: "
        + (f"{len(errs)} error line(s), first: `{errs[0]}`" if errs else "no ERROR lines")
    )
    stray = d.get("stray_in_lab_at_end") or []
    out += [
        "- after every `hostnet rm`: "
        + ("nothing of the containers left running" if not stray else "left: " + ", ".join(stray)),
        "",
    ]
    return out


def chains(counts: dict[str, int]) -> str:
    return ", ".join(f"`{k}` {v} rules" for k, v in counts.items()) or "n/a"


def aclcost_section(d: dict[str, Any] | None) -> list[str]:
    out = ["## 7. Port-ACL cost: new-connection rate", ""]
    if d is None:
        return [*out, "**Did not run or failed**: see `bench/out/aclcost.log`.", ""]
    n, target = d["rules"], d["target_ratio"]
    one, many, mid = d["conn_per_s_1_rule"], d["conn_per_s_n_rules"], d.get("mid")
    s = d["sanity"]
    label = {"1": "1 rule", "mid": f"{mid['rules']} rules" if mid else "", "n": f"{n} rules"}
    out += [
        "One lab host runs hostnetd; a container on the default `nat` network runs a python "
        "accept loop on TCP port 80 that closes every connection. The lab host namespace "
        "connects to the container's address "
        f"({d['container_ip']}) and closes again (SO_LINGER 0, an RST) in a loop for "
        f"{d['seconds_per_run']} s per run: new connections per second. The rules are "
        "inbound blocks on TCP local ports 10000 up "
        f"(the last: `{d['rule_spec_example']}`), which port 80 never matches, so every packet into "
        "the container walks all of them before the default inbound allow. The set is "
        "replaced with PUT /containers/srv/acl (one nftables transaction) before every run; "
        f"{d['rounds']} rounds, rule counts in turn, order reversed every other round "
        "(interleaved). "
        "In the kernel (hostnet's `netdev hostnet_acl` table) the endpoint's chains held "
        f"{chains(d['kernel_rules_per_chain_n'])} with {n} ACL rules and "
        f"{chains(d['kernel_rules_per_chain_1'])} with 1 (2 of them are the default inbound "
        "allow and block).",
        "",
        "| ACL rules | median conn/s | p90 | min | max | PUT of the set, median ms |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| 1 | {one['median']} | {one['p90']} | {one['min']} | {one['max']} "
        f"| {d['put_ms_1_rule']['median']} |",
    ]
    if mid:
        m = mid["conn_per_s"]
        out.append(
            f"| {mid['rules']} | {m['median']} | {m['p90']} | {m['min']} | {m['max']} "
            f"| {mid['put_ms']['median']} |"
        )
    out += [
        f"| {n} | {many['median']} | {many['p90']} | {many['min']} | {many['max']} "
        f"| {d['put_ms_n_rules']['median']} |",
        "",
        f"- **{n} rules / 1 rule = {fmt(d['ratio_n_over_1'])}** (ratio of medians): "
        f"{verdict(d['ratio_n_over_1'], target, False)}; median of round-by-round ratios "
        f"{fmt(d['paired_ratio_median'])}"
        + (f"; {mid['rules']} rules / 1 rule = {fmt(mid['ratio_over_1'])}" if mid else ""),
        f"- cost of the rules: {fmt(d['extra_ns_per_connection_per_rule'])} ns per rule per "
        "connection (from the medians; a connection sends 3 packets into the container: "
        "SYN, ACK, RST), i.e. the rules are walked one by one for every packet.",
        f"- PUT of {n} rules: median {d['put_ms_n_rules']['median']} ms (p90 "
        f"{d['put_ms_n_rules']['p90']}, max {d['put_ms_n_rules']['max']}); all: "
        + ", ".join(map(str, d["put_ms_all"]["n"]))
        + f". PUT of 1 rule: median {d['put_ms_1_rule']['median']} ms.",
        "- all runs (conn/s): "
        + "; ".join(
            f"{label[k]}: " + ", ".join(map(str, d["conn_per_s_all"][k]))
            for k in label
            if k in d["conn_per_s_all"]
        ),
        "- failed connects during the runs: "
        + ", ".join(f"{label[k]}: {v}" for k, v in d["connect_errors"].items() if k in label)
        + "; most conntrack entries "
        f"seen in the lab host after a run: {d['conntrack_count_max_seen']} (limit "
        f"{d['conntrack_max']}).",
        "- sanity check before the runs (3 connects, 1 s timeout each): no rules "
        f"{s['no_rules']['ok']}/3 connected; `action=block;dir=in;proto=tcp;lport=80` "
        f"{s['block_lport_80']['ok']}/3 connected ({', '.join(s['block_lport_80']['errors'])}); "
        f"1 non-matching rule {s['one_nonmatching_rule']['ok']}/3; 1 rule again after the runs "
        f"{s['one_rule_at_end']['ok']}/3.",
        "- hostnetd's log: "
        + (
            f"{len(d['hostnetd_log_errors'])} error line(s), first: `{d['hostnetd_log_errors'][0]}`"
            if d["hostnetd_log_errors"]
            else "no ERROR lines"
        ),
        "",
    ]
    return out


def dnsperf_section(d: dict[str, Any] | None) -> list[str]:
    out = ["## 8. Embedded DNS: dnsperf against hostnet and aardvark-dns", ""]
    if d is None:
        return [*out, "**Did not run or failed**: see `bench/out/dnsperf.log`.", ""]
    q, p99, p50 = d["qps"], d["p99_ms"], d["p50_ms"]
    h, a = q["hostnet"], q["aardvark"]
    out += [
        f"{d['names']} local container names (type A, in turn), the same query file and "
        f"dnsperf options (`-q {d['outstanding']} -l {d['seconds_per_run']}`) for both; "
        "hostnet's resolver is asked at 127.0.0.11 inside a client container's compartment on "
        "a nat network, aardvark-dns 1.4 (Debian's, podman's resolver) on its bridge address "
        "from a client namespace it knows as a container. "
        f"{d['rounds']} rounds, alternating, order swapped every round; each round has a plain "
        "run (queries per second, as fast as each goes) and a `-v` run at the same fixed rate "
        f"for both (`-Q {d.get('latency_qps', 0)}`: every query's latency, p50 and p99).",
        "",
        "| resolver | median qps | min | max | p50 ms (median of runs) | p99 ms (median) | p99 max |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| hostnet | {h['median']} | {h['min']} | {h['max']} | {p50['hostnet']['median']} "
        f"| {p99['hostnet']['median']} | {p99['hostnet']['max']} |",
        f"| aardvark-dns 1.4 | {a['median']} | {a['min']} | {a['max']} "
        f"| {p50['aardvark']['median']} | {p99['aardvark']['median']} | {p99['aardvark']['max']} |",
        "",
        f"- **qps hostnet / aardvark = {fmt(d['qps_ratio'])}** (ratio of medians): "
        f"{verdict(d['qps_ratio'], d['target_qps_ratio'], False)}",
        f"- **hostnet p99 = {p99['hostnet']['median']} ms** (target < {d['target_p99_ms']} ms): "
        + ("met" if p99["hostnet"]["median"] < d["target_p99_ms"] else "**not met**"),
        "- all runs (qps): "
        + "; ".join(f"{k}: " + ", ".join(map(str, v)) for k, v in d["qps_all"].items())
        + "; the -v runs: "
        + "; ".join(f"{k}: " + ", ".join(map(str, v)) for k, v in d["verbose_qps"].items()),
        f"- lost queries: {d['lost']}; response codes (last run): {d['codes']}",
        f"- hostnetd resident memory at the end: {d['hostnetd_rss_kib_end']} KiB",
        "",
    ]
    f = d.get("forwarded")
    if f:
        fh, fa = f["qps"]["hostnet"], f["qps"]["aardvark"]
        out += [
            f"Forwarded: one external name (`{f['name']}`, TTL 60) asked over and over, the "
            "same options; both forward to a dnsmasq upstream (hostnet's network names it as "
            "its dnsservers, on the lab segment; aardvark-dns uses its resolv.conf's, on its "
            "own namespace's loopback).",
            "",
            "| resolver | median qps | min | max | queries that reached the upstream, per run |",
            "|---|---:|---:|---:|---|",
            f"| hostnet | {fh['median']} | {fh['min']} | {fh['max']} "
            f"| {', '.join(map(str, f['upstream_queries']['hostnet']))} |",
            f"| aardvark-dns 1.4 | {fa['median']} | {fa['min']} | {fa['max']} "
            f"| {', '.join(map(str, f['upstream_queries']['aardvark']))} |",
            "",
            f"- **forwarded qps hostnet / aardvark = {fmt(f['qps_ratio'])}**; lost: {f['lost']}; "
            f"codes (last run): {f['codes']}",
            "",
        ]
    return out


def overlay_section(d: dict[str, Any] | None) -> list[str]:
    out = ["## 9. Overlay across hosts (VXLAN, etcd)", ""]
    if d is None:
        return [*out, "**Did not run or failed**: see `bench/out/overlay.log`.", ""]
    conv, ms = d["convergence"], d["convergence"]["ms"]
    runs = d["iperf_gbps"]
    out += [
        "Three lab hosts, each with an etcd member (a 3-member cluster) and hostnetd with "
        "`--store etcd://...`; one overlay network. Method in `bench/overlay.py`.",
        "",
        f"- **convergence** (attach returns on host A → first echo reply seen on host B): median "
        f"{ms['median']} ms, p90 {ms['p90']}, min {ms['min']}, max {ms['max']} over "
        f"{len(conv['all_ms'])} attaches ({conv['misses']} never answered): "
        + ("met" if ms["median"] <= d["target_convergence_ms"] else "**NOT met**")
        + f" (target median ≤ {d['target_convergence_ms']} ms). A negative value means host B "
        "already had the forwarding entry (from the etcd watch) and got its reply before host "
        "A's attach call had returned. All: "
        + ", ".join(map(str, conv["all_ms"]))
        + (
            f". From the attach call being *sent* to the first reply: median "
            f"{conv['from_sent_ms']['median']} ms (p90 {conv['from_sent_ms']['p90']}); the attach "
            f"call itself: median {conv['attach_ms']['median']} ms"
            if "from_sent_ms" in conv
            else ""
        ),
        f"- **iperf3 overlay / underlay = {fmt(d['iperf_ratio'])}**: "
        f"{verdict(d['iperf_ratio'], d['target_iperf_ratio'], False)}; Gbit/s, overlay "
        + ", ".join(map(str, runs["overlay"]))
        + "; underlay "
        + ", ".join(map(str, runs["underlay"])),
        (
            f"- one etcd write (put, from host A's namespace): median {d['etcd_put_ms']['median']} "
            f"ms, p90 {d['etcd_put_ms']['p90']}: raft commit with fsync on this VM's disk; an "
            "overlay attach makes 2 writes (the container with its compartment counter; the "
            "endpoint with its address claim and the IPAM hint)"
            if d.get("etcd_put_ms")
            else "- etcd write latency not measured"
        ),
        f"- **{d['endpoints']} endpoints** over 3 hosts (one client per host, serial on each, "
        f"hosts in parallel): {d['attach_wall_s']} s in all = {d['attach_per_s']} attaches/s "
        f"(per host: {d['attach_s_per_host']} s); every host's registry then held "
        f"{d['registry_seen']}; errors: {d['attach_errors'] or 'none'}.",
        "- hostnetd resident memory (KiB) before → after: "
        + ", ".join(
            f"{h} {d['rss_kib_before'][h]} → {d['rss_kib_after'][h]}" for h in d["rss_kib_after"]
        )
        + f"; removing all of them (one client per host, hosts in parallel, as they were added) took {d['removal_s']} s.",
        "",
    ]
    return out


def scale_section(d: dict[str, Any] | None) -> list[str]:
    out = ["## 10. Scale: up to 5,000 compartments on one host", ""]
    if d is None:
        return [*out, "**Did not run or failed**: see `bench/out/scale.log`.", ""]
    out += [
        "One lab host; hostnetd under systemd's default soft descriptor limit (`prlimit "
        "--nofile=1024:`). Every compartment is a namespace with one endpoint (CNI ADD, timed "
        "over the daemon's socket) on a nat network of at most 1,000, each with embedded DNS. "
        "At each size, 30 attach+detach probes on a small network of their own (the host's "
        "size) and 30 on the fullest network (plus the kernel bridge's cost with that many "
        "ports). Method in `bench/scale.py`.",
        "",
        "| compartments | attach (own net) median / p90 ms | detach (own net) | attach (full net, "
        "ports) | detach (full net) | RSS MiB | descriptors |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, x in d["sizes"].items():
        out.append(
            f"| {size} | {x['attach_own_net_ms']['median']} / {x['attach_own_net_ms']['p90']} "
            f"| {x['detach_own_net_ms']['median']} / {x['detach_own_net_ms']['p90']} "
            f"| {x['attach_full_net_ms']['median']} ({x['full_net_endpoints']}) "
            f"| {x['detach_full_net_ms']['median']} | {round(x['rss_kib'] / 1024)} | {x['fds']} |"
        )
    out += ["", "| CNI bridge + host-local, one bridge | attach median / p90 ms | detach |"]
    out += ["|---|---|---|"]
    for size, x in d["cni_bridge"].items():
        out.append(
            f"| {size} | {x['attach_ms']['median']} / {x['attach_ms']['p90']} "
            f"| {x['detach_ms']['median']} |"
        )
    out += [
        "",
        f"- **attach at 5,000 / at 10 = {fmt(d['ratio_attach_5000_10'])}** "
        f"({verdict(d['ratio_attach_5000_10'], 1.2, True)}); detach "
        f"{fmt(d['ratio_detach_5000_10'])} ({verdict(d['ratio_detach_5000_10'], 1.2, True)}).",
        f"- **100 attaches from {16} clients: {d['parallel_100_s']} s; one by one: "
        f"{d['serial_100_s']} s; ratio {fmt(d['ratio_parallel_serial'])}** "
        f"({verdict(d['ratio_parallel_serial'], 0.5, True)}); their 100 detaches: "
        f"{d.get('parallel_100_del_s', '?')} s against {d.get('serial_100_del_s', '?')} s, "
        f"ratio {fmt(d.get('ratio_parallel_serial_del'))}.",
        f"- kill -9 with 5,000 compartments, restart to ready: {d['restart_to_ready_s']} s; "
        f"`system reconcile` then: {d['reconcile_s']} s ({d['reconcile_repaired']} repaired); "
        f"after restart RSS {round(d['after_restart']['rss_kib'] / 1024)} MiB, "
        f"{d['after_restart']['fds']} descriptors; FD_SETSIZE abort in the log: "
        f"{'yes' if d['restart_log_fd_abort'] else 'no'}.",
        f"- removing all 5,000: {d['remove_all_s']} s (DEL median {d['remove_all_ms']['median']} "
        f"ms, p90 {d['remove_all_ms']['p90']}); containers left: {d['left_after_removal']}.",
        "",
    ]
    return out


DS_ATTACH_ROWS = {
    "v4": "IPv4-only nat network, no port mapping",
    "ds": "dual-stack nat network, no port mapping",
    "v4_map": "IPv4-only nat network, 1 port mapping (IPv4)",
    "ds_map": "dual-stack nat network, 1 port mapping (both families)",
}
DS_PATHS = {
    "c2c_hostnet6": "(2) container -> container over IPv6, hostnet dual-stack network",
    "c2c_raw6_bridge": "(2) baseline: raw IPv6 veth + bridge, two namespaces, no nftables",
    "mapped_hostnet6": "(3) client -> [host IPv6]:15201 -> container (hostnet mapping, DNAT)",
    "mapped_raw6_routed": "(3) baseline: client -> router -> bridge -> namespace over IPv6, no NAT",
}


def dualstack_section(d: dict[str, Any] | None) -> list[str]:
    out = ["## 11. Dual stack", ""]
    if d is None:
        return [*out, "**Did not run or failed**: see `bench/out/dualstack.log`.", ""]
    m, nets, t = d["machine"], d["networks"], d["targets"]
    ar, apr = d["attach_ratios"], d["attach_paired_ratio_median"]
    out += [
        f"Measured at git {m.get('git')} on {m.get('date')} (load average at start / end: "
        f"{m.get('loadavg_start')} / {m.get('loadavg_end')}; the part took "
        f"{d.get('elapsed_s')} s). One lab host with one hostnetd and two networks: "
        f"`v4` ({nets['v4']}) and `ds` ({nets['ds']}).",
        "",
        f"**(1) Attach and detach.** CNI ADD and DEL, the request the hostnet-cni forwarder "
        "sends, timed in-process over hostnetd's unix socket (as section 10); the container's "
        "namespace is created before the ADD and deleted after the DEL, outside the timing. "
        "Each network has one resident container. Four variants, interleaved with the order "
        f"rotating every iteration: {d['iterations']} timed ADD+DEL per variant after "
        f"{d['warmup']} warm-ups. The port mapping is one runtimeConfig portMappings entry "
        "without hostIP (on `ds` it is bound on both families: an element in the `ip` and in "
        "the `ip6` table's map).",
        "",
        "| variant | ADD median ms | ADD p90 ms | DEL median ms | DEL p90 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for k, label in DS_ATTACH_ROWS.items():
        a, de = d["add_ms"][k], d["del_ms"][k]
        out.append(f"| {label} | {a['median']} | {a['p90']} | {de['median']} | {de['p90']} |")
    checks = d["first_add_check"]
    out += [
        "",
        f"- **ADD dual-stack / IPv4-only = {fmt(ar['add_ds_over_v4'])}** (ratio of medians, no "
        f"mapping): {verdict(ar['add_ds_over_v4'], t['attach_ratio_at_most'], True)}; median "
        f"of iteration-by-iteration ratios {fmt(apr['add_ds_over_v4'])}",
        f"- **ADD with 1 port mapping, dual-stack / IPv4-only = "
        f"{fmt(ar['add_ds_map_over_v4_map'])}**: "
        f"{verdict(ar['add_ds_map_over_v4_map'], t['attach_ratio_at_most'], True)}; "
        f"iteration-by-iteration {fmt(apr['add_ds_map_over_v4_map'])}",
        f"- DEL dual-stack / IPv4-only = {fmt(ar['del_ds_over_v4'])} (no mapping), "
        f"{fmt(ar['del_ds_map_over_v4_map'])} (1 mapping); no target for detach",
        "- sanity check right after the first ADD of each variant (the result's addresses, "
        "the same on eth0 inside the namespace and the IPv6 one not tentative, i.e. usable at "
        "once; the mapping in the `ip` / `ip6` map `pm_any`): "
        + "; ".join(
            f"{k}: {', '.join(v['result_ips'])}"
            + (
                f", mapping ip {v['mapping_ip']} / ip6 {v['mapping_ip6']}"
                if "mapping_ip" in v
                else ""
            )
            + ("" if v["ok"] else " **FAILED**")
            for k, v in checks.items()
        ),
        "",
    ]
    g, a, rt = d["gbps_median"], d["gbps_all"], d["retransmits_median"]
    tr, tpr = d["throughput_ratios"], d["throughput_paired_ratio_median"]
    ad, saw, mtu = d["addresses"], d["server_saw_client_as"], d["mtu"]
    out += [
        f"**(2), (3) IPv6 throughput** (iperf3 TCP, {d['runs']} runs of {d['seconds']} s each, "
        "first second omitted; each hostnet run next to its baseline run, the order "
        "alternating; median Gbit/s received). (2): iperf3 -c from container `ipa` to "
        f"container `ipb` ({ad['container_b6']}) on `ds`, against two namespaces on a Linux "
        f"bridge made with ip commands ({ad['raw_b6']}/64, no nftables, no conntrack). "
        "(3): a client namespace on the lab segment "
        f"({ad['client6']}) to the lab host's IPv6 address ({ad['host6']}) port 15201, "
        "mapped (`-p 15201:5201`) to `ipb`. **Baseline for (3):** the same client namespace "
        f"to the raw server namespace ({ad['raw_b6']}) through a router namespace on the "
        f"same segment ({ad['router6']}, IPv6 forwarding on, no rules: no NAT, no "
        "conntrack), which puts it on the raw bridge: one routed hop and one bridge, as the "
        "mapped path has. The servers logged the client as: "
        + "; ".join(f"{k} {', '.join(v) or '?'}" for k, v in saw.items())
        + (
            " (the client's own address on both (3) paths: no source translation)"
            if saw.get("mapped_hostnet6") == [ad["client6"]] == saw.get("mapped_raw6_routed")
            else f" (**not the client's own address {ad['client6']} on both (3) paths**)"
        )
        + ". eth0 MTU: hostnet "
        f"container {mtu['hostnet_container']}, raw namespace {mtu['raw_namespace']}; "
        "`net.bridge.bridge-nf-call-ip6tables` in the lab host namespace: "
        f"{d['bridge_nf_call_ip6tables']} (bridged IPv6 passes the host's ip6 hooks).",
        "",
        "| path | median Gbit/s | all runs | retransmits (median) |",
        "|---|---:|---|---:|",
    ]
    for k, label in DS_PATHS.items():
        out.append(f"| {label} | {g[k]} | {', '.join(map(str, a[k]))} | {rt[k]} |")
    target = t["throughput_ratio_at_least"]
    out += [
        "",
        f"- **(2) container <-> container IPv6, hostnet / raw = "
        f"{fmt(tr['c2c_hostnet6_over_raw6'])}** (ratio of medians): "
        f"{verdict(tr['c2c_hostnet6_over_raw6'], target, False)}; median of run-by-run "
        f"ratios {fmt(tpr['c2c_hostnet6_over_raw6'])}",
        f"- **(3) mapped port over IPv6, hostnet / raw routed = "
        f"{fmt(tr['mapped_hostnet6_over_raw6'])}** (ratio of medians): "
        f"{verdict(tr['mapped_hostnet6_over_raw6'], target, False)}; median of run-by-run "
        f"ratios {fmt(tpr['mapped_hostnet6_over_raw6'])}",
        "",
    ]
    return out


def section(
    render: Callable[[dict[str, Any] | None], list[str]],
    data: dict[str, Any] | None,
    title: str,
    name: str,
) -> list[str]:
    """One section; a summary of an unexpected shape is reported, not a crash."""
    try:
        return render(data)
    except (KeyError, TypeError, ValueError) as exc:
        return [
            f"## {title}",
            "",
            f"**Summary unreadable** ({exc!r}): see `bench/out/{name}.json`.",
            "",
        ]


PARTS = (
    ("attach", attach_section, "1. Attach and detach latency"),
    ("cni", cni_section, "4. CNI ADD and DEL latency"),
    ("portscale", portscale_section, "2. Port-mapping scale"),
    ("dataplane", dataplane_section, "3. Data plane (iperf3 TCP)"),
    ("drivers", drivers_section, "6. Drivers: container -> another host (iperf3 TCP)"),
    ("dockerrun", dockerrun_section, "5. docker run on a hostnet network vs Docker's bridge"),
    ("aclcost", aclcost_section, "7. Port-ACL cost: new-connection rate"),
    ("dnsperf", dnsperf_section, "8. Embedded DNS: dnsperf against hostnet and aardvark-dns"),
    ("overlay", overlay_section, "9. Overlay across hosts (VXLAN, etcd)"),
    ("scale", scale_section, "10. Scale: up to 5,000 compartments on one host"),
    ("dualstack", dualstack_section, "11. Dual stack"),
)
ORDER = (
    "attach",
    "portscale",
    "dataplane",
    "cni",
    "dockerrun",
    "drivers",
    "aclcost",
    "dnsperf",
    "overlay",
    "scale",
    "dualstack",
)  # sections in RESULTS.md


def main() -> None:
    out_dir = os.environ.get("BENCH_OUT") or os.path.join(BENCH_DIR, "out")
    target = sys.argv[1] if len(sys.argv) > 1 else os.path.join(BENCH_DIR, "RESULTS.md")
    data = {name: load(out_dir, name) for name, _, _ in PARTS}  # in run order
    ran = [(n, x) for n, x in data.items() if x]
    m: dict[str, Any] = next((x["machine"] for _, x in ran), {})
    revs = list(dict.fromkeys(x["machine"]["git"] for _, x in ran))
    lines = [
        "# hostnet benchmarks",
        "",
        "Written by `bench/report.py` from one run of `bench/run.sh`; raw JSON and logs in "
        "`bench/out/`.",
        "",
        *machine_section(m, revs),
        "- load average (1, 5, 15 min) at the start → end of each part: "
        + "; ".join(
            f"{n} {x['machine'].get('loadavg_start')} → {x['machine'].get('loadavg_end')}"
            for n, x in ran
        ),
        "- everything ran inside network namespaces made for the run (a 198.51.100.0/24 lab "
        "segment, one lab host namespace per system under test); peers were run inside their "
        "lab host with `setns`, so their bridges and iptables rules stayed there. dockerd "
        "(section 5) ran inside its lab host too, in a private mount namespace.",
        "",
    ]
    parts = {name: (render, title) for name, render, title in PARTS}
    for name in ORDER:
        render, title = parts[name]
        lines += section(render, data[name], title, name)
    leftovers = [x for _, d in ran for x in d.get("leftovers", [])]
    lines += [
        "## Clean-up",
        "",
        (
            "hostnet left nothing behind (no compartment outlived its daemon's clean-up)."
            if not leftovers
            else "Left behind by hostnet and removed by the lab: " + ", ".join(leftovers)
        ),
        "",
    ]
    with open(target, "w") as fh:
        fh.write("\n".join(lines))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
