"""Rendering of hostnet's nftables tables for NAT networks (pure: text in, text out).

One table per address family, ``ip hostnet`` and ``ip6 hostnet``, of the same shape
(``Family`` says what differs). Port mappings live in two maps so the 10,000th mapping
costs what the first did and a lookup is O(1):

- ``pm_any``: protocol . host port -> container address . port (any host address)
- ``pm_ip``:  host address . protocol . host port -> container address . port

A mapping published on every address ("-p 8080:80") is in both tables' ``pm_any`` (to the
container's address of each family); "0.0.0.0:..." only in IPv4's, "[::]:..." only in
IPv6's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # core/policies.py imports this module, and model.py imports it
    from hostnet.model import PortMapping

TABLE = "hostnet"


@dataclass(frozen=True)
class Family:
    version: int
    nft: str  # the nftables family (and the payload keyword: ip saddr, ip6 saddr)
    addr_type: str


V4 = Family(4, "ip", "ipv4_addr")
V6 = Family(6, "ip6", "ipv6_addr")
FAMILY = V4.nft  # the IPv4 table's family, as before


@dataclass(frozen=True)
class NatNet:
    """What the rules need to know about one NAT network, in one family."""

    bridge: str
    subnet: str
    gateway: str = ""
    internal: bool = False  # no way out and no way in: no NAT, nothing forwarded


@dataclass(frozen=True)
class Mapping:
    """A port mapping bound to the container address it forwards to."""

    port: PortMapping
    container_ip: str


def _element(m: Mapping) -> tuple[str, str]:
    p = m.port
    value = f"{m.container_ip} . {p.container_port}"
    if not p.any_address:
        return "pm_ip", f"{p.host_ip} . {p.protocol} . {p.host_port} : {value}"
    return "pm_any", f"{p.protocol} . {p.host_port} : {value}"


def _key(m: Mapping) -> tuple[str, str]:
    p = m.port
    if not p.any_address:
        return "pm_ip", f"{p.host_ip} . {p.protocol} . {p.host_port}"
    return "pm_any", f"{p.protocol} . {p.host_port}"


def _elements_block(items: list[str]) -> str:
    if not items:
        return ""
    return "\n    elements = {\n      " + ",\n      ".join(items) + "\n    }"


@dataclass(frozen=True)
class OutboundNat:
    """l2bridge outbound NAT: these endpoints leave with the host's address, except to keep."""

    bridge: str
    endpoints: tuple[str, ...]
    keep: tuple[str, ...]


@dataclass(frozen=True)
class EndpointNat:
    """An endpoint's OutBoundNAT policy in one family: exceptions and non-destinations
    leave un-NATed, the rest leaves as ``vip`` (else the network's masquerade applies)."""

    ip: str
    vip: str = ""
    exceptions: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()
    exempt: bool = False  # NAT only to destinations of the other family: none in this one

    def rules(self) -> list[str]:
        f = "ip6" if ":" in self.ip else "ip"
        out = f"{f} saddr {self.ip} oifname != @bridges"
        if self.exempt:
            return [f"{out} accept"]
        rules = []
        if self.exceptions:
            rules.append(f"{out} {f} daddr {{ {', '.join(self.exceptions)} }} accept")
        if self.destinations:
            rules.append(f"{out} {f} daddr != {{ {', '.join(self.destinations)} }} accept")
        if self.vip:
            rules.append(f"{out} snat {f} to {self.vip}")
        return rules


@dataclass(frozen=True)
class NatPieces:
    """One contributor's part of one family's NAT table (the firewall gathers them from
    drivers and policies; ``merge`` joins them): switches, mappings, outbound NAT, and
    the relays of [::1] that the nat driver keeps in user space beside the table."""

    version: int
    nets: tuple[NatNet, ...] = ()
    mappings: tuple[Mapping, ...] = ()
    outbound: tuple[OutboundNat, ...] = ()
    endpoint_nat: tuple[EndpointNat, ...] = ()
    relays: tuple[Any, ...] = ()


def merge(pieces: list[NatPieces], version: int) -> NatPieces:
    """Every piece of one family, in the order given."""
    mine = [p for p in pieces if p.version == version]
    return NatPieces(
        version,
        tuple(n for p in mine for n in p.nets),
        tuple(m for p in mine for m in p.mappings),
        tuple(o for p in mine for o in p.outbound),
        tuple(e for p in mine for e in p.endpoint_nat),
        tuple(r for p in mine for r in p.relays),
    )


def render_tables(pieces: list[NatPieces]) -> str:
    """Both families' whole tables from the pieces, as one script."""
    v4, v6 = merge(pieces, 4), merge(pieces, 6)
    return render_table(
        list(v4.nets), list(v4.mappings), list(v4.outbound), list(v4.endpoint_nat)
    ) + render_table(
        list(v6.nets), list(v6.mappings), list(v6.outbound), list(v6.endpoint_nat), fam=V6
    )


