"""The nat driver: an internal bridge, outbound masquerade, port mappings (WinNAT)."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from hostnet.core import firewall
from hostnet.core.loopback import Relay
from hostnet.drivers import nat_rules, vnic
from hostnet.drivers.base import Driver
from hostnet.errors import KernelError
from hostnet.kernel import datapath as dp
from hostnet.kernel.handles import Kernel, NftHandle
from hostnet.model import Container, Endpoint, Network, PortMapping, switch_mac

DEFAULT_MTU = 1500
log = logging.getLogger("hostnet")


class NatDriver(Driver):
    """Containers on a private subnet behind the host, reachable through mapped ports."""

    name = "nat"
    publishes_ports = True
    realizes_unlocked = True
    options: ClassVar[dict[str, tuple[str, str]]] = {
        "disableicc": ("bool", "block traffic between containers of this network"),
        "networkname": ("str", "the name of the switch shown by 'hostnet switch ls'"),
        "mtu": ("int", "MTU of the bridge and the container vNICs"),
        "dnssuffix": ("str", "DNS search suffix handed to endpoints"),
        "dnsservers": ("str", "comma list of DNS servers handed to endpoints"),
        "discovery": ("bool", "embedded DNS: containers resolve each other's names (default true)"),
    }
    aliases: ClassVar[dict[str, str]] = {
        "com.docker.network.driver.mtu": "mtu",
    }

    def __init__(self, kernel: Kernel, owner: str) -> None:
        super().__init__(kernel, owner)
        self._forwarding = False
        self._forwarding6 = False

    def _mtu(self, net: Network) -> int:
        return int(net.options.get("mtu", DEFAULT_MTU))

    def ensure_network(self, net: Network) -> None:
        mac = switch_mac(net.id, self.owner)
        idx = self.host.ensure_bridge(net.switch, self._mtu(net), self.owner, mac)
        if net.subnet:
            self.host.ensure_addr(idx, net.gateway, net.ipv4_network().prefixlen)
            # 127.0.0.1:PORT -> container needs loopback sources routable on the bridge.
            self.kernel.sysctl(f"net/ipv4/conf/{net.switch}/route_localnet", "1")
            if not self._forwarding:
                self.kernel.sysctl("net/ipv4/ip_forward", "1")
                self._forwarding = True
        if net.subnet6:
            self.host.ensure_addr(idx, net.gateway6, net.ipv6_network().prefixlen, nodad=True)
            if not self._forwarding6:
                self.kernel.ipv6_forwarding()
                self._forwarding6 = True

    def remove_network(self, net: Network) -> None:
        self.host.delete_link(net.switch)

    def attach(self, net: Network, ep: Endpoint, c: Container, default_route: bool) -> None:
        created = vnic.plug(
            self.kernel,
            net,
            ep,
            c,
            default_route=default_route,
            mtu=self._mtu(net),
            owner=self.owner,
            isolated=net.flag("disableicc"),
        )
        if ep.bandwidth:
            vnic.limit(self.kernel, ep, c)
        added = _add_mappings(ep, ep.ports) if ep.ports and created else ""
        self.apply_acl(ep, net, added)
        if self.loopback is not None and ep.ports:
            self.loopback.open(relays(ep, ep.ports))

    def detach(self, net: Network, ep: Endpoint, c: Container) -> None:
        """Unmap the ports and remove the endpoint's ACL chain."""
        if ep.ports:
            try:
                self.nft.run(_delete_mappings(ep, ep.ports))
            except KernelError as exc:
                # already gone (a flushed ruleset); reconcile re-renders the table anyway
                log.info("unmapping ports of %s: %s", ep.host_ifname, exc)
            if self.loopback is not None:
                self.loopback.close(relays(ep, ep.ports))
        self.remove_acl(ep, net)

    def add_ports(self, ep: Endpoint, added: list[PortMapping]) -> None:
        self.nft.run(_add_mappings(ep, added))
        if self.loopback is not None:
            self.loopback.open(relays(ep, added))

    def remove_ports(self, ep: Endpoint, removed: list[PortMapping]) -> None:
        self.nft.run(_delete_mappings(ep, removed))
        if self.loopback is not None:
            self.loopback.close(relays(ep, removed))

    def endpoint_present(self, net: Network, ep: Endpoint) -> bool:
        return vnic.present(self.rt, net, ep)

    def firewall_tables(self) -> list[firewall.Table]:
        return [*super().firewall_tables(), firewall.Table(firewall.NAT, 10, self._sync_nat)]

    def firewall_pieces(self, table: str, net: Network, eps: list[Endpoint]) -> list[Any]:
        """In each family's NAT table: the switch and its subnet, the endpoints' port
        mappings (and IPv6's, the relays of [::1])."""
        if table != firewall.NAT:
            return super().firewall_pieces(table, net, eps)
        out = []
        for version, subnet, gateway in (
            (4, net.subnet, net.gateway),
            (6, net.subnet6, net.gateway6),
        ):
            nets = (nat_rules.NatNet(net.switch, subnet, gateway, net.internal),) if subnet else ()
            maps = tuple(m for ep in eps for m in mappings(ep, ep.ports, version))
            more = tuple(r for ep in eps for r in relays(ep, ep.ports)) if version == 6 else ()
            out.append(nat_rules.NatPieces(version, nets, maps, relays=more))
        return out

    def _sync_nat(self, nft: NftHandle, pieces: list[nat_rules.NatPieces]) -> None:
        """Replace hostnet's whole nftables tables (IPv4 and IPv6) with what intent says,
        atomically; the [::1] relays follow."""
        nft.run(nat_rules.render_tables(pieces))
        if self.loopback is not None:
            self.loopback.sync([r for p in pieces for r in p.relays])

    def datapath(self, net: Network, eps: list[Endpoint]) -> list[dp.Piece]:
        out = super().datapath(net, eps)
        for fam, subnet in (("ip", net.subnet), ("ip6", net.subnet6)):
            if not subnet:
                continue
            t = nat_rules.TABLE
            out += [
                dp.nft_element(fam, t, "bridges", net.switch, "NAT: the switch is a NAT switch"),
                dp.nft_chain(fam, t, "postrouting", "NAT: outbound masquerade"),
                dp.nft_chain(fam, t, "portmap", "NAT: port mappings (DNAT)"),
                dp.nft_set(fam, t, "pm_any", "NAT: mappings on every host address"),
                dp.nft_set(fam, t, "pm_ip", "NAT: mappings on one host address"),
                dp.nft_chain(fam, t, "forward", "NAT: nothing reaches the network unasked"),
            ]
        return out

    def switch_view(self, net: Network) -> dict[str, Any]:
        return {"Type": "Internal", "Adapter": "", "Kernel": net.switch}


