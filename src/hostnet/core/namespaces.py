"""HCN namespaces over hostnet's compartments: Host is a container's, HostDefault the host's.

A ``Host`` namespace is a compartment made when the namespace is created: a container
whose id is the namespace's GUID, in state ``stopped`` (realized, no process), so
``hostnet ps -a`` and ``compartment ls`` show it, reconcile makes its network namespace
again if it goes, and ``hostnet rm`` removes it. Every other container shows as a Host
namespace under its own id. ``HostDefault`` is the daemon's own default compartment
(compartment 1): one namespace that always exists, its GUID derived from the daemon's
instance; an endpoint added to it is the host's vNIC on that network. ``Guest`` and
``GuestDefault`` (a utility VM's compartments) are refused until VM-isolated endpoints exist.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hostnet.core.endpoints import HOST_NAMESPACE
from hostnet.errors import Conflict, HostnetError, InvalidRequest, NotFound
from hostnet.hns.schema import HostComputeNamespace
from hostnet.hns.v2_views import guid_or_new
from hostnet.model import HOST_COMPARTMENT, Container, Endpoint

if TYPE_CHECKING:
    from hostnet.core.service import HostNetworkingService

log = logging.getLogger("hostnet")
NOT_FOUND = "Element not found."  # the text hcsshim's v1 namespace helpers match


@dataclass(frozen=True)
class Namespace:
    """One HCN namespace: its GUID, Type, compartment id and the endpoints in it."""

    id: str
    type: str
    compartment_id: int
    endpoint_ids: tuple[str, ...]
    container: Container | None  # None: the host's default compartment


class Namespaces:
    """HostComputeNamespace create, get, list, delete, and endpoints added and removed."""

    def __init__(self, svc: HostNetworkingService) -> None:
        self.svc = svc

    @property
    def host_default_id(self) -> str:
        """The host's default namespace's GUID: fixed for this daemon instance."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"hostnet:{self.svc.instance}:host-default"))

    def _host_default(self) -> Namespace:
        host = self.svc.host_compartment
        eps = self.svc.endpoints_of(host)
        return Namespace(self.host_default_id, "HostDefault", 1, tuple(e.id for e in eps), None)

    def _of(self, c: Container) -> Namespace:
        eps = self.svc.endpoints_of(c)
        return Namespace(c.id, "Host", c.compartment_id, tuple(e.id for e in eps), c)

    def all(self) -> list[Namespace]:
        cs = sorted(self.svc.containers.values(), key=lambda c: c.compartment_id)
        return [self._host_default(), *(self._of(c) for c in cs)]

    def get(self, nsid: str) -> Namespace:
        key = nsid.strip("{}").lower()
        if key == self.host_default_id:
            return self._host_default()
        c = self.svc.containers.get(key)
        if c is None:
            raise NotFound(
                f'Namespace ID "{nsid}" not found ({NOT_FOUND})',
                "list namespaces with GET /hcn/namespaces; create one with POST /hcn/namespaces",
                id=nsid,
            )
        return self._of(c)

    def namespace_of(self, ep: Endpoint) -> str:
        """The GUID of the namespace an endpoint is attached to ("" when unattached)."""
        if ep.container_id == HOST_COMPARTMENT:
            return self.host_default_id
        return ep.container_id

    def create(self, hcn: HostComputeNamespace) -> Namespace:
        """Host: a new compartment; HostDefault: the host's (it always exists)."""
        ns_type = hcn.type or "Host"
        if ns_type in ("Guest", "GuestDefault"):
            raise InvalidRequest(
                f"namespace Type {ns_type!r} is not supported by hostnet: it is a utility VM's "
                "compartment, and hostnet has no VM-isolated endpoints",
                "use Type Host (a new compartment) or HostDefault (the host's own)",
                type=ns_type,
            )
        if hcn.resources:
            raise InvalidRequest(
                "a namespace is created empty: Resources are added to it afterwards",
                'modify it: {"ResourceType": "Endpoint", "RequestType": "Add", '
                '"Settings": {"EndpointId": "<guid>"}}',
            )
        if ns_type == "HostDefault":
            if hcn.id and guid_or_new(hcn.id, "namespaces") != self.host_default_id:
                raise Conflict(
                    f"the host's default namespace exists already, as {self.host_default_id}",
                    "leave ID out (or give that one): there is one host default compartment",
                )
            return self._host_default()
        nsid = guid_or_new(hcn.id, "namespaces")
        if nsid in self.svc.containers or nsid == self.host_default_id:
            raise Conflict(f"a namespace with ID {nsid} exists already", "give another ID")
        svc = self.svc
        c = svc.new_container(nsid, cid=nsid, state="stopped")
        c.compartment_id = svc.next_compartment_id()
        svc.record_container(c)
        try:
            svc.kernel.create_compartment(c.netns)
        except BaseException:
            svc.teardown(c)
            raise
        log.info("created namespace %s (compartment %s, %s)", nsid, c.compartment_id, c.netns)
        return self._of(c)

    def delete(self, nsid: str) -> list[str]:
        ns = self.get(nsid)
        if ns.container is None:
            raise Conflict(
                "the host's default namespace is the host's own compartment: it is not deleted",
                "remove its endpoints instead (modify: ResourceType Endpoint, RequestType "
                "Remove), or delete them",
            )
        return self.svc.remove_container(ns.container.id, grace_s=2.0)

    def add_endpoint(self, nsid: str, eid: str) -> Namespace:
        ns = self.get(nsid)
        target = HOST_NAMESPACE if ns.container is None else ns.container.id
        self.svc.attach_endpoint(self._endpoint_id(eid), target)
        return self.get(nsid)

    def remove_endpoint(self, nsid: str, eid: str) -> Namespace:
        ns = self.get(nsid)
        ep = self.svc.endpoint(self._endpoint_id(eid))
        if self.namespace_of(ep) != ns.id:
            raise Conflict(
                f"endpoint {ep.id} is not in namespace {ns.id}",
                "see the endpoint's HostComputeNamespace (GET /hcn/endpoints/{id})",
            )
        self.svc.detach_endpoint(ep.id)
        return self.get(nsid)

    def _endpoint_id(self, eid: str) -> str:
        if not eid:
            raise InvalidRequest(
                "Settings.EndpointId is missing", 'give {"EndpointId": "<the endpoint\'s GUID>"}'
            )
        try:
            return self.svc.endpoint(eid.strip("{}").lower()).id
        except HostnetError:
            raise NotFound(
                f'Endpoint ID "{eid}" not found ({NOT_FOUND})',
                "create it first with POST /hcn/endpoints",
                id=eid,
            ) from None
