"""hcsshim's HCN objects with their verbs (``hcnnetwork.go``, ``hcnendpoint.go``,
``hcnnamespace.go``, ``hcnroute.go``), each call one request to hostnetd's /hcn face.

The classes are ``hostnet.hns.schema``'s models (the same JSON, the same Go rules) with
hcsshim's methods added; every verb takes an optional ``client`` (default: the module's).
"""

from __future__ import annotations

import json
from typing import Any

from hostnet.errors import InvalidRequest
from hostnet.hcn.transport import (
    EndpointNotFoundError,
    HcnClient,
    NamespaceNotFoundError,
    NetworkNotFoundError,
    RouteNotFoundError,
    check_guid,
    pick,
)
from hostnet.hns import schema as s
from hostnet.hns.schema import (
    V2,
    Dns,
    HostComputeQuery,
    Ipam,
    IpConfig,
    MacPool,
    MacRange,
    ModifyEndpointSettingRequest,
    ModifyNamespaceSettingRequest,
    ModifyNetworkSettingRequest,
    NamespaceResource,
    Policy,
    PolicyRequest,
    Route,
    RouteSetting,
    SchemaVersion,
    Subnet,
)

PolicyNetworkRequest = PolicyRequest
PolicyEndpointRequest = PolicyRequest
ENDPOINT_FLAG_REMOTE = 1


def v2_schema_version() -> SchemaVersion:
    """hcsshim's V2SchemaVersion: ``{2, 0}``."""
    return SchemaVersion.model_validate(V2)


def default_query() -> HostComputeQuery:
    """``{"SchemaVersion": {"Major": 2, "Minor": 0}}``."""
    return HostComputeQuery()


def _filtered(**flt: str) -> HostComputeQuery:
    return HostComputeQuery.model_validate({"Filter": json.dumps(flt)})


def _json(obj: Any) -> dict[str, Any]:
    if isinstance(obj, s.GoModel):
        return obj.to_json()
    return dict(obj)


class HostComputeNetwork(s.HostComputeNetwork):
    """hcn.HostComputeNetwork and its verbs."""

    def create(self, client: HcnClient | None = None) -> HostComputeNetwork:
        """Create it (an ID given is kept); returns the network as hostnetd made it."""
        for ipam in self.ipams:
            for subnet in ipam.subnets:
                if not subnet.ip_address_prefix:
                    continue
                if any(not r.next_hop for r in subnet.routes):
                    raise InvalidRequest(
                        "subnet has address prefix but no gateway specified",
                        "give each route of the subnet a NextHop",
                    )
                if not any(r.destination_prefix in ("0.0.0.0/0", "::/0") for r in subnet.routes):
                    raise InvalidRequest(
                        "no default gateway",
                        'add a route {"NextHop": <gateway>, "DestinationPrefix": "0.0.0.0/0"}',
                    )
        return HostComputeNetwork.model_validate(pick(client).create("networks", self.to_json()))

    def delete(self, client: HcnClient | None = None) -> None:
        check_guid(self.id, "network")
        pick(client).delete("networks", self.id)

    def modify_network_settings(
        self, request: ModifyNetworkSettingRequest, client: HcnClient | None = None
    ) -> None:
        pick(client).modify("networks", self.id, _json(request))

    def _policies(self, rt: str, request: PolicyRequest, client: HcnClient | None) -> None:
        req = ModifyNetworkSettingRequest.model_validate(
            {"ResourceType": "Policy", "RequestType": rt, "Settings": _json(request)}
        )
        self.modify_network_settings(req, client)

    def add_policy(self, request: PolicyRequest, client: HcnClient | None = None) -> None:
        """``{ResourceType: Policy, RequestType: Add, Settings: {Policies: [...]}}``."""
        self._policies("Add", request, client)

    def remove_policy(self, request: PolicyRequest, client: HcnClient | None = None) -> None:
        self._policies("Remove", request, client)

    def create_endpoint(
        self, endpoint: s.HostComputeEndpoint, client: HcnClient | None = None
    ) -> HostComputeEndpoint:
        """The endpoint on this network (``endpoint.host_compute_network`` is set to it)."""
        endpoint.host_compute_network = self.id
        made = pick(client).create("endpoints", endpoint.to_json())
        return HostComputeEndpoint.model_validate(made)

    def create_remote_endpoint(
        self, endpoint: s.HostComputeEndpoint, client: HcnClient | None = None
    ) -> HostComputeEndpoint:
        endpoint.flags |= ENDPOINT_FLAG_REMOTE
        return self.create_endpoint(endpoint, client)


