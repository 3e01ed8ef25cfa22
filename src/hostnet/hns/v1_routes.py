"""HNS v1 on hostnetd's socket, under ``/hns``: the calls hcsshim's ``internal/hns`` makes.

Every answer is HNS's envelope: ``{"Success": true, "Error": "", "Output": ...}``, or
``{"Success": false, "Error": "what, why, what to do"}`` with the refusal's 4xx status
(a hostnet bug: 500). hcsshim reads only the envelope, so the status is for people and
scripts. The objects are the service's own (``hostnet network ls`` shows them); this
module translates (``v1_views``) and keeps no state.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hostnet.core.planning import AddressPlan
from hostnet.core.service import HostNetworkingService
from hostnet.errors import Conflict, HostnetError, InvalidRequest, NotFound
from hostnet.hns import v1_views as v
from hostnet.hns.gojson import parse
from hostnet.hns.policies import PolicyRefused, lookup, refusal
from hostnet.hns.schema_v1 import (
    EndpointAttachDetachRequest,
    EndpointStats,
    HNSEndpoint,
    HNSNetwork,
    HNSResponse,
    PolicyList,
)
from hostnet.hns.versions import globals_version_answer
from hostnet.model import Endpoint, Network
from hostnet.rest import requests as rq

log = logging.getLogger("hostnet")
Call = Callable[[Callable[[], Any]], Awaitable[Any]]
Handler = Callable[[web.Request], Awaitable[Any]]
PREFIX = "/hns"
NOT_FOUND = "Element not found."  # the Win32 text (0x490) hcsshim's namespace helpers match
ALREADY = "This endpoint is already attached to the switch."  # flannel accepts this text


def envelope(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler's result as ``Output``; its refusal as ``Success: false``."""

    async def run(request: web.Request) -> web.Response:
        try:
            return web.json_response(HNSResponse.ok(await handler(request)))
        except HostnetError as exc:
            if exc.status >= 500:
                log.error("%s %s: %s", request.method, request.path, exc)
            return web.json_response(HNSResponse.failed(error_text(exc)), status=exc.status)
        except web.HTTPException as exc:  # aiohttp's own refusal, e.g. a body over its limit
            if exc.status < 400:
                raise
            text = f"{request.method} {request.path}: {exc.reason}: send a smaller, valid body"
            return web.json_response(HNSResponse.failed(text), status=exc.status)
        except Exception as exc:  # a bug: report it, keep serving
            log.exception("%s %s failed", request.method, request.path)
            text = f"internal error ({type(exc).__name__}): this is a hostnet bug; see the log"
            return web.json_response(HNSResponse.failed(text), status=500)

    return run


def error_text(exc: HostnetError) -> str:
    """What, why and what to do, in one line (a missing object also says NOT_FOUND)."""
    if isinstance(exc, NotFound):
        return f"{exc.message}: {NOT_FOUND} {exc.remedy}"
    return f"{exc.message}: {exc.remedy}"


async def body(request: web.Request, model: type[Any], what: str) -> Any:
    return parse(model, rq.load(await request.read()), what)


# -- look-ups (on the service's thread) ---------------------------------------------------
def find_network(svc: HostNetworkingService, ref: str) -> Network:
    for nid in v.id_candidates(ref):
        if nid in svc.nets:
            return svc.nets[nid]
    raise NotFound(f"no network with ID {ref!r}", "list them with GET /hns/networks/")


def find_endpoint(svc: HostNetworkingService, ref: str) -> Endpoint:
    for eid in v.id_candidates(ref):
        ep = svc.index.endpoint(eid)
        if ep is not None:
            return ep
    raise NotFound(f"no endpoint with ID {ref!r}", "list them with GET /hns/endpoints/")


def network_json(svc: HostNetworkingService, net: Network) -> dict[str, Any]:
    host_vnic = next((e.ip for e in svc.endpoints_on(net) if e.on_host), "")
    holds_gateway = svc.driver_of(net).publishes_ports
    return v.network_view(net, v.management_ip(net, host_vnic, holds_gateway))


