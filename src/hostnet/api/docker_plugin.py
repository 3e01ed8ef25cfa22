"""Docker's v1 plugin protocol (remote NetworkDriver + IpamDriver), one socket per driver.

``docker network create -d nat`` finds ``nat.sock`` in Docker's plugin directory;
every hostnet driver is served under its own name, and hostnet's overlay under
``hostnet-overlay`` (Docker on Linux has a built-in ``overlay``). Errors reach
the docker CLI as ``{"Err": "..."}`` carrying hostnet's own message and remedy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from hostnet import docker_endpoints as dk
from hostnet import ipam
from hostnet.api import requests as rq
from hostnet.errors import HostnetError, InvalidRequest, NotFound
from hostnet.model import IPAddress, parse_subnet
from hostnet.service import FUTURE_DRIVERS, HostNetworkingService

log = logging.getLogger("hostnet")
DRIVER_NAMES = {
    "nat": "nat",
    "transparent": "transparent",
    "l2bridge": "l2bridge",
    "l2tunnel": "l2tunnel",
    "hostnet-overlay": "overlay",
}
# The IPAM driver is its own plugin: Docker 20.10 hangs when one plugin is both.
IPAM_NAME = "hostnet-ipam"
SOCKET_NAMES = [*DRIVER_NAMES, IPAM_NAME]
GATEWAY_TYPE = "com.docker.network.gateway"


def _none(_: object) -> dict[str, Any]:
    return {}


def _ok(data: dict[str, Any] | None = None) -> web.Response:
    return web.json_response(data or {}, content_type="application/vnd.docker.plugins.v1+json")


def _err(exc: HostnetError, key: str = "Err") -> web.Response:
    text = exc.message + (f". {exc.remedy}" if exc.remedy else "")
    return web.json_response({key: text}, status=exc.status if exc.status >= 400 else 500)


class IpamPools:
    """IpamDriver pools: each pool is a hostnet network's subnet, or one reserved for a
    network Docker is about to create; addresses come from the network's own IPAM."""

    def __init__(self, svc: HostNetworkingService) -> None:
        self.svc = svc
        self.reserved: dict[str, str] = {}  # pool id -> subnet of a network not yet created
        # addresses handed to Docker but not yet claimed by CreateEndpoint
        self.pending: dict[str, set[IPAddress]] = {}

    def request_pool(self, pool: str, options: dict[str, str], v6: bool) -> dict[str, Any]:
        if v6:
            raise InvalidRequest("IPv6 pools are not supported by hostnet yet")
        adopt = options.get(dk.ADOPT_OPTION)
        if adopt:
            net = self.svc.network(adopt)
            if pool and pool != net.subnet:
                raise InvalidRequest(
                    f"network {adopt!r} has subnet {net.subnet}, not {pool}",
                    f"give --subnet {net.subnet}",
                )
            return {
                "PoolID": f"net:{net.id}",
                "Pool": net.subnet,
                "Data": {GATEWAY_TYPE: f"{net.gateway}/{net.ipv4_network().prefixlen}"},
            }
        if pool:
            subnet = parse_subnet(pool)
            self.svc.check_overlap(subnet)
        else:
            used = self.svc.subnets_in_use() + self.svc.host_prefixes()
            used += [ipaddress.IPv4Network(s) for s in self.reserved.values()]
            found = ipam.first_free_subnet(24, used)
            if found is None:
                raise InvalidRequest("no free /24 left in 172.16.0.0/12", "give --subnet")
            subnet = found
        self.reserved[f"pool:{subnet}"] = str(subnet)
        return {"PoolID": f"pool:{subnet}", "Pool": str(subnet), "Data": {}}

    def release_address(self, pool_id: str, address: str) -> dict[str, Any]:
        if pool_id.startswith("net:") and address:
            addr = ipaddress.IPv4Address(address.split("/")[0])
            self.pending.get(pool_id[4:], set()).discard(addr)
        return {}

    def request_address(
        self, pool_id: str, address: str, options: dict[str, str]
    ) -> dict[str, Any]:
        gateway_wanted = options.get("RequestAddressType") == GATEWAY_TYPE
        if pool_id.startswith("net:"):
            net = self.svc.nets.get(pool_id[4:])
            if net is None:
                raise NotFound(
                    f"address pool {pool_id} belongs to a hostnet network that no longer exists",
                    "remove the Docker network and create it again ('hostnet docker expose')",
                )
            subnet, gw = net.ipv4_network(), ipaddress.IPv4Address(net.gateway)
            if gateway_wanted:
                return {"Address": f"{gw}/{subnet.prefixlen}"}
            pending = self.pending.setdefault(net.id, set())
            used = self.svc.addresses_used(net) | pending
            addr = (
                ipaddress.IPv4Address(address)
                if address
                else ipam.allocate(subnet, gw, used, None, self.svc.carved(net))
            )
            pending.add(addr)
            return {"Address": f"{addr}/{subnet.prefixlen}"}
        subnet = ipaddress.IPv4Network(self.reserved.get(pool_id, pool_id.split(":", 1)[-1]))
        if gateway_wanted and not address:
            return {"Address": f"{ipam.default_gateway(subnet)}/{subnet.prefixlen}"}
        if not address:
            raise InvalidRequest(
                "hostnet allocates endpoint addresses itself",
                "leave the address to hostnet: it assigns one at CreateEndpoint",
            )
        return {"Address": f"{address}/{subnet.prefixlen}"}


