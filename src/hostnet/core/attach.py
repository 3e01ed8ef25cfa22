"""The attach/detach transaction: plan an endpoint, record it, realize it in the kernel.

validate (``plan``: address, MAC, host ports, checked against the index; held there) ->
record (``record``: the store claims them) -> realize (``realize``: the driver plugs the
vNIC) -> commit; a failure undoes what was done, in reverse. ``detach`` undoes one
endpoint, best effort, carrying on past errors. It works on the service's collaborators
(``Core``), never on the service class itself, so nothing here imports ``service.py``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Protocol

from hostnet.core.cluster import Cluster
from hostnet.core.firewall import Firewall
from hostnet.core.index import Index
from hostnet.core.planning import plan_endpoint
from hostnet.core.stats import ServiceStats
from hostnet.dns.publisher import DnsPublisher
from hostnet.drivers import vnic
from hostnet.drivers.base import Driver
from hostnet.errors import Conflict, HostnetError
from hostnet.kernel.handles import Kernel
from hostnet.model import Container, Endpoint, Network
from hostnet.store import Store

log = logging.getLogger("hostnet")


class Core(Protocol):
    """What the transaction needs of the service: its collaborators and its lock."""

    index: Index
    store: Store
    kernel: Kernel
    cluster: Cluster
    firewall: Firewall
    dns: DnsPublisher
    stats: ServiceStats

    @property
    def host_id(self) -> str: ...
    def driver_of(self, net: Network) -> Driver: ...
    def compartment_of(self, ep: Endpoint) -> Container | None: ...
    def released(self) -> contextlib.AbstractContextManager[None]: ...
    def store_io(self) -> contextlib.AbstractContextManager[None]: ...


class Attachments:
    """Endpoints planned, recorded, realized and undone; the round-robin address cursor."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._last_ips: dict[str, str] = {}  # meta key -> the last address given (store too)

    # -- the round-robin cursor -------------------------------------------------------
    def last_ip(self, net: Network, version: int = 4) -> str:
        """Where the next automatic address of ``net`` is looked for after (round robin)."""
        key = f"last_ip{'6' if version == 6 else ''}:{net.id}"
        if key not in self._last_ips:
            self._last_ips[key] = self.core.store.get_meta(key) or ""
        return self._last_ips[key]

    def set_last_ip(self, net: Network, ip: str, version: int = 4) -> None:
        key = f"last_ip{'6' if version == 6 else ''}:{net.id}"
        self._last_ips[key] = ip
        self.core.store.set_meta(key, ip)

    # -- plan ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def planning(self) -> Iterator[list[Endpoint]]:
        """Endpoints planned (``plan(plans, …)``) inside hold their address and host ports
        until recorded; when it ends, what a failure left unrecorded is given back."""
        plans: list[Endpoint] = []
        try:
            yield plans
        finally:
            for ep in plans:
                self.core.index.unhold(ep)

    def plan(
        self,
        plans: list[Endpoint],
        net: Network,
        c: Container,
        ifname: str,
        ip: str,
        port_specs: list[str],
        ip6: str = "",
        eid: str = "",
    ) -> Endpoint:
        """An endpoint of ``c`` on ``net`` (``eid``: its id, else a new one), every check
        done, its claims held in the index."""
        core = self.core
        drv = core.driver_of(net)
        scoped = drv.cluster_scoped  # addresses other hosts hold are taken too
        ep = plan_endpoint(
            core.index,
            drv,
            net,
            c,
            ifname,
            ip,
            port_specs,
            ip6=ip6,
            also_used=core.cluster.used(net) if scoped else frozenset(),
            after=self.last_ip(net) if net.subnet and not ip else "",
            after6=self.last_ip(net, 6) if net.subnet6 and not ip6 else "",
            eid=eid,
        )
        if scoped:
            ep.host, ep.vtep, ep.dns_name = core.host_id, core.cluster.vtep, c.name
        core.index.hold(ep)  # taken from now: the store writes may let other requests run
        plans.append(ep)
        return ep

    # -- record ---------------------------------------------------------------------------
    def record(self, net: Network, ep: Endpoint, auto_ip: bool, auto_ip6: bool) -> None:
        """Store a planned endpoint with its claims (addresses, host ports), reserved in the
        index first, and move the round-robin cursor past its addresses. An address IPAM
        chose (``auto_ip``/``auto_ip6``) on an overlay that another host claimed meanwhile
        is replaced by the next free one."""
        core = self.core
        auto = {v for v, a in ((4, auto_ip), (6, auto_ip6)) if a}
        scoped = core.driver_of(net).cluster_scoped
        for _ in range(256):
            core.index.remember(ep)
            try:
                with core.store_io():
                    core.store.create_endpoint(ep)
                break
            except Conflict as exc:
                core.index.forget(ep)
                taken = str(exc.details.get("address", ""))
                if not scoped or not taken or (6 if ":" in taken else 4) not in auto:
                    raise
                core.cluster.readdress(net, ep, taken)
            except BaseException:
                core.index.forget(ep)
                raise
        else:
            raise Conflict(f"no free address found on {net.name!r}", "try again")
        if scoped:
            core.cluster.learn(ep)
        if ep.ip:  # the next automatic address comes after this one (round robin)
            self.set_last_ip(net, ep.ip)
        if ep.ip6:
            self.set_last_ip(net, ep.ip6, 6)

    def unrecord(self, ep: Endpoint) -> None:
        """Forget an endpoint and release its claims (in the index, the cluster, the store)."""
        core = self.core
        core.index.forget(ep)  # from here no other request detaches it again
        if ep.vtep:
            core.cluster.unlearn(ep.id)
        with core.store_io():
            core.store.delete_endpoint(ep.id)

    # -- realize --------------------------------------------------------------------------
    def attach(
        self,
        net: Network,
        c: Container,
        ep: Endpoint,
        default_route: bool,
        auto_ip: bool = False,
        auto_ip6: bool = False,
    ) -> Endpoint:
        """Record a planned endpoint (claiming its addresses and ports), then realize it;
        a failure undoes both. ``auto_ip``/``auto_ip6``: IPAM chose that address, so an
        overlay claim lost to another host may move."""
        started = time.monotonic()
        last, last6 = self.last_ip(net), self.last_ip(net, 6)
        self.record(net, ep, auto_ip, auto_ip6)
        try:
            self.realize(net, c, ep, default_route, started)
        except BaseException:
            if ep.ip and self.last_ip(net) == ep.ip:  # as if never given
                self.set_last_ip(net, last)
            if ep.ip6 and self.last_ip(net, 6) == ep.ip6:
                self.set_last_ip(net, last6, 6)
            raise
        return ep

    def realize(
        self,
        net: Network,
        c: Container,
        ep: Endpoint,
        default_route: bool,
        started: float | None = None,
    ) -> None:
        """The kernel half of an attach of a recorded endpoint: its vNIC in ``c``, its
        routes, firewall and names. A failure (or the endpoint, its container or network
        removed meanwhile) undoes it: ``detach`` (forgetting it, or leaving a standalone
        one unattached) and raises."""
        core = self.core
        started = time.monotonic() if started is None else started
        drv = core.driver_of(net)
        try:
            self._check_still(ep, c)
            # kernel work only (for drivers that say so): other requests go on meanwhile
            with core.released() if drv.realizes_unlocked else contextlib.nullcontext():
                drv.attach(net, ep, c, default_route)
                vnic.add_routes(core.kernel, ep, c)
            self._check_still(ep, c)  # removed meanwhile (or while waiting for a DHCP lease)
            if ep.dhcp or ep.slaac:  # the driver filled in the lease or the SLAAC address
                core.index.remember(ep)
                with core.store_io():
                    core.store.update_endpoint(ep)
            if drv.rewrites_macs:
                core.firewall.sync_rewrites()
            if net.flag("enable_outboundnat") or ep.outbound_nat is not None:
                core.firewall.sync()
        except BaseException:
            self.detach(ep, net=net, c=c)  # what it made, even if they went meanwhile
            raise
        core.dns.names(ep, present=True)
        if core.dns.scope(c):
            with core.released():  # its resolver sockets: other requests go on meanwhile
                core.dns.serve(c)
            core.dns.still_wanted(c)
        core.stats.attach.observe(net.driver, time.monotonic() - started)

    def _check_still(self, ep: Endpoint, c: Container) -> None:
        if ep.id not in self.core.index.eps:
            raise Conflict(
                f"container {c.name!r} or its network was removed during the attach",
                "create it again if it is still wanted",
            )

    # -- detach ---------------------------------------------------------------------------
    def detach(
        self,
        ep: Endpoint,
        cut_link: bool = True,
        net: Network | None = None,
        c: Container | None = None,
        forget: bool | None = None,
    ) -> list[str]:
        """Best effort: undo the endpoint in the kernel and forget it (a standalone one,
        unless ``forget``: left recorded, unattached, its claims kept); report errors.

        The vNIC is cut at once (out of service, its compartment's interface name free)
        and deleted in the background: deleting waits out an RCU grace period. ``net`` and
        ``c``: an attach undoing itself after they were removed meanwhile still knows them."""
        core = self.core
        started = time.monotonic()
        errors: list[str] = []
        net = core.index.nets.get(ep.network_id) or net
        c = core.compartment_of(ep) or c
        known = ep.id in core.index.eps
        if known:
            core.dns.names(ep, present=False, c=c)
        if net is not None and c is not None:
            try:
                core.driver_of(net).detach(net, ep, c)
            except HostnetError as exc:
                errors.append(str(exc))
            if cut_link:
                inside = None if ep.runtime_moves_peer or not c.netns else c.netns
                try:
                    core.kernel.cut_vnic(ep.host_ifname, inside, ep.ifname, "hx" + ep.id[:10])
                except HostnetError as exc:
                    errors.append(str(exc))
        if (ep.standalone if forget is None else not forget) and core.index.endpoint(ep.id):
            left = ep.model_copy(update={"container_id": "", "ifname": ""})
            core.index.remember(left)  # unattached: out of what the firewall and DNS read
            with core.store_io():
                core.store.update_endpoint(left)
        else:
            self.unrecord(ep)
        if ep.outbound_nat is not None:
            try:
                core.firewall.sync()
            except HostnetError as exc:
                errors.append(str(exc))
        if net is not None and core.driver_of(net).rewrites_macs:
            try:
                core.firewall.sync_rewrites()
                if net.flag("enable_outboundnat"):
                    core.firewall.sync()
            except HostnetError as exc:
                errors.append(str(exc))
        if known and c is not None and core.dns.scope(c):
            core.dns.serve(c)
        if net is not None:
            core.stats.detach.observe(net.driver, time.monotonic() - started)
        return errors
