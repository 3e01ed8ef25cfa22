"""Attach and detach latency: hostnet's daemon API against the CNI reference plugins and netavark.

Each variant runs in its own lab host namespace and keeps one resident container, so every
timed attach lands on an existing network (steady state, not first-container set-up):

- hostnet: POST /containers (compartment + endpoint on ``nat`` + one port mapping), in-process
  HTTP over hostnetd's unix socket; detach is DELETE /containers/NAME.
- cni-chain (a): create netns, then exec bridge (+host-local, ipMasq) and portmap with one
  runtimeConfig.portMappings entry, each given the previous result as prevResult (as libcni
  does for a conflist); detach is DEL in reverse order, then the netns is deleted.
- cni-bridge (b): create netns, then exec bridge (+host-local) alone, no masquerade, no port
  mapping; detach is DEL, then netns delete.
- netavark (c): create netns, then ``netavark setup`` with one port mapping; detach is
  ``netavark teardown`` then netns delete.

Variants are interleaved (rotated order each iteration) so drift on a noisy machine hits all.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from typing import Any, Protocol

from common import (
    Daemon,
    Lab,
    cni_exec,
    emit,
    entered,
    in_ns,
    machine,
    ms_since,
    netavark_exec,
    netns_add,
    netns_del,
    ns_path,
    ratio,
    require_root,
    summary,
)


class Variant(Protocol):
    name: str

    def setup(self) -> None: ...
    def attach(self, i: int) -> float: ...
    def detach(self, i: int) -> float: ...
    def check(self, i: int) -> str: ...


def _ipv4_of(netns: str, ifname: str = "eth0") -> str:
    out = in_ns(netns, "ip", "-4", "-o", "addr", "show", "dev", ifname, check=False).stdout
    parts = out.split()
    return parts[3] if len(parts) > 3 else ""


def _dnat_rule(host: str, port: int) -> bool:
    rules = in_ns(host, "iptables-save", "-t", "nat").stdout
    return f"--dport {port} -j DNAT" in rules


class Hostnet:
    """hostnetd in its own lab host; the timed call is the client's HTTP request."""

    name = "hostnet"

    def __init__(self, daemon: Daemon, base_port: int) -> None:
        self.d = daemon
        self.c = daemon.client()
        self.base_port = base_port
        self.netns: dict[int, str] = {}
        self.ping_ms: list[float] = []
        self.host_if: dict[int, str] = {}
        self.veth_gone_ms: list[float] = []

    def setup(self) -> None:
        self.c.post(
            "/containers",
            {"name": "keeper", "networks": [{"network": "nat"}], "ports": [f"{self.base_port}:80"]},
        )

    def attach(self, i: int) -> float:
        body = {
            "name": f"b{i}",
            "networks": [{"network": "nat"}],
            "ports": [f"{self.base_port + 1 + i}:80"],
        }
        t0 = time.perf_counter()
        view = self.c.post("/containers", body)
        ms = ms_since(t0)
        self.netns[i] = view["NetnsPath"]
        self.host_if[i] = view["Networks"]["nat"]["HostIfName"]
        t0 = time.perf_counter()
        self.c.get("/_ping")
        self.ping_ms.append(ms_since(t0))
        return ms

    def detach(self, i: int) -> float:
        t0 = time.perf_counter()
        self.c.delete(f"/containers/b{i}")
        ms = ms_since(t0)
        self.veth_gone_ms.append(self._wait_gone(self.host_if.pop(i), t0))
        return ms

    def _wait_gone(self, ifname: str, t0: float) -> float:
        """When the host-side veth left the host namespace, counted from the DELETE call.

        hostnet removes an empty compartment and lets the kernel take its veths with it,
        which the kernel finishes after the call returns.
        """
        with entered(self.d.host):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    socket.if_nametoindex(ifname)
                except OSError:
                    return ms_since(t0)
                time.sleep(0.0005)
        return float("nan")

    def check(self, i: int) -> str:
        port = self.base_port + 1 + i
        elems = in_ns(self.d.host, "nft", "list", "map", "ip", "hostnet", "pm_any").stdout
        return f"{_ipv4_of(self.netns[i])}, mapping in kernel: {f'. {port} :' in elems}"