def endpoint_json(svc: HostNetworkingService, ep: Endpoint) -> dict[str, Any]:
    c = svc.compartment_of(ep)
    cid = c.id if c is not None and not ep.on_host else ""
    return v.endpoint_view(ep, svc.nets.get(ep.network_id), cid)


def endpoint_network(svc: HostNetworkingService, e: HNSEndpoint) -> Network:
    if e.virtual_network:
        return find_network(svc, e.virtual_network)
    if e.virtual_network_name:
        net = svc.index.network_named(e.virtual_network_name)
        if net is None:
            raise NotFound(
                f"no network named {e.virtual_network_name!r}",
                "list them with GET /hns/networks/",
            )
        return net
    raise InvalidRequest(
        "an HNSEndpoint needs VirtualNetwork (the network's ID) or VirtualNetworkName",
        'e.g. "VirtualNetwork": "<ID from GET /hns/networks/>"',
    )


def create_network(svc: HostNetworkingService, n: HNSNetwork) -> dict[str, Any]:
    req = v.network_request(n)
    plan = AddressPlan(subnets=req.subnets, gateways=req.gateways)
    net = svc.create_network(req.name, req.driver, options=req.options, addresses=plan, nid=req.nid)
    return network_json(svc, net)


def create_endpoint(svc: HostNetworkingService, e: HNSEndpoint) -> dict[str, Any]:
    req = v.endpoint_request(e, endpoint_network(svc, e))
    ep = svc.create_endpoint(
        req.network,
        req.name,
        req.ip,
        req.mac,
        req.policies,
        req.ip6,
        req.port_specs,
        eid=req.eid,
    )
    if req.acl:
        try:
            ep = svc.set_endpoint_acl(ep, req.acl)
        except BaseException:
            svc.delete_endpoint(ep.id)
            raise
    return endpoint_json(svc, ep)


def attach(svc: HostNetworkingService, ref: str, a: EndpointAttachDetachRequest) -> Endpoint:
    ep = find_endpoint(svc, ref)
    if ep.attached:
        c = svc.compartment_of(ep)
        raise Conflict(
            f"endpoint {ep.id} is attached already (to {c.name if c else ep.container_id}): "
            f"{ALREADY}",
            "detach it first (POST /hns/endpoints/{id}/detach)",
        )
    return svc.attach_endpoint(ep.id, namespace_of(svc, a))


def namespace_of(svc: HostNetworkingService, a: EndpointAttachDetachRequest) -> str:
    """The attach's target as the service names it: a container's id, or "host"."""
    if a.system_type == "Host":
        if a.container_id:
            raise InvalidRequest(
                "SystemType Host takes no ContainerId", "leave ContainerId out, or use Container"
            )
        if a.compartment_id not in (0, svc.host_compartment.compartment_id):
            raise InvalidRequest(
                f"CompartmentId {a.compartment_id} is not the host's default compartment (1)",
                "give CompartmentId 1, or leave it out",
            )
        return "host"
    if a.system_type == "Container":
        if not a.container_id:
            raise InvalidRequest(
                "SystemType Container needs a ContainerId",
                "give a container's id or name (hostnet ps)",
            )
        c = svc.container(a.container_id)
        if a.compartment_id and a.compartment_id != c.compartment_id:
            raise InvalidRequest(
                f"container {c.name!r} is compartment {c.compartment_id}, not {a.compartment_id}",
                "leave CompartmentId out, or give the container's (hostnet compartment ls)",
            )
        return c.id
    if a.system_type == "VirtualMachine":
        raise InvalidRequest(
            "SystemType VirtualMachine is not supported by hostnet: it runs no VMs, so there is "
            "no VM NIC to attach",
            "attach to a Container or the Host",
        )
    raise InvalidRequest(
        "an attach or detach needs SystemType", 'give "Container" (with ContainerId) or "Host"'
    )


