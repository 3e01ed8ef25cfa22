"""The HCN (v2) face on the socket: ``/hcn/{networks|endpoints|namespaces|routes}``.

``POST /hcn/{kind}`` creates (the object's JSON; an ID given is honoured, else a GUID is
chosen), ``GET /hcn/{kind}?query=<HostComputeQuery JSON>`` enumerates (no query: all),
``GET``/``DELETE /hcn/{kind}/{id}``, ``POST /hcn/{kind}/{id}/modify`` (the
Modify*SettingRequest). Answers are the objects as hcsshim's ``hcn`` structs decode them;
a refusal is a 4xx with hostnet's JSON error (what, why, what to do), nothing changed.
The objects are the service's own: what ``hostnet network ls``/``ps -a`` show.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hostnet.core import modify
from hostnet.core.namespaces import Namespace, Namespaces
from hostnet.core.service import HostNetworkingService
from hostnet.errors import HostnetError, InvalidRequest, NotFound
from hostnet.hns import v2_views as v
from hostnet.hns.gojson import GoModel, parse
from hostnet.hns.schema import (
    HostComputeEndpoint,
    HostComputeNamespace,
    HostComputeNetwork,
    HostComputeQuery,
    HostComputeRoute,
    ModifyEndpointSettingRequest,
    ModifyNamespaceSettingRequest,
    ModifyNetworkSettingRequest,
    NamespaceEndpointRequest,
)
from hostnet.model import Endpoint, Network, parse_mac

Call = Callable[[Callable[[], Any]], Awaitable[Any]]
Reply = Callable[..., web.Response]
POOL_KEY = "hcn:macpool:"  # + network id: the MacPool a network was created with
FILTERS = {
    "networks": ("ID", "Name"),
    "endpoints": ("ID", "Name", "VirtualNetwork", "HostComputeNetwork"),
    "namespaces": ("ID",),
    "routes": ("ID",),
}


class HcnFace:
    """The translation between HCN requests and the service, one method per call."""

    def __init__(self, svc: HostNetworkingService) -> None:
        self.svc = svc
        self.namespaces = Namespaces(svc)

    # -- views --------------------------------------------------------------------------
    def pool(self, nid: str) -> list[dict[str, str]]:
        found: list[dict[str, str]] = json.loads(self.svc.store.get_meta(POOL_KEY + nid) or "[]")
        return found

    def network_json(self, net: Network) -> dict[str, Any]:
        return v.network_view(net, self.pool(net.id))

    def endpoint_json(self, ep: Endpoint) -> dict[str, Any]:
        return v.endpoint_view(ep, self.namespaces.namespace_of(ep))

    @staticmethod
    def namespace_json(ns: Namespace) -> dict[str, Any]:
        return v.namespace_view(ns.id, ns.type, ns.compartment_id, list(ns.endpoint_ids))

    def all(self, kind: str) -> list[dict[str, Any]]:
        svc = self.svc
        if kind == "networks":
            return [self.network_json(n) for n in sorted(svc.nets.values(), key=lambda n: n.name)]
        if kind == "endpoints":
            return [self.endpoint_json(e) for e in svc.all_endpoints()]
        if kind == "namespaces":
            return [self.namespace_json(ns) for ns in self.namespaces.all()]
        return list(modify.routes(svc).values())

    def enumerate(self, kind: str, query: str) -> list[dict[str, Any]]:
        q = (
            parse(HostComputeQuery, _json_arg(query, "query"), "HostComputeQuery")
            if query
            else None
        )
        wanted = q.filter_map() if q is not None else {}
        if q is not None and q.flags not in (0, 1):
            raise InvalidRequest(
                f"HostComputeQuery Flags {q.flags}", "use 0 (None) or 1 (Detailed)"
            )
        keys = {k.lower(): k for k in FILTERS[kind]}
        for key in wanted:
            if key.lower() not in keys:
                raise InvalidRequest(
                    f"HostComputeQuery Filter key {key!r} is not supported for {kind}",
                    f"filter {kind} on: {', '.join(FILTERS[kind])}",
                )
        out = self.all(kind)
        for key, value in wanted.items():
            out = [o for o in out if _matches(o, keys[key.lower()], value)]
        return out

    def get(self, kind: str, oid: str) -> dict[str, Any]:
        found = self.enumerate(kind, json.dumps({"Filter": json.dumps({"ID": oid})}))
        if not found:
            what = {"networks": "Network", "endpoints": "Endpoint", "namespaces": "Namespace"}
            raise NotFound(
                f'{what.get(kind, "SDN Route")} ID "{oid}" not found (Element not found.)',
                f"list them with GET /hcn/{kind}",
                id=oid,
            )
        return found[0]

    # -- create, delete -----------------------------------------------------------------
    def create(self, kind: str, body: Any) -> dict[str, Any]:
        if kind == "networks":
            return self.create_network(parse(HostComputeNetwork, body, "HostComputeNetwork"))
        if kind == "endpoints":
            return self.create_endpoint(parse(HostComputeEndpoint, body, "HostComputeEndpoint"))
        if kind == "namespaces":
            ns = self.namespaces.create(parse(HostComputeNamespace, body, "HostComputeNamespace"))
            return self.namespace_json(ns)
        record = v.route_record(parse(HostComputeRoute, body, "HostComputeRoute"))
        return modify.create_route(self.svc, record)

    def create_network(self, hcn: HostComputeNetwork) -> dict[str, Any]:
        plan = v.network_plan(hcn)
        svc = self.svc
        net = svc.create_network(
            plan.name,
            plan.driver,
            options=plan.options,
            acl_specs=plan.acl_specs,
            addresses=plan.addresses,
            nid=plan.nid,
        )
        if plan.mac_pool:
            svc.store.set_meta(POOL_KEY + net.id, json.dumps(plan.mac_pool))
        return self.network_json(net)

    def create_endpoint(self, hcn: HostComputeEndpoint) -> dict[str, Any]:
        plan = v.endpoint_plan(hcn)
        svc = self.svc
        net = svc.nets.get(plan.network)
        if net is None:
            raise NotFound(
                f'Network ID "{plan.network}" not found (Element not found.)',
                "give the network's ID (GET /hcn/networks) as HostComputeNetwork",
            )
        if plan.mac:
            plan.mac = parse_mac(plan.mac)
        ep = svc.create_endpoint(
            net.id,
            plan.name,
            plan.ip,
            plan.mac,
            plan.policy_specs,
            plan.ip6,
            plan.port_specs,
            plan.eid,
        )
        try:
            if not plan.mac and self.pool(net.id):
                ep.mac = v.mac_from_pool(self.pool(net.id), net, ep.ip)
            if plan.egress_bytes:
                ep.bandwidth = {**ep.bandwidth, "egressRate": plan.egress_bytes * 8}
            if plan.acl:
                svc.set_endpoint_acl(ep, plan.acl)  # stores it too
            else:
                svc.store.update_endpoint(ep)
        except BaseException:
            svc.delete_endpoint(ep.id)
            raise
        return self.endpoint_json(ep)

    def delete(self, kind: str, oid: str) -> dict[str, Any]:
        svc = self.svc
        if kind == "routes":
            modify.delete_route(svc, oid.lower())
            return {}
        found = self.get(kind, oid)
        if kind == "networks":
            errors = svc.remove_network(found["ID"])
            svc.store.set_meta(POOL_KEY + found["ID"], "")
        elif kind == "endpoints":
            errors = svc.delete_endpoint(found["ID"])
        else:
            errors = self.namespaces.delete(found["ID"])
        return {**found, **({"Errors": errors} if errors else {})}

    # -- modify -------------------------------------------------------------------------
    def modify(self, kind: str, oid: str, body: Any) -> dict[str, Any]:
        svc = self.svc
        found = self.get(kind, oid)
        if kind == "networks":
            req: GoModel = parse(ModifyNetworkSettingRequest, body, "ModifyNetworkSettingRequest")
            assert isinstance(req, ModifyNetworkSettingRequest)
            modify.modify_network(
                svc, svc.nets[found["ID"]], req.resource_type, req.request_type, req.settings
            )
        elif kind == "endpoints":
            req = parse(ModifyEndpointSettingRequest, body, "ModifyEndpointSettingRequest")
            assert isinstance(req, ModifyEndpointSettingRequest)
            modify.modify_endpoint(
                svc, svc.endpoint(found["ID"]), req.resource_type, req.request_type, req.settings
            )
        elif kind == "namespaces":
            self.modify_namespace(found["ID"], body)
        else:
            raise InvalidRequest(
                "a route has no Modify in HCN",
                "delete it and create it again with the endpoints changed (as hcsshim does)",
            )
        return self.get(kind, oid)

    def modify_namespace(self, nsid: str, body: Any) -> None:
        req = parse(ModifyNamespaceSettingRequest, body, "ModifyNamespaceSettingRequest")
        if req.resource_type != "Endpoint":
            raise InvalidRequest(
                f"namespace ResourceType {req.resource_type or '(none)'!r} is not supported "
                "(a Container is whatever runs in the compartment: nothing to add)",
                'use ResourceType "Endpoint" with Settings {"EndpointId": "<guid>"}',
            )
        settings = parse(NamespaceEndpointRequest, req.settings or {}, "namespace Endpoint request")
        if req.request_type == "Add":
            self.namespaces.add_endpoint(nsid, settings.endpoint_id)
        elif req.request_type == "Remove":
            self.namespaces.remove_endpoint(nsid, settings.endpoint_id)
        else:
            raise InvalidRequest(
                f"RequestType {req.request_type or '(none)'!r} is not supported for a "
                "namespace's endpoints",
                "use Add or Remove",
            )


def _matches(obj: dict[str, Any], key: str, value: str) -> bool:
    if key == "Name":
        return bool(obj.get("Name") == value)
    field = "HostComputeNetwork" if key == "VirtualNetwork" else key
    return str(obj.get(field, "")).lower() == value.strip("{}").lower()


def _json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"{what} is not JSON ({exc.msg})",
            'give a HostComputeQuery, e.g. {"SchemaVersion":{"Major":2,"Minor":0},'
            '"Filter":"{\\"Name\\":\\"GoTestNat\\"}"}',
        ) from None


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the body is not JSON ({exc})", "send the object's JSON") from None


def _kind(request: web.Request) -> str:
    kind = request.match_info["kind"]
    if kind not in v.KINDS:
        raise NotFound(f"no HCN object kind {kind!r}", f"use one of: {', '.join(v.KINDS)}")
    return kind


def add_routes(
    routes: web.RouteTableDef, svc: HostNetworkingService, call: Call, reply: Reply
) -> None:
    """Register the /hcn routes on the REST app (``call`` runs on the service's thread)."""
    face = HcnFace(svc)

    @routes.get("/hcn/{kind}")
    async def enumerate_(request: web.Request) -> web.Response:
        kind, query = _kind(request), request.query.get("query", "")
        return reply(await call(lambda: face.enumerate(kind, query)))

    @routes.post("/hcn/{kind}")
    async def create(request: web.Request) -> web.Response:
        kind, body = _kind(request), await _body(request)
        return reply(await call(lambda: face.create(kind, body)), status=201)

    @routes.get("/hcn/{kind}/{id}")
    async def get(request: web.Request) -> web.Response:
        kind, oid = _kind(request), request.match_info["id"]
        return reply(await call(lambda: face.get(kind, oid)))

    @routes.delete("/hcn/{kind}/{id}")
    async def delete(request: web.Request) -> web.Response:
        kind, oid = _kind(request), request.match_info["id"]
        return reply(await call(lambda: face.delete(kind, oid)))

    @routes.post("/hcn/{kind}/{id}/modify")
    async def modify_(request: web.Request) -> web.Response:
        kind, oid, body = _kind(request), request.match_info["id"], await _body(request)
        return reply(await call(lambda: face.modify(kind, oid, body)))


__all__ = ["HcnFace", "HostnetError", "add_routes"]
