"""Who may resolve whom: the directory the resolver answers from.

Built whole from the service's networks, containers and endpoints at start, then
changed one endpoint at a time; the resolver never reads service state.
A compartment sees the names on the networks it shares (with discovery on),
and forwards everything else to its network's dnsservers or the host's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from hostnet.dns import wire
from hostnet.model import Container, Endpoint, Network

LISTEN_ADDR = "127.0.0.11"  # inside every compartment, as Docker's embedded resolver


def discovery_on(net: Network) -> bool:
    return net.options.get("discovery", "true") != "false"


def nameserver(text: str) -> str | None:
    """A resolv.conf nameserver in canonical form (so that it is one key for the forwarder's
    dead-upstream table and cache), or None when it cannot be forwarded to: not an address
    (glibc ignores those too), or IPv6 link-local without a zone (no interface to send it
    on). A link-local address keeps its zone (``fe80::1%eth0``): the forwarder sends from
    the daemon's own namespace, the one whose resolv.conf names that interface. IPv4-mapped
    IPv6 addresses become plain IPv4 (what an AF_INET6 socket would send to anyway)."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        if not addr.is_link_local:  # a zone means nothing for it (the kernel ignores it)
            return str(ipaddress.IPv6Address(addr.packed))
        if not addr.scope_id:
            return None
    return str(addr)


def read_resolv_conf(path: str) -> list[str]:
    """The nameservers of a resolv.conf (IPv4 and IPv6, canonical); none if unreadable."""
    servers: list[str] = []
    try:
        with open(path) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    server = nameserver(parts[1])
                    if server is not None and server != LISTEN_ADDR and server not in servers:
                        servers.append(server)
    except OSError:
        pass
    return servers


@dataclass(frozen=True)
class Scope:
    """What one compartment's resolver sees."""

    nets: tuple[str, ...]
    upstreams: tuple[str, ...]  # empty: the host's resolvers


Bag = dict[str, int]  # an ordered multiset: value -> how many endpoints put it there
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass
class Directory:
    """Names, reverse names and scopes; changed in place one endpoint at a time (the
    service's thread writes, the resolver's reads: each change is a few dict operations,
    and ``gen`` tells the resolver's caches that something changed).

    Every value is a ``Bag`` counting the endpoints that put it there, so that removing
    one endpoint takes out exactly what it added (its addresses under each of its names,
    the PTRs of both its addresses) in O(1), and leaves what others hold: an alias shared
    by many endpoints, or an address two endpoints hold for a moment (a cluster move)."""

    names: dict[str, dict[str, Bag]] = field(default_factory=dict)  # net -> name -> IPv4s
    names6: dict[str, dict[str, Bag]] = field(default_factory=dict)  # net -> name -> IPv6s
    # net -> reverse name (in-addr.arpa and ip6.arpa) -> names (the first one answers)
    ptrs: dict[str, dict[str, Bag]] = field(default_factory=dict)
    scopes: dict[str, Scope] = field(default_factory=dict)  # container id -> scope
    gen: int = 0

    def answer(self, cid: str, q: wire.Question) -> bytes | None:
        """The local answer, or None when the question must go upstream."""
        scope = self.scopes.get(cid)
        if scope is None:
            return wire.response(q, wire.REFUSED)
        if not q.local:  # another class, or a label with a dot in it: never a local name
            return None
        if q.qtype in (wire.PTR, wire.ANY) and q.name.endswith(wire.REVERSE_ZONES):
            targets = _gather(self.ptrs, scope, q.name)
            if targets:
                return wire.response(q, answers=[wire.ptr_record(targets[0])])
            return None
        v4, v6 = _gather(self.names, scope, q.name), _gather(self.names6, scope, q.name)
        if not v4 and not v6:
            return None
        # a local name: the types it has no records of are empty answers, not NXDOMAIN
        # (an IPv6-only container's A, a v4-only one's AAAA: the stub then takes the other)
        answers: list[bytes] = []
        if q.qtype in (wire.A, wire.ANY):
            answers += wire.a_records(v4)
        if q.qtype in (wire.AAAA, wire.ANY):
            answers += wire.aaaa_records(v6)
        return wire.response(q, answers=answers)

    def add(self, net: Network, own: list[str], ip: str, ip6: str = "") -> None:
        """An endpoint's names (``own_names``) on its network, with its IPv4 and IPv6
        addresses ("" for a family it lacks)."""
        if not own:
            return
        addrs = _addresses(ip, ip6)
        fqdn = _fqdn(net, own)
        for addr in addrs:
            table = (self.names if addr.version == 4 else self.names6).setdefault(net.id, {})
            for key in _keys(net, own):
                _put(table, key, str(addr))
            _put(self.ptrs.setdefault(net.id, {}), addr.reverse_pointer, fqdn)
        self.gen += 1

    def remove(self, net: Network, own: list[str], ip: str, ip6: str = "") -> None:
        """Undo ``add`` (the same names and addresses)."""
        if not own:
            return
        fqdn = _fqdn(net, own)
        for addr in _addresses(ip, ip6):
            table = (self.names if addr.version == 4 else self.names6).get(net.id, {})
            for key in _keys(net, own):
                _take(table, key, str(addr))
            _take(self.ptrs.get(net.id, {}), addr.reverse_pointer, fqdn)
        self.gen += 1

    def set_scope(self, cid: str, scope: Scope | None) -> None:
        if scope is None:
            if self.scopes.pop(cid, None) is not None:
                self.gen += 1
        elif self.scopes.get(cid) != scope:
            self.scopes[cid] = scope
            self.gen += 1