class CniChain:
    """bridge (+host-local) and optionally portmap, exec'd inside the lab host namespace."""

    def __init__(
        self, lab: Lab, host: str, name: str, subnet: str, portmap: bool, base_port: int
    ) -> None:
        self.lab, self.host, self.name = lab, host, name
        self.portmap, self.base_port = portmap, base_port
        bridge: dict[str, Any] = {
            "type": "bridge",
            "bridge": "cni0",
            "isGateway": True,
            "ipMasq": portmap,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": os.path.join(lab.tmp, f"{name}-ipam"),
            },
        }
        self.plugins: list[dict[str, Any]] = [bridge]
        if portmap:
            self.plugins.append(
                {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}
            )
        self.results: dict[int, dict[str, Any]] = {}

    def _netns(self, i: int) -> str:
        return f"{self.lab.prefix}{self.name}{i}"

    def _conf(self, plugin: dict[str, Any], port: int, prev: dict[str, Any] | None) -> dict:
        conf: dict[str, Any] = {"cniVersion": "1.0.0", "name": f"hnb{self.name}", **plugin}
        conf.pop("capabilities", None)
        if "portMappings" in plugin.get("capabilities", {}):
            conf["runtimeConfig"] = {
                "portMappings": [{"hostPort": port, "containerPort": 80, "protocol": "tcp"}]
            }
        if prev is not None:
            conf["prevResult"] = prev
        return conf

    def _add(self, i: int, port: int) -> None:
        ns = self._netns(i)
        self.lab.track_ns(ns)
        netns_add(ns)
        prev: dict[str, Any] | None = None
        for p in self.plugins:
            prev = cni_exec(
                p["type"], "ADD", f"{self.name}{i}", ns_path(ns), "eth0", self._conf(p, port, prev)
            )
        self.results[i] = prev or {}

    def _del(self, i: int, port: int) -> None:
        ns = self._netns(i)
        cached = self.results.pop(i, None)
        for p in reversed(self.plugins):
            cni_exec(
                p["type"],
                "DEL",
                f"{self.name}{i}",
                ns_path(ns),
                "eth0",
                self._conf(p, port, cached),
            )
        netns_del(ns)

    def setup(self) -> None:
        with entered(self.host):
            self._add(-1, self.base_port)

    def attach(self, i: int) -> float:
        with entered(self.host):
            t0 = time.perf_counter()
            self._add(i, self.base_port + 1 + i)
            return ms_since(t0)

    def detach(self, i: int) -> float:
        with entered(self.host):
            t0 = time.perf_counter()
            self._del(i, self.base_port + 1 + i)
            return ms_since(t0)

    def check(self, i: int) -> str:
        if not self.portmap:
            return _ipv4_of(self._netns(i))
        return f"{_ipv4_of(self._netns(i))}, mapping in kernel: {_dnat_rule(self.host, self.base_port + 1 + i)}"


class Netavark:
    """netavark 1.4 (iptables firewall driver here) with a static address per container."""

    name = "netavark"

    def __init__(self, lab: Lab, host: str, base_port: int) -> None:
        self.lab, self.host, self.base_port = lab, host, base_port
        self.config = os.path.join(lab.tmp, "netavark")
        os.makedirs(self.config, exist_ok=True)

    def _netns(self, i: int) -> str:
        return f"{self.lab.prefix}nva{i}"

    def _options(self, i: int) -> dict[str, Any]:
        j = i + 1  # -1 is the resident container (10.89.0.2); iterations follow it
        return {
            "container_id": f"{i + 2:064x}",
            "container_name": f"hnb-nva-{i + 2}",
            "port_mappings": [
                {
                    "host_ip": "",
                    "container_port": 80,
                    "host_port": self.base_port + 1 + i,
                    "range": 1,
                    "protocol": "tcp",
                }
            ],
            "networks": {
                "hnbnva": {
                    "static_ips": [f"10.89.{j // 200}.{j % 200 + 2}"],
                    "interface_name": "eth0",
                }
            },
            "network_info": {
                "hnbnva": {
                    "name": "hnbnva",
                    "id": "b1" * 32,
                    "driver": "bridge",
                    "network_interface": "hnbnva0",
                    "subnets": [{"subnet": "10.89.0.0/16", "gateway": "10.89.0.1"}],
                    "ipv6_enabled": False,
                    "internal": False,
                    "dns_enabled": False,
                    "ipam_options": {"driver": "host-local"},
                }
            },
        }

    def setup(self) -> None:
        with entered(self.host):
            ns = self._netns(-1)
            self.lab.track_ns(ns)
            netns_add(ns)
            netavark_exec(self.config, "setup", ns_path(ns), self._options(-1))

    def attach(self, i: int) -> float:
        ns = self._netns(i)
        self.lab.track_ns(ns)
        with entered(self.host):
            t0 = time.perf_counter()
            netns_add(ns)
            netavark_exec(self.config, "setup", ns_path(ns), self._options(i))
            return ms_since(t0)

    def detach(self, i: int) -> float:
        ns = self._netns(i)
        with entered(self.host):
            t0 = time.perf_counter()
            netavark_exec(self.config, "teardown", ns_path(ns), self._options(i))
            netns_del(ns)
            return ms_since(t0)

    def check(self, i: int) -> str:
        return f"{_ipv4_of(self._netns(i))}, mapping in kernel: {_dnat_rule(self.host, self.base_port + 1 + i)}"


