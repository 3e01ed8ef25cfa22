"""transparent, l2bridge and l2tunnel: containers on an external switch bound to a host adapter.

- transparent: each endpoint appears on the physical network with its own MAC.
- l2bridge: every frame from an endpoint carries the host adapter's MAC (rewrite both ways).
- l2tunnel: as l2bridge, and endpoint ports are isolated, so even two endpoints of one
  host talk only through the upstream switch (which hair-pins and applies policy).
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from typing import TYPE_CHECKING, Any, ClassVar

from hostnet.core import firewall
from hostnet.drivers import foreign, l2_rules, nat_rules, team, vnic
from hostnet.drivers.base import Driver
from hostnet.errors import Conflict, HostnetError, InvalidRequest, KernelError
from hostnet.kernel import adapters, bpf
from hostnet.kernel import datapath as dp
from hostnet.kernel.dhcp import DhcpClients
from hostnet.kernel.handles import Kernel, NftHandle
from hostnet.model import Container, Endpoint, Network, PortMapping

if TYPE_CHECKING:
    from hostnet.drivers.registry import DriverContext

SLAAC_WAIT_S = 10.0  # router solicitation, advertisement, duplicate detection (about 1 s)

SWITCH_PREFIX = "hx-"


class ExternalDriver(Driver):
    """The shared part: the external switch and the vNICs on it."""

    on_host_subnet = True
    switch_prefix = SWITCH_PREFIX
    isolate = False
    options: ClassVar[dict[str, tuple[str, str]]] = {
        "interface": ("str", "the host adapter the external switch binds to (name or alias)"),
        "switch": ("str", "an existing bridge made outside hostnet: the network's switch"),
        "networkname": ("str", "the switch name shown by 'hostnet switch ls'"),
        "dnssuffix": ("str", "DNS search suffix handed to endpoints"),
        "dnsservers": ("str", "comma list of DNS servers handed to endpoints"),
        "discovery": ("bool", "embedded DNS: containers resolve each other's names (default true)"),
        "vlanid": ("int", "802.1Q VLAN (1-4094) of every endpoint; tagged on the wire"),
    }
    later: ClassVar[dict[str, str]] = {
        "vsid": "virtual subnet ids",
        "enable_outboundnat": "outbound NAT",
        "outboundnat_exceptions": "outbound NAT exceptions",
        "macpool": "MAC pools",
    }

    def __init__(self, kernel: Kernel, owner: str, dhcp: DhcpClients) -> None:
        super().__init__(kernel, owner)
        self.dhcp = dhcp

    @classmethod
    def build(cls, ctx: DriverContext) -> Driver:
        if ctx.dhcp is None:
            raise ValueError(f"the {cls.name} driver needs DHCP clients")
        return cls(ctx.kernel, ctx.owner, ctx.dhcp)

    def normalize_options(self, given: dict[str, str]) -> dict[str, str]:
        short = {k.removeprefix("com.docker.network.windowsshim."): v for k, v in given.items()}
        for key, what in self.later.items():
            if key in short:
                raise InvalidRequest(
                    f"option {key!r} ({what}) is not supported by hostnet yet",
                    f"remove it; the {self.name} driver supports: {', '.join(sorted(self.options))}",
                )
        opts = super().normalize_options(given)
        if "vlanid" in opts and not 1 <= int(opts["vlanid"]) <= 4094:
            raise InvalidRequest(
                f"vlanid {opts['vlanid']} is out of range", "give a VLAN id from 1 to 4094"
            )
        members = [m.strip() for m in opts.get("interface", "").split(",") if m.strip()]
        if len(members) != len(set(members)):
            raise InvalidRequest(
                f"adapter list {opts['interface']!r} names one twice", "name each once"
            )
        if members:
            opts["interface"] = ",".join(members)
        return opts

    def check_network(self, net: Network, others: list[Network]) -> None:
        """Before anything changes: each adapter named (by name or alias) exists, is free,
        and is not someone else's; or the bridge of ``switch=`` can be the network's."""
        links = adapters.link_table(self.host)
        if net.options.get("interface"):
            self._resolve_adapters(net, links)
        if foreign.uses(net):
            foreign.adopt(net, others, links, self.name)
            return
        if not net.options.get("interface"):  # kept: once bound, the route is the switch's
            net.options["interface"] = self._default_adapter()
        for adapter in self.members(net):
            self._check_adapter(net, adapter, others, links)

    @staticmethod
    def _resolve_adapters(net: Network, links: list[adapters.Link]) -> None:
        """Keep the Linux names of the adapters asked for (an alias like "Ethernet" too)."""
        asked = net.options["interface"].split(",")
        names = [adapters.resolve(a, links) for a in asked]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise InvalidRequest(
                f"adapter list {net.options['interface']!r} names {', '.join(twice)} twice "
                "(by name and by alias)",
                "name each adapter once",
            )
        net.options["interface"] = ",".join(names)

    def _check_adapter(
        self, net: Network, adapter: str, others: list[Network], links: list[adapters.Link]
    ) -> None:
        state = adapters.describe(self.host, adapter)
        for other in others:
            external = other.switch.startswith(SWITCH_PREFIX) or foreign.uses(other)
            if external and adapter in (other.options.get("interface") or "").split(","):
                raise Conflict(
                    f"adapter {adapter} already carries the external network {other.name!r}",
                    "each external network needs its own adapter; choose another with "
                    "-o com.docker.network.windowsshim.interface=NAME",
                )
        if state["master"]:
            master = next((ln for ln in links if ln["index"] == state["master"]), None)
            raise adapters.in_foreign_bridge(adapter, master["name"] if master else "?")

    def adapter(self, net: Network) -> str:
        if foreign.uses(net):
            return net.options.get("interface", "")
        return net.options.get("interface") or self._default_adapter()

    def members(self, net: Network) -> tuple[str, ...]:
        return tuple(self.adapter(net).split(","))

    def uplink(self, net: Network) -> str:
        """The switch's port towards the wire: the adapter, or a team's port."""
        members = self.members(net)
        return team.names(net.id)[0] if len(members) > 1 else members[0]

    def team_state(self, net: Network) -> team.Team | None:
        members = self.members(net)
        if len(members) < 2:
            return None
        return team.Team(
            net.id[:8], team.names(net.id)[1], members, team.live_members(self.rt, members)
        )

    def _default_adapter(self) -> str:
        for idx in self.host.default_route_indexes():
            for ln in self.host.links():
                if ln["index"] == idx and not (ln["name"] or "").startswith(SWITCH_PREFIX):
                    return str(ln["name"])
        raise InvalidRequest(
            "the host has no default route to pick an adapter from",
            "name one with -o com.docker.network.windowsshim.interface=NAME",
        )

    def ensure_network(self, net: Network) -> None:
        if foreign.uses(net):
            net.adapter_state = foreign.ensure(self.host, net)
            return
        if len(self.members(net)) > 1:
            net.adapter_state = team.ensure(
                self.host, net.switch, net.id, self.members(net), self.owner
            )
            return
        saved = net.adapter_state or None
        moved = adapters.bind(self.host, net.switch, self.adapter(net), self.owner, saved)
        if not net.adapter_state:
            net.adapter_state = moved

    def remove_network(self, net: Network) -> None:
        if foreign.uses(net):
            return  # the bridge is not hostnet's: its vNICs are gone, the rest stays
        if len(self.members(net)) > 1:
            team.remove(self.host, net.switch, net.id)
            return
        adapters.release(self.host, net.switch, self.adapter(net), net.adapter_state)

    def attach(self, net: Network, ep: Endpoint, c: Container, default_route: bool) -> None:
        vnic.plug(
            self.kernel,
            net,
            ep,
            c,
            default_route=default_route,
            mtu=int(net.adapter_state.get("mtu") or 1500),
            owner=self.owner,
            isolated=self.isolate,
        )
        if net.options.get("vlanid"):
            bpf.tag_port(self.host, ep.host_ifname, int(net.options["vlanid"]))
        if ep.dhcp:
            self._lease(ep, c)
        if ep.slaac:
            self._autoconf(ep, c)
        if ep.bandwidth:
            vnic.limit(self.kernel, ep, c)
        self.apply_acl(ep, net)

    def _lease(self, ep: Endpoint, c: Container) -> None:
        """Obtain (or keep) the endpoint's lease from the external DHCP server."""
        path = c.netns if c.netns.startswith("/") else f"/run/netns/{c.netns}"
        lease = self.dhcp.start(ep.id, path, ep.ifname)
        ep.ip, ep.prefix_len, ep.gateway = lease["ip"], int(lease["mask"]), lease["router"]
        ep.dns = {}
        if lease.get("dns"):
            ep.dns["nameservers"] = lease["dns"].split()
        if lease.get("domain"):
            ep.dns["search"] = [lease["domain"]]

    def _autoconf(self, ep: Endpoint, c: Container, timeout: float = SLAAC_WAIT_S) -> None:
        """Wait (letting other requests run) for the vNIC's address from the physical
        network's router advertisements, past duplicate detection."""
        deadline = time.monotonic() + timeout
        with self.dhcp.idle():
            while True:
                with self.kernel.netlink_inside(c.netns) as inside:
                    got = inside.autoconf_ipv6(ep.ifname)
                if got is not None:
                    break
                if time.monotonic() > deadline:
                    raise KernelError(
                        f"no IPv6 address from router advertisements on {ep.ifname} within "
                        f"{timeout:.0f} s",
                        "check that a router advertises a prefix on the adapter's network "
                        "(radvd, dnsmasq --enable-ra), or give the network an IPv6 --subnet "
                        "and --ip6 for static addresses",
                    )
                time.sleep(0.1)
        ep.ip6, ep.prefix_len6, ep.gateway6 = got

    def detach(self, net: Network, ep: Endpoint, c: Container) -> None:
        if ep.dhcp:  # release the lease first, while the vNIC still reaches the server
            self.dhcp.stop(ep.id)
        self.remove_acl(ep, net)

    def add_ports(self, ep: Endpoint, added: list[PortMapping]) -> None:
        raise InvalidRequest(
            f"the {self.name} driver publishes no ports",
            "endpoints are reachable at their own address; remove -p",
        )

    def remove_ports(self, ep: Endpoint, removed: list[PortMapping]) -> None:
        return None

    def endpoint_present(self, net: Network, ep: Endpoint) -> bool:
        """Its vNIC on the switch and, on a VLAN, both tagging programs on it."""
        if not vnic.present(self.rt, net, ep):
            return False
        return not net.options.get("vlanid") or dp.tagged(self.host, ep.host_ifname)

    def rewrite_net(self, net: Network, eps: list[Endpoint]) -> l2_rules.RewriteNet | None:
        if not self.rewrites_macs:
            return None
        addrs = net.adapter_state.get("addrs", [])
        host_ips = tuple(str(a[0]) for a in addrs)
        static = [e for e in eps if not e.dhcp]
        return l2_rules.RewriteNet(
            net.id[:8],
            self.uplink(net),
            str(net.adapter_state.get("mac")),
            {ip: e.mac for e in static for ip in (e.ip, e.ip6) if ip},
            host_ips,
            self.nat_keep(net),
        )

    def nat_keep(self, net: Network) -> tuple[str, ...] | None:
        return None

    def tunnel_net(self, net: Network, eps: list[Endpoint]) -> l2_rules.TunnelNet | None:
        if not self.isolate:
            return None
        return l2_rules.TunnelNet(
            net.id[:8],
            self.uplink(net),
            str(net.adapter_state.get("mac")),
            tuple(e.host_ifname for e in eps),
            tuple(e.mac for e in eps),
        )

    def firewall_tables(self) -> list[firewall.Table]:
        return [*super().firewall_tables(), TUNNEL_TABLE, REWRITE_TABLE, TEAM_TABLE]

    def firewall_pieces(self, table: str, net: Network, eps: list[Endpoint]) -> list[Any]:
        """Outbound NAT (l2bridge's, in the NAT table), the MAC rewrites and forced-upstream
        frames of its endpoints, and its adapter team."""
        piece: Any = None
        if table == firewall.NAT:
            return outbound_pieces(net, eps, self.nat_keep(net))
        if table == firewall.L2_REWRITE:
            piece = self.rewrite_net(net, eps)
        elif table == firewall.L2_TUNNEL:
            piece = self.tunnel_net(net, eps)
        elif table == firewall.TEAMS:
            piece = self.team_state(net)
        else:
            return super().firewall_pieces(table, net, eps)
        return [] if piece is None else [piece]

    def datapath(self, net: Network, eps: list[Endpoint]) -> list[dp.Piece]:
        out = super().datapath(net, eps)
        if foreign.uses(net):
            out[0] = dp.link(net.switch, "bridge", "the switch (made outside hostnet)")
        out[1:1] = self._uplink_pieces(net)
        key = net.id[:8]
        if self.rewrites_macs:
            t, fam = l2_rules.TABLE, l2_rules.FAMILY
            out += [
                dp.nft_set(fam, t, f"ip2mac_{key}", "MAC rewrite: endpoint IPv4 -> MAC"),
                dp.nft_set(fam, t, f"ip6mac_{key}", "MAC rewrite: endpoint IPv6 -> MAC"),
                dp.nft_set(fam, t, f"epmac_{key}", "MAC rewrite: endpoint MACs"),
                dp.nft_chain(fam, t, "prerouting", "MAC rewrite: frames in from the adapter"),
                dp.nft_chain(fam, t, "postrouting", "MAC rewrite: frames out to the adapter"),
            ]
        if self.isolate and eps:
            out.append(
                dp.nft_chain("netdev", l2_rules.NETDEV_TABLE, f"out_{key}", "l2tunnel: to the wire")
            )
        if net.options.get("vlanid"):
            vid = net.options["vlanid"]
            for ep in eps:
                out += [
                    dp.bpf(ep.host_ifname, "ingress", bpf.VLAN_PUSH, f"VLAN {vid}: tag frames out"),
                    dp.bpf(ep.host_ifname, "egress", bpf.VLAN_POP, f"VLAN {vid}: untag frames in"),
                ]
        return out

    def _uplink_pieces(self, net: Network) -> list[dp.Piece]:
        """The adapter as the switch's port, or a team: its port, members and spread."""
        members = [m for m in self.members(net) if m]
        if len(members) < 2:
            return [dp.port(m, net.switch, "adapter (the uplink)") for m in members]
        return team.pieces(net.switch, net.id, members)

    def switch_view(self, net: Network) -> dict[str, Any]:
        return {
            "Type": "External",
            "Adapter": self.adapter(net),
            "Kernel": net.switch,
            "VLAN": net.options.get("vlanid", ""),
            "Origin": "out of band (-o switch=)" if foreign.uses(net) else "hostnet",
        }


