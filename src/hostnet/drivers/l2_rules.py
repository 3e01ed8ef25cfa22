"""nftables bridge-family rules for l2bridge and l2tunnel: MAC rewrite (pure rendering).

On the wire every frame from an endpoint carries the host adapter's MAC (Ethernet
source and the ARP sender); frames to the host's MAC for an endpoint's address get
the endpoint's MAC back before the bridge looks up where to send them.
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
    endpoints: dict[str, str] = field(default_factory=dict)  # ip -> endpoint MAC
    host_ips: tuple[str, ...] = ()  # the host's own addresses on this switch
    # outbound NAT: frames to anywhere but these prefixes are handed to the host to NAT
    nat_keep: tuple[str, ...] | None = None


def _elements(items: list[str]) -> str:
    return f"\n    elements = {{ {', '.join(items)} }}" if items else ""


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
        pairs = [f"{ip} : {mac}" for ip, mac in sorted(n.endpoints.items())]
        lines += [
            f"  map ip2mac_{n.key} {{",
            f"    type ipv4_addr : ether_addr{_elements(pairs)}",
            "  }",
            f"  set epmac_{n.key} {{",
            f"    type ether_addr{_elements(macs)}",
            "  }",
        ]
        ad, hm = n.adapter, n.host_mac
        if n.host_ips:
            # An endpoint's ARP hair-pinned back to the host itself: tell the host the
            # endpoint's own MAC (it would otherwise learn its own MAC for that address).
            # The Ethernet source stays, so the switch never learns the endpoint on the adapter.
            hips = "{ " + ", ".join(sorted(n.host_ips)) + " }"
            m = f"@ip2mac_{n.key}"
            pre.append(
                f'iifname "{ad}" ether saddr {hm} arp daddr ip {hips} arp saddr ether set arp saddr ip map {m}'
            )
        if n.nat_keep is not None and n.endpoints:
            keep = "{ " + ", ".join(n.nat_keep) + " }"
            pre.append(
                # to the host's IP stack: its MAC, and "for this host" (IP drops other hosts')
                f'iifname != "{ad}" ether saddr @epmac_{n.key} ether type ip ip daddr != {keep} '
                f"ether daddr set {hm} meta pkttype set host"
            )
        pre += [
            f'iifname "{ad}" ether daddr {hm} ether type ip ether daddr set ip daddr map @ip2mac_{n.key}',
            f'iifname "{ad}" ether daddr {hm} ether type arp arp daddr ether set arp daddr ip map @ip2mac_{n.key}',
            f'iifname "{ad}" ether daddr {hm} ether type arp ether daddr set arp daddr ip map @ip2mac_{n.key}',
        ]
        post += [
            f'oifname "{ad}" ether type arp arp saddr ether @epmac_{n.key} arp saddr ether set {hm}',
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


def render_tunnels(nets: list[TunnelNet]) -> str:
    """Netdev ingress on each endpoint's host end: rewrite the source MAC, forward to the
    adapter. Nothing an endpoint sends is bridged locally; the upstream switch hair-pins it."""
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
            f"  chain out_{n.key} {{",
            f"    type filter hook ingress devices = {{ {devs} }} priority 0; policy accept;",
            f"    ether type arp arp saddr ether set {n.host_mac}",
            f"    ether saddr set {n.host_mac}",
            f'    fwd to "{n.adapter}"',
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"
