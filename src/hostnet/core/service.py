"""HostNetworkingService: the orchestrator, the one place that decides order.

validate -> record intent -> realize in the kernel -> commit; a failure undoes what was
done, in reverse. It works through explicit collaborators, each in its own module:

- ``index`` (``index.py``): networks, compartments, endpoints, addresses and ports in use;
- ``drivers`` (``drivers/``): what each network type does in the kernel, and what it can do;
- ``store`` (``store/``): intent, durably (SQLite, or etcd for a cluster);
- ``kernel`` (``kernel/handles.py``): every kernel change; unit tests hand in a fake;
- ``cluster`` (``cluster.py``): overlay networks and other hosts' endpoints;
- ``firewall`` (``firewall.py``) and ``dns`` (``dns/publisher.py``): host-wide tables and
  the resolver's directory, gathered from the index.

Adapters (REST, Docker, CNI, the CLI through REST) call its public methods only.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from hostnet.core import acl, ipam, planning, ports, procs
from hostnet.core.attach import Attachments
from hostnet.core.cluster import Cluster
from hostnet.core.endpoints import Endpoints
from hostnet.core.firewall import Firewall
from hostnet.core.index import Index
from hostnet.core.policies import FIREWALL_PIECES
from hostnet.core.procs import has_exited, in_netns, process_start_time
from hostnet.core.stats import ServiceStats
from hostnet.dns.publisher import DnsPublisher
from hostnet.dns.resolver import Resolver
from hostnet.drivers.base import Driver
from hostnet.drivers.registry import BUILTIN, DriverContext, DriverInfo, Drivers
from hostnet.errors import Conflict, HostnetError, InvalidRequest, NotFound
from hostnet.kernel.dhcp import DhcpClients
from hostnet.kernel.handles import Kernel, LinuxKernel
from hostnet.model import (
    BRIDGE_PREFIX,
    HOST_COMPARTMENT,
    Container,
    Endpoint,
    IPAddress,
    IPNetwork,
    Network,
    PortMapping,
    check_name,
    new_id,
)
from hostnet.store import Store
from hostnet.store.etcd import ClusterChange

log = logging.getLogger("hostnet")

FUTURE_DRIVERS: tuple[str, ...] = ()


class Lock(Protocol):
    """What the service needs of its lock (threading.Lock, or the daemon's FairLock)."""

    def acquire(self) -> bool: ...
    def release(self) -> None: ...


class HostNetworkingService:
    """Networks, compartments and endpoints: intent in the store, state in the kernel."""

    def __init__(
        self,
        store: Store,
        instance: str,
        state_dir: str,
        lock: Lock | None = None,
        kernel: Kernel | None = None,
        registry: Iterable[DriverInfo] = BUILTIN,
    ) -> None:
        """``kernel``: the kernel handles (unit tests hand in a fake); ``registry``: the
        drivers to build (tests add fakes)."""
        #: held by every request (the daemon's ServiceExecutor takes it); a request that
        #: waits for something slow (a DHCP lease) lets go of it meanwhile: ``released``
        self.lock = lock or threading.Lock()
        self.store = store
        self.instance = instance
        self.state_dir = state_dir
        self.ns_prefix = f"hn{instance}-"
        self.kernel: Kernel = kernel or LinuxKernel.real()
        self.host, self.nft, self.rt = self.kernel.host, self.kernel.nft, self.kernel.rt
        self.owner = f"hostnet:{instance}"
        self.index = Index(store.networks(), store.containers(), store.endpoints())
        self.dhcp = DhcpClients(state_dir, idle=self.released)
        self.drivers = Drivers.build(DriverContext(self.kernel, self.owner, self.dhcp), registry)
        scoped = lambda n: self.driver_of(n).cluster_scoped  # noqa: E731
        shared = self.drivers.cluster_driver()
        self.cluster = Cluster(store, self.index, self.host, shared, scoped)
        drivers = self.drivers.values()
        self.firewall = Firewall(self.index, self.nft, drivers, self.driver_of, FIREWALL_PIECES)
        self.dns = DnsPublisher(self.index)
        self.stats = ServiceStats()  # read by the metrics endpoint (metrics.py)
        self.on_container_started: Callable[[Container], None] = lambda c: None
        # a CNI attachment recorded / any container removed: the daemon's namespace watch
        self.on_external_attached: Callable[[Container], None] = lambda c: None
        self.on_container_removed: Callable[[Container], None] = lambda c: None
        # what the daemon's Docker watch knows of Docker now (docker_binding.OFF/WAITING/UP)
        self.docker_presence: Callable[[], str] = lambda: "off"
        self._next_cid: int | None = None  # the compartment counter, kept in the store too
        store.get_meta("next_compartment")  # a remote store reads its meta now, not in a request
        #: the attach/detach transaction (core/attach.py): plan, record, realize, detach
        self.attachments = Attachments(self)
        self.endpoint_calls = Endpoints(self, self.attachments)  # HCN's order (core/endpoints.py)
        self.host_netns = f"/proc/{os.getpid()}/ns/net"  # the daemon's own namespace

    # -- what adapters read (the index's tables; change them through methods) --
    @property
    def nets(self) -> dict[str, Network]:
        return self.index.nets

    @property
    def containers(self) -> dict[str, Container]:
        return self.index.containers

    @property
    def eps(self) -> dict[str, Endpoint]:
        return self.index.eps

    @property
    def resolver(self) -> Resolver | None:
        return self.dns.resolver

    @resolver.setter
    def resolver(self, r: Resolver | None) -> None:
        self.dns.resolver = r

    @property
    def host_id(self) -> str:
        return self.cluster.host_id

    @host_id.setter
    def host_id(self, host: str) -> None:
        self.cluster.host_id = host

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

    def store_io(self) -> contextlib.AbstractContextManager[None]:
        """Around a write to the store: a remote store's round trip runs with the lock let
        go (what it records is reserved in the index first), a local one's under it."""
        return self.released() if self.store.remote else contextlib.nullcontext()

    def record_container(self, c: Container) -> None:
        """Store a new container; its name is taken in the index from here on."""
        self.index.add_container(c)
        try:
            with self.store_io():
                self.store.create_container(c)
        except BaseException:
            self.index.drop_container(c.id)
            raise
        if c.id not in self.containers:  # removed while the store wrote it
            with self.store_io():
                self.store.delete_container(c.id)
            raise Conflict(
                f"container {c.name!r} was removed while it was being created",
                "create it again if it is still wanted",
            )

    def resync_dns(self) -> None:
        """Rebuild the name directory whole (start, reconcile, cluster re-list)."""
        self.dns.rebuild(self.cluster.others())

    # -- look-ups ---------------------------------------------------------
    def network(self, ref: str) -> Network:
        return self.index.network(ref)

    def container(self, ref: str) -> Container:
        return self.index.container(ref)

    def endpoints_of(self, c: Container) -> list[Endpoint]:
        return self.index.endpoints_of(c)

    def endpoints_on(self, net: Network) -> list[Endpoint]:
        return self.index.endpoints_on(net)

    @property
    def host_compartment(self) -> Container:
        """The host's own default compartment (compartment 1): the daemon's namespace."""
        return Container(
            id=HOST_COMPARTMENT, name="host", compartment_id=1, netns=self.host_netns, external=True
        )

    def compartment_of(self, ep: Endpoint) -> Container | None:
        """The compartment an endpoint is attached to (None: unattached, or it went)."""
        return self.host_compartment if ep.on_host else self.containers.get(ep.container_id)

    # -- endpoints in HCN's order (core/endpoints.py): made unattached, attached later --
    def create_endpoint(
        self,
        network: str,
        name: str = "",
        ip: str = "",
        mac: str = "",
        policies: list[Any] | None = None,
        ip6: str = "",
        port_specs: list[str] | None = None,
        eid: str = "",
    ) -> Endpoint:
        return self.endpoint_calls.create(network, name, ip, mac, ip6, port_specs, policies, eid)

    def endpoint(self, eid: str) -> Endpoint:
        return self.endpoint_calls.get(eid)

    def all_endpoints(self) -> list[Endpoint]:
        """Every endpoint of this host: attached ones, then unattached ones."""
        return [*self.eps.values(), *self.index.unattached.values()]

    def attach_endpoint(self, eid: str, namespace: str) -> Endpoint:
        """``namespace``: a container's name or id, or "host" (the host's own)."""
        return self.endpoint_calls.attach(eid, namespace)

    def detach_endpoint(self, eid: str) -> Endpoint:
        return self.endpoint_calls.detach(eid)

    def delete_endpoint(self, eid: str) -> list[str]:
        return self.endpoint_calls.delete(eid)

    def addresses_used(self, net: Network) -> set[IPAddress]:
        return self.index.addresses_used(net)

    def routes_out(self, net: Network) -> bool:
        """Its endpoints' default route leads out (not an overlay's or an internal network's)."""
        return self.driver_of(net).routes_out and not net.internal

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

    # -- networks ---------------------------------------------------------
    def host_prefixes(self) -> list[IPNetwork]:
        return self.host.prefixes(BRIDGE_PREFIX)

    def subnets_in_use(self) -> list[ipaddress.IPv4Network]:
        return self.index.subnets_in_use()

    def carved(self, net: Network) -> list[ipaddress.IPv4Network]:
        return self.index.carved(net)

    def check_overlap(self, subnet: IPNetwork, host_too: bool = True) -> None:
        """Refuse a subnet overlapping another network or (``host_too``) the host."""
        planning.check_overlap(self.index, self.driver_of, subnet, self.host_prefixes, host_too)

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
        addresses: planning.AddressPlan | None = None,
        internal: bool = False,
        nid: str = "",
    ) -> Network:
        """``subnet``/``gateway``: one of each (either family); ``addresses``: the rest of
        Docker's IPAM options (more subnets, ranges, reserved addresses, --ipv6); ``nid``:
        its id (HCN's GUID), else a new one."""
        drv = self.driver(driver)
        plan = addresses or planning.AddressPlan()
        plan.subnets = [*([subnet] if subnet else []), *plan.subnets]
        plan.gateways = [*([gateway] if gateway else []), *plan.gateways]
        net = planning.plan_network(
            self.index,
            self.driver_of,
            drv,
            self.host_prefixes,
            name,
            plan,
            options or {},
            acl_specs or [],
            note=note,
            carvable=carvable,
            internal=internal,
            nid=nid,
        )
        if nid and nid in self.nets:
            raise Conflict(f"a network with id {nid!r} exists already", "give another id")
        if drv.cluster_scoped:
            self.cluster.claim_vni(net)  # raises without a cluster store
        try:
            self.store.create_network(net)
        except BaseException:
            if drv.cluster_scoped:
                self.cluster.release_vni(net)
            raise
        self.index.add_network(net)
        try:
            drv.ensure_network(net)
            self.store.update_network(net)  # the driver may have recorded kernel state
            self.firewall.sync()
        except BaseException:
            with contextlib.suppress(HostnetError):
                drv.remove_network(net)
            self.store.delete_network(net.id)
            self.index.drop_network(net.id)
            with contextlib.suppress(HostnetError):
                self.firewall.sync()
            raise
        log.info("created network %s (%s, %s via %s)", name, driver, net.subnet, net.gateway)
        return net

    def ensure_default_network(self) -> Network | None:
        if self.index.network_named("nat") is not None:
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
        users = [*self.endpoints_on(net), *self.index.unattached_on(net)]
        elsewhere = [e for e in self.cluster.users(net) if e.host != self.host_id]
        if elsewhere:
            hosts = ", ".join(sorted({e.host for e in elsewhere}))
            raise Conflict(
                f"overlay network {net.name!r} has {len(elsewhere)} endpoint(s) on: {hosts}",
                "remove those containers on their hosts first",
            )
        if users and not force:
            names = ", ".join(sorted(n for n in map(self._user_of, users) if n))
            raise Conflict(
                f"network {net.name!r} has {len(users)} endpoint(s) in use by: {names}",
                "remove or disconnect those containers first, or use --force",
            )
        errors: list[str] = []
        for ep in users:
            errors += self.attachments.detach(ep, forget=True)
        drv = self.driver_of(net)
        try:
            drv.remove_network(net)
        except HostnetError as exc:
            errors.append(str(exc))
        self.store.delete_network(net.id)
        self.cluster.release_vni(net)
        self.index.drop_network(net.id)
        self.firewall.sync()
        log.info("removed network %s", net.name)
        return errors

    def _user_of(self, ep: Endpoint) -> str:
        c = self.compartment_of(ep)
        if c is not None or ep.attached:
            return c.name if c is not None else ""
        return f"unattached endpoint {ep.name or ep.id[:12]}"

    def docker_networks(self) -> list[Network]:
        """The networks Docker should have (the default one, and those exposed): hostnetd
        makes them Docker networks whenever Docker (re)starts without them."""
        return [
            n for n in self.nets.values() if (n.docker_expose or n.carvable) and not n.docker_owned
        ]

    def keep_in_docker(self, ref: str) -> Network:
        """Mark a network exposed to Docker: it is made a Docker network again whenever
        Docker starts without it."""
        net = self.network(ref)
        if not net.docker_expose and not net.docker_owned:  # Docker keeps its own
            net.docker_expose = True
            self.store.update_network(net)
        return net

    def prune(self) -> list[str]:
        unused = [
            n
            for n in self.nets.values()
            if not self.endpoints_on(n) and not self.index.unattached_on(n) and n.name != "nat"
        ]
        for n in unused:
            self.remove_network(n.id)
        return [n.name for n in unused]

    # -- containers (compartments) and endpoints --------------------------
    def next_compartment_id(self) -> int:
        if self._next_cid is None:  # read once; written with every container
            self._next_cid = int(self.store.get_meta("next_compartment") or "2")  # 1: the host's
        n = self._next_cid
        self._next_cid = n + 1
        self.store.set_meta("next_compartment", str(n + 1))
        return n

    def new_container(self, name: str, cid: str = "", **fields: Any) -> Container:
        """A container not yet recorded: its id (``cid``, else a new one), a free name
        (given or made), its compartment's and log's names."""
        cid = cid or new_id()
        name = name or f"c_{cid[:12]}"
        check_name("container", name)
        if self.index.container_named(name) is not None:
            raise Conflict(
                f"a container named {name!r} already exists",
                "choose another name, or remove it with 'hostnet rm'",
            )
        return Container(
            id=cid,
            name=name,
            compartment_id=0,
            netns=self.ns_prefix + cid[:12],
            log_path=os.path.join(self.state_dir, "logs", f"{cid}.log"),
            **fields,
        )

    def create_container(
        self,
        name: str,
        networks: list[dict[str, Any]],
        port_specs: list[str] | None = None,
        acl_specs: list[str] | None = None,
        max_bandwidth: str = "",
        policy_specs: list[Any] | None = None,
    ) -> Container:
        """A compartment attached to each network; ports map to the first network's endpoint."""
        c = self.new_container(name)
        if not networks:
            raise InvalidRequest("a container needs at least one network", "give --network NAME")
        nets = [self.network(n["network"]) for n in networks]
        if len({n.id for n in nets}) != len(nets):
            raise InvalidRequest("a network is given twice", "give each network once")
        log_dir = os.path.dirname(c.log_path)
        rules = [acl.parse_rule(spec) for spec in acl_specs or []]
        with self.attachments.planning() as plans:
            # every check (addresses, ports, ACLs) happens here, before anything changes
            for i, (net, req) in enumerate(zip(nets, networks, strict=True)):
                specs = (port_specs or []) if i == 0 else []
                self.attachments.plan(
                    plans, net, c, f"eth{i}", req.get("ip", ""), specs, req.get("ip6", "")
                )
            qos = planning.qos_limit(max_bandwidth) if max_bandwidth else {}
            for ep, req in zip(plans, networks, strict=True):
                ep.acl = list(rules)
                ep.bandwidth = {**ep.bandwidth, **qos}
                ep.aliases = planning.aliases(req.get("aliases") or [])
            if policy_specs:  # like ports: on the first network's endpoint
                planning.with_policies(nets[0], self.driver_of(nets[0]), plans[0], policy_specs)
            os.makedirs(log_dir, exist_ok=True)
            c.compartment_id = self.next_compartment_id()
            self.record_container(c)
            # the first network that routes gives the default route (an overlay reaches only itself)
            routed = next((i for i, n in enumerate(nets) if self.routes_out(n)), -1)
            try:
                self.kernel.create_compartment(c.netns)
                for i, (net, ep) in enumerate(zip(nets, plans, strict=True)):
                    self.attachments.attach(
                        net,
                        c,
                        ep,
                        (i == routed),
                        auto_ip=not networks[i].get("ip"),
                        auto_ip6=not networks[i].get("ip6"),
                    )
            except BaseException:
                self.teardown(c)
                raise
        log.info("created container %s in compartment %s", c.name, c.netns)
        return c

    def register_process(self, ref: str, pid: int) -> Container:
        """Make ``pid`` the container's process. Removing the container ends it, so only a
        process inside the container's compartment is taken (not pid 1, a host daemon or
        another container's); any other is refused and nothing changes."""
        c = self.container(ref)
        start = process_start_time(pid)
        if start is None or has_exited(pid):  # a zombie, or on its way out
            raise InvalidRequest(f"process {pid} does not exist", "start the process first")
        if c.state == "created":
            raise Conflict(f"container {c.name!r} is not started", "start it first")
        path = c.netns if c.netns.startswith("/") else f"/run/netns/{c.netns}"
        # the start time read again after the namespace: the pid was not reused in between
        if not (in_netns(pid, path) and process_start_time(pid) == start):
            raise InvalidRequest(
                f"process {pid} is not in container {c.name!r}'s compartment (its network "
                f"namespace is not {path}): removing the container would end it",
                "start the process inside the compartment: 'hostnet exec -d "
                f"{c.name} CMD', or 'nsenter --net={path} CMD'",
            )
        update: dict[str, Any] = {"pid": pid, "pid_start": start}
        if c.state:  # the seed's lifecycle: realized by start, running from now
            update["state"] = "running"
        c = c.model_copy(update=update)
        self.index.add_container(c)
        with self.store_io():
            self.store.update_container(c)
        self.on_container_started(c)
        return c

    def process_alive(self, c: Container) -> bool:
        return c.pid > 0 and process_start_time(c.pid) == c.pid_start

    def remove_container(self, ref: str, grace_s: float = 10.0) -> list[str]:
        """Stop the container's processes (SIGTERM, SIGKILL after ``grace_s``) and remove it."""
        c = self.container(ref)
        if c.state:  # 'hostnet create': every process in its compartment goes first
            path = c.netns if c.netns.startswith("/") else f"/run/netns/{c.netns}"
            procs.end_processes(path, min(grace_s, 2.0), self.released)
        elif self.process_alive(c):
            procs.signal_group(c.pid, signal.SIGTERM)
            timer = threading.Timer(grace_s, procs.kill_if_same, (c.pid, c.pid_start))
            timer.daemon = True
            timer.start()
        return self.teardown(c)

    def teardown(self, c: Container) -> list[str]:
        """Remove a container: its endpoints, its compartment (unless a runtime's), its record."""
        errors: list[str] = []
        # An empty compartment takes its vNICs with it when removed; a live process
        # (or someone else's compartment, which stays) would keep them, so cut them first.
        cut = c.external or self.process_alive(c)
        if self.index.drop_container(c.id) is None:
            return errors  # another request is removing it (or did)
        self.on_container_removed(c)
        for ep in self.endpoints_of(c):
            errors += self.attachments.detach(ep, cut_link=cut, c=c)
        if not c.external:
            try:
                self.kernel.remove_compartment(c.netns)
            except HostnetError as exc:
                errors.append(str(exc))
        with self.store_io():
            self.store.delete_container(c.id)
        with contextlib.suppress(OSError):
            if c.log_path and os.path.getsize(c.log_path) == 0:
                os.unlink(c.log_path)
        for e in errors:
            log.warning("teardown of %s: %s", c.name, e)
        log.info("removed container %s", c.name)
        return errors

    def connect(
        self,
        net_ref: str,
        c_ref: str,
        ip: str = "",
        aliases: list[str] | None = None,
        max_bandwidth: str = "",
        policy_specs: list[Any] | None = None,
        ip6: str = "",
    ) -> Endpoint:
        net, c = self.network(net_ref), self.container(c_ref)
        qos = planning.qos_limit(max_bandwidth) if max_bandwidth else {}
        names = planning.aliases(aliases or [])
        mine = self.endpoints_of(c)
        if any(e.network_id == net.id for e in mine):
            raise Conflict(
                f"container {c.name!r} is already connected to {net.name!r}",
                "disconnect it first to change its address",
            )
        taken = {e.ifname for e in mine}
        ifname = next(f"eth{i}" for i in range(len(mine) + 1) if f"eth{i}" not in taken)
        routed = any(self.routes_out(self.nets[e.network_id]) for e in mine)
        default_route = not routed and self.routes_out(net)
        with self.attachments.planning() as plans:
            ep = self.attachments.plan(plans, net, c, ifname, ip, [], ip6)
            ep.bandwidth, ep.aliases = qos, names
            planning.with_policies(net, self.driver_of(net), ep, policy_specs or [])
            return self.attachments.attach(
                net, c, ep, default_route, auto_ip=not ip, auto_ip6=not ip6
            )

    def disconnect(self, net_ref: str, c_ref: str) -> list[str]:
        net, c = self.network(net_ref), self.container(c_ref)
        for ep in self.endpoints_of(c):
            if ep.network_id == net.id:
                return self.attachments.detach(ep)
        raise NotFound(
            f"container {c.name!r} is not connected to network {net.name!r}",
            "see 'hostnet network inspect'",
        )

    def _primary(self, c_ref: str) -> tuple[Network, Endpoint]:
        c = self.container(c_ref)
        eps = self.endpoints_of(c)
        if not eps:
            raise Conflict(f"container {c.name!r} has no endpoint", "connect it to a network first")
        return self.nets[eps[0].network_id], eps[0]

    def add_ports(self, c_ref: str, port_specs: list[str]) -> list[PortMapping]:
        """Publish more ports of a running container (on its first network's endpoint)."""
        net, ep = self._primary(c_ref)
        return self.publish(net, ep, port_specs)

    def publish(self, net: Network, ep: Endpoint, port_specs: list[str]) -> list[PortMapping]:
        """Map more host ports to an endpoint: store, kernel, then the in-memory index."""
        if not port_specs:
            return []
        requests = [ports.parse_port_spec(s) for s in port_specs]
        added = ports.resolve(requests, self.index.port_index)
        self.store.add_ports(ep, added)
        try:
            self.driver_of(net).add_ports(ep, added)
        except BaseException:
            self.store.remove_ports(ep, added)
            raise
        self.index.add_ports(ep, added)
        return added

    def remove_ports(self, c_ref: str, port_specs: list[str]) -> list[PortMapping]:
        """Unpublish ports given as they were published (HOSTIP:HOSTPORT:CPORT/proto)."""
        net, ep = self._primary(c_ref)
        gone = ports.matching(ep.ports, port_specs)
        self.unpublish(ep, gone)
        return gone

    def unpublish(self, ep: Endpoint, gone: list[PortMapping]) -> None:
        """Take mappings off an endpoint: kernel, store, then the in-memory index."""
        if not gone:
            return
        self.driver_of(self.nets[ep.network_id]).remove_ports(ep, gone)
        self.store.remove_ports(ep, gone)
        self.index.remove_ports(ep, gone)

    # -- compartments made by others (CNI runtimes, Docker) ------------------
    def attach_external(
        self,
        cid: str,
        netns_path: str,
        ifname: str,
        net_ref: str,
        ip: str = "",
        mac: str = "",
        port_specs: list[str] | None = None,
        bandwidth: dict[str, int] | None = None,
        acl_specs: list[str] | None = None,
        policy_specs: list[Any] | None = None,
        ip6: str = "",
    ) -> tuple[Container, Endpoint]:
        """Attach a vNIC to a namespace another runtime made (CNI ADD); ``ip``/``ip6``:
        static addresses (else IPAM gives one of each family the network has)."""
        net = self.network(net_ref)
        if not self.kernel.compartment_exists(netns_path):
            raise NotFound(
                f"network namespace {netns_path!r} does not exist",
                "the runtime must create the namespace before ADD",
            )
        c = self.containers.get(cid)
        if c is not None:
            if not c.external or c.netns != netns_path:
                raise Conflict(f"container {cid!r} is already known with another namespace")
            if any(e.ifname == ifname for e in self.endpoints_of(c)):
                raise Conflict(
                    f"container {cid[:12]} already has an interface {ifname}",
                    "DEL it first, or use another interface name",
                )
        new = c is None
        if c is None:
            c = Container(
                id=cid, name=f"ext-{cid[:12]}", compartment_id=0, netns=netns_path, external=True
            )
        rules = [acl.parse_rule(spec) for spec in acl_specs or []]
        with self.attachments.planning() as plans:
            ep = self.attachments.plan(plans, net, c, ifname, ip, port_specs or [], ip6)
            if mac:
                ep.mac = mac.lower()
            ep.bandwidth, ep.acl = dict(bandwidth or {}), rules
            planning.with_policies(net, self.driver_of(net), ep, policy_specs or [])
            if new:
                c.compartment_id = self.next_compartment_id()
                self.record_container(c)
            first = not self.endpoints_of(c)
            try:
                self.attachments.attach(net, c, ep, first, auto_ip=not ip, auto_ip6=not ip6)
            except BaseException:
                if new:
                    self.teardown(c)
                raise
        self.on_external_attached(c)
        return c, ep

    def attach_docker(self, net: Network, eid: str, ip: str, mac: str, ip6: str = "") -> Endpoint:
        """Docker's CreateEndpoint: a vNIC pair left in the host's namespace, whose peer
        Docker moves into its sandbox at Join (the compartment is Docker's)."""
        c = Container(
            id=eid,
            name=f"docker-{eid[:12]}",
            compartment_id=0,
            netns="",
            external=True,
            runtime="docker",
        )
        with self.attachments.planning() as plans:
            ep = self.attachments.plan(plans, net, c, "hc" + eid[:10], ip, [], ip6)
            ep.runtime_moves_peer = True
            if mac:
                ep.mac = mac.lower()
            c.compartment_id = self.next_compartment_id()
            self.record_container(c)
            try:
                self.attachments.attach(net, c, ep, default_route=True)
            except BaseException:
                self.teardown(c)
                raise
        return ep

    def detach_external(self, cid: str, ifname: str) -> list[str]:
        """Remove one vNIC of an external compartment; unknown is success (CNI DEL)."""
        c = self.containers.get(cid)
        if c is None:
            return []
        errors: list[str] = []
        for ep in self.endpoints_of(c):
            if ep.ifname == ifname:
                errors += self.attachments.detach(ep)
        if not self.endpoints_of(c) and self.index.drop_container(c.id) is not None:
            self.on_container_removed(c)
            with self.store_io():
                self.store.delete_container(c.id)
        return errors

    # -- port ACLs ------------------------------------------------------------
    def endpoint_for(self, c_ref: str, net_ref: str = "") -> Endpoint:
        c = self.container(c_ref)
        eps = self.endpoints_of(c)
        if net_ref:
            net = self.network(net_ref)
            eps = [e for e in eps if e.network_id == net.id]
        if not eps:
            raise NotFound(f"container {c.name!r} has no endpoint there", "see 'hostnet ps'")
        return eps[0]

    def set_acl(self, c_ref: str, rules: list[acl.AclRule], net_ref: str = "") -> Endpoint:
        """Replace an endpoint's ACL rule set; the kernel sees the old set or the new, never half."""
        return self.set_endpoint_acl(self.endpoint_for(c_ref, net_ref), rules)

    def set_endpoint_acl(self, ep: Endpoint, rules: list[acl.AclRule]) -> Endpoint:
        """``set_acl`` of one endpoint, attached or not (unattached: its attach applies it)."""
        old, net = list(ep.acl), self.nets[ep.network_id]
        drv = self.driver_of(net)
        had_own = drv.has_own_acl(ep, net)
        ep.acl = list(rules)
        try:
            if not ep.attached:
                pass
            elif drv.has_own_acl(ep, net):
                drv.apply_acl(ep, net)
            elif had_own:
                drv.remove_acl(ep)
        except BaseException:
            ep.acl = old
            raise
        self.store.update_endpoint(ep)
        return ep

    # -- the cluster ------------------------------------------------------------
    def cluster_resync(self) -> int:
        """Read the cluster whole (start, a lost watch); return the revision to watch from."""
        rev = self.cluster.resync()
        self.resync_dns()
        return rev

    def cluster_event(self, changes: list[ClusterChange]) -> None:
        """A watch batch: forwarding entries and names, one endpoint at a time."""
        for ep, present in self.cluster.apply(changes):
            self.dns.names(ep, present)

    def cluster_hosts(self) -> list[dict[str, Any]]:
        with self.store_io():  # a round trip to etcd: other requests go on meanwhile
            members = self.cluster.members()
        return self.cluster.hosts(members)

    def forget_host(self, host: str) -> int:
        return self.cluster.forget_host(host)

    def check_teams(self) -> None:
        """Called every half second: re-spread when a team member went down or came back."""
        self.firewall.check_teams()