def mappings(ep: Endpoint, ports: list[PortMapping], version: int) -> list[nat_rules.Mapping]:
    """The ports that one family's table forwards to ``ep``: published on every address or
    on that family's, to the endpoint's address of that family (if it has one)."""
    to = ep.ip if version == 4 else ep.ip6
    if not to:
        return []
    return [nat_rules.Mapping(p, to) for p in ports if p.family in (0, version)]


def relays(ep: Endpoint, ports: list[PortMapping]) -> list[Relay]:
    """What [::1] needs relayed in user space (the kernel does not route ::1 off the host):
    an IPv6 endpoint's mappings on every address, every IPv6 address, or ::1."""
    if not ep.ip6:
        return []
    return [
        Relay(p.protocol, p.host_port, ep.ip6, p.container_port)
        for p in ports
        if p.family in (0, 6) and (p.any_address or p.host_ip == "::1")
    ]


def _add_mappings(ep: Endpoint, ports: list[PortMapping]) -> str:
    return nat_rules.render_add_mappings(mappings(ep, ports, 4)) + nat_rules.render_add_mappings(
        mappings(ep, ports, 6), nat_rules.V6
    )


def _delete_mappings(ep: Endpoint, ports: list[PortMapping]) -> str:
    return nat_rules.render_delete_mappings(
        mappings(ep, ports, 4)
    ) + nat_rules.render_delete_mappings(mappings(ep, ports, 6), nat_rules.V6)