class HostComputeEndpoint(s.HostComputeEndpoint):
    """hcn.HostComputeEndpoint and its verbs."""

    def create(self, client: HcnClient | None = None) -> HostComputeEndpoint:
        if self.host_compute_namespace:
            raise InvalidRequest(
                "endpoint json HostComputeNamespace is read only",
                "create it without, then namespace_attach(namespace_id)",
            )
        check_guid(self.host_compute_network, "network")
        return HostComputeEndpoint.model_validate(pick(client).create("endpoints", self.to_json()))

    def delete(self, client: HcnClient | None = None) -> None:
        check_guid(self.id, "endpoint")
        pick(client).delete("endpoints", self.id)

    def modify_endpoint_settings(
        self, request: ModifyEndpointSettingRequest, client: HcnClient | None = None
    ) -> None:
        modify_endpoint_settings(self.id, request, client)

    def apply_policy(
        self, request_type: str, request: PolicyRequest, client: HcnClient | None = None
    ) -> None:
        """``{ResourceType: Policy, RequestType: request_type, Settings: {Policies: [...]}}``."""
        req = ModifyEndpointSettingRequest.model_validate(
            {"ResourceType": "Policy", "RequestType": request_type, "Settings": _json(request)}
        )
        modify_endpoint_settings(self.id, req, client)

    def namespace_attach(self, namespace_id: str, client: HcnClient | None = None) -> None:
        add_namespace_endpoint(namespace_id, self.id, client)

    def namespace_detach(self, namespace_id: str, client: HcnClient | None = None) -> None:
        remove_namespace_endpoint(namespace_id, self.id, client)


class HostComputeNamespace(s.HostComputeNamespace):
    """hcn.HostComputeNamespace and its verbs (Host: a new compartment; HostDefault: the host's)."""

    def create(self, client: HcnClient | None = None) -> HostComputeNamespace:
        made = pick(client).create("namespaces", self.to_json())
        return HostComputeNamespace.model_validate(made)

    def delete(self, client: HcnClient | None = None) -> None:
        check_guid(self.id, "namespace")
        pick(client).delete("namespaces", self.id)

    def modify_namespace_settings(
        self, request: ModifyNamespaceSettingRequest, client: HcnClient | None = None
    ) -> None:
        modify_namespace_settings(self.id, request, client)

    def sync(self) -> None:
        """hcsshim's Sync acts only for Guest namespaces (VMs), which hostnet refuses."""


class HostComputeRoute(s.HostComputeRoute):
    """hcn.HostComputeRoute (no Modify: endpoints change by delete and create)."""

    def create(self, client: HcnClient | None = None) -> HostComputeRoute:
        return HostComputeRoute.model_validate(pick(client).create("routes", self.to_json()))

    def delete(self, client: HcnClient | None = None) -> None:
        """Deletes it if it still exists (a route already gone is success, as in hcsshim)."""
        check_guid(self.id, "route")
        try:
            get_route_by_id(self.id, client)
        except RouteNotFoundError:
            return
        pick(client).delete("routes", self.id)

    def _recreate(self, ids: list[str], client: HcnClient | None) -> HostComputeRoute:
        self.delete(client)
        self.host_compute_endpoints = ids
        return self.create(client)

    def add_endpoint(
        self, endpoint: s.HostComputeEndpoint, client: HcnClient | None = None
    ) -> HostComputeRoute:
        return self._recreate([*self.host_compute_endpoints, endpoint.id], client)

    def remove_endpoint(
        self, endpoint: s.HostComputeEndpoint, client: HcnClient | None = None
    ) -> HostComputeRoute:
        ids = [e for e in self.host_compute_endpoints if e.lower() != endpoint.id.lower()]
        return self._recreate(ids, client)


# -- networks -----------------------------------------------------------------------------
def list_networks(client: HcnClient | None = None) -> list[HostComputeNetwork]:
    return list_networks_query(default_query(), client)


def list_networks_query(
    query: HostComputeQuery, client: HcnClient | None = None
) -> list[HostComputeNetwork]:
    found = pick(client).enumerate("networks", query.to_json())
    return [HostComputeNetwork.model_validate(n) for n in found]


def get_network_by_id(network_id: str, client: HcnClient | None = None) -> HostComputeNetwork:
    found = list_networks_query(_filtered(ID=network_id), client)
    if not found:
        raise NetworkNotFoundError(network_id=network_id)
    return found[0]


def get_network_by_name(name: str, client: HcnClient | None = None) -> HostComputeNetwork:
    found = list_networks_query(_filtered(Name=name), client)
    if not found:
        raise NetworkNotFoundError(network_name=name)
    return found[0]


# -- endpoints ----------------------------------------------------------------------------
def list_endpoints(client: HcnClient | None = None) -> list[HostComputeEndpoint]:
    return list_endpoints_query(default_query(), client)


def list_endpoints_query(
    query: HostComputeQuery, client: HcnClient | None = None
) -> list[HostComputeEndpoint]:
    found = pick(client).enumerate("endpoints", query.to_json())
    return [HostComputeEndpoint.model_validate(e) for e in found]


def list_endpoints_of_network(
    network_id: str, client: HcnClient | None = None
) -> list[HostComputeEndpoint]:
    return list_endpoints_query(_filtered(VirtualNetwork=network_id), client)


