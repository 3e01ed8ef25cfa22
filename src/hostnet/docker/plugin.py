"""Docker's v1 plugin protocol (remote NetworkDriver + IpamDriver), one socket per driver.

``docker network create -d nat`` finds ``nat.sock`` in Docker's plugin directory;
every hostnet driver is served under its own name, and hostnet's overlay under
``hostnet-overlay`` (Docker on Linux has a built-in ``overlay``). Errors reach
the docker CLI as ``{"Err": "..."}`` carrying hostnet's own message and remedy.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from hostnet.core.service import FUTURE_DRIVERS, HostNetworkingService
from hostnet.docker import binding as bind
from hostnet.docker import endpoints as dk
from hostnet.docker.ipam import IpamPools
from hostnet.drivers import registry
from hostnet.errors import HostnetError, InvalidRequest
from hostnet.rest import requests as rq

log = logging.getLogger("hostnet")
DRIVER_NAMES = registry.docker_names()  # plugin name -> hostnet driver (the registry's)
# The IPAM driver is its own plugin: Docker 20.10 hangs when one plugin is both.
IPAM_NAME = "hostnet-ipam"
SOCKET_NAMES = [*DRIVER_NAMES, IPAM_NAME]


def _none(_: object) -> dict[str, Any]:
    return {}


def _ok(data: dict[str, Any] | None = None) -> web.Response:
    return web.json_response(data or {}, content_type="application/vnd.docker.plugins.v1+json")


def _err(exc: HostnetError, key: str = "Err") -> web.Response:
    # never 404 (a missing endpoint or network answers 409: Docker's view and hostnet's
    # disagree): Docker takes a 404 for "method not implemented" and silently skips
    # ProgramExternalConnectivity (ports never mapped) instead of reporting the error.
    # 404 stays for paths this socket does not serve.
    status = 409 if exc.status == 404 else exc.status
    return _err_text(exc.message + (f". {exc.remedy}" if exc.remedy else ""), key, status)


def _err_text(text: str, key: str, status: int) -> web.Response:
    """An error answer. Docker's plugin client reads "Err" from any answer that is not
    200 (the IPAM protocol's "Error" only from a 200 one), so both carry the text: the
    docker CLI shows it as written, never the JSON around it."""
    return web.json_response({key: text, "Err": text}, status=status if status >= 400 else 500)


DockerLookup = Callable[[str], "dict[str, Any] | None"]


def _no_docker(_: str) -> dict[str, Any] | None:
    return None


def build_driver_app(
    svc: HostNetworkingService,
    worker: ThreadPoolExecutor,
    name: str,
    pools: IpamPools,
    docker_view: DockerLookup = _no_docker,
) -> web.Application:
    """``docker_view``: Docker's own view of a Docker network by id (None when Docker
    cannot be asked), for Docker networks hostnet has no record of."""
    driver = DRIVER_NAMES.get(name, "nat")
    is_ipam = name == IPAM_NAME

    async def call(fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(worker, fn)

    async def run_rebinding(fn: Callable[[], Any]) -> Any:
        try:
            return await call(fn)
        except bind.Unbound as exc:
            docker_id = exc.docker_id
        # asked outside the service's threads: Docker may be slow, or wait for us
        view = await asyncio.get_running_loop().run_in_executor(None, docker_view, docker_id)
        await call(lambda: dk.rebind(svc, driver, docker_id, view))
        return await call(fn)

    def handler(
        fn: Callable[[Any], Any], model: type[rq.Plugin], err_key: str = "Err"
    ) -> Callable[..., Any]:
        async def run(request: web.Request) -> web.Response:
            try:
                data = rq.validated(model, rq.load(await request.read()))
                log.debug("docker %s %s %s", name, request.path, data)
                if driver in FUTURE_DRIVERS and not is_ipam:
                    svc.driver(driver)  # raises "driver not available yet"
                result = await run_rebinding(lambda: fn(data))
                return _ok(result)
            except HostnetError as exc:
                log.info("docker %s %s: %s", name, request.path, exc)
                return _err(exc, err_key)

        return run

    def create_network(d: rq.CreateNetwork) -> dict[str, Any]:
        generic = d.Options.get("com.docker.network.generic") or {}
        if not isinstance(generic, dict):
            raise InvalidRequest(
                "option com.docker.network.generic must be an object of strings",
                "pass driver options with docker network create -o key=value",
            )
        where = "Options['com.docker.network.generic']"
        opts = {**d.Options, "com.docker.network.generic": rq.strings(generic, where)}
        dk.create_network(
            svc,
            driver,
            d.NetworkID,
            opts,
            [x.model_dump() for x in d.IPv4Data or []],
            [x.model_dump() for x in d.IPv6Data or []],
            ranges=pools.sub_pool,
        )
        return {}

    def create_endpoint(d: rq.CreateEndpoint) -> dict[str, Any]:
        iface = d.Interface or rq.DockerInterface()
        ep = dk.create_endpoint(
            svc,
            d.NetworkID,
            d.EndpointID,
            iface.Address,
            iface.MacAddress,
            iface.AddressIPv6,
            pending=pools.pending_rebound(),
        )
        # Docker takes from the answer only what it did not send (it refuses to change an
        # address it set)
        out: dict[str, Any] = {}
        if not iface.MacAddress:
            out["MacAddress"] = ep.mac
        if not iface.Address and ep.ip:
            out["Address"] = f"{ep.ip}/{ep.prefix_len}"
        if not iface.AddressIPv6 and ep.ip6:
            out["AddressIPv6"] = f"{ep.ip6}/{ep.prefix_len6}"
        return {"Interface": out} if out else {}

    def join(d: rq.Join) -> dict[str, Any]:
        ep = dk.join(svc, d.EndpointID, d.SandboxKey)
        return {
            "InterfaceName": {"SrcName": ep.ifname, "DstPrefix": "eth"},
            "Gateway": ep.gateway,
            "GatewayIPv6": ep.gateway6 if ep.ip6 else "",
            "StaticRoutes": [],
            "DisableGatewayService": False,
        }

    def program(d: rq.Program) -> dict[str, Any]:
        maps = d.Options.get("com.docker.network.portmap") or []
        dk.program_ports(svc, d.EndpointID, rq.portmap(maps))
        return {}

    def oper_info(d: rq.EndpointRef) -> dict[str, Any]:
        _, ep = dk.endpoint(svc, d.EndpointID)
        return {"Value": {"com.docker.network.portmap": dk.port_bindings(ep)}}

    def request_pool(d: rq.RequestPool) -> dict[str, Any]:
        opts = rq.strings(d.Options or {}, "Options")
        return pools.request_pool(d.Pool, d.SubPool, opts, d.V6)

    def request_address(d: rq.RequestAddress) -> dict[str, Any]:
        return pools.request_address(d.PoolID, d.Address, rq.strings(d.Options or {}, "Options"))

    A = rq.Anything
    routes: dict[str, tuple[Callable[[Any], Any], type[rq.Plugin]]] = {
        "/Plugin.Activate": (
            lambda d: {"Implements": ["IpamDriver" if is_ipam else "NetworkDriver"]},
            A,
        ),
        "/NetworkDriver.GetCapabilities": (
            lambda d: {"Scope": "local", "ConnectivityScope": "local"},
            A,
        ),
        "/NetworkDriver.CreateNetwork": (create_network, rq.CreateNetwork),
        "/NetworkDriver.DeleteNetwork": (
            lambda d: _none(dk.delete_network(svc, d.NetworkID)),
            rq.NetworkRef,
        ),
        "/NetworkDriver.CreateEndpoint": (create_endpoint, rq.CreateEndpoint),
        "/NetworkDriver.EndpointOperInfo": (oper_info, rq.EndpointRef),
        "/NetworkDriver.DeleteEndpoint": (
            lambda d: _none(dk.delete_endpoint(svc, d.EndpointID)),
            rq.EndpointRef,
        ),
        "/NetworkDriver.Join": (join, rq.Join),
        "/NetworkDriver.Leave": (lambda d: {}, A),
        "/NetworkDriver.ProgramExternalConnectivity": (program, rq.Program),
        "/NetworkDriver.RevokeExternalConnectivity": (
            lambda d: dk.revoke_ports(svc, d.EndpointID) or {},
            rq.EndpointRef,
        ),
        "/NetworkDriver.DiscoverNew": (lambda d: {}, A),
        "/NetworkDriver.DiscoverDelete": (lambda d: {}, A),
    }
    ipam_routes: dict[str, tuple[Callable[[Any], Any], type[rq.Plugin]]] = {
        "/IpamDriver.GetCapabilities": (lambda d: {"RequiresMACAddress": False}, A),
        "/IpamDriver.GetDefaultAddressSpaces": (
            lambda d: {
                "LocalDefaultAddressSpace": "hostnet",
                "GlobalDefaultAddressSpace": "hostnet-global",
            },
            A,
        ),
        "/IpamDriver.RequestPool": (request_pool, rq.RequestPool),
        "/IpamDriver.ReleasePool": (lambda d: pools.release_pool(d.PoolID), rq.PoolRef),
        "/IpamDriver.RequestAddress": (request_address, rq.RequestAddress),
        "/IpamDriver.ReleaseAddress": (
            lambda d: pools.release_address(d.PoolID, d.Address),
            rq.ReleaseAddress,
        ),
    }
    key = "Error" if is_ipam else "Err"
    app = web.Application(middlewares=[_json_errors(key)])
    activate, model = routes.pop("/Plugin.Activate")
    app.router.add_post("/Plugin.Activate", handler(activate, model, key))
    for path, (fn, model) in (ipam_routes if is_ipam else routes).items():
        app.router.add_post(path, handler(fn, model, key))
    return app


def _json_errors(key: str) -> Any:
    """Unknown paths, wrong methods, bodies over the size limit, and bugs: answered as
    the plugin protocol answers errors ({"Err": ...}), never a plain-text page."""

    @web.middleware
    async def mw(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        try:
            resp: web.StreamResponse = await handler(request)
            return resp
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            text = f"{request.method} {request.path}: {exc.reason}"
            if exc.status in (404, 405):
                text += ". This socket serves Docker's plugin protocol (POST /Plugin.Activate)"
            return _err_text(text, key, exc.status)
        except Exception:  # a bug: report it, keep serving
            log.exception("docker plugin %s failed", request.path)
            return _err_text(
                "internal error in hostnet. This is a hostnet bug; see the daemon log", key, 500
            )

    return mw


async def serve_plugins(
    svc: HostNetworkingService,
    worker: ThreadPoolExecutor,
    directory: str,
    docker_view: DockerLookup = _no_docker,
) -> list[web.AppRunner]:
    """One socket per driver name, and one for IPAM, in ``directory`` (/run/docker/plugins)."""
    os.makedirs(directory, exist_ok=True)
    pools = IpamPools(svc)
    runners = []
    for name in SOCKET_NAMES:
        path = os.path.join(directory, f"{name}.sock")
        if os.path.exists(path):
            os.unlink(path)
        app = build_driver_app(svc, worker, name, pools, docker_view)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.UnixSite(runner, path).start()
        os.chmod(path, 0o660)
        runners.append(runner)
    return runners
