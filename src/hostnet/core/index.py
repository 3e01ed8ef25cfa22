"""What the service knows in memory, indexed so that no request scans the host.

Networks, compartments (containers), endpoints, the addresses each network has handed out
and the host ports in use. The store holds the same intent durably; the index is rebuilt
from it at start. Every look-up a request makes (by id, by name, a container's endpoints,
a network's endpoints, is this address or port taken) costs the same at 5,000 compartments
as at 10.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TypeVar

from hostnet.core import ports
from hostnet.errors import NotFound
from hostnet.model import Container, Endpoint, IPAddress, Network, PortMapping

T = TypeVar("T", Network, Container)


class Index:
    def __init__(
        self,
        networks: Iterable[Network] = (),
        containers: Iterable[Container] = (),
        endpoints: Iterable[Endpoint] = (),
    ) -> None:
        self.nets: dict[str, Network] = {}
        self.containers: dict[str, Container] = {}
        self.eps: dict[str, Endpoint] = {}
        self.eps_of: dict[str, dict[str, Endpoint]] = {}  # container id -> its endpoints
        self.eps_on: dict[str, dict[str, Endpoint]] = {}  # network id -> its endpoints
        self.used_ips: dict[str, set[IPAddress]] = {}  # network id -> static, both families
        self.port_index = ports.PortIndex()
        # planned endpoints not yet recorded (their container is being written): their
        # address and host ports are taken already, so a request running meanwhile plans
        # around them
        self.held: dict[str, Endpoint] = {}
        # endpoints made on their own and attached to no compartment: their claims are
        # taken as an attached one's, but nothing that reads ``eps`` (the kernel's
        # endpoints: firewall, datapath, DNS) sees them
        self.unattached: dict[str, Endpoint] = {}
        self.unattached_by_net: dict[str, dict[str, Endpoint]] = {}  # network id -> them
        self._net_names: dict[str, str] = {}
        self._container_names: dict[str, str] = {}
        for n in networks:
            self.add_network(n)
        for c in containers:
            self.add_container(c)
        for ep in endpoints:
            self.remember(ep)

    # -- networks and containers ---------------------------------------------
    def add_network(self, n: Network) -> None:
        old = self.nets.get(n.id)
        if old is not None:
            self._net_names.pop(old.name, None)
        self.nets[n.id] = n
        self._net_names[n.name] = n.id

    def drop_network(self, nid: str) -> Network | None:
        n = self.nets.pop(nid, None)
        if n is not None and self._net_names.get(n.name) == nid:
            del self._net_names[n.name]
        return n

    def add_container(self, c: Container) -> None:
        """Add a container, or replace it with a changed copy."""
        old = self.containers.get(c.id)
        if old is not None:
            self._container_names.pop(old.name, None)
        self.containers[c.id] = c
        self._container_names[c.name] = c.id

    def drop_container(self, cid: str) -> Container | None:
        c = self.containers.pop(cid, None)
        if c is not None and self._container_names.get(c.name) == cid:
            del self._container_names[c.name]
        return c

    def network_named(self, name: str) -> Network | None:
        nid = self._net_names.get(name)
        return self.nets.get(nid) if nid else None

    def container_named(self, name: str) -> Container | None:
        cid = self._container_names.get(name)
        return self.containers.get(cid) if cid else None

    def network(self, ref: str) -> Network:
        """By name, id, or an unambiguous id prefix of at least 4 characters."""
        return self._find("network", self.nets, self.network_named(ref), ref)

    def container(self, ref: str) -> Container:
        return self._find("container", self.containers, self.container_named(ref), ref)

    @staticmethod
    def _find(kind: str, table: dict[str, T], named: T | None, ref: str) -> T:
        if named is not None:
            return named
        if ref in table:
            return table[ref]
        # a prefix of an id: the only look-up that reads the table (the CLI's, not a runtime's)
        found = [o for o in table.values() if len(ref) >= 4 and o.id.startswith(ref)]
        if len(found) == 1:
            return found[0]
        raise NotFound(
            f"no {kind} named {ref!r}",
            f"list them with 'hostnet {'network ls' if kind == 'network' else 'ps'}'",
        )

    # -- endpoints, their addresses and ports ------------------------------------
    def hold(self, ep: Endpoint) -> None:
        """Take a planned endpoint's address and host ports before it is recorded."""
        self.held[ep.id] = ep
        self._take(ep)

    def unhold(self, ep: Endpoint) -> None:
        """Give back what a planned endpoint that was never recorded held."""
        if self.held.pop(ep.id, None) is not None:
            self._give_back(ep)

    def remember(self, ep: Endpoint) -> None:
        """Add an endpoint (or replace it, attached or not): its address and host ports are
        taken from now."""
        old = self.eps.get(ep.id) or self.unattached.get(ep.id)
        if old is not None:
            self.forget(old)
        if not ep.attached:
            self.unattached[ep.id] = ep
            self.unattached_by_net.setdefault(ep.network_id, {})[ep.id] = ep
            if self.held.pop(ep.id, None) is None:
                self._take(ep)
            return
        self.eps[ep.id] = ep
        self.eps_of.setdefault(ep.container_id, {})[ep.id] = ep
        self.eps_on.setdefault(ep.network_id, {})[ep.id] = ep
        if self.held.pop(ep.id, None) is None:  # a held one has them already
            self._take(ep)

    def forget(self, ep: Endpoint) -> None:
        if self.unattached.pop(ep.id, None) is not None:
            mine = self.unattached_by_net.get(ep.network_id, {})
            mine.pop(ep.id, None)
            if not mine:
                self.unattached_by_net.pop(ep.network_id, None)
            self._give_back(ep)
            return
        if self.eps.pop(ep.id, None) is None:
            self.unhold(ep)
            return
        for index, key in ((self.eps_of, ep.container_id), (self.eps_on, ep.network_id)):
            mine = index.get(key, {})
            mine.pop(ep.id, None)
            if not mine:
                index.pop(key, None)
        self._give_back(ep)

    @staticmethod
    def _addresses(ep: Endpoint) -> list[IPAddress]:
        """What an endpoint takes of its network's addresses (a DHCP lease or a SLAAC
        address is the physical network's to give: nothing)."""
        mine = ("" if ep.dhcp else ep.ip, "" if ep.slaac else ep.ip6)
        return [ipaddress.ip_address(a) for a in mine if a]

    def _take(self, ep: Endpoint) -> None:
        used = self.used_ips.setdefault(ep.network_id, set())
        used.update(self._addresses(ep))
        for p in ep.ports:
            self.port_index.add(p)

    def _give_back(self, ep: Endpoint) -> None:
        used = self.used_ips.get(ep.network_id, set())
        for a in self._addresses(ep):
            used.discard(a)
        for p in ep.ports:
            self.port_index.remove(p)

    def add_ports(self, ep: Endpoint, added: list[PortMapping]) -> None:
        ep.ports.extend(added)
        for p in added:
            self.port_index.add(p)

    def remove_ports(self, ep: Endpoint, gone: list[PortMapping]) -> None:
        ep.ports[:] = [p for p in ep.ports if p not in gone]
        for p in gone:
            self.port_index.remove(p)

    def endpoints_of(self, c: Container) -> list[Endpoint]:
        return sorted(self.eps_of.get(c.id, {}).values(), key=lambda e: e.ifname)

    def endpoints_on(self, net: Network) -> list[Endpoint]:
        """The network's attached endpoints (each has its vNIC)."""
        return list(self.eps_on.get(net.id, {}).values())

    def unattached_on(self, net: Network) -> list[Endpoint]:
        """The network's endpoints attached to no compartment (no kernel objects)."""
        return list(self.unattached_by_net.get(net.id, {}).values())

    def endpoint(self, eid: str) -> Endpoint | None:
        """An endpoint by id, attached or not."""
        return self.eps.get(eid) or self.unattached.get(eid)

    def addresses_used(self, net: Network) -> set[IPAddress]:
        return self.used_ips.get(net.id, set())

    # -- subnets -----------------------------------------------------------------
    def subnets_in_use(self) -> list[ipaddress.IPv4Network]:
        """Every network's subnet (DHCP networks have none: the DHCP server owns it)."""
        return [n.ipv4_network() for n in self.nets.values() if n.subnet]

    def carved(self, net: Network) -> list[ipaddress.IPv4Network]:
        """Prefixes of other networks inside a carvable network's prefix."""
        if not net.carvable:
            return []
        own = net.ipv4_network()
        return [
            n.ipv4_network()
            for n in self.nets.values()
            if n.id != net.id and n.subnet and n.ipv4_network().subnet_of(own)
        ]

    def may_carve(self, subnet: ipaddress.IPv4Network, n: Network) -> bool:
        """A new network may take ``subnet`` out of carvable ``n`` if none of n's addresses
        in use (its gateway, its endpoints) lie in it."""
        own = n.ipv4_network()
        if not (n.carvable and subnet.subnet_of(own) and subnet != own):
            return False
        gw = ipaddress.IPv4Address(n.gateway)
        eps = [*self.endpoints_on(n), *self.unattached_on(n)]
        in_use = [ipaddress.IPv4Address(e.ip) for e in eps if e.ip] + [gw]
        return not any(a in subnet for a in in_use)
