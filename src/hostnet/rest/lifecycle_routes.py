"""REST routes of the seed's lifecycle: create stopped, start, stop, adapters, mappings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hostnet.core import lifecycle
from hostnet.core.service import HostNetworkingService
from hostnet.model import Adapter
from hostnet.rest import requests as rq
from hostnet.rest import views

Call = Callable[[Callable[[], Any]], Awaitable[Any]]
Parse = Callable[[web.Request, type[Any]], Awaitable[Any]]
Reply = Callable[..., web.Response]


def adapter_view(svc: HostNetworkingService, ref: str, a: Adapter, how: str = "") -> dict[str, Any]:
    """An adapter as Get-ContainerNetworkAdapter shows it, with its endpoint's address."""
    c = svc.container(ref)
    net = svc.nets.get(a.network_id)
    ep = next((e for e in svc.endpoints_of(c) if e.network_id == a.network_id), None)
    return {
        "ContainerName": c.name,
        "Name": a.name,
        "NetworkId": a.network_id,
        "Network": net.name if net else "",
        "SwitchName": net.options.get("networkname", net.name) if net else "",
        "StaticMacAddress": a.static_mac,
        "StaticIPAddress": a.static_ip,
        "MaximumBandwidth": a.max_bandwidth,
        "Mappings": list(a.mappings),
        "IPAddress": ep.ip if ep else "",
        "IPv6Address": ep.ip6 if ep else "",
        "MacAddress": ep.mac if ep else "",
        "Interface": ep.ifname if ep else "",
        **({"Applied": how} if how else {}),
    }


def add_routes(
    routes: web.RouteTableDef, svc: HostNetworkingService, call: Call, parse: Parse, reply: Reply
) -> None:
    def ref_of(request: web.Request) -> str:
        return request.match_info["ref"]

    @routes.post("/containers/create")
    async def create(request: web.Request) -> web.Response:
        b = await parse(request, rq.LifecycleCreate)
        specs = [{k: v for k, v in a.model_dump().items() if v not in ("", [])} for a in b.adapters]

        def made() -> dict[str, Any]:
            c = lifecycle.create(svc, b.name, specs, b.command, b.image)
            return views.container_view(svc, c)

        return reply(await call(made), status=201)

    @routes.post("/containers/{ref}/start")
    async def start(request: web.Request) -> web.Response:
        ref = ref_of(request)
        return reply(await call(lambda: views.container_view(svc, lifecycle.start(svc, ref))))

    @routes.post("/containers/{ref}/stop")
    async def stop(request: web.Request) -> web.Response:
        b, ref = await parse(request, rq.Stop), ref_of(request)
        return reply(
            await call(lambda: views.container_view(svc, lifecycle.stop(svc, ref, b.grace)))
        )

    @routes.get("/containers/{ref}/adapters")
    async def adapters(request: web.Request) -> web.Response:
        ref = ref_of(request)
        return reply(
            await call(lambda: [adapter_view(svc, ref, a) for a in svc.container(ref).adapters])
        )

    @routes.post("/containers/{ref}/adapters")
    async def adapter_add(request: web.Request) -> web.Response:
        b, ref = await parse(request, rq.AdapterSpec), ref_of(request)
        spec = {k: v for k, v in b.model_dump().items() if v not in ("", [])}

        def add() -> dict[str, Any]:
            return adapter_view(svc, ref, *lifecycle.add_adapter(svc, ref, spec))

        return reply(await call(add), status=201)

    @routes.post("/containers/{ref}/adapters/{name}")
    async def adapter_set(request: web.Request) -> web.Response:
        b, ref, name = (
            await parse(request, rq.AdapterChange),
            ref_of(request),
            request.match_info["name"],
        )
        changes = {k: v for k, v in b.model_dump().items() if v is not None}

        def change() -> dict[str, Any]:
            return adapter_view(svc, ref, *lifecycle.set_adapter(svc, ref, name, changes))

        return reply(await call(change))

    @routes.delete("/containers/{ref}/adapters/{name}")
    async def adapter_rm(request: web.Request) -> web.Response:
        ref, name = ref_of(request), request.match_info["name"]
        return reply({"Applied": await call(lambda: lifecycle.remove_adapter(svc, ref, name))})

    @routes.post("/containers/{ref}/adapters/{name}/mappings")
    async def mapping_add(request: web.Request) -> web.Response:
        b, ref, name = await parse(request, rq.Mapping), ref_of(request), request.match_info["name"]

        def add() -> dict[str, Any]:
            return adapter_view(svc, ref, *lifecycle.add_mapping(svc, ref, name, b.mapping))

        return reply(await call(add), status=201)

    @routes.post("/containers/{ref}/adapters/{name}/mappings/remove")
    async def mapping_rm(request: web.Request) -> web.Response:
        b, ref, name = await parse(request, rq.Mapping), ref_of(request), request.match_info["name"]

        def rm() -> dict[str, Any]:
            return adapter_view(svc, ref, *lifecycle.remove_mapping(svc, ref, name, b.mapping))

        return reply(await call(rm))

    @routes.get("/containers/{ref}/ipconfig")
    async def ipconfig(request: web.Request) -> web.Response:
        ref = ref_of(request)
        return reply(await call(lambda: views.ipconfig(svc, svc.container(ref))))