def _gather(tables: dict[str, dict[str, Bag]], scope: Scope, key: str) -> list[str]:
    """What ``key`` holds on the scope's networks, in their order. ``list.extend`` of a
    dict runs in C without giving up the GIL, so the writer's thread cannot change a bag
    while it is read (iterating one in Python could raise)."""
    out: list[str] = []
    for nid in scope.nets:
        bag = tables.get(nid, {}).get(key)
        if bag:
            out.extend(bag)
    return out


def _put(table: dict[str, Bag], key: str, value: str) -> None:
    bag = table.setdefault(key, {})
    bag[value] = bag.get(value, 0) + 1


def _take(table: dict[str, Bag], key: str, value: str) -> None:
    bag = table.get(key)
    if bag is None or value not in bag:
        return
    if bag[value] > 1:
        bag[value] -= 1
        return
    del bag[value]
    if not bag:
        del table[key]


def _addresses(ip: str, ip6: str) -> list[Address]:
    """An endpoint's addresses, parsed once per change (canonical text, reverse names).
    One that does not parse is left out rather than raised: another host's endpoint comes
    from the store, and one bad record must not stop the watch that brings the rest."""
    out: list[Address] = []
    for text in (ip, ip6):
        if text:
            try:
                out.append(ipaddress.ip_address(text))
            except ValueError:
                continue
    return out


def _suffix(net: Network) -> str:
    return net.options.get("dnssuffix", "").strip(".").lower()


def _keys(net: Network, own: list[str]) -> list[str]:
    """The names an endpoint is found by, each once (an alias may repeat the container's
    name; counting it twice would be harmless, but is work for nothing)."""
    suffix = _suffix(net)
    keys = (k for n in own for k in ((n, f"{n}.{suffix}") if suffix else (n,)))
    return list(dict.fromkeys(keys))


def _fqdn(net: Network, own: list[str]) -> str:
    suffix = _suffix(net)
    return f"{own[0]}.{suffix}" if suffix else own[0]


def names_of(c: Container, ep: Endpoint) -> list[str]:
    return [n.lower() for n in [c.name, *ep.aliases] if n]


def own_names(net: Network, c: Container | None, ep: Endpoint) -> list[str]:
    """The names an endpoint answers to on its network (none without discovery or any
    address: IPv4, IPv6 or both); ``c`` is None for another host's endpoint, which carries
    its name."""
    if not (ep.ip or ep.ip6) or not discovery_on(net):
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
            d.add(net, own_names(net, containers.get(ep.container_id), ep), ep.ip, ep.ip6)
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