def netns_only(lab: Lab, host: str, n: int) -> list[float]:
    """What creating + deleting a bare namespace costs here (part of every peer number)."""
    out = []
    with entered(host):
        for i in range(n):
            ns = f"{lab.prefix}bare{i}"
            lab.track_ns(ns)
            t0 = time.perf_counter()
            netns_add(ns)
            out.append(ms_since(t0))
            netns_del(ns)
    return out


def main() -> None:
    require_root()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=int(os.environ.get("BENCH_ATTACH_N", "30")))
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    n, warm = args.iterations, args.warmup

    started = machine()
    with Lab("a") as lab:
        daemon, _ = lab.host("hn")
        cni_host, _ = lab.node("cni")
        br_host, _ = lab.node("br")
        nva_host, _ = lab.node("nva")
        hostnet = Hostnet(daemon, 30000)
        variants: list[Variant] = [
            hostnet,
            CniChain(lab, cni_host, "cnichain", "10.88.0.0/16", portmap=True, base_port=31000),
            CniChain(lab, br_host, "cnibridge", "10.90.0.0/16", portmap=False, base_port=32000),
            Netavark(lab, nva_host, 33000),
        ]
        for v in variants:
            v.setup()
        attach: dict[str, list[float]] = {v.name: [] for v in variants}
        detach: dict[str, list[float]] = {v.name: [] for v in variants}
        checks: dict[str, str] = {}
        for it in range(warm + n):
            k = it % len(variants)
            for v in variants[k:] + variants[:k]:
                a = v.attach(it)
                if it == 0:
                    checks[v.name] = v.check(it) or "NO IPv4 ADDRESS"
                d = v.detach(it)
                if it >= warm:
                    attach[v.name].append(a)
                    detach[v.name].append(d)
        bare = netns_only(lab, cni_host, n)
        rss = daemon.rss_kib()
        leftovers = lab.close()

    med = {k: summary(v)["median"] for k, v in attach.items()}
    dmed = {k: summary(v)["median"] for k, v in detach.items()}
    result = {
        "machine": started,
        "iterations": n,
        "warmup": warm,
        "attach_ms": {k: summary(v) for k, v in attach.items()},
        "detach_ms": {k: summary(v) for k, v in detach.items()},
        "netns_create_ms": summary(bare, 3),
        "hostnet_rest_ping_ms": summary(hostnet.ping_ms[warm:], 3),
        "hostnet_veth_gone_after_delete_ms": summary(hostnet.veth_gone_ms[warm:]),
        "hostnetd_rss_kib": rss,
        "address_check": checks,
        "ratios": {
            "attach_hostnet_over_cnibridge": ratio(med["hostnet"], med["cnibridge"]),
            "attach_hostnet_over_cnichain": ratio(med["hostnet"], med["cnichain"]),
            "attach_hostnet_over_netavark": ratio(med["hostnet"], med["netavark"]),
            "detach_hostnet_over_cnibridge": ratio(dmed["hostnet"], dmed["cnibridge"]),
            "detach_hostnet_over_cnichain": ratio(dmed["hostnet"], dmed["cnichain"]),
            "detach_hostnet_over_netavark": ratio(dmed["hostnet"], dmed["netavark"]),
        },
        "leftovers": leftovers,
    }
    emit("attach", result)


if __name__ == "__main__":
    main()