def build_driver_app(
    svc: HostNetworkingService, worker: ThreadPoolExecutor, name: str, pools: IpamPools
) -> web.Application:
    driver = DRIVER_NAMES.get(name, "nat")
    is_ipam = name == IPAM_NAME

    async def call(fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(worker, fn)

    def handler(
        fn: Callable[[Any], Any], model: type[rq.Plugin], err_key: str = "Err"
    ) -> Callable[..., Any]:
        async def run(request: web.Request) -> web.Response:
            try:
                data = rq.validated(model, rq.load(await request.read()))
                log.debug("docker %s %s %s", name, request.path, data)
                if driver in FUTURE_DRIVERS and not is_ipam:
                    svc.driver(driver)  # raises "driver not available yet"
                result = await call(lambda: fn(data))
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
        )
        return {}

    def create_endpoint(d: rq.CreateEndpoint) -> dict[str, Any]:
        iface = d.Interface or rq.DockerInterface()
        ep = dk.create_endpoint(svc, d.NetworkID, d.EndpointID, iface.Address, iface.MacAddress)
        out: dict[str, Any] = {}
        if not iface.MacAddress:
            out["MacAddress"] = ep.mac
        if not iface.Address:
            out["Address"] = f"{ep.ip}/{ep.prefix_len}"
        return {"Interface": out} if out else {}

    def join(d: rq.Join) -> dict[str, Any]:
        ep = dk.join(svc, d.EndpointID, d.SandboxKey)
        return {
            "InterfaceName": {"SrcName": ep.ifname, "DstPrefix": "eth"},
            "Gateway": ep.gateway,
            "StaticRoutes": [],
            "DisableGatewayService": False,
        }

    def program(d: rq.Program) -> dict[str, Any]:
        maps = d.Options.get("com.docker.network.portmap") or []
        dk.program_ports(svc, d.EndpointID, rq.portmap(maps))
        return {}

    def oper_info(d: rq.EndpointRef) -> dict[str, Any]:
        _, ep = dk.endpoint(svc, d.EndpointID)
        return {
            "Value": {
                "com.docker.network.portmap": [
                    {
                        "Proto": 6 if p.protocol == "tcp" else 17,
                        "IP": ep.ip,
                        "Port": p.container_port,
                        "HostIP": p.host_ip or "0.0.0.0",
                        "HostPort": p.host_port,
                    }
                    for p in ep.ports
                ]
            }
        }

    def request_pool(d: rq.RequestPool) -> dict[str, Any]:
        return pools.request_pool(d.Pool, rq.strings(d.Options or {}, "Options"), d.V6)

    def request_address(d: rq.RequestAddress) -> dict[str, Any]:
        return pools.request_address(d.PoolID, d.Address, rq.strings(d.Options or {}, "Options"))

    def release_pool(d: rq.PoolRef) -> dict[str, Any]:
        pools.reserved.pop(d.PoolID, None)
        return {}

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
        "/IpamDriver.ReleasePool": (release_pool, rq.PoolRef),
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
            return web.json_response({key: text}, status=exc.status)
        except Exception:  # a bug: report it, keep serving
            log.exception("docker plugin %s failed", request.path)
            return web.json_response(
                {key: "internal error in hostnet. This is a hostnet bug; see the daemon log"},
                status=500,
            )

    return mw


async def serve_plugins(
    svc: HostNetworkingService, worker: ThreadPoolExecutor, directory: str
) -> list[web.AppRunner]:
    """One socket per driver name, and one for IPAM, in ``directory`` (/run/docker/plugins)."""
    os.makedirs(directory, exist_ok=True)
    pools = IpamPools(svc)
    runners = []
    for name in SOCKET_NAMES:
        path = os.path.join(directory, f"{name}.sock")
        if os.path.exists(path):
            os.unlink(path)
        runner = web.AppRunner(build_driver_app(svc, worker, name, pools), access_log=None)
        await runner.setup()
        await web.UnixSite(runner, path).start()
        os.chmod(path, 0o660)
        runners.append(runner)
    return runners
