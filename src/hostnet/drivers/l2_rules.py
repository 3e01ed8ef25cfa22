"""nftables bridge-family rules for l2bridge and l2tunnel: MAC rewrite (pure rendering).

On the wire every frame from an endpoint carries the host adapter's MAC (Ethernet
source, the ARP sender, and in IPv6 the link-layer address options of neighbour and
router solicitations and neighbour advertisements); frames to the host's MAC for an
endpoint's address (either family) get the endpoint's MAC back before the bridge looks
up where to send them.

The ICMPv6 checksum covers the link-layer option, and nftables does not recompute it for
a raw payload write. The rewrite keeps the ones' complement sum unchanged instead: it
also writes a 16-bit word of the message's reserved field (zero when sent, ignored by
receivers, RFC 4861) with ``nd_fix(endpoint MAC, host MAC)``, a constant per endpoint
looked up from a map, so the checksum stays valid without touching it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TABLE = "hostnet"
FAMILY = "bridge"


@dataclass(frozen=True)
class RewriteNet:
    """One external switch whose endpoints hide behind the adapter's MAC."""

    key: str  # short, unique: names the network's sets and maps
    adapter: str
    host_mac: str
    endpoints: dict[str, str] = field(default_factory=dict)  # ip (either family) -> its MAC
    host_ips: tuple[str, ...] = ()  # the host's own addresses on this switch (either family)
    # outbound NAT: frames to anywhere but these prefixes are handed to the host to NAT
    nat_keep: tuple[str, ...] | None = None


def _elements(items: list[str]) -> str:
    return f"\n    elements = {{ {', '.join(items)} }}" if items else ""


def _words(mac: str) -> int:
    """The ones' complement sum of a MAC's three 16-bit words."""
    b = bytes.fromhex(mac.replace(":", ""))
    total = sum(int.from_bytes(b[i : i + 2], "big") for i in (0, 2, 4))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def nd_fix(endpoint_mac: str, host_mac: str) -> int:
    """The reserved word that keeps an ICMPv6 checksum valid when the endpoint's MAC in a
    link-layer option is replaced by the host's: endpoint - host, in ones' complement."""
    total = _words(endpoint_mac) + (~_words(host_mac) & 0xFFFF)
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


# ICMPv6 type, bit offset of its first option's type byte: the option's MAC follows 16 bits
# later; the checksum-keeping word is the reserved field's second half (bits 48-63)
ND_OPTIONS = (
    ("nd-router-solicit", 64, 1),
    ("nd-neighbor-solicit", 192, 1),
    ("nd-neighbor-advert", 192, 2),
)


def _ndfix_map(key: str, macs: list[str], host_mac: str) -> list[str]:
    fixes = [f"{mac} : {nd_fix(mac, host_mac)}" for mac in macs]
    return [
        f"  map ndfix_{key} {{",
        f"    typeof ether saddr : icmpv6 checksum{_elements(fixes)}",
        "  }",
    ]


def _nd_rewrites(match: str, key: str, host_mac: str) -> list[str]:
    """The host's MAC into the link-layer option of each ND message an endpoint sends
    (``match`` selects its frames), the checksum kept by the reserved word."""
    hm_hex = "0x" + host_mac.replace(":", "")
    return [
        f"{match}icmpv6 type {kind} @th,{opt},8 {otype} "
        f"@th,48,16 set ether saddr map @ndfix_{key} @th,{opt + 16},48 set {hm_hex}"
        for kind, opt, otype in ND_OPTIONS
    ]


def _to_the_host(n: RewriteNet) -> tuple[list[str], list[str]]:
    """An endpoint's ARP reply or neighbour advertisement hair-pinned back to the host itself
    (l2tunnel): tell the host the endpoint's own MAC (it would otherwise learn its own MAC for
    that address). The Ethernet source stays, so the switch never learns the endpoint on the
    adapter. Returns the rules and the elements of the NA's map (address -> raw MAC)."""
    ad, hm = n.adapter, n.host_mac
    v4 = sorted(ip for ip in n.host_ips if ":" not in ip)
    v6 = sorted(ip for ip in n.host_ips if ":" in ip)
    rules = []
    if v4:
        rules.append(
            f'iifname "{ad}" ether saddr {hm} arp daddr ip {{ {", ".join(v4)} }} '
            f"arp saddr ether set arp saddr ip map @ip2mac_{n.key}"
        )
    pairs = [
        f"{ip} : 0x{mac.replace(':', '')}" for ip, mac in sorted(n.endpoints.items()) if ":" in ip
    ]
    if v6 and pairs:
        # the target option back to the endpoint's MAC and the reserved word back to zero:
        # the checksum is the one the endpoint computed (the map first: no match, no change)
        rules.append(
            f'iifname "{ad}" ether saddr {hm} ip6 daddr {{ {", ".join([*v6, "fe80::/10"])} }} '
            "icmpv6 type nd-neighbor-advert @th,192,8 2 "
            f"@th,208,48 set ip6 saddr map @nd6mac_{n.key} @th,48,16 set 0"
        )
    return rules, pairs if v6 else []