def render_table(
    nets: list[NatNet],
    mappings: list[Mapping],
    outbound: list[OutboundNat] | None = None,
    endpoint_nat: list[EndpointNat] | None = None,
    fam: Family = V4,
) -> str:
    """One family's whole table, as one script that replaces any previous version
    atomically. ``endpoint_nat``, ``outbound`` (l2bridge's enable_outboundnat): the
    endpoints' outbound NAT in this family."""
    ip, t = fam.nft, fam.addr_type
    bridges = sorted(n.bridge for n in nets)
    any_elems = [e for s, e in map(_element, mappings) if s == "pm_any"]
    ip_elems = [e for s, e in map(_element, mappings) if s == "pm_ip"]
    post: list[str] = []
    fwd: list[str] = []
    closed: list[str] = []
    for n in sorted(nets, key=lambda n: n.bridge):
        if n.internal:  # nothing leaves or enters it; inside it, as any network
            closed.append(f'iifname "{n.bridge}" oifname != "{n.bridge}" drop')
        else:
            post.append(f'oifname "{n.bridge}" ct status dnat {ip} saddr {n.subnet} masquerade')
            post.append(f"{ip} saddr {n.subnet} oifname != @bridges masquerade")
        # bridged traffic inside one network (seen here when br_netfilter is loaded)
        fwd.append(f'iifname "{n.bridge}" oifname "{n.bridge}" accept')
    bridge_elems = ", ".join(f'"{b}"' for b in bridges)
    nat_bridges = ", ".join(sorted({f'"{o.bridge}"' for o in outbound or []}))
    gateways = ", ".join(sorted({n.gateway for n in nets if n.gateway}))
    lines = [
        f"add table {ip} {TABLE}",
        f"delete table {ip} {TABLE}",
        f"table {ip} {TABLE} {{",
        "  set gateways {",
        f"    type {t}" + (f"\n    elements = {{ {gateways} }}" if gateways else ""),
        "  }",
        "  set bridges {",
        "    type ifname" + (f"\n    elements = {{ {bridge_elems} }}" if bridges else ""),
        "  }",
        "  map pm_any {",
        f"    type inet_proto . inet_service : {t} . inet_service" + _elements_block(any_elems),
        "  }",
        "  map pm_ip {",
        f"    type {t} . inet_proto . inet_service : {t} . inet_service"
        + _elements_block(ip_elems),
        "  }",
        # traffic between containers of one network is bridged: no connection tracking
        # (br_netfilter would otherwise track every bridged packet); the gateway is excluded
        # so that the host's own and NATed (hairpin) connections stay tracked
        "  chain rawpre {",
        "    type filter hook prerouting priority raw; policy accept;",
        *(
            f"    {ip} saddr {n.subnet} {ip} daddr {n.subnet} {ip} daddr != @gateways notrack"
            for n in sorted(nets, key=lambda n: n.bridge)
            if n.gateway
        ),
        "  }",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        "    fib daddr type local jump portmap",
        "  }",
        "  chain output {",
        "    type nat hook output priority -100; policy accept;",
        # [::1] is relayed in user space (core/loopback.py): a DNAT of it would go nowhere
        *(["    ip6 daddr ::1 return"] if fam.version == 6 else []),
        "    fib daddr type local jump portmap",
        "  }",
        "  chain portmap {",
        f"    dnat {ip} to {ip} daddr . meta l4proto . th dport map @pm_ip",
        f"    dnat {ip} to meta l4proto . th dport map @pm_any",
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        # 127.0.0.1 -> container (route_localnet); IPv6's ::1 is relayed instead
        *(["    oifname @bridges ip saddr 127.0.0.0/8 masquerade"] if fam.version == 4 else []),
        *(f"    {r}" for e in sorted(endpoint_nat or [], key=lambda e: e.ip) for r in e.rules()),
        *(f"    {r}" for r in post),
        *(
            f'    oifname "{o.bridge}" {ip} saddr {{ {", ".join(o.endpoints)} }} '
            + (f"{ip} daddr != {{ {', '.join(o.keep)} }} " if o.keep else "")
            + "masquerade"
            for o in outbound or []
            if o.endpoints
        ),
        "  }",
        # l2bridge outbound NAT sends traffic back out of the switch it came from: no
        # redirect may tell an endpoint to go around the NAT (IPv4 turns them off per
        # switch, send_redirects; IPv6 has no such setting)
        *(
            [
                "  chain out {",
                "    type filter hook output priority filter; policy accept;",
                f"    oifname {{ {nat_bridges} }} icmpv6 type nd-redirect drop",
                "  }",
            ]
            if fam.version == 6 and outbound
            else []
        ),
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        *(f"    {r}" for r in closed),
        "    ct state established,related accept",
        "    ct status dnat accept",
        *(f"    {r}" for r in fwd),
        # nothing reaches a NAT network unasked: not another network, not a routed client
        "    oifname @bridges drop",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_add_mappings(mappings: list[Mapping], fam: Family = V4) -> str:
    return "".join(
        f"add element {fam.nft} {TABLE} {s} {{ {e} }}\n" for s, e in map(_element, mappings)
    )


def render_delete_mappings(mappings: list[Mapping], fam: Family = V4) -> str:
    return "".join(
        f"delete element {fam.nft} {TABLE} {s} {{ {k} }}\n" for s, k in map(_key, mappings)
    )