def detach(svc: HostNetworkingService, ref: str, a: EndpointAttachDetachRequest) -> Endpoint:
    ep = find_endpoint(svc, ref)
    if not ep.attached:
        raise Conflict(f"endpoint {ep.id} is not attached", "attach it first, or delete it")
    wanted = namespace_of(svc, a)
    have = "host" if ep.on_host else ep.container_id
    if wanted != have:
        c = svc.compartment_of(ep)
        raise Conflict(
            f"endpoint {ep.id} is attached to {c.name if c else have!r}, not to the "
            f"{a.system_type.lower()} named",
            "give the container (or Host) it is attached to",
        )
    return svc.detach_endpoint(ep.id)


def stats(svc: HostNetworkingService, ref: str) -> dict[str, Any]:
    """The endpoint's counters as it sees them: what its vNIC's host end received is what
    the endpoint sent. Unattached: no vNIC, all zero."""
    ep = find_endpoint(svc, ref)
    c = svc.compartment_of(ep)
    s = svc.host.link_stats(ep.host_ifname) if ep.attached else None
    s = s or {}
    counters = {
        "BytesSent": s.get("rx_bytes", 0),
        "BytesReceived": s.get("tx_bytes", 0),
        "PacketsSent": s.get("rx_packets", 0),
        "PacketsReceived": s.get("tx_packets", 0),
        "DroppedPacketsOutgoing": s.get("rx_dropped", 0),
        "DroppedPacketsIncoming": s.get("tx_dropped", 0),
        "EndpointId": ep.id,
        "InstanceId": c.id if c is not None and not ep.on_host else "",
    }
    return EndpointStats.model_validate(counters).to_json()


def refuse_policy_list(p: PolicyList) -> None:
    """Policy lists are load balancers (ELB) and shared routes: not here yet."""
    for pol in p.policies or []:
        name = _type(pol)
        entry = lookup("v1", name) if name else None  # an unknown Type is named
        if entry is not None and entry.name == "ELB":
            raise refusal(entry)
    raise PolicyRefused(
        "policy lists are not supported by hostnet yet: ELB policy lists (load balancers) "
        "belong to issue 23, and ROUTE lists shared by endpoints come with them",
        "leave them out; give a ROUTE as an endpoint's own policy instead",
    )


def _type(pol: Any) -> str:
    if isinstance(pol, dict):
        return next((str(x) for k, x in pol.items() if str(k).lower() == "type"), "")
    return ""


@web.middleware
async def unrouted(request: web.Request, handler: Handler) -> web.StreamResponse:
    """What no route takes (an unknown call, a wrong method, a malformed id) still gets
    the envelope hcsshim reads."""
    try:
        resp: web.StreamResponse = await handler(request)
        return resp
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        text = (
            f"{request.method} {request.path} is not an HNS v1 call hostnet answers "
            f"({exc.reason}): see GET /openapi.json for the /hns calls and their methods"
        )
        if exc.status == 404:
            text += f" ({NOT_FOUND})"
        return web.json_response(HNSResponse.failed(text), status=exc.status)


def build_app(svc: HostNetworkingService, call: Call) -> web.Application:
    """The v1 calls, an application mounted at PREFIX (``app.add_subapp``)."""
    routes = web.RouteTableDef()
    add_routes(routes, svc, call)
    app = web.Application(middlewares=[unrouted])
    app.add_routes(routes)
    return app


