"""The datapath pieces that serve a switch, and whether each is in the kernel now (read only).

A driver says which pieces its switch should have (``Driver.datapath``): links (the
bridge, the adapter, a VXLAN device, vNICs as its ports), nftables tables, chains, sets and
set elements, eBPF programs attached with tc, qdiscs. A ``Snapshot`` reads the namespace
once (one link dump, one nftables ruleset; tc per device asked about, at most once each) and
answers for each piece: ``switch extension`` (Get-VMSwitchExtension) shows the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyroute2.netlink.exceptions import NetlinkError

from hostnet.kernel import adapters, nft
from hostnet.kernel.bpf import VLAN_POP, VLAN_PUSH

if TYPE_CHECKING:
    from hostnet.kernel.handles import HostLinks

# tc clsact's two hooks, as the parent of their filters
TC_PARENTS = {"ingress": 0xFFFFFFF2, "egress": 0xFFFFFFF3}


@dataclass(frozen=True)
class Piece:
    """One datapath piece: its kind, what names it (``target``), and what it does there."""

    kind: str  # link | port | nft table | nft chain | nft set | nft element | bpf | qdisc
    target: tuple[str, ...]
    role: str

    @property
    def name(self) -> str:
        return " ".join(t for t in self.target if t)


def link(name: str, kind: str, role: str) -> Piece:
    """A link of that rtnl kind ("" for a device with a driver, "*" for any)."""
    return Piece("link", (name, kind), role)


def port(name: str, bridge: str, role: str) -> Piece:
    """A link that is up and a port of ``bridge``."""
    return Piece("port", (name, bridge), role)


def nft_table(family: str, table: str, role: str) -> Piece:
    return Piece("nft table", (family, table), role)


def nft_chain(family: str, table: str, chain: str, role: str) -> Piece:
    return Piece("nft chain", (family, table, chain), role)


def nft_set(family: str, table: str, name: str, role: str) -> Piece:
    """A set or a map."""
    return Piece("nft set", (family, table, name), role)


def nft_element(family: str, table: str, name: str, element: str, role: str) -> Piece:
    """A (single-value) element of a set, e.g. a device name."""
    return Piece("nft element", (family, table, name, element), role)


def bpf(device: str, direction: str, program: str, role: str) -> Piece:
    """An eBPF program named ``program`` attached by tc on the device's clsact hook."""
    return Piece("bpf", (device, direction, program), role)


def qdisc(device: str, kind: str, role: str) -> Piece:
    return Piece("qdisc", (device, kind), role)


TcReader = Callable[[str], dict[str, Any]]


class Snapshot:
    """What the namespace has now: links, the nftables ruleset, tc per device (lazily)."""

    def __init__(
        self, links: list[adapters.Link], ruleset: list[dict[str, Any]], tc: TcReader
    ) -> None:
        self.links = {ln["name"]: ln for ln in links}
        self._by_index = {ln["index"]: ln["name"] for ln in links}
        self._tc = tc
        self._tc_seen: dict[str, dict[str, Any]] = {}
        self.tables: set[tuple[str, str]] = set()
        self.chains: set[tuple[str, str, str]] = set()
        self.sets: dict[tuple[str, str, str], list[Any]] = {}
        for obj in ruleset:
            if "table" in obj:
                self.tables.add((obj["table"]["family"], obj["table"]["name"]))
            elif "chain" in obj:
                c = obj["chain"]
                self.chains.add((c["family"], c["table"], c["name"]))
            elif "set" in obj or "map" in obj:
                s = obj.get("set") or obj["map"]
                self.sets[(s["family"], s["table"], s["name"])] = list(s.get("elem") or [])

    @classmethod
    def read(cls, nl: HostLinks) -> Snapshot:
        return cls(adapters.link_table(nl), nft.ruleset(), lambda dev: read_tc(nl, dev))

    def tc(self, device: str) -> dict[str, Any]:
        if device not in self._tc_seen:
            self._tc_seen[device] = self._tc(device)
        return self._tc_seen[device]

    def has(self, p: Piece) -> bool:
        t = p.target
        if p.kind == "link":
            ln = self.links.get(t[0])
            return ln is not None and (t[1] == "*" or (ln["kind"] or "") == t[1])
        if p.kind == "port":
            ln = self.links.get(t[0])
            return ln is not None and ln["up"] and self._by_index.get(ln["master"] or 0) == t[1]
        if p.kind == "nft table":
            return (t[0], t[1]) in self.tables
        if p.kind == "nft chain":
            return (t[0], t[1], t[2]) in self.chains
        if p.kind == "nft set":
            return (t[0], t[1], t[2]) in self.sets
        if p.kind == "nft element":
            return t[3] in self.sets.get((t[0], t[1], t[2]), [])
        if p.kind == "bpf":
            return t[0] in self.links and t[2] in self.tc(t[0]).get(t[1], [])
        if p.kind == "qdisc":
            return t[0] in self.links and t[1] in self.tc(t[0]).get("qdiscs", [])
        raise ValueError(f"unknown datapath piece kind {p.kind!r}")


def read_tc(nl: HostLinks, device: str) -> dict[str, list[str]]:
    """A device's qdisc kinds, and the names of the bpf programs on its clsact hooks."""
    idx = nl.index(device)
    out: dict[str, list[str]] = {"qdiscs": [], "ingress": [], "egress": []}
    if idx is None:
        return out
    try:
        out["qdiscs"] = [str(q.get_attr("TCA_KIND")) for q in nl.ipr.get_qdiscs(index=idx)]
        if "clsact" in out["qdiscs"]:
            for direction, parent in TC_PARENTS.items():
                for f in nl.ipr.get_filters(index=idx, parent=parent):
                    opts = f.get_attr("TCA_OPTIONS")
                    name = opts.get_attr("TCA_BPF_NAME") if opts else None
                    if f.get_attr("TCA_KIND") == "bpf" and name:
                        out[direction].append(str(name))
    except NetlinkError:  # gone meanwhile: it has nothing
        pass
    return out


def tagged(nl: HostLinks, device: str) -> bool:
    """Both VLAN programs (push on ingress, pop on egress) are on the device."""
    tc = read_tc(nl, device)
    return VLAN_PUSH in tc["ingress"] and VLAN_POP in tc["egress"]
