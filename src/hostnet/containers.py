"""Containers (compartments) and their endpoints: the service's second half.

Mixed into HostNetworkingService; kept apart so each module reads in one sitting.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import secrets
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hostnet import acl, ipam, policies, ports
from hostnet.drivers import vnic
from hostnet.errors import Conflict, HostnetError, InvalidRequest, NotFound
from hostnet.model import (
    Container,
    Endpoint,
    Network,
    PortMapping,
    check_name,
    mac_for,
    new_id,
    parse_ip,
)
from hostnet.procs import process_start_time

if TYPE_CHECKING:
    from hostnet.drivers.base import Driver
    from hostnet.kernel.handles import Kernel
    from hostnet.store import Store

log = logging.getLogger("hostnet")
VETH_PREFIX = "hv"


def qos_limit(text: str) -> dict[str, int]:
    """HNS QoS MaximumOutgoingBandwidthInBytes (bytes/s, k/m/g = 1000s) as an egress limit."""
    value, factor = text.strip().lower(), 1
    if value[-1:] in ("k", "m", "g"):
        factor = {"k": 10**3, "m": 10**6, "g": 10**9}[value[-1]]
        value = value[:-1]
    if not value.isdigit() or int(value) == 0:
        raise InvalidRequest(
            f"--max-bandwidth {text!r} is not a positive number of bytes/s",
            "give e.g. 2500000 or 2.5m written as 2500k",
        )
    rate = int(value) * factor * 8
    return {"egressRate": rate, "egressBurst": max(rate // 10, 24000)}


def _aliases(given: list[str]) -> list[str]:
    """Network aliases are DNS names: one or more labels of letters, digits and '-'."""
    for a in given:
        labels = a.split(".") if isinstance(a, str) else [""]
        if not all(
            0 < len(x) <= 63 and x.replace("-", "").isalnum() and x.isascii() for x in labels
        ):
            raise InvalidRequest(
                f"network alias {a!r} is not a DNS name",
                "use letters, digits and '-' in dot-separated labels, e.g. db or db.internal",
            )
    return list(dict.fromkeys(a.lower() for a in given))


def _with_policies(net: Network, drv: Driver, ep: Endpoint, given: list[Any]) -> None:
    """Parse and check HNS OutBoundNAT / SDNRoute policies for this endpoint, then set them."""
    for pol in (policies.parse(p) for p in given):
        if isinstance(pol, policies.OutboundNatPolicy):
            if not drv.publishes_ports:
                raise InvalidRequest(
                    f"an OutBoundNAT endpoint policy needs a nat network; {net.name!r} is "
                    f"{net.driver}",
                    "for l2bridge use the network's -o enable_outboundnat=true "
                    "and -o outboundnat_exceptions=...",
                )
            if ep.outbound_nat is not None:
                raise InvalidRequest("an endpoint takes one OutBoundNAT policy", "merge them")
            ep.outbound_nat = pol
        else:
            if ep.dhcp or not net.subnet:
                raise InvalidRequest(
                    "SDNRoute needs an endpoint with a static subnet", "use a network with --subnet"
                )
            if ipaddress.IPv4Address(pol.next_hop) not in net.ipv4_network():
                raise InvalidRequest(
                    f"SDNRoute next hop {pol.next_hop} is not on the endpoint's subnet "
                    f"{net.subnet}",
                    "give a next hop the endpoint reaches directly",
                )
            ep.routes.append(pol)


def _signal_container(pid: int, sig: int) -> None:
    """A detached container leads its own session: signal the whole process group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