def add_routes(routes: web.RouteTableDef, svc: HostNetworkingService, call: Call) -> None:
    """Register the v1 calls (paths relative to PREFIX)."""

    def ref(request: web.Request) -> str:
        return request.match_info["id"]

    def get(path: str) -> Callable[[Handler], Any]:
        return lambda h: routes.get(path)(envelope(h))

    def post(path: str) -> Callable[[Handler], Any]:
        return lambda h: routes.post(path)(envelope(h))

    def delete(path: str) -> Callable[[Handler], Any]:
        return lambda h: routes.delete(path)(envelope(h))

    @get("/globals/version")
    async def version(_: web.Request) -> Any:
        return globals_version_answer()

    @get("/networks/")
    async def network_ls(_: web.Request) -> Any:
        def ls() -> list[dict[str, Any]]:
            nets = sorted(svc.nets.values(), key=lambda n: n.name)
            return [network_json(svc, n) for n in nets]

        return await call(ls)

    @post("/networks/")
    async def network_create(request: web.Request) -> Any:
        n = await body(request, HNSNetwork, "HNSNetwork")
        return await call(lambda: create_network(svc, n))

    @get("/networks/{id}")
    async def network_get(request: web.Request) -> Any:
        return await call(lambda: network_json(svc, find_network(svc, ref(request))))

    @delete("/networks/{id}")
    async def network_rm(request: web.Request) -> Any:
        def rm() -> dict[str, Any]:
            net = find_network(svc, ref(request))
            view = network_json(svc, net)
            errors = svc.remove_network(net.id)
            return {**view, "HostnetTeardownErrors": errors} if errors else view

        return await call(rm)

    @get("/endpoints/")
    async def endpoint_ls(_: web.Request) -> Any:
        return await call(lambda: [endpoint_json(svc, e) for e in svc.all_endpoints()])

    @post("/endpoints/")
    async def endpoint_create(request: web.Request) -> Any:
        e = await body(request, HNSEndpoint, "HNSEndpoint")
        return await call(lambda: create_endpoint(svc, e))

    @get("/endpoints/{id}")
    async def endpoint_get(request: web.Request) -> Any:
        return await call(lambda: endpoint_json(svc, find_endpoint(svc, ref(request))))

    @post("/endpoints/{id}")
    async def endpoint_update(request: web.Request) -> Any:
        await body(request, HNSEndpoint, "HNSEndpoint")
        await call(lambda: find_endpoint(svc, ref(request)))
        raise InvalidRequest(
            "updating an endpoint through /hns (HNSEndpoint.Update, ApplyACLPolicy) is not "
            "supported yet",
            "delete the endpoint and create it with the policies it should have",
        )

    @delete("/endpoints/{id}")
    async def endpoint_rm(request: web.Request) -> Any:
        def rm() -> dict[str, Any]:
            ep = find_endpoint(svc, ref(request))
            view = endpoint_json(svc, ep)
            errors = svc.delete_endpoint(ep.id)
            return {**view, "HostnetTeardownErrors": errors} if errors else view

        return await call(rm)

    @post("/endpoints/{id}/attach")
    async def endpoint_attach(request: web.Request) -> Any:
        a = await body(request, EndpointAttachDetachRequest, "EndpointAttachDetachRequest")
        return await call(lambda: endpoint_json(svc, attach(svc, ref(request), a)))

    @post("/endpoints/{id}/detach")
    async def endpoint_detach(request: web.Request) -> Any:
        a = await body(request, EndpointAttachDetachRequest, "EndpointAttachDetachRequest")
        return await call(lambda: endpoint_json(svc, detach(svc, ref(request), a)))

    @get("/endpointstats/{id}")
    async def endpoint_stats(request: web.Request) -> Any:
        return await call(lambda: stats(svc, ref(request)))

    @get("/policylists/")
    async def policylist_ls(_: web.Request) -> Any:
        return []  # no load balancers yet (issue 23): kube-proxy's probe succeeds

    @post("/policylists/")
    async def policylist_create(request: web.Request) -> Any:
        refuse_policy_list(await body(request, PolicyList, "PolicyList"))

    @get("/policylists/{id}")
    async def policylist_get(request: web.Request) -> Any:
        raise NotFound(f"no policy list with ID {ref(request)!r}", "GET /hns/policylists/")

    @delete("/policylists/{id}")
    async def policylist_rm(request: web.Request) -> Any:
        raise NotFound(f"no policy list with ID {ref(request)!r}", "GET /hns/policylists/")