class TransparentDriver(ExternalDriver):
    """Endpoints directly on the physical network, each with its own MAC."""

    name = "transparent"
    dhcp_without_subnet = True


class L2BridgeDriver(ExternalDriver):
    """Endpoints behind the host adapter's MAC on the wire; optionally NATed outbound."""

    name = "l2bridge"
    rewrites_macs = True
    options: ClassVar[dict[str, tuple[str, str]]] = {
        **ExternalDriver.options,
        "enable_outboundnat": ("bool", "NAT endpoints' outbound traffic to the host's address"),
        "outboundnat_exceptions": ("str", "comma list of prefixes reached without NAT"),
    }
    later: ClassVar[dict[str, str]] = {"vsid": "virtual subnet ids", "macpool": "MAC pools"}

    def normalize_options(self, given: dict[str, str]) -> dict[str, str]:
        opts = super().normalize_options(given)
        for prefix in filter(None, opts.get("outboundnat_exceptions", "").split(",")):
            try:
                ipaddress.ip_network(prefix.strip(), strict=True)
            except ValueError as exc:
                raise InvalidRequest(
                    f"outboundnat_exceptions: {prefix.strip()!r} is not a prefix ({exc})",
                    "give comma-separated prefixes of either family, e.g. "
                    "10.0.0.0/8,192.0.2.7/32,2001:db8:5::/48",
                ) from None
        return opts

    def nat_keep(self, net: Network) -> tuple[str, ...] | None:
        """Prefixes reached without NAT (the subnet and the exceptions); None when off."""
        if not net.flag("enable_outboundnat"):
            return None
        extra = [
            p.strip() for p in net.options.get("outboundnat_exceptions", "").split(",") if p.strip()
        ]
        return (*(s for s in (net.subnet, net.subnet6) if s), *extra)

    def ensure_network(self, net: Network) -> None:
        super().ensure_network(net)
        if net.flag("enable_outboundnat"):
            self.kernel.sysctl("net/ipv4/ip_forward", "1")
            # the host hands NATed traffic back out of the same switch: no redirects
            # (IPv6's are dropped in the ip6 table: it has no such setting)
            self.kernel.sysctl(f"net/ipv4/conf/{net.switch}/send_redirects", "0")
            if net.subnet6:
                self.kernel.ipv6_forwarding()