def get_endpoint_by_id(endpoint_id: str, client: HcnClient | None = None) -> HostComputeEndpoint:
    found = list_endpoints_query(_filtered(ID=endpoint_id), client)
    if not found:
        raise EndpointNotFoundError(endpoint_id=endpoint_id)
    return found[0]


def get_endpoint_by_name(name: str, client: HcnClient | None = None) -> HostComputeEndpoint:
    found = list_endpoints_query(_filtered(Name=name), client)
    if not found:
        raise EndpointNotFoundError(endpoint_name=name)
    return found[0]


def modify_endpoint_settings(
    endpoint_id: str, request: ModifyEndpointSettingRequest, client: HcnClient | None = None
) -> None:
    pick(client).modify("endpoints", endpoint_id, _json(request))


# -- namespaces ---------------------------------------------------------------------------
def new_namespace(namespace_type: str) -> HostComputeNamespace:
    """hcsshim's NewNamespace: ``{Type, SchemaVersion 2.0}`` (local only)."""
    return HostComputeNamespace.model_validate({"Type": namespace_type})


def list_namespaces(client: HcnClient | None = None) -> list[HostComputeNamespace]:
    return list_namespaces_query(default_query(), client)


def list_namespaces_query(
    query: HostComputeQuery, client: HcnClient | None = None
) -> list[HostComputeNamespace]:
    found = pick(client).enumerate("namespaces", query.to_json())
    return [HostComputeNamespace.model_validate(n) for n in found]


def get_namespace_by_id(namespace_id: str, client: HcnClient | None = None) -> HostComputeNamespace:
    found = list_namespaces_query(_filtered(ID=namespace_id), client)
    if not found:
        raise NamespaceNotFoundError(namespace_id)
    return found[0]


def _resource_ids(namespace_id: str, kind: str, client: HcnClient | None) -> list[str]:
    ns = get_namespace_by_id(namespace_id, client)
    out = []
    for r in ns.resources:
        if r.type == kind and isinstance(r.data, dict):
            folded = {str(k).lower(): v for k, v in r.data.items()}
            out.append(str(folded.get("id", "")))
    return out


def get_namespace_endpoint_ids(namespace_id: str, client: HcnClient | None = None) -> list[str]:
    return _resource_ids(namespace_id, "Endpoint", client)


def get_namespace_container_ids(namespace_id: str, client: HcnClient | None = None) -> list[str]:
    return _resource_ids(namespace_id, "Container", client)


def modify_namespace_settings(
    namespace_id: str, request: ModifyNamespaceSettingRequest, client: HcnClient | None = None
) -> None:
    pick(client).modify("namespaces", namespace_id, _json(request))


def _namespace_endpoint(rt: str, namespace_id: str, endpoint_id: str, c: HcnClient | None) -> None:
    req = ModifyNamespaceSettingRequest.model_validate(
        {"ResourceType": "Endpoint", "RequestType": rt, "Settings": {"EndpointId": endpoint_id}}
    )
    modify_namespace_settings(namespace_id, req, c)


def add_namespace_endpoint(
    namespace_id: str, endpoint_id: str, client: HcnClient | None = None
) -> None:
    _namespace_endpoint("Add", namespace_id, endpoint_id, client)


def remove_namespace_endpoint(
    namespace_id: str, endpoint_id: str, client: HcnClient | None = None
) -> None:
    _namespace_endpoint("Remove", namespace_id, endpoint_id, client)


# -- routes -------------------------------------------------------------------------------
def list_routes(client: HcnClient | None = None) -> list[HostComputeRoute]:
    return list_routes_query(default_query(), client)


def list_routes_query(
    query: HostComputeQuery, client: HcnClient | None = None
) -> list[HostComputeRoute]:
    return [
        HostComputeRoute.model_validate(r)
        for r in pick(client).enumerate("routes", query.to_json())
    ]


def get_route_by_id(route_id: str, client: HcnClient | None = None) -> HostComputeRoute:
    found = list_routes_query(_filtered(ID=route_id), client)
    if not found:
        raise RouteNotFoundError(route_id)
    return found[0]


def add_route(
    endpoints: list[s.HostComputeEndpoint],
    destination_prefix: str,
    next_hop: str,
    need_encapsulation: bool,
    client: HcnClient | None = None,
) -> HostComputeRoute:
    if not endpoints:
        raise InvalidRequest("missing endpoints", "give the endpoints the route applies to")
    setting = {
        "DestinationPrefix": destination_prefix,
        "NextHop": next_hop,
        "NeedEncap": need_encapsulation,
    }
    route = HostComputeRoute.model_validate(
        {"Setting": [setting], "HostComputeEndpoints": [e.id for e in endpoints]}
    )
    return route.create(client)


__all__ = [
    "Dns",
    "HostComputeQuery",
    "Ipam",
    "IpConfig",
    "MacPool",
    "MacRange",
    "NamespaceResource",
    "Policy",
    "PolicyEndpointRequest",
    "PolicyNetworkRequest",
    "Route",
    "RouteSetting",
    "Subnet",
]