def render_table(nets: list[RewriteNet]) -> str:
    """The whole table, replacing any previous one in one transaction."""
    lines = [
        f"add table {FAMILY} {TABLE}",
        f"delete table {FAMILY} {TABLE}",
        f"table {FAMILY} {TABLE} {{",
    ]
    pre: list[str] = []
    post: list[str] = []
    for n in sorted(nets, key=lambda n: n.key):
        macs = sorted(set(n.endpoints.values()))
        pairs = [f"{ip} : {mac}" for ip, mac in sorted(n.endpoints.items()) if ":" not in ip]
        pairs6 = [f"{ip} : {mac}" for ip, mac in sorted(n.endpoints.items()) if ":" in ip]
        lines += [
            f"  map ip2mac_{n.key} {{",
            f"    type ipv4_addr : ether_addr{_elements(pairs)}",
            "  }",
            f"  map ip6mac_{n.key} {{",
            f"    type ipv6_addr : ether_addr{_elements(pairs6)}",
            "  }",
            f"  set epmac_{n.key} {{",
            f"    type ether_addr{_elements(macs)}",
            "  }",
            *_ndfix_map(n.key, macs, n.host_mac),
        ]
        ad, hm = n.adapter, n.host_mac
        restores, pairs_na = _to_the_host(n)
        pre += restores
        if pairs_na:
            lines += [
                f"  map nd6mac_{n.key} {{",
                f"    typeof ip6 saddr : @th,208,48{_elements(pairs_na)}",
                "  }",
            ]
        if n.nat_keep is not None and n.endpoints:
            # to the host's IP stack: its MAC, and "for this host" (IP drops other hosts');
            # in IPv6 never link-local or multicast (neighbour discovery stays on the wire)
            keep4 = [p for p in n.nat_keep if ":" not in p]
            keep6 = [p for p in n.nat_keep if ":" in p] + ["fe80::/10", "ff00::/8"]
            for fam, keep in (("ip", keep4), ("ip6", keep6)):
                if fam == "ip6" and not pairs6:
                    continue
                match = f"{fam} daddr != {{ {', '.join(keep)} }} " if keep else ""
                pre.append(
                    f'iifname != "{ad}" ether saddr @epmac_{n.key} ether type {fam} {match}'
                    f"ether daddr set {hm} meta pkttype set host"
                )
        pre += [
            f'iifname "{ad}" ether daddr {hm} ether type ip ether daddr set ip daddr map @ip2mac_{n.key}',
            f'iifname "{ad}" ether daddr {hm} ether type ip6 ether daddr set ip6 daddr map @ip6mac_{n.key}',
            f'iifname "{ad}" ether daddr {hm} ether type arp arp daddr ether set arp daddr ip map @ip2mac_{n.key}',
            f'iifname "{ad}" ether daddr {hm} ether type arp ether daddr set arp daddr ip map @ip2mac_{n.key}',
        ]
        post += [
            f'oifname "{ad}" ether type arp arp saddr ether @epmac_{n.key} arp saddr ether set {hm}',
            *_nd_rewrites(f'oifname "{ad}" ether saddr @epmac_{n.key} ', n.key, hm),
            f'oifname "{ad}" ether saddr @epmac_{n.key} ether saddr set {hm}',
        ]
    lines += [
        "  chain prerouting {",
        "    type filter hook prerouting priority -300; policy accept;",
        *(f"    {r}" for r in pre),
        "  }",
        "  chain postrouting {",
        "    type filter hook postrouting priority 300; policy accept;",
        *(f"    {r}" for r in post),
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


NETDEV_TABLE = "hostnet"


@dataclass(frozen=True)
class TunnelNet:
    """An l2tunnel switch: every frame its endpoints send goes straight out of the adapter."""

    key: str
    adapter: str
    host_mac: str
    devices: tuple[str, ...]  # the host ends of the endpoints' veths
    macs: tuple[str, ...] = ()  # the endpoints' MACs (their ND options are rewritten)


def render_tunnels(nets: list[TunnelNet]) -> str:
    """Netdev ingress on each endpoint's host end: rewrite the source MAC (and the ARP
    sender, and the link-layer option of IPv6 neighbour and router discovery, as the bridge
    table does for l2bridge: these frames never pass the bridge), forward to the adapter.
    Nothing an endpoint sends is bridged locally; the upstream switch hair-pins it."""
    lines = [
        f"add table netdev {NETDEV_TABLE}",
        f"delete table netdev {NETDEV_TABLE}",
        f"table netdev {NETDEV_TABLE} {{",
    ]
    for n in sorted(nets, key=lambda n: n.key):
        if not n.devices:
            continue
        devs = ", ".join(f'"{d}"' for d in sorted(n.devices))
        lines += [
            *_ndfix_map(n.key, sorted(set(n.macs)), n.host_mac),
            f"  chain out_{n.key} {{",
            f"    type filter hook ingress devices = {{ {devs} }} priority 0; policy accept;",
            f"    ether type arp arp saddr ether set {n.host_mac}",
            # before the source MAC changes: the map is keyed on the endpoint's own
            *(f"    {r}" for r in _nd_rewrites("", n.key, n.host_mac)),
            f"    ether saddr set {n.host_mac}",
            f'    fwd to "{n.adapter}"',
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"
