"""The REST API on a unix socket: a thin adapter over HostNetworkingService."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiohttp import web

from hostnet.cni import adapter as cni
from hostnet.core import acl, extension, reset
from hostnet.core.planning import AddressPlan
from hostnet.core.reconcile import reconcile
from hostnet.core.service import HostNetworkingService
from hostnet.errors import HostnetError, InvalidRequest
from hostnet.hns import v1_routes, v2_routes
from hostnet.rest import endpoint_routes, lifecycle_routes, openapi, views
from hostnet.rest import requests as rq

log = logging.getLogger("hostnet")
Worker = ThreadPoolExecutor
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=rq.Body)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, indent=2))


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HostnetError as exc:
        if exc.status >= 500:
            log.error("%s %s: %s", request.method, request.path, exc)
        return _json({"error": exc.to_dict()}, status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        refused = InvalidRequest(
            f"{request.method} {request.path}: {exc.reason}",
            "see GET /openapi.json for the routes and what they take",
        )
        return _json({"error": {**refused.to_dict(), "kind": "http"}}, status=exc.status)
    except Exception as exc:  # a bug: report it, keep serving
        log.exception("%s %s failed", request.method, request.path)
        err = HostnetError(f"internal error: {exc!r}", "this is a hostnet bug; see the daemon log")
        return _json({"error": err.to_dict()}, status=500)


async def _parse(request: web.Request, model: type[M]) -> M:
    """The body as ``model``: anything else is a 400 naming what was wrong."""
    return rq.parse(model, await request.read())


def build_app(
    svc: HostNetworkingService, worker: Worker, on_reset: Callable[[], None] | None = None
) -> web.Application:
    """Routes; every service call runs on the service's own thread (``worker``).
    ``on_reset`` is called after a reset: the daemon stops and removes its state."""
    routes = web.RouteTableDef()

    async def call(fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(worker, fn)

    @routes.get("/_ping")
    async def ping(_: web.Request) -> web.Response:
        return _json({"ok": True, "instance": svc.instance})

    @routes.get("/openapi.json")
    async def openapi_doc(_: web.Request) -> web.Response:
        return web.json_response(openapi.document())

    @routes.get("/cluster/hosts")
    async def cluster_hosts(_: web.Request) -> web.Response:
        return _json(await call(svc.cluster_hosts))

    @routes.delete("/cluster/hosts/{host}")
    async def cluster_forget(request: web.Request) -> web.Response:
        host = request.match_info["host"]
        return _json({"EndpointsRemoved": await call(lambda: svc.forget_host(host))})

    @routes.get("/networks")
    async def network_ls(_: web.Request) -> web.Response:
        def ls() -> list[dict[str, Any]]:
            nets = sorted(svc.nets.values(), key=lambda n: n.name)
            docker = svc.docker_presence()
            return [views.network_summary(n, docker) for n in nets]

        return _json(await call(ls))

    @routes.post("/networks")
    async def network_create(request: web.Request) -> web.Response:
        b = await _parse(request, rq.NetworkCreate)
        args = (b.name, b.driver, b.subnet, b.gateway, b.option_strings())
        addresses = AddressPlan(
            subnets=list(b.subnets),
            gateways=list(b.gateways),
            ip_ranges=list(b.ip_ranges),
            aux=dict(b.aux_addresses),
            ipv6=b.ipv6,
            ipv4=b.ipv4,
        )

        def create() -> dict[str, Any]:
            net = svc.create_network(
                *args, acl_specs=b.acl, addresses=addresses, internal=b.internal
            )
            return views.network_inspect(svc, net)

        return _json(await call(create), status=201)

    @routes.post("/networks/prune")
    async def network_prune(_: web.Request) -> web.Response:
        return _json({"NetworksDeleted": await call(svc.prune)})

    @routes.get("/networks/{ref}")
    async def network_inspect(request: web.Request) -> web.Response:
        ref = request.match_info["ref"]
        return _json(await call(lambda: views.network_inspect(svc, svc.network(ref))))

    @routes.delete("/networks/{ref}")
    async def network_rm(request: web.Request) -> web.Response:
        ref, force = request.match_info["ref"], request.query.get("force", "") in ("1", "true")
        return _json({"errors": await call(lambda: svc.remove_network(ref, force))})

    @routes.post("/networks/{ref}/connect")
    async def network_connect(request: web.Request) -> web.Response:
        b, ref = await _parse(request, rq.Connect), request.match_info["ref"]
        ep = await call(
            lambda: svc.connect(
                ref, b.container, b.ip, b.aliases, b.max_bandwidth, list(b.policies), b.ip6
            )
        )
        return _json(views.endpoint_view(ep), status=201)

    @routes.post("/networks/{ref}/disconnect")
    async def network_disconnect(request: web.Request) -> web.Response:
        b, ref = await _parse(request, rq.Disconnect), request.match_info["ref"]
        return _json({"errors": await call(lambda: svc.disconnect(ref, b.container))})

    @routes.post("/networks/{ref}/docker")
    async def network_keep_in_docker(request: web.Request) -> web.Response:
        net = await call(lambda: svc.keep_in_docker(request.match_info["ref"]))
        return _json(views.network_summary(net, svc.docker_presence()))

    @routes.get("/containers")
    async def container_ls(_: web.Request) -> web.Response:
        def ls() -> list[dict[str, Any]]:
            cs = sorted(svc.containers.values(), key=lambda c: c.compartment_id)
            return [views.container_view(svc, c) for c in cs]

        return _json(await call(ls))

    @routes.post("/containers")
    async def container_create(request: web.Request) -> web.Response:
        b = await _parse(request, rq.ContainerCreate)
        nets = [n.model_dump() for n in b.networks]

        def create() -> dict[str, Any]:
            c = svc.create_container(
                b.name, nets, b.ports, b.acl, b.max_bandwidth, list(b.policies)
            )
            return views.container_view(svc, c)

        return _json(await call(create), status=201)

    @routes.get("/containers/{ref}")
    async def container_inspect(request: web.Request) -> web.Response:
        ref = request.match_info["ref"]
        return _json(await call(lambda: views.container_view(svc, svc.container(ref))))

    @routes.post("/containers/{ref}/process")
    async def container_process(request: web.Request) -> web.Response:
        b, ref = await _parse(request, rq.Process), request.match_info["ref"]
        pid = b.pid
        return _json(await call(lambda: views.container_view(svc, svc.register_process(ref, pid))))

    @routes.delete("/containers/{ref}")
    async def container_rm(request: web.Request) -> web.Response:
        ref = request.match_info["ref"]
        return _json({"errors": await call(lambda: svc.remove_container(ref))})

    @routes.post("/containers/{ref}/ports")
    async def ports_add(request: web.Request) -> web.Response:
        b, ref = await _parse(request, rq.Ports), request.match_info["ref"]
        specs = b.ports
        added = await call(lambda: svc.add_ports(ref, specs))
        return _json([p.model_dump() for p in added], status=201)

    @routes.post("/containers/{ref}/ports/remove")
    async def ports_rm(request: web.Request) -> web.Response:
        b, ref = await _parse(request, rq.Ports), request.match_info["ref"]
        specs = b.ports
        gone = await call(lambda: svc.remove_ports(ref, specs))
        return _json([p.model_dump() for p in gone])

    @routes.post("/cni")
    async def cni_call(request: web.Request) -> web.Response:
        """A CNI call forwarded as is by the shim: command and environment in headers."""
        h = request.headers
        env = {
            "containerID": h.get("X-Cni-Containerid", ""),
            "netns": h.get("X-Cni-Netns", ""),
            "ifname": h.get("X-Cni-Ifname", ""),
            "args": h.get("X-Cni-Args", ""),
        }
        command, raw = h.get("X-Cni-Command", ""), await request.read()
        code, out = await call(lambda: cni.handle(svc, command, env, raw))
        return web.Response(text=out, headers={"X-Cni-Exit": str(code)})

    @routes.get("/containers/{ref}/endpoint")
    async def endpoint_inspect(request: web.Request) -> web.Response:
        ref, net = request.match_info["ref"], request.query.get("network", "")
        return _json(await call(lambda: views.endpoint_hns(svc, svc.endpoint_for(ref, net))))

    @routes.put("/containers/{ref}/acl")
    async def acl_set(request: web.Request) -> web.Response:
        b, ref = await _parse(request, rq.AclSet), request.match_info["ref"]
        rules = [acl.parse_rule(spec) for spec in b.rules]
        net = b.network
        ep = await call(lambda: svc.set_acl(ref, rules, net))
        return _json(views.endpoint_hns(svc, ep))

    @routes.get("/compartments")
    async def compartment_ls(_: web.Request) -> web.Response:
        return _json(await call(lambda: views.compartments(svc)))

    @routes.get("/nat")
    async def nat_ls(_: web.Request) -> web.Response:
        return _json(await call(lambda: views.nat_table(svc)))

    @routes.get("/switches")
    async def switch_ls(_: web.Request) -> web.Response:
        return _json(await call(lambda: views.switches(svc)))

    @routes.get("/switches/{name}/extension")
    async def switch_extension(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return _json(await call(lambda: extension.switch_extension(svc, name)))

    @routes.post("/system/reconcile")
    async def system_reconcile(_: web.Request) -> web.Response:
        return _json(await call(lambda: reconcile(svc)))

    lifecycle_routes.add_routes(routes, svc, call, _parse, _json)
    endpoint_routes.add_routes(routes, svc, call, _parse, _json)
    v2_routes.add_routes(routes, svc, call, _json)  # /hcn: HCN's v2 objects

    @routes.get("/system/info")
    async def system_info(_: web.Request) -> web.Response:
        return _json(await call(lambda: views.system_info(svc)))

    @routes.get("/system/reset")
    async def system_reset_plan(_: web.Request) -> web.Response:
        return _json(await call(lambda: reset.plan(svc)))

    @routes.post("/system/reset")
    async def system_reset(request: web.Request) -> web.Response:
        if not (await _parse(request, rq.Reset)).confirm:
            raise InvalidRequest(
                'a reset removes everything this daemon made: it needs {"confirm": true}',
                "run 'hostnet system reset' (it asks first), or send the body as said",
            )
        report = await call(lambda: reset.reset(svc))
        if on_reset is not None:
            on_reset()
        return _json(report)

    app = web.Application(middlewares=[errors])
    app.add_routes(routes)
    app.add_subapp(v1_routes.PREFIX, v1_routes.build_app(svc, call))
    return app
