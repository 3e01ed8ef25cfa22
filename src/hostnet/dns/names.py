"""Who may resolve whom: the directory the resolver answers from.

Built whole from the service's networks, containers and endpoints at start, then
changed one endpoint at a time; the resolver never reads service state.
A compartment sees the names on the networks it shares (with discovery on),
and forwards everything else to its network's dnsservers or the host's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hostnet.dns import wire
from hostnet.model import Container, Endpoint, Network

LISTEN_ADDR = "127.0.0.11"  # inside every compartment, as Docker's embedded resolver


def discovery_on(net: Network) -> bool:
    return net.options.get("discovery", "true") != "false"


def read_resolv_conf(path: str) -> list[str]:
    """The nameservers of a resolv.conf (IPv4 only); none if unreadable."""
    servers: list[str] = []
    try:
        with open(path) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver" and ":" not in parts[1]:
                    servers.append(parts[1])
    except OSError:
        pass
    return [s for s in servers if s != LISTEN_ADDR]


@dataclass(frozen=True)
class Scope:
    """What one compartment's resolver sees."""

    nets: tuple[str, ...]
    upstreams: tuple[str, ...]  # empty: the host's resolvers


@dataclass
class Directory:
    """Names, reverse names and scopes; changed in place one endpoint at a time (the
    service's thread writes, the resolver's reads: each change is a few dict operations,
    and ``gen`` tells the resolver's caches that something changed)."""

    names: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # net -> name -> IPs
    ptrs: dict[str, dict[str, str]] = field(default_factory=dict)  # net -> reverse name -> name
    scopes: dict[str, Scope] = field(default_factory=dict)  # container id -> scope
    gen: int = 0

    def answer(self, cid: str, q: wire.Question) -> bytes | None:
        """The local answer, or None when the question must go upstream."""
        scope = self.scopes.get(cid)
        if scope is None:
            return wire.response(q, wire.REFUSED)
        if not q.local:  # another class, or a label with a dot in it: never a local name
            return None
        if q.qtype in (wire.PTR, wire.ANY) and q.name.endswith(".in-addr.arpa"):
            for nid in scope.nets:
                target = self.ptrs.get(nid, {}).get(q.name)
                if target is not None:
                    return wire.response(q, answers=[wire.ptr_record(target)])
            return None
        ips: list[str] = []
        for nid in scope.nets:
            ips += self.names.get(nid, {}).get(q.name, ())
        if not ips:
            return None
        if q.qtype in (wire.A, wire.ANY):
            return wire.response(q, answers=wire.a_records(ips))
        return wire.response(q)  # a local name: AAAA and the rest are empty, not NXDOMAIN

    def add(self, net: Network, own: list[str], ip: str) -> None:
        """An endpoint's names (``own_names``) on its network."""
        if not own:
            return
        table = self.names.setdefault(net.id, {})
        for key in _keys(net, own):
            table.setdefault(key, []).append(ip)
        self.ptrs.setdefault(net.id, {})[wire.reverse_name(ip)] = _fqdn(net, own)
        self.gen += 1

    def remove(self, net: Network, own: list[str], ip: str) -> None:
        """Undo ``add`` (the same names and address)."""
        if not own:
            return
        table = self.names.get(net.id, {})
        for key in _keys(net, own):
            ips = table.get(key)
            if ips is not None and ip in ips:
                ips.remove(ip)
                if not ips:
                    del table[key]
        ptrs = self.ptrs.get(net.id, {})
        if ptrs.get(wire.reverse_name(ip)) == _fqdn(net, own):
            del ptrs[wire.reverse_name(ip)]
        self.gen += 1

    def set_scope(self, cid: str, scope: Scope | None) -> None:
        if scope is None:
            if self.scopes.pop(cid, None) is not None:
                self.gen += 1
        elif self.scopes.get(cid) != scope:
            self.scopes[cid] = scope
            self.gen += 1


def _suffix(net: Network) -> str:
    return net.options.get("dnssuffix", "").strip(".").lower()


def _keys(net: Network, own: list[str]) -> list[str]:
    suffix = _suffix(net)
    return [k for n in own for k in ((n, f"{n}.{suffix}") if suffix else (n,))]


def _fqdn(net: Network, own: list[str]) -> str:
    suffix = _suffix(net)
    return f"{own[0]}.{suffix}" if suffix else own[0]


def names_of(c: Container, ep: Endpoint) -> list[str]:
    return [n.lower() for n in [c.name, *ep.aliases] if n]


def own_names(net: Network, c: Container | None, ep: Endpoint) -> list[str]:
    """The names an endpoint answers to on its network (none without discovery or address);
    ``c`` is None for another host's endpoint, which carries its name."""
    if not ep.ip or not discovery_on(net):
        return []
    own = names_of(c, ep) if c is not None else [n.lower() for n in [ep.dns_name, *ep.aliases]]
    return own if own and own[0] else []


def scope_of(nets: dict[str, Network], c: Container, mine: list[Endpoint]) -> Scope | None:
    """What a compartment's resolver sees, from its endpoints (sorted by ifname); None: no
    embedded DNS for it (no network with discovery, or Docker's own resolver)."""
    on = [e for e in mine if e.network_id in nets and discovery_on(nets[e.network_id])]
    if not on or c.runtime == "docker":
        return None
    ups: list[str] = []
    for e in mine:
        ups = e.dns.get("nameservers") or nets[e.network_id].dns().get("nameservers", [])
        if ups:
            break
    return Scope(tuple(e.network_id for e in on), tuple(ups))


def build(
    nets: dict[str, Network],
    containers: dict[str, Container],
    eps: Iterable[Endpoint],
) -> Directory:
    """The whole directory at once (start, reconcile, cluster re-list)."""
    d = Directory()
    by_container: dict[str, list[Endpoint]] = {}
    for ep in eps:
        by_container.setdefault(ep.container_id, []).append(ep)
        net = nets.get(ep.network_id)
        if net is not None:
            d.add(net, own_names(net, containers.get(ep.container_id), ep), ep.ip)
    for cid, mine in by_container.items():
        c = containers.get(cid)
        if c is None:
            continue
        scope = scope_of(nets, c, sorted(mine, key=lambda e: e.ifname))
        if scope is not None:
            d.scopes[cid] = scope
    return d


def dns_for(nets: dict[str, Network], c: Container, mine: list[Endpoint]) -> dict[str, list[str]]:
    """The DNS settings a compartment is handed (resolv.conf, CNI result)."""
    if not mine:
        return {}
    on = [e for e in mine if discovery_on(nets[e.network_id])]
    first = mine[0].dns or nets[mine[0].network_id].dns()
    if not on or c.runtime == "docker":
        return first
    search: list[str] = []
    for e in mine:
        for s in e.dns.get("search") or nets[e.network_id].dns().get("search", []):
            if s not in search:
                search.append(s)
    out: dict[str, list[str]] = {"nameservers": [LISTEN_ADDR]}
    if search:
        out["search"] = search
    return out