class ContainerOps:
    """create/remove containers, connect/disconnect, publish ports."""

    store: Store
    state_dir: str
    ns_prefix: str
    nets: dict[str, Network]
    containers: dict[str, Container]
    eps: dict[str, Endpoint]
    port_index: ports.PortIndex
    used_ips: dict[str, set[ipaddress.IPv4Address]]
    on_container_started: Callable[[Container], None]

    def network(self, ref: str) -> Network:
        raise NotImplementedError  # provided by HostNetworkingService

    def container(self, ref: str) -> Container:
        raise NotImplementedError  # provided by HostNetworkingService

    def endpoints_of(self, c: Container) -> list[Endpoint]:
        raise NotImplementedError  # provided by HostNetworkingService

    def endpoints_on(self, net: Network) -> list[Endpoint]:
        raise NotImplementedError  # provided by HostNetworkingService

    def driver(self, name: str) -> Driver:
        raise NotImplementedError  # provided by HostNetworkingService

    def driver_of(self, net: Network) -> Driver:
        raise NotImplementedError  # provided by HostNetworkingService

    def _remember(self, ep: Endpoint) -> None:
        raise NotImplementedError  # provided by HostNetworkingService

    def _forget(self, ep: Endpoint) -> None:
        raise NotImplementedError  # provided by HostNetworkingService

    def carved(self, net: Network) -> list[ipaddress.IPv4Network]:
        raise NotImplementedError  # provided by HostNetworkingService

    def _sync_rewrites(self) -> None:
        raise NotImplementedError  # provided by HostNetworkingService

    def _sync_firewall(self) -> None:
        raise NotImplementedError  # provided by HostNetworkingService

    def _dns_names(self, ep: Endpoint, present: bool) -> None:
        raise NotImplementedError  # provided by HostNetworkingService

    def _dns_scope(self, c: Container) -> None:
        raise NotImplementedError  # provided by HostNetworkingService

    def overlay_used(self, net: Network) -> set[ipaddress.IPv4Address]:
        raise NotImplementedError  # provided by ClusterOps

    def claim_overlay(self, net: Network, ep: Endpoint, auto: bool) -> None:
        raise NotImplementedError  # provided by ClusterOps

    def _learn(self, ep: Endpoint) -> None:
        raise NotImplementedError  # provided by ClusterOps

    def _unlearn(self, ep_id: str) -> None:
        raise NotImplementedError  # provided by ClusterOps

    host_id: str
    overlay: Any
    kernel: Kernel

    nft: Any

    # -- containers (compartments) and endpoints --------------------------
    def _next_compartment_id(self) -> int:
        n = int(self.store.get_meta("next_compartment") or "2")  # 1 is the host's, as on Windows
        self.store.set_meta("next_compartment", str(n + 1))
        return n

    def _plan_endpoint(
        self, net: Network, c: Container, ifname: str, ip: str, port_specs: list[str]
    ) -> Endpoint:
        if not net.subnet:  # DHCP: the address comes with the lease, at attach
            if ip:
                raise InvalidRequest(
                    f"network {net.name!r} takes addresses from DHCP; --ip needs a subnet",
                    "create the network with --subnet and --gateway for static addresses",
                )
            if port_specs:
                raise InvalidRequest(f"the {net.driver} driver publishes no ports", "remove -p")
            eid = new_id()
            return Endpoint(
                id=eid,
                network_id=net.id,
                container_id=c.id,
                ip="",
                prefix_len=0,
                gateway="",
                mac="02:42:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(4)),
                ifname=ifname,
                host_ifname=VETH_PREFIX + eid[:10],
                dhcp=True,
            )
        drv = self.driver_of(net)
        subnet, gw = net.ipv4_network(), ipaddress.IPv4Address(net.gateway)
        used = self.used_ips.get(net.id, set())
        if drv.cluster_scoped:  # addresses other hosts hold too
            used = used | self.overlay_used(net)
        host_addrs = {ipaddress.IPv4Address(a[0]) for a in net.adapter_state.get("addrs", [])}
        if host_addrs:  # external switches: the host's own addresses there are taken too
            used = used | {a for a in host_addrs if a in subnet}
        if ip:
            addr = parse_ip(ip)
            ipam.check_static(subnet, gw, addr, used, self.carved(net))
        else:
            last = self.store.get_meta(f"last_ip:{net.id}")
            after = ipaddress.IPv4Address(last) if last else None
            addr = ipam.allocate(subnet, gw, used, after, self.carved(net))
        if port_specs and not drv.publishes_ports:
            raise InvalidRequest(
                f"the {net.driver} driver publishes no ports",
                "its endpoints are reachable at their own address; remove -p",
            )
        requests = [ports.parse_port_spec(s) for s in port_specs]
        mappings = ports.resolve(requests, self.port_index)
        eid = new_id()
        ep = Endpoint(
            id=eid,
            network_id=net.id,
            container_id=c.id,
            ip=str(addr),
            prefix_len=subnet.prefixlen,
            gateway=net.gateway,
            mac=mac_for(addr),
            ifname=ifname,
            host_ifname=VETH_PREFIX + eid[:10],
            ports=mappings,
        )
        if drv.cluster_scoped:
            ep.host, ep.vtep, ep.dns_name = self.host_id, self.overlay.vtep, c.name
        return ep

    def _attach(
        self, net: Network, c: Container, ep: Endpoint, default_route: bool, auto_ip: bool = False
    ) -> Endpoint:
        """Record a planned endpoint (claiming its address and ports), then realize it.
        ``auto_ip``: IPAM chose the address, so an overlay claim lost to another host may move."""
        drv = self.driver_of(net)
        if drv.cluster_scoped:
            self.claim_overlay(net, ep, auto_ip)
            self._learn(ep)
        else:
            self.store.create_endpoint(ep)
        self._remember(ep)
        try:
            drv.attach(net, ep, c, default_route)
            if ep.id not in self.eps:  # removed while the driver waited (a DHCP lease)
                raise Conflict(
                    f"container {c.name!r} or its network was removed during the attach",
                    "create it again if it is still wanted",
                )
            if ep.dhcp:  # the driver filled in the lease
                self.store.update_endpoint(ep)
                self._remember(ep)
            vnic.add_routes(self.kernel, ep, c)
            if drv.rewrites_macs:
                self._sync_rewrites()
            if net.flag("enable_outboundnat") or ep.outbound_nat is not None:
                self._sync_firewall()
        except BaseException:
            self._detach(ep)
            raise
        self.store.set_meta(f"last_ip:{net.id}", ep.ip)
        self._dns_names(ep, present=True)
        self._dns_scope(c)
        return ep

    def _detach(self, ep: Endpoint, cut_link: bool = True) -> list[str]:
        """Best effort: undo the endpoint in the kernel and forget it; report errors."""
        errors: list[str] = []
        net, c = self.nets.get(ep.network_id), self.containers.get(ep.container_id)
        known = ep.id in self.eps
        if known:
            self._dns_names(ep, present=False)
        if net is not None and c is not None:
            try:
                self.driver_of(net).detach(net, ep, c, cut_link)
            except HostnetError as exc:
                errors.append(str(exc))
        self.store.delete_endpoint(ep.id)
        self._forget(ep)
        if ep.vtep:
            self._unlearn(ep.id)
        if ep.outbound_nat is not None:
            try:
                self._sync_firewall()
            except HostnetError as exc:
                errors.append(str(exc))
        if net is not None and self.driver_of(net).rewrites_macs:
            try:
                self._sync_rewrites()
                if net.flag("enable_outboundnat"):
                    self._sync_firewall()
            except HostnetError as exc:
                errors.append(str(exc))
        if known and c is not None:
            self._dns_scope(c)
        return errors

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
        cid = new_id()
        name = name or f"c_{cid[:12]}"
        check_name("container", name)
        if any(c.name == name for c in self.containers.values()):
            raise Conflict(
                f"a container named {name!r} already exists",
                "choose another name, or remove it with 'hostnet rm'",
            )
        if not networks:
            raise InvalidRequest("a container needs at least one network", "give --network NAME")
        nets = [self.network(n["network"]) for n in networks]
        if len({n.id for n in nets}) != len(nets):
            raise InvalidRequest("a network is given twice", "give each network once")
        log_dir = os.path.join(self.state_dir, "logs")
        c = Container(
            id=cid,
            name=name,
            compartment_id=0,
            netns=self.ns_prefix + cid[:12],
            log_path=os.path.join(log_dir, f"{cid}.log"),
        )
        rules = [acl.parse_rule(spec) for spec in acl_specs or []]
        # every check (addresses, ports, ACLs) happens here, before anything changes
        plans = [
            self._plan_endpoint(
                net, c, f"eth{i}", req.get("ip", ""), (port_specs or []) if i == 0 else []
            )
            for i, (net, req) in enumerate(zip(nets, networks, strict=True))
        ]
        qos = qos_limit(max_bandwidth) if max_bandwidth else {}
        for ep, req in zip(plans, networks, strict=True):
            ep.acl = list(rules)
            ep.bandwidth = {**ep.bandwidth, **qos}
            ep.aliases = _aliases(req.get("aliases") or [])
        if policy_specs:  # like ports: on the first network's endpoint
            _with_policies(nets[0], self.driver_of(nets[0]), plans[0], policy_specs)
        os.makedirs(log_dir, exist_ok=True)
        c.compartment_id = self._next_compartment_id()
        self.store.create_container(c)
        self.containers[c.id] = c
        # the first network that routes gives the default route (an overlay reaches only itself)
        routed = next((i for i, n in enumerate(nets) if self.driver_of(n).routes_out), -1)
        try:
            self.kernel.create_compartment(c.netns)
            for i, (net, ep) in enumerate(zip(nets, plans, strict=True)):
                self._attach(net, c, ep, (i == routed), auto_ip=not networks[i].get("ip"))
        except BaseException:
            self.teardown(c)
            raise
        log.info("created container %s in compartment %s", c.name, c.netns)
        return c

    def register_process(self, ref: str, pid: int) -> Container:
        c = self.container(ref)
        start = process_start_time(pid)
        if start is None:
            raise InvalidRequest(f"process {pid} does not exist", "start the process first")
        c = c.model_copy(update={"pid": pid, "pid_start": start})
        self.store.update_container(c)
        self.containers[c.id] = c
        self.on_container_started(c)
        return c

    def process_alive(self, c: Container) -> bool:
        return c.pid > 0 and process_start_time(c.pid) == c.pid_start

    def remove_container(self, ref: str, grace_s: float = 10.0) -> list[str]:
        """Stop the container's processes (SIGTERM, SIGKILL after ``grace_s``) and remove it."""
        c = self.container(ref)
        if self.process_alive(c):
            _signal_container(c.pid, signal.SIGTERM)
            timer = threading.Timer(grace_s, self._kill_if_same, (c.pid, c.pid_start))
            timer.daemon = True
            timer.start()
        return self.teardown(c)

    @staticmethod
    def _kill_if_same(pid: int, start: int) -> None:
        if process_start_time(pid) == start:
            _signal_container(pid, signal.SIGKILL)

    def teardown(self, c: Container) -> list[str]:
        errors: list[str] = []
        # An empty compartment takes its vNICs with it when removed; a live process
        # (or someone else's compartment, which stays) would keep them, so cut them first.
        cut = c.external or self.process_alive(c)
        for ep in self.endpoints_of(c):
            errors += self._detach(ep, cut_link=cut)
        if not c.external:
            try:
                self.kernel.remove_compartment(c.netns)
            except HostnetError as exc:
                errors.append(str(exc))
        self.store.delete_container(c.id)
        self.containers.pop(c.id, None)
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
    ) -> Endpoint:
        net, c = self.network(net_ref), self.container(c_ref)
        qos = qos_limit(max_bandwidth) if max_bandwidth else {}
        names = _aliases(aliases or [])
        mine = self.endpoints_of(c)
        if any(e.network_id == net.id for e in mine):
            raise Conflict(
                f"container {c.name!r} is already connected to {net.name!r}",
                "disconnect it first to change its address",
            )
        taken = {e.ifname for e in mine}
        ifname = next(f"eth{i}" for i in range(len(mine) + 1) if f"eth{i}" not in taken)
        ep = self._plan_endpoint(net, c, ifname, ip, [])
        ep.bandwidth, ep.aliases = qos, names
        _with_policies(net, self.driver_of(net), ep, policy_specs or [])
        routed = any(self.driver_of(self.nets[e.network_id]).routes_out for e in mine)
        default_route = not routed and self.driver_of(net).routes_out
        return self._attach(net, c, ep, default_route, auto_ip=not ip)

    def disconnect(self, net_ref: str, c_ref: str) -> list[str]:
        net, c = self.network(net_ref), self.container(c_ref)
        for ep in self.endpoints_of(c):
            if ep.network_id == net.id:
                return self._detach(ep)
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
        requests = [ports.parse_port_spec(s) for s in port_specs]
        added = ports.resolve(requests, self.port_index)
        self.store.add_ports(ep, added)
        try:
            self.driver_of(net).add_ports(ep, added)
        except BaseException:
            self.store.remove_ports(ep, added)
            raise
        ep.ports.extend(added)
        for p in added:
            self.port_index.add(p)
        return added

    def remove_ports(self, c_ref: str, port_specs: list[str]) -> list[PortMapping]:
        """Unpublish ports given as they were published (HOSTIP:HOSTPORT:CPORT/proto)."""
        net, ep = self._primary(c_ref)
        gone: list[PortMapping] = []
        for spec in port_specs:
            req = ports.parse_port_spec(spec)
            for off in range(req.host_end - req.host_start + 1):
                hit = [
                    p
                    for p in ep.ports
                    if p.protocol == req.protocol
                    and p.host_ip == req.host_ip
                    and p.host_port == req.host_start + off
                ]
                if not hit:
                    raise NotFound(
                        f"container has no mapping {spec!r}",
                        "see 'hostnet nat ls' for its mappings",
                    )
                gone += hit
        self.unpublish(ep, gone)
        return gone

    def unpublish(self, ep: Endpoint, gone: list[PortMapping]) -> None:
        """Take mappings off an endpoint: kernel, store, then the in-memory index."""
        if not gone:
            return
        self.driver_of(self.nets[ep.network_id]).remove_ports(ep, gone)
        self.store.remove_ports(ep, gone)
        ep.ports[:] = [p for p in ep.ports if p not in gone]
        for p in gone:
            self.port_index.remove(p)

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
    ) -> tuple[Container, Endpoint]:
        """Attach a vNIC to a namespace another runtime made (CNI ADD)."""
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
        ep = self._plan_endpoint(net, c, ifname, ip, port_specs or [])
        if mac:
            ep.mac = mac.lower()
        ep.bandwidth = dict(bandwidth or {})
        ep.acl = [acl.parse_rule(spec) for spec in acl_specs or []]
        _with_policies(net, self.driver_of(net), ep, policy_specs or [])
        if new:
            c.compartment_id = self._next_compartment_id()
            self.store.create_container(c)
            self.containers[c.id] = c
        first = not self.endpoints_of(c)
        try:
            self._attach(net, c, ep, default_route=first, auto_ip=not ip)
        except BaseException:
            if new:
                self.teardown(c)
            raise
        return c, ep

    def attach_docker(self, net: Network, eid: str, ip: str, mac: str) -> Endpoint:
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
        ep = self._plan_endpoint(net, c, "hc" + eid[:10], ip, [])
        ep.runtime_moves_peer = True
        if mac:
            ep.mac = mac.lower()
        c.compartment_id = self._next_compartment_id()
        self.store.create_container(c)
        self.containers[c.id] = c
        try:
            self._attach(net, c, ep, default_route=True)
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
                errors += self._detach(ep, cut_link=True)
        if not self.endpoints_of(c):
            self.store.delete_container(c.id)
            self.containers.pop(c.id, None)
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
        ep = self.endpoint_for(c_ref, net_ref)
        old, net = list(ep.acl), self.nets[ep.network_id]
        drv = self.driver_of(net)
        had_own = drv.has_own_acl(ep, net)
        ep.acl = list(rules)
        try:
            if drv.has_own_acl(ep, net):
                drv.apply_acl(ep, net)
            elif had_own:
                drv.remove_acl(ep)
        except BaseException:
            ep.acl = old
            raise
        self.store.update_endpoint(ep)
        return ep
