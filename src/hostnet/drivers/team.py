"""Adapter teaming for external switches (the seed's Switch Embedded Teaming) without the
bonding module: the switch has one port (a veth pair) towards the wire, and nftables in the
netdev family spreads frames from it over the live member adapters and brings frames from
every member back into it. A member that goes down leaves the spread within a second."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hostnet.kernel import datapath as dp
from hostnet.kernel.rtnl import IFF_UP

if TYPE_CHECKING:
    from hostnet.kernel.handles import HostLinks, Links

TABLE = "hostnet_team"
IFF_LOWER_UP = 0x10000


def names(net_id: str) -> tuple[str, str]:
    """(the switch's port, its uplink end) of a team."""
    return "ht" + net_id[:8], "hu" + net_id[:8]


@dataclass(frozen=True)
class Team:
    key: str
    uplink: str
    members: tuple[str, ...]
    live: tuple[str, ...]


def live_members(rt: Links, members: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for m in members:
        info = rt.link(m)
        if info and info["flags"] & IFF_UP and info["flags"] & IFF_LOWER_UP:
            out.append(m)
    return tuple(out)


def ensure(
    nl: HostLinks, bridge: str, net_id: str, members: tuple[str, ...], owner: str
) -> dict[str, object]:
    """The bridge, its team port, and members up; returns the state to keep in intent."""
    port, uplink = names(net_id)
    mac, mtu = nl.ensure_team_switch(bridge, port, uplink, members, owner)
    return {"mac": mac, "mtu": mtu, "addrs": [], "routes": [], "team": list(members)}


def remove(nl: HostLinks, bridge: str, net_id: str) -> None:
    nl.delete_link(names(net_id)[0])
    nl.delete_link(bridge)


def pieces(bridge: str, net_id: str, members: list[str]) -> list[dp.Piece]:
    """A team's datapath pieces: its port on the switch, the members and the spread."""
    port, uplink = names(net_id)
    key = net_id[:8]
    return [
        dp.port(port, bridge, "team: the switch's port towards the wire"),
        dp.link(uplink, "veth", "team: its uplink end"),
        *(dp.link(m, "*", "team member adapter") for m in members),
        dp.nft_chain("netdev", TABLE, f"up_{key}", "team: spread over live members"),
        dp.nft_chain("netdev", TABLE, f"down_{key}", "team: members' frames up"),
    ]


def render(teams: list[Team]) -> str:
    """Up: from the uplink, spread flows over the live members (or drop when none is);
    down: every member's frames go up, broadcasts only from the first live member."""
    lines = [
        f"add table netdev {TABLE}",
        f"delete table netdev {TABLE}",
        f"table netdev {TABLE} {{",
    ]
    for t in sorted(teams, key=lambda t: t.key):
        live = t.live
        lines += [
            f"  chain up_{t.key} {{",
            f'    type filter hook ingress device "{t.uplink}" priority 0; policy drop;',
        ]
        if live:
            spread = ", ".join(f'{i} : "{m}"' for i, m in enumerate(live))
            n = len(live)
            lines += [  # a flow sticks to one member: by its source and ports, either family
                f"    meta protocol {ip} {l4} dport 0-65535 "
                f"fwd to jhash {ip} saddr . {l4} sport . {l4} dport mod {n} map {{ {spread} }}"
                for ip in ("ip", "ip6")
                for l4 in ("tcp", "udp")
            ]
            lines.append(f"    fwd to jhash ether saddr . ether daddr mod {n} map {{ {spread} }}")
        members = ", ".join(f'"{m}"' for m in sorted(t.members))
        lines += [
            "  }",
            f"  chain down_{t.key} {{",
            f"    type filter hook ingress devices = {{ {members} }} priority 0; policy accept;",
        ]
        if live:
            lines.append(
                f'    iifname != "{live[0]}" ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 drop'
            )
        lines += [f'    fwd to "{t.uplink}"', "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"
