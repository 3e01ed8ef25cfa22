"""``hostnet doctor``: checks what the seed's tips and users' troubles are about, each
finding with a remedy. It reads the network namespace it runs in and asks hostnetd over
its API when it answers; it changes nothing.

- ``probe``: reading the host; ``*_checks``: the checks, pure functions of what was read;
- ``findings``: the finding type, the report and its exit code (0 ok, 1 warning, 2 error).
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass, field
from typing import Any

from hostnet.client import Client
from hostnet.doctor import adapter_checks, firewall_checks, host_checks, probe, store_checks
from hostnet.doctor.findings import Finding, ok
from hostnet.errors import HostnetError


@dataclass
class DaemonView:
    """What hostnetd says (everything None / empty when it could not be asked)."""

    socket: str
    info: dict[str, Any] | None = None
    problem: str = ""
    networks: list[dict[str, Any]] | None = None
    switches: list[dict[str, Any]] | None = None
    system: dict[str, Any] = field(default_factory=dict)
    pid: int = 0

    @classmethod
    def ask(cls, socket_path: str | None) -> DaemonView:
        client = Client(socket_path, timeout=10)
        view = cls(client.socket_path)
        try:
            view.info = client.get("/_ping")
            view.networks = client.get("/networks")
            view.switches = client.get("/switches")
        except HostnetError as exc:
            view.info, view.problem = None, exc.message
            return view
        with contextlib.suppress(HostnetError):  # newer daemons say which store they use
            view.system = client.get("/system/info") or {}
        view.pid = probe.socket_peer_pid(client.socket_path)
        return view


def etcd_url(system: dict[str, Any]) -> str:
    """The daemon's etcd store URL if its /system/info names one ('' otherwise)."""
    stack: list[Any] = [system]
    while stack:
        v = stack.pop()
        if isinstance(v, str) and v.startswith(("etcd://", "etcds://")):
            return v
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return ""


def run(
    socket_path: str | None, store: str = "", tls: ssl.SSLContext | None = None
) -> list[Finding]:
    """Every check, in the order a person reads them. ``store`` (an etcd:// URL) is
    validated first: a bad one raises InvalidRequest before anything is read."""
    members = store_checks.members(store) if store else []
    daemon = DaemonView.ask(socket_path)
    nets = daemon.networks
    config = probe.kernel_config()
    links = probe.links()
    bridges = [ln["ifname"] for ln in links if ln.get("linkinfo", {}).get("info_kind") == "bridge"]
    ruleset = probe.nft_ruleset()
    if not isinstance(ruleset, str):
        for family, save in probe.legacy_filter_save().items():
            ruleset += firewall_checks.legacy_ruleset(save, family)

    out = host_checks.check_daemon(daemon.info, daemon.problem, daemon.socket)
    out += host_checks.check_nftables(probe.nft_refusals())
    out += host_checks.check_vxlan(config, probe.module_loaded("vxlan"), nets)
    out += host_checks.check_bpf(probe.bpf_refusal(), config)
    out += host_checks.check_modules(config, probe.module_loaded)
    out += host_checks.check_ipv6(probe.sysctl, nets)
    out += host_checks.check_forwarding(probe.sysctl, nets)
    out += firewall_checks.check_forward_policy(ruleset, bridges, nets)
    out += firewall_checks.check_br_netfilter(
        probe.sysctl("net.bridge.bridge-nf-call-iptables"), ruleset, bridges
    )
    found = adapter_checks.adapters(links)
    out += adapter_checks.check_adapters(links, probe.default_route_devs(), daemon.switches)
    drivers = {a["ifname"]: probe.nic_driver(a["ifname"]) for a in found}
    out += adapter_checks.check_mac_spoofing(probe.virtualization(), nets, daemon.switches, drivers)
    store = store or etcd_url(daemon.system)
    members = members or (store_checks.members(store) if store else [])
    if members:
        answers = [store_checks.ask(m, tls) for m in members]
        out += store_checks.check_members(answers)
        out += store_checks.check_clock(answers)
    else:
        out.append(ok("store.etcd", "no etcd store to check (give --store etcd://... for one)"))
    out += host_checks.check_fd_limit(probe.fd_limits(daemon.pid), daemon.pid)
    return out
