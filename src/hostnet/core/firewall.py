"""The host-wide nftables tables, gathered from what contributes to them.

A ``Table`` has a name, a place in the order and a renderer. Drivers (and policies)
contribute pieces to tables through one hook, ``firewall_pieces(table, net, eps)``, asked
for every network (a driver only for its own networks); the firewall groups the pieces by
table and has each table render all of its own at once. The tables are their owners':
the NAT table the nat driver's, the MAC-rewrite, tunnel and team tables the external
drivers', the vNICs' default ACL table every driver's (drivers/vnic.py). Per-endpoint changes do not come
through here: they are elements added to sets the tables already have.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # nothing of hostnet at run time: drivers and policies import this
    from hostnet.core.index import Index
    from hostnet.kernel.handles import NftHandle
    from hostnet.model import Endpoint, Network

log = logging.getLogger("hostnet")

# The tables' names: what contributors' pieces are asked for.
NAT = "nat"  # ip/ip6 hostnet: masquerade, port mappings, outbound NAT (nat_rules.NatPieces)
ACL = "acl"  # bridge hostnet-acl: vNICs without rules of their own (host interface names)
L2_TUNNEL = "l2-tunnel"  # netdev: l2tunnel's forced-upstream frames (l2_rules.TunnelNet)
L2_REWRITE = "l2-rewrite"  # bridge: l2bridge/l2tunnel MAC rewrites (l2_rules.RewriteNet)
TEAMS = "teams"  # netdev: spreading over adapter teams (team.Team)


@dataclass(frozen=True)
class Table:
    """A host-wide table (replaced whole): tables render in ``order``; ``render`` gets
    every piece contributed to it, in the order of the networks."""

    name: str
    order: int
    render: Callable[[NftHandle, list[Any]], None]
    #: its pieces come from the networks' endpoints (else they are asked with none)
    per_endpoint: bool = True


class Contributor(Protocol):
    """What contributes to host-wide tables: a driver (for its networks) or a policy."""

    def firewall_tables(self) -> list[Table]: ...

    def firewall_pieces(self, table: str, net: Network, eps: list[Endpoint]) -> list[Any]: ...


class Firewall:
    def __init__(
        self,
        index: Index,
        nft: NftHandle,
        drivers: Iterable[Contributor],
        driver_of: Callable[[Network], Contributor],
        policies: Sequence[Contributor] = (),
    ) -> None:
        """``drivers``: every registered driver (each brings its tables); ``driver_of``:
        the one a network's pieces are asked of; ``policies``: asked for every network."""
        self.index, self.nft, self.driver_of = index, nft, driver_of
        self.policies = list(policies)
        tables: dict[str, Table] = {}
        for c in [*drivers, *self.policies]:
            for t in c.firewall_tables():
                tables.setdefault(t.name, t)
        self.tables = sorted(tables.values(), key=lambda t: t.order)
        self._rendered: dict[str, list[Any]] = {}  # what each table last rendered

    def sync(self) -> None:
        """Every table: NAT and mappings, the default ACL, the rewrites and the teams."""
        self._render(self.tables)

    def sync_rewrites(self) -> None:
        """The bridge-family MAC rewrite table of l2bridge and l2tunnel networks, and teams."""
        self._render([t for t in self.tables if t.name in (L2_TUNNEL, L2_REWRITE, TEAMS)])

    def check_teams(self) -> None:
        """Called every half second: re-spread when a team member went down or came back."""
        table = next((t for t in self.tables if t.name == TEAMS), None)
        if table is None:
            return
        teams = self.pieces([table])[TEAMS]
        if teams != self._rendered.get(TEAMS):
            log.info("team members now: %s", {t.key: t.live for t in teams})
            self._rendered[TEAMS] = teams
            table.render(self.nft, teams)

    def pieces(self, tables: list[Table]) -> dict[str, list[Any]]:
        """Every contributor's pieces of ``tables``, grouped by table, network by network."""
        out: dict[str, list[Any]] = {t.name: [] for t in tables}
        for n in self.index.nets.values():
            contributors = [self.driver_of(n), *self.policies]
            eps = self.index.endpoints_on(n) if any(t.per_endpoint for t in tables) else []
            for t in tables:
                mine = eps if t.per_endpoint else []
                for c in contributors:
                    out[t.name] += c.firewall_pieces(t.name, n, mine)
        return out

    def _render(self, tables: list[Table]) -> None:
        grouped = self.pieces(tables)
        for t in tables:
            self._rendered[t.name] = grouped[t.name]
            t.render(self.nft, grouped[t.name])