class L2TunnelDriver(ExternalDriver):
    """As l2bridge, and every frame goes through the upstream switch (isolated ports)."""

    name = "l2tunnel"
    rewrites_macs = True
    isolate = True


def outbound_pieces(
    net: Network, eps: list[Endpoint], keep: tuple[str, ...] | None
) -> list[nat_rules.NatPieces]:
    """The network's outbound NAT (``keep``: the prefixes reached without it; None: off) in
    each family's NAT table: its endpoints' addresses leave with the host's."""
    if keep is None:
        return []
    out = []
    for version in (4, 6):
        ips = tuple(sorted(a for e in eps if (a := e.ip if version == 4 else e.ip6)))
        mine = tuple(p for p in keep if (":" in p) == (version == 6))
        out.append(
            nat_rules.NatPieces(version, outbound=(nat_rules.OutboundNat(net.switch, ips, mine),))
        )
    return out


def sync_teams(nft: NftHandle, teams: list[team.Team]) -> None:
    if teams:
        nft.run(team.render(teams))
        return
    with contextlib.suppress(HostnetError):
        nft.run(f"add table netdev {team.TABLE}\ndelete table netdev {team.TABLE}\n")


def sync_tunnels(nft: NftHandle, tunnels: list[l2_rules.TunnelNet]) -> None:
    """Replace hostnet's netdev table of l2tunnel networks (drop it when empty)."""
    if any(t.devices for t in tunnels):
        nft.run(l2_rules.render_tunnels(tunnels))
        return
    with contextlib.suppress(HostnetError):
        nft.run(
            f"add table netdev {l2_rules.NETDEV_TABLE}\ndelete table netdev {l2_rules.NETDEV_TABLE}\n"
        )


def sync_rewrites(nft: NftHandle, nets: list[l2_rules.RewriteNet]) -> None:
    """Replace hostnet's bridge-family MAC rewrite table (drop it when empty)."""
    if nets:
        nft.run(l2_rules.render_table(nets))
        return
    with contextlib.suppress(HostnetError):
        nft.run(
            f"add table {l2_rules.FAMILY} {l2_rules.TABLE}\ndelete table {l2_rules.FAMILY} {l2_rules.TABLE}\n"
        )


TUNNEL_TABLE = firewall.Table(firewall.L2_TUNNEL, 30, sync_tunnels)
REWRITE_TABLE = firewall.Table(firewall.L2_REWRITE, 31, sync_rewrites)
TEAM_TABLE = firewall.Table(firewall.TEAMS, 40, sync_teams, per_endpoint=False)
