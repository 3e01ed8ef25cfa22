"""REST routes of endpoints in HCN's order: made unattached, attached, detached, deleted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hostnet.core.service import HostNetworkingService
from hostnet.model import Endpoint
from hostnet.rest import requests as rq
from hostnet.rest import views

Call = Callable[[Callable[[], Any]], Awaitable[Any]]
Parse = Callable[[web.Request, type[Any]], Awaitable[Any]]
Reply = Callable[..., web.Response]


def endpoint_view(svc: HostNetworkingService, ep: Endpoint) -> dict[str, Any]:
    """An endpoint with its name, network, state and namespace."""
    net = svc.nets.get(ep.network_id)
    c = svc.compartment_of(ep)
    return {
        **views.endpoint_view(ep),
        "Name": ep.name,
        "NetworkName": net.name if net else "",
        "State": "attached" if ep.attached else "unattached",
        "Namespace": c.name if c is not None else "",
        "Standalone": ep.standalone,
    }


def add_routes(
    routes: web.RouteTableDef, svc: HostNetworkingService, call: Call, parse: Parse, reply: Reply
) -> None:
    def eid(request: web.Request) -> str:
        return request.match_info["id"]

    @routes.get("/endpoints")
    async def ls(_: web.Request) -> web.Response:
        return reply(await call(lambda: [endpoint_view(svc, e) for e in svc.all_endpoints()]))

    @routes.post("/endpoints")
    async def create(request: web.Request) -> web.Response:
        b = await parse(request, rq.EndpointCreate)

        def made() -> dict[str, Any]:
            ep = svc.create_endpoint(
                b.network, b.name, b.ip, b.mac, list(b.policies), b.ip6, list(b.ports)
            )
            return endpoint_view(svc, ep)

        return reply(await call(made), status=201)

    @routes.get("/endpoints/{id}")
    async def inspect(request: web.Request) -> web.Response:
        return reply(await call(lambda: endpoint_view(svc, svc.endpoint(eid(request)))))

    @routes.delete("/endpoints/{id}")
    async def delete(request: web.Request) -> web.Response:
        return reply({"errors": await call(lambda: svc.delete_endpoint(eid(request)))})

    @routes.post("/endpoints/{id}/attach")
    async def attach(request: web.Request) -> web.Response:
        b = await parse(request, rq.EndpointAttach)
        ep = await call(lambda: svc.attach_endpoint(eid(request), b.namespace))
        return reply(await call(lambda: endpoint_view(svc, ep)))

    @routes.post("/endpoints/{id}/detach")
    async def detach(request: web.Request) -> web.Response:
        ep = await call(lambda: svc.detach_endpoint(eid(request)))
        return reply(await call(lambda: endpoint_view(svc, ep)))
