"""The host-wide nftables pieces rendered from the index: NAT and port mappings, the
default ACL table, the bridge-family MAC rewrites of l2bridge/l2tunnel, and team spreads.

Each driver contributes its part (``nat_keep``, ``has_own_acl``, ``rewrite_net``,
``tunnel_net``, ``team_state``); this module only gathers them. Per-endpoint changes do not
come through here: they are elements added to sets the tables already have.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hostnet import acl
from hostnet.drivers.base import Driver
from hostnet.drivers.external import sync_rewrites, sync_teams
from hostnet.drivers.nat import NatDriver
from hostnet.drivers.nat_rules import OutboundNat
from hostnet.index import Index
from hostnet.kernel.nft import Nft
from hostnet.model import VETH_PREFIX, Network

log = logging.getLogger("hostnet")


class Firewall:
    def __init__(
        self, index: Index, nft: Nft, nat: NatDriver, driver_of: Callable[[Network], Driver]
    ) -> None:
        self.index, self.nft, self.nat, self.driver_of = index, nft, nat, driver_of
        self._teams_rendered: list[Any] | None = None

    def sync(self) -> None:
        """Every table: NAT and mappings, the default ACL, the rewrites and the teams."""
        ix = self.index
        outbound: dict[int, list[OutboundNat]] = {4: [], 6: []}
        for n in ix.nets.values():
            keep = self.driver_of(n).nat_keep(n)
            if keep is None:
                continue
            for version, out in outbound.items():
                ips = tuple(
                    sorted(a for e in ix.endpoints_on(n) if (a := e.ip if version == 4 else e.ip6))
                )
                mine = tuple(p for p in keep if (":" in p) == (version == 6))
                out.append(OutboundNat(n.switch, ips, mine))
        self.nat.sync_firewall(
            list(ix.nets.values()), list(ix.eps.values()), outbound[4], outbound[6]
        )
        ruled = [
            e.host_ifname
            for e in ix.eps.values()
            if e.network_id in ix.nets
            and self.driver_of(ix.nets[e.network_id]).has_own_acl(e, ix.nets[e.network_id])
        ]
        self.nft.run(acl.render_default_table(VETH_PREFIX, ruled))
        self.sync_rewrites()

    def sync_rewrites(self) -> None:
        """The bridge-family MAC rewrite table of l2bridge and l2tunnel networks, and teams."""
        rewrites, tunnels = [], []
        for n in self.index.nets.values():
            drv = self.driver_of(n)
            if drv.rewrites_macs:
                eps = self.index.endpoints_on(n)
                rw, tn = drv.rewrite_net(n, eps), drv.tunnel_net(n, eps)
                rewrites += [rw] if rw is not None else []
                tunnels += [tn] if tn is not None else []
        sync_rewrites(self.nft, rewrites, tunnels)
        self._teams_rendered = self._teams()
        sync_teams(self.nft, self._teams_rendered)

    def _teams(self) -> list[Any]:
        teams = []
        for n in self.index.nets.values():
            t = self.driver_of(n).team_state(n)
            if t is not None:
                teams.append(t)
        return teams

    def check_teams(self) -> None:
        """Called every half second: re-spread when a team member went down or came back."""
        teams = self._teams()
        if teams != self._teams_rendered:
            log.info("team members now: %s", {t.key: t.live for t in teams})
            self._teams_rendered = teams
            sync_teams(self.nft, teams)
