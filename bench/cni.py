"""CNI ADD and DEL latency: hostnet's CNI plugin against the reference plugins.

Only the plugin calls are timed. Every variant lives in its own lab host namespace with one
resident container (steady state), and every plugin binary is exec'd the same way: by this
Python process after ``setns`` into that lab host (as a runtime on the host would exec it).
The container's network namespace is created before the timed ADD and removed after the
timed DEL, outside the timing.

- hostnet: ``/opt/cni/bin/hostnet`` (the C forwarder to hostnetd) with
  ``{"name": "nat", "type": "hostnet", "socket": ...}`` and one runtimeConfig port mapping.
- cni-chain (a): bridge (+host-local, ipMasq) then portmap (snat) with the same one mapping,
  as libcni runs a conflist: ADD in order passing prevResult, DEL in reverse order with the
  cached result; runtimeConfig only to plugins whose capabilities name it.
- cni-bridge (b): bridge (+host-local) alone, no masquerade, no mapping.

Variants are interleaved (rotated order each iteration).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from common import (
    Daemon,
    Lab,
    emit,
    entered,
    in_ns,
    machine,
    ms_since,
    netns_add,
    netns_del,
    ns_path,
    ratio,
    require_root,
    summary,
)
from hostnet.kernel.rtnl import Rtnl

HOSTNET_CNI = "/opt/cni/bin/hostnet"
REF_DIR = "/usr/lib/cni"
SEARCH_PATH = f"{os.path.dirname(HOSTNET_CNI)}:{REF_DIR}"
CNI_VERSION = "1.0.0"


def exec_plugin(
    binary: str, command: str, container_id: str, netns: str, conf: dict[str, Any]
) -> dict[str, Any]:
    """One exec of a CNI plugin binary, config on stdin (libcni's invocation)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": SEARCH_PATH,
    }
    res = subprocess.run(
        [binary],
        input=json.dumps(conf).encode(),
        capture_output=True,
        env=env,
        check=False,
        timeout=60,
    )
    if res.returncode != 0:
        raise RuntimeError(
            f"CNI {os.path.basename(binary)} {command} failed ({res.returncode}): "
            f"{res.stdout.decode(errors='replace')}{res.stderr.decode(errors='replace')}"
        )
    out: dict[str, Any] = json.loads(res.stdout) if res.stdout.strip() else {}
    return out


@dataclass
class Conflist:
    """A network config list run the way libcni runs one, from inside a lab host."""

    name: str  # variant name in the results
    host: str  # lab host namespace the plugins are exec'd in
    network: str  # the config's "name"
    plugins: list[dict[str, Any]]
    base_port: int
    mapping: bool
    ns_prefix: str
    results: dict[int, dict[str, Any]] = field(default_factory=dict)

    def port(self, i: int) -> int:
        return self.base_port + 1 + i

    def netns(self, i: int) -> str:
        return f"{self.ns_prefix}{self.name}{i}"

    def _conf(self, plugin: dict[str, Any], i: int, prev: dict[str, Any] | None) -> dict:
        conf: dict[str, Any] = {**plugin, "cniVersion": CNI_VERSION, "name": self.network}
        caps = {k for k, v in (plugin.get("capabilities") or {}).items() if v}
        if "portMappings" in caps:
            conf["runtimeConfig"] = {
                "portMappings": [{"hostPort": self.port(i), "containerPort": 80, "protocol": "tcp"}]
            }
        if prev is not None:
            conf["prevResult"] = prev
        return conf

    def _binary(self, plugin: dict[str, Any]) -> str:
        for d in SEARCH_PATH.split(":"):
            path = os.path.join(d, plugin["type"])
            if os.access(path, os.X_OK):
                return path
        raise FileNotFoundError(plugin["type"])

    def add(self, i: int) -> float:
        """Timed ADD of every plugin in order (prevResult chained); ms."""
        ns = ns_path(self.netns(i))
        confs = [(self._binary(p), p) for p in self.plugins]
        prev: dict[str, Any] | None = None
        with entered(self.host):
            t0 = time.perf_counter()
            for binary, p in confs:
                prev = exec_plugin(binary, "ADD", f"{self.name}{i}", ns, self._conf(p, i, prev))
            ms = ms_since(t0)
        self.results[i] = prev or {}
        return ms

    def delete(self, i: int) -> float:
        """Timed DEL in reverse order with the cached result as prevResult; ms."""
        ns = ns_path(self.netns(i))
        cached = self.results.pop(i, None)
        confs = [(self._binary(p), p) for p in reversed(self.plugins)]
        with entered(self.host):
            t0 = time.perf_counter()
            for binary, p in confs:
                exec_plugin(binary, "DEL", f"{self.name}{i}", ns, self._conf(p, i, cached))
            return ms_since(t0)

    def check(self, i: int, daemon: Daemon | None) -> dict[str, Any]:
        """Right after an ADD: the address inside the container, the mapping in the kernel."""
        out = in_ns(self.netns(i), "ip", "-4", "-o", "addr", "show", "dev", "eth0", check=False)
        parts = out.stdout.split()
        got = parts[3] if len(parts) > 3 else ""
        ips = [x.get("address") for x in self.results.get(i, {}).get("ips", [])]
        row: dict[str, Any] = {"address": got or "NO IPv4 ADDRESS", "result_ips": ips}
        row["ok"] = bool(got) and got in ips
        if self.mapping:
            port = self.port(i)
            if daemon is not None:
                elems = in_ns(self.host, "nft", "list", "map", "ip", "hostnet", "pm_any").stdout
                found = f". {port} :" in elems
            else:
                found = f"--dport {port} -j DNAT" in in_ns(self.host, "iptables-save").stdout
            row["mapping_in_kernel"] = found
            row["ok"] = row["ok"] and found
        return row


