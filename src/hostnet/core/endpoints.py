"""Endpoints in HCN's order: made on a network with no namespace, attached later.

``create`` plans an endpoint (address, MAC, host ports, policies), records it and its
claims in the store and the index, and makes nothing in the kernel. ``attach`` puts its
vNIC in a compartment hostnet knows (a container) or in the host's own default one (HCN's
HostDefault: the host's vNIC on that network, an interface in the daemon's namespace with
the endpoint's address). ``detach`` takes the vNIC away and leaves the endpoint recorded
and unattached, its claims held; ``delete`` releases it. Bad input changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from hostnet.core import planning
from hostnet.core.attach import Attachments, Core
from hostnet.errors import Conflict, InvalidRequest, NotFound
from hostnet.model import (
    HOST_VNIC_PREFIX,
    Container,
    Endpoint,
    Network,
    check_name,
    parse_mac,
)

log = logging.getLogger("hostnet")

#: the namespace reference naming the host's own default compartment (HCN's HostDefault)
HOST_NAMESPACE = "host"


class EndpointsCore(Core, Protocol):
    """What the endpoint calls need of the service beyond the transaction's."""

    def network(self, ref: str) -> Network: ...
    def container(self, ref: str) -> Container: ...
    def routes_out(self, net: Network) -> bool: ...
    @property
    def host_compartment(self) -> Container: ...


class Endpoints:
    """Standalone endpoints: create, attach to a namespace, detach, delete."""

    def __init__(self, core: EndpointsCore, attachments: Attachments) -> None:
        self.core, self.attachments = core, attachments

    def get(self, eid: str) -> Endpoint:
        ep = self.core.index.endpoint(eid)
        if ep is None:
            raise NotFound(f"no endpoint {eid!r}", "list them with GET /endpoints")
        return ep

    def create(
        self,
        network: str,
        name: str = "",
        ip: str = "",
        mac: str = "",
        ip6: str = "",
        port_specs: list[str] | None = None,
        policy_specs: list[Any] | None = None,
        eid: str = "",
    ) -> Endpoint:
        """An endpoint on ``network``, unattached: planned, checked, recorded; no kernel.
        ``eid``: its id (HCN's GUID, checked by the caller), else a new one."""
        net = self.core.network(network)
        if name:
            check_name("endpoint", name)
        mac = parse_mac(mac) if mac else ""
        nobody = Container(id="", name=name, compartment_id=0, netns="")
        with self.attachments.planning() as plans:
            if eid and self.core.index.endpoint(eid) is not None:
                raise Conflict(f"an endpoint with id {eid!r} exists already", "give another id")
            ep = self.attachments.plan(plans, net, nobody, "", ip, port_specs or [], ip6, eid)
            ep.standalone, ep.name = True, name
            if mac:
                ep.mac = mac
            planning.with_policies(net, self.core.driver_of(net), ep, policy_specs or [])
            self.attachments.record(net, ep, auto_ip=not ip, auto_ip6=not ip6)
        log.info("created endpoint %s on %s (%s), unattached", ep.id[:12], net.name, ep.ip)
        return ep

    def attach(self, eid: str, namespace: str) -> Endpoint:
        """Realize an unattached endpoint's vNIC in ``namespace``: a container's name or
        id, or ``host`` (the host's default compartment)."""
        ep = self._standalone(self.get(eid))
        if ep.attached:
            where = "the host" if ep.on_host else repr(self._namespace_name(ep))
            raise Conflict(
                f"endpoint {ep.id[:12]} is attached already (to {where})",
                "detach it first (POST /endpoints/{id}/detach)",
            )
        net = self.core.index.nets[ep.network_id]
        c, ifname, default_route = self._target(net, ep, namespace)
        attached = ep.model_copy(update={"container_id": c.id, "ifname": ifname})
        self.core.index.remember(attached)  # intent first: a restart repairs it
        with self.core.store_io():
            self.core.store.update_endpoint(attached)
        self.attachments.realize(net, c, attached, default_route)  # undone on failure
        log.info("attached endpoint %s to %s as %s", ep.id[:12], c.name, ifname)
        return attached

    def detach(self, eid: str) -> Endpoint:
        """Take the endpoint's vNIC away; it stays recorded, unattached, its claims held."""
        ep = self._standalone(self.get(eid))
        if not ep.attached:
            raise Conflict(
                f"endpoint {ep.id[:12]} is not attached", "attach it first, or delete it"
            )
        for e in self.attachments.detach(ep):
            log.warning("detach of endpoint %s: %s", ep.id[:12], e)
        return self.get(eid)

    def delete(self, eid: str) -> list[str]:
        """Release the endpoint (its vNIC first, when attached): its claims are free."""
        ep = self._standalone(self.get(eid))
        return self.attachments.detach(ep, forget=True)

    # -- checks -------------------------------------------------------------------------
    def _namespace_name(self, ep: Endpoint) -> str:
        c = self.core.compartment_of(ep)
        return c.name if c is not None else ep.container_id

    def _standalone(self, ep: Endpoint) -> Endpoint:
        if not ep.standalone:
            raise Conflict(
                f"endpoint {ep.id[:12]} belongs to container {self._namespace_name(ep)!r}: it "
                "was made with it and goes with it",
                "disconnect it with 'hostnet network disconnect NETWORK CONTAINER'",
            )
        return ep

    def _target(self, net: Network, ep: Endpoint, namespace: str) -> tuple[Container, str, bool]:
        """The compartment, interface name and default route of an attach, all checked."""
        core = self.core
        if not namespace:
            raise InvalidRequest(
                "an attach needs a namespace",
                f"give a container's name or id, or {HOST_NAMESPACE!r}",
            )
        if namespace.lower() == HOST_NAMESPACE:
            if ep.dhcp or ep.slaac:
                raise InvalidRequest(
                    f"network {net.name!r} takes addresses from the physical network (DHCP or "
                    "SLAAC): a host vNIC there is not supported",
                    "attach it to a container, or use a network with a --subnet",
                )
            host = core.host_compartment
            if any(e.network_id == net.id for e in core.index.endpoints_of(host)):
                raise Conflict(
                    f"the host has a vNIC on network {net.name!r} already",
                    "detach that endpoint first; the host takes one vNIC per network",
                )
            return host, HOST_VNIC_PREFIX + ep.id[:10], False
        c = core.container(namespace)
        if c.runtime == "docker":
            raise InvalidRequest(
                f"container {c.name!r} is Docker's: Docker plugs its endpoints itself",
                "connect it with 'docker network connect'",
            )
        if c.state == "created":
            raise Conflict(f"container {c.name!r} is not started", "start it first")
        if not core.kernel.compartment_exists(c.netns):
            raise NotFound(
                f"the compartment of container {c.name!r} ({c.netns}) does not exist",
                "run 'hostnet system reconcile', or start the container again",
            )
        mine = core.index.endpoints_of(c)
        if any(e.network_id == net.id for e in mine):
            raise Conflict(
                f"container {c.name!r} is already connected to {net.name!r}",
                "disconnect it first",
            )
        taken = {e.ifname for e in mine}
        ifname = next(f"eth{i}" for i in range(len(mine) + 1) if f"eth{i}" not in taken)
        routed = any(core.routes_out(core.index.nets[e.network_id]) for e in mine)
        return c, ifname, not routed and core.routes_out(net)
