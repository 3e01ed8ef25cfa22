"""HostNetworkingService: the one place that decides order.

validate -> record intent -> realize in the kernel -> commit; a failure undoes
what was done, in reverse. Every adapter (REST, CLI, later Docker and CNI) is a
thin layer over this class.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from hostnet import acl, ipam, ports
from hostnet.cluster import ClusterOps
from hostnet.containers import VETH_PREFIX, ContainerOps
from hostnet.dhcp import DhcpClients
from hostnet.dns import names
from hostnet.dns.resolver import Resolver
from hostnet.drivers.base import Driver
from hostnet.drivers.external import (
    L2BridgeDriver,
    L2TunnelDriver,
    TransparentDriver,
    sync_rewrites,
    sync_teams,
)
from hostnet.drivers.nat import NatDriver
from hostnet.drivers.nat_rules import OutboundNat
from hostnet.drivers.overlay import OverlayDriver
from hostnet.errors import Conflict, HostnetError, InvalidRequest, NotFound
from hostnet.kernel.handles import Kernel
from hostnet.model import (
    Container,
    Endpoint,
    Network,
    check_name,
    new_id,
    parse_ip,
    parse_subnet,
)
from hostnet.store import Store

log = logging.getLogger("hostnet")

FUTURE_DRIVERS: tuple[str, ...] = ()
BRIDGE_PREFIX = "hn-"


class Lock(Protocol):
    """What the service needs of its lock (threading.Lock, or the daemon's FairLock)."""

    def acquire(self) -> bool: ...
    def release(self) -> None: ...


class HostNetworkingService(ClusterOps, ContainerOps):
    """Networks, compartments and endpoints: intent in the store, state in the kernel."""

    def __init__(
        self,
        store: Store,
        instance: str,
        state_dir: str,
        lock: Lock | None = None,
        kernel: Kernel | None = None,
    ) -> None:
        #: held by every request (the daemon's ServiceExecutor takes it); a request that
        #: waits for something slow (a DHCP lease) lets go of it meanwhile: ``released``
        self.lock = lock or threading.Lock()
        self.store = store
        self.instance = instance
        self.state_dir = state_dir
        self.ns_prefix = f"hn{instance}-"
        self.kernel = kernel or Kernel.real()  # unit tests hand in a fake
        self.host, self.nft, self.rt = self.kernel.host, self.kernel.nft, self.kernel.rt
        self.owner = f"hostnet:{instance}"
        self.nat = NatDriver(self.kernel, self.owner)
        ext = (TransparentDriver, L2BridgeDriver, L2TunnelDriver)
        self.dhcp = DhcpClients(state_dir, idle=self.released)
        external = [d(self.kernel, self.owner, self.dhcp) for d in ext]
        self.overlay = OverlayDriver(self.kernel, self.owner)
        self.drivers: dict[str, Driver] = {d.name: d for d in (self.nat, *external, self.overlay)}
        self.host_id = ""
        self.remote: dict[str, Endpoint] = {}
        self.cluster_ips: dict[str, set[ipaddress.IPv4Address]] = {}
        self._tunnels: dict[str, set[tuple[str, str, str]]] = {}
        self.nets: dict[str, Network] = {n.id: n for n in store.networks()}
        self.containers: dict[str, Container] = {c.id: c for c in store.containers()}
        self.eps: dict[str, Endpoint] = {}
        self.eps_of: dict[str, dict[str, Endpoint]] = {}  # container id -> its endpoints
        self.eps_on: dict[str, dict[str, Endpoint]] = {}  # network id -> its endpoints
        self.port_index = ports.PortIndex()
        self.used_ips: dict[str, set[ipaddress.IPv4Address]] = {}
        for ep in store.endpoints():
            self._remember(ep)
        self.on_container_started: Callable[[Container], None] = lambda c: None
        self.resolver: Resolver | None = None  # the daemon's embedded DNS, when it serves one
        self.dns = names.Directory()

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Let other requests run while this one waits (it holds the service lock); what it
        planned is recorded, and it checks that it still stands when it goes on."""
        try:
            self.lock.release()
        except RuntimeError:  # not held: a caller outside the daemon's executor
            yield
            return
        try:
            yield
        finally:
            self.lock.acquire()

    def _sync_dns(self) -> None:
        """Rebuild the name directory whole and serve exactly the compartments that have a
        scope (start, reconcile, cluster re-list); attach and detach change it in place."""
        others = [e for e in self.remote.values() if e.id not in self.eps]
        self.dns = names.build(self.nets, self.containers, [*self.eps.values(), *others])
        r = self.resolver
        if r is None:
            return
        for cid in r.serving() - set(self.dns.scopes):
            r.close(cid)
        for cid in set(self.dns.scopes) - r.serving():
            self._serve_dns(self.containers[cid])
        r.publish(self.dns)

    def _serve_dns(self, c: Container) -> None:
        assert self.resolver is not None
        try:
            self.resolver.listen(c.id, c.netns)
        except (OSError, HostnetError) as exc:
            log.warning("no embedded DNS for %s: %s", c.name, exc)

    def _dns_names(self, ep: Endpoint, present: bool) -> None:
        """One endpoint's names into (or out of) the directory."""
        net = self.nets.get(ep.network_id)
        if net is not None:
            c = self.containers.get(ep.container_id)
            own = names.own_names(net, c, ep)
            (self.dns.add if present else self.dns.remove)(net, own, ep.ip)

    def _dns_scope(self, c: Container) -> None:
        """Recompute what one compartment's resolver sees; start or stop serving it."""
        scope = names.scope_of(self.nets, c, self.endpoints_of(c))
        self.dns.set_scope(c.id, scope)
        r = self.resolver
        if r is None:
            return
        if scope is None:
            r.close(c.id)
        elif c.id not in r.listeners:
            self._serve_dns(c)

    # -- in-memory indexes (addresses and host ports in use) -----------------
    def _remember(self, ep: Endpoint) -> None:
        old = self.eps.get(ep.id)
        if old is not None:
            self._forget(old)
        self.eps[ep.id] = ep
        self.eps_of.setdefault(ep.container_id, {})[ep.id] = ep
        self.eps_on.setdefault(ep.network_id, {})[ep.id] = ep
        if ep.ip and not ep.dhcp:
            self.used_ips.setdefault(ep.network_id, set()).add(ipaddress.IPv4Address(ep.ip))
        for p in ep.ports:
            self.port_index.add(p)

    def _forget(self, ep: Endpoint) -> None:
        if self.eps.pop(ep.id, None) is None:
            return
        for index, key in ((self.eps_of, ep.container_id), (self.eps_on, ep.network_id)):
            mine = index.get(key, {})
            mine.pop(ep.id, None)
            if not mine:
                index.pop(key, None)
        if ep.ip and not ep.dhcp:
            self.used_ips.get(ep.network_id, set()).discard(ipaddress.IPv4Address(ep.ip))
        for p in ep.ports:
            self.port_index.remove(p)

    # -- look-ups ---------------------------------------------------------
    def _find(self, kind: str, table: dict[str, Any], ref: str) -> Any:
        for obj in table.values():
            if obj.name == ref or obj.id == ref:
                return obj
        found = [o for o in table.values() if len(ref) >= 4 and o.id.startswith(ref)]
        if len(found) == 1:
            return found[0]
        raise NotFound(
            f"no {kind} named {ref!r}",
            f"list them with 'hostnet {'network ls' if kind == 'network' else 'ps'}'",
        )

    def network(self, ref: str) -> Network:
        return self._find("network", self.nets, ref)

    def container(self, ref: str) -> Container:
        return self._find("container", self.containers, ref)

    def endpoints_of(self, c: Container) -> list[Endpoint]:
        return sorted(self.eps_of.get(c.id, {}).values(), key=lambda e: e.ifname)

    def endpoints_on(self, net: Network) -> list[Endpoint]:
        return list(self.eps_on.get(net.id, {}).values())

    # -- networks ---------------------------------------------------------
    def host_prefixes(self) -> list[ipaddress.IPv4Network]:
        return self.host.ipv4_prefixes(BRIDGE_PREFIX)

    def driver_of(self, net: Network) -> Driver:
        """The driver serving a network."""
        return self.driver(net.driver)

    def driver(self, name: str) -> Driver:
        if name in self.drivers:
            return self.drivers[name]
        if name in FUTURE_DRIVERS:
            raise InvalidRequest(
                f"driver {name!r} is not available yet",
                "use the nat driver for now; this driver arrives in a later release",
            )
        raise InvalidRequest(
            f"unknown driver {name!r}", f"available drivers: {', '.join(sorted(self.drivers))}"
        )

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

    def _may_carve(self, subnet: ipaddress.IPv4Network, n: Network) -> bool:
        own = n.ipv4_network()
        if not (n.carvable and subnet.subnet_of(own) and subnet != own):
            return False
        gw = ipaddress.IPv4Address(n.gateway)
        in_use = [ipaddress.IPv4Address(e.ip) for e in self.endpoints_on(n)] + [gw]
        return not any(a in subnet for a in in_use)

    def check_overlap(self, subnet: ipaddress.IPv4Network, host_too: bool = True) -> None:
        """Refuse a subnet overlapping another network or the host; external switches (host_too
        False) may share a subnet with each other: each is its own physical L2 network."""
        for n in self.nets.values():
            if not host_too and self.driver_of(n).on_host_subnet:
                continue
            if n.subnet and subnet.overlaps(n.ipv4_network()) and not self._may_carve(subnet, n):
                raise Conflict(
                    f"subnet {subnet} overlaps network {n.name!r} ({n.subnet})",
                    "choose a subnet that does not overlap, or leave --subnet out to get a free one",
                )
        hit = ipam.overlapping(subnet, self.host_prefixes()) if host_too else None
        if hit is not None:
            raise Conflict(
                f"subnet {subnet} overlaps the host's own address or route {hit}",
                "choose a subnet the host does not use, or leave --subnet out",
            )

    def create_network(
        self,
        name: str,
        driver: str = "nat",
        subnet: str = "",
        gateway: str = "",
        options: dict[str, str] | None = None,
        note: str = "",
        carvable: bool = False,
        acl_specs: list[str] | None = None,
    ) -> Network:
        check_name("network", name)
        drv = self.driver(driver)
        opts = drv.normalize_options(options or {})
        net_acl = [acl.parse_rule(spec) for spec in acl_specs or []]
        if any(n.name == name for n in self.nets.values()):
            raise Conflict(f"a network named {name!r} already exists", "choose another name")
        net4: ipaddress.IPv4Network | None
        if subnet:
            net4 = parse_subnet(subnet)
            self.check_overlap(net4, host_too=not drv.on_host_subnet)
        elif drv.on_host_subnet and not drv.dhcp_without_subnet:
            raise InvalidRequest(
                f"the {driver} driver needs --subnet and --gateway (the host's network); "
                "it takes static addresses only",
                "give --subnet and --gateway, and --ip for each endpoint",
            )
        elif gateway:
            raise InvalidRequest("--gateway needs --subnet", "give --subnet too, or neither")
        elif drv.dhcp_without_subnet:
            net4 = None  # addresses from DHCP: the external DHCP server owns the subnet
        else:
            found = ipam.first_free_subnet(24, self.subnets_in_use() + self.host_prefixes())
            if found is None:
                raise Conflict("no free /24 left in 172.16.0.0/12", "give --subnet explicitly")
            net4 = found
        gw: ipaddress.IPv4Address | None = None
        if net4 is not None:
            gw = parse_ip(gateway, "gateway") if gateway else ipam.default_gateway(net4)
            ipam.check_gateway(net4, gw)
        nid = new_id()
        net = Network(
            id=nid,
            name=name,
            driver=driver,
            subnet=str(net4) if net4 else "",
            gateway=str(gw) if gw else "",
            options=opts,
            switch=drv.switch_prefix + nid[:8],
            note=note,
            carvable=carvable,
            acl=net_acl,
        )
        drv.check_network(net, list(self.nets.values()))
        if drv.cluster_scoped:
            self.claim_vni(net)  # raises without a cluster store
        try:
            self.store.create_network(net)
        except BaseException:
            if drv.cluster_scoped:
                self.release_vni(net)
            raise
        self.nets[net.id] = net
        try:
            drv.ensure_network(net)
            self.store.update_network(net)  # the driver may have recorded kernel state
            self._sync_firewall()
        except BaseException:
            with contextlib.suppress(HostnetError):
                drv.remove_network(net)
            self.store.delete_network(net.id)
            del self.nets[net.id]
            with contextlib.suppress(HostnetError):
                self._sync_firewall()
            raise
        log.info("created network %s (%s, %s via %s)", name, driver, net.subnet, net.gateway)
        return net

    def ensure_default_network(self) -> Network | None:
        if any(n.name == "nat" for n in self.nets.values()):
            return None
        want = ipaddress.IPv4Network("172.16.0.0/16")
        used = self.subnets_in_use() + self.host_prefixes()
        note = ""
        if ipam.overlapping(want, used) is not None:
            found = ipam.first_free_subnet(16, used)
            if found is None:
                log.error("no free /16 in 172.16.0.0/12 for the default nat network")
                return None
            note = f"172.16.0.0/16 overlaps an address or route of the host; using {found}"
            log.warning("default network: %s", note)
            want = found
        return self.create_network(
            "nat", "nat", str(want), str(want.network_address + 1), note=note, carvable=True
        )

    def remove_network(self, ref: str, force: bool = False) -> list[str]:
        net = self.network(ref)
        users = self.endpoints_on(net)
        elsewhere = [e for e in self.cluster_users(net) if e.host != self.host_id]
        if elsewhere:
            hosts = ", ".join(sorted({e.host for e in elsewhere}))
            raise Conflict(
                f"overlay network {net.name!r} has {len(elsewhere)} endpoint(s) on: {hosts}",
                "remove those containers on their hosts first",
            )
        if users and not force:
            names = ", ".join(
                sorted(
                    self.containers[e.container_id].name
                    for e in users
                    if e.container_id in self.containers
                )
            )
            raise Conflict(
                f"network {net.name!r} has {len(users)} endpoint(s) in use by: {names}",
                "remove or disconnect those containers first, or use --force",
            )
        errors: list[str] = []
        for ep in users:
            errors += self._detach(ep)
        drv = self.driver_of(net)
        try:
            drv.remove_network(net)
        except HostnetError as exc:
            errors.append(str(exc))
        self.store.delete_network(net.id)
        self.release_vni(net)
        del self.nets[net.id]
        self._sync_firewall()
        log.info("removed network %s", net.name)
        return errors

    def prune(self) -> list[str]:
        unused = [n for n in self.nets.values() if not self.endpoints_on(n) and n.name != "nat"]
        for n in unused:
            self.remove_network(n.id)
        return [n.name for n in unused]

    def _sync_firewall(self) -> None:
        outbound = []
        for n in self.nets.values():
            keep = self.driver_of(n).nat_keep(n)
            if keep is not None:
                ips = tuple(sorted(e.ip for e in self.endpoints_on(n) if e.ip))
                outbound.append(OutboundNat(n.switch, ips, keep))
        self.nat.sync_firewall(list(self.nets.values()), list(self.eps.values()), outbound)
        ruled = [
            e.host_ifname
            for e in self.eps.values()
            if e.network_id in self.nets
            and self.driver_of(self.nets[e.network_id]).has_own_acl(e, self.nets[e.network_id])
        ]
        self.nft.run(acl.render_default_table(VETH_PREFIX, ruled))
        self._sync_rewrites()

    def _sync_rewrites(self) -> None:
        """The bridge-family MAC rewrite table of l2bridge and l2tunnel networks."""
        rewrites, tunnels = [], []
        for n in self.nets.values():
            drv = self.driver_of(n)
            if drv.rewrites_macs:
                eps = self.endpoints_on(n)
                rw, tn = drv.rewrite_net(n, eps), drv.tunnel_net(n, eps)
                rewrites += [rw] if rw is not None else []
                tunnels += [tn] if tn is not None else []
        sync_rewrites(self.nft, rewrites, tunnels)
        self._teams_rendered = self._teams()
        sync_teams(self.nft, self._teams_rendered)

    def _teams(self) -> list[Any]:
        teams = []
        for n in self.nets.values():
            t = self.driver_of(n).team_state(n)
            if t is not None:
                teams.append(t)
        return teams

    def check_teams(self) -> None:
        """Called every half second: re-spread when a team member went down or came back."""
        teams = self._teams()
        if teams != getattr(self, "_teams_rendered", None):
            log.info("team members now: %s", {t.key: t.live for t in teams})
            self._teams_rendered = teams
            sync_teams(self.nft, teams)