def veth_delete_floor(lab: Lab, n: int) -> list[float]:
    """What the kernel alone takes to delete a veth whose peer sits in a live namespace
    (one RTM_DELLINK over an open netlink socket, no exec): every DEL here pays it."""
    host, peer = lab.ns("vh"), lab.ns("vp")
    out = []
    with entered(host), Rtnl() as rt:
        for i in range(n):
            in_ns(
                host,
                "ip",
                "link",
                "add",
                f"v{i}",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns_path(peer),
            )
            in_ns(host, "ip", "link", "set", f"v{i}", "up")
            in_ns(peer, "ip", "link", "set", "eth0", "up")
            t0 = time.perf_counter()
            rt.delete_link(f"v{i}")
            out.append(ms_since(t0))
    return out


def bridge_plugin(subnet: str, data_dir: str, masq: bool) -> dict[str, Any]:
    return {
        "type": "bridge",
        "bridge": "cni0",
        "isGateway": True,
        "ipMasq": masq,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": subnet}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": data_dir,
        },
    }


def main() -> None:
    require_root()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=int(os.environ.get("BENCH_CNI_N", "30")))
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    n, warm = args.iterations, args.warmup
    if not os.access(HOSTNET_CNI, os.X_OK):
        raise SystemExit(f"{HOSTNET_CNI} is missing (scripts/install-cni.sh)")
    with open(HOSTNET_CNI, "rb") as fh:
        shim = "C forwarder (ELF)" if fh.read(4) == b"\x7fELF" else "Python launcher"

    started = machine()
    with Lab("c") as lab:
        daemon, _ = lab.host("hn")
        chain_host, _ = lab.node("chain")
        br_host, _ = lab.node("br")
        hostnet = Conflist(
            "hostnet",
            daemon.host,
            "nat",
            [
                {
                    "type": "hostnet",
                    "socket": daemon.socket,
                    "capabilities": {"portMappings": True},
                }
            ],
            34000,
            True,
            lab.prefix,
        )
        chain = Conflist(
            "cnichain",
            chain_host,
            "hnbchain",
            [
                bridge_plugin("10.88.0.0/16", os.path.join(lab.tmp, "chain-ipam"), True),
                {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
            ],
            35000,
            True,
            lab.prefix,
        )
        bridge = Conflist(
            "cnibridge",
            br_host,
            "hnbbridge",
            [bridge_plugin("10.90.0.0/16", os.path.join(lab.tmp, "br-ipam"), False)],
            36000,
            False,
            lab.prefix,
        )
        variants = [hostnet, chain, bridge]
        add_ms: dict[str, list[float]] = {v.name: [] for v in variants}
        del_ms: dict[str, list[float]] = {v.name: [] for v in variants}
        checks: dict[str, dict[str, Any]] = {}
        # one resident container per variant: every timed ADD lands on an existing network
        for v in variants:
            lab.track_ns(v.netns(-1))
            netns_add(v.netns(-1))
            v.add(-1)
        for it in range(warm + n):
            k = it % len(variants)
            for v in variants[k:] + variants[:k]:
                ns = v.netns(it)
                lab.track_ns(ns)
                netns_add(ns)  # not timed
                a = v.add(it)
                if it == 0:
                    checks[v.name] = v.check(it, daemon if v is hostnet else None)
                d = v.delete(it)
                netns_del(ns)  # not timed
                if it >= warm:
                    add_ms[v.name].append(a)
                    del_ms[v.name].append(d)
        veth_del = veth_delete_floor(lab, n)
        rss = daemon.rss_kib()
        for v in variants:
            v.delete(-1)
        leftovers = lab.close()

    med = {k: summary(v)["median"] for k, v in add_ms.items()}
    dmed = {k: summary(v)["median"] for k, v in del_ms.items()}
    result = {
        "machine": started,
        "iterations": n,
        "warmup": warm,
        "hostnet_plugin": f"{HOSTNET_CNI} ({shim})",
        "cni_version": CNI_VERSION,
        "add_ms": {k: summary(v) for k, v in add_ms.items()},
        "del_ms": {k: summary(v) for k, v in del_ms.items()},
        "add_del_ms": {
            k: summary([a + d for a, d in zip(add_ms[k], del_ms[k], strict=True)]) for k in add_ms
        },
        "kernel_veth_delete_ms": summary(veth_del),
        "hostnetd_rss_kib": rss,
        "first_add_check": checks,
        "ratios": {
            "add_hostnet_over_cnibridge": ratio(med["hostnet"], med["cnibridge"]),
            "add_hostnet_over_cnichain": ratio(med["hostnet"], med["cnichain"]),
            "del_hostnet_over_cnibridge": ratio(dmed["hostnet"], dmed["cnibridge"]),
            "del_hostnet_over_cnichain": ratio(dmed["hostnet"], dmed["cnichain"]),
        },
        "leftovers": leftovers,
    }
    emit("cni", result)
    if not all(c.get("ok") for c in checks.values()):
        raise SystemExit(f"sanity check after the first ADD failed: {checks}")


if __name__ == "__main__":
    main()
