"""Who may resolve whom: the directory the resolver answers from.

Built from the service's networks, containers and endpoints after every change
and handed to the resolver whole; the resolver never reads service state.
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
    names: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # net -> name -> IPs
    ptrs: dict[str, dict[str, str]] = field(default_factory=dict)  # net -> reverse name -> name
    scopes: dict[str, Scope] = field(default_factory=dict)  # container id -> scope

    def answer(self, cid: str, q: wire.Question) -> bytes | None:
        """The local answer, or None when the question must go upstream."""
        scope = self.scopes.get(cid)
        if scope is None:
            return wire.response(q, wire.REFUSED)
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


def names_of(c: Container, ep: Endpoint) -> list[str]:
    return [n.lower() for n in [c.name, *ep.aliases] if n]


def build(
    nets: dict[str, Network],
    containers: dict[str, Container],
    eps: Iterable[Endpoint],
) -> Directory:
    d = Directory()
    by_container: dict[str, list[Endpoint]] = {}
    for ep in eps:
        by_container.setdefault(ep.container_id, []).append(ep)
        net, c = nets.get(ep.network_id), containers.get(ep.container_id)
        if net is None or not ep.ip or not discovery_on(net):
            continue
        own = names_of(c, ep) if c is not None else [n.lower() for n in [ep.dns_name, *ep.aliases]]
        if not own or not own[0]:
            continue  # another host's endpoint without a name
        table = d.names.setdefault(net.id, {})
        suffix = net.options.get("dnssuffix", "").strip(".").lower()
        for n in own:
            table.setdefault(n, []).append(ep.ip)
            if suffix:
                table.setdefault(f"{n}.{suffix}", []).append(ep.ip)
        fqdn = f"{own[0]}.{suffix}" if suffix else own[0]
        d.ptrs.setdefault(net.id, {})[wire.reverse_name(ep.ip)] = fqdn
    for cid, mine in by_container.items():
        mine.sort(key=lambda e: e.ifname)
        on = [e for e in mine if e.network_id in nets and discovery_on(nets[e.network_id])]
        if not on or containers.get(cid) is None or containers[cid].runtime == "docker":
            continue
        ups: list[str] = []
        for e in mine:
            ups = e.dns.get("nameservers") or nets[e.network_id].dns().get("nameservers", [])
            if ups:
                break
        d.scopes[cid] = Scope(tuple(e.network_id for e in on), tuple(ups))
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
