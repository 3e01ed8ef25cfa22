"""Docker's v1 plugin protocol (remote NetworkDriver + IpamDriver), one socket per driver.

``docker network create -d nat`` finds ``nat.sock`` in Docker's plugin directory;
every hostnet driver is served under its own name, and hostnet's overlay under
``hostnet-overlay`` (Docker on Linux has a built-in ``overlay``). Errors reach
the docker CLI as ``{"Err": "..."}`` carrying hostnet's own message and remedy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from hostnet import docker_endpoints as dk
from hostnet import ipam
from hostnet.errors import HostnetError, InvalidRequest
from hostnet.model import parse_subnet
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
        self.pending: dict[str, set[ipaddress.IPv4Address]] = {}

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
            net = self.svc.nets[pool_id[4:]]
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

    async def body(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            raise InvalidRequest("request body is not JSON") from None
        return data if isinstance(data, dict) else {}

    def handler(fn: Callable[[dict[str, Any]], Any], err_key: str = "Err") -> Callable[..., Any]:
        async def run(request: web.Request) -> web.Response:
            try:
                data = await body(request)
                log.debug("docker %s %s %s", name, request.path, data)
                if driver in FUTURE_DRIVERS and not is_ipam:
                    svc.driver(driver)  # raises "driver not available yet"
                result = await call(lambda: fn(data))
                return _ok(result)
            except HostnetError as exc:
                log.info("docker %s %s: %s", name, request.path, exc)
                return _err(exc, err_key)
            except (KeyError, TypeError, ValueError) as exc:
                return _err(InvalidRequest(f"malformed request from Docker: {exc!r}"), err_key)

        return run

    def create_network(d: dict[str, Any]) -> dict[str, Any]:
        dk.create_network(
            svc,
            driver,
            d["NetworkID"],
            d.get("Options") or {},
            d.get("IPv4Data") or [],
            d.get("IPv6Data") or [],
        )
        return {}

    def create_endpoint(d: dict[str, Any]) -> dict[str, Any]:
        iface = d.get("Interface") or {}
        ep = dk.create_endpoint(
            svc,
            d["NetworkID"],
            d["EndpointID"],
            str(iface.get("Address") or ""),
            str(iface.get("MacAddress") or ""),
        )
        out: dict[str, Any] = {}
        if not iface.get("MacAddress"):
            out["MacAddress"] = ep.mac
        if not iface.get("Address"):
            out["Address"] = f"{ep.ip}/{ep.prefix_len}"
        return {"Interface": out} if out else {}

    def join(d: dict[str, Any]) -> dict[str, Any]:
        ep = dk.join(svc, d["EndpointID"], str(d.get("SandboxKey", "")))
        return {
            "InterfaceName": {"SrcName": ep.ifname, "DstPrefix": "eth"},
            "Gateway": ep.gateway,
            "StaticRoutes": [],
            "DisableGatewayService": False,
        }

    def program(d: dict[str, Any]) -> dict[str, Any]:
        opts = d.get("Options") or {}
        dk.program_ports(svc, d["EndpointID"], opts.get("com.docker.network.portmap") or [])
        return {}

    def oper_info(d: dict[str, Any]) -> dict[str, Any]:
        _, ep = dk.endpoint(svc, d["EndpointID"])
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

    def request_pool(d: dict[str, Any]) -> dict[str, Any]:
        return pools.request_pool(
            str(d.get("Pool") or ""), d.get("Options") or {}, bool(d.get("V6"))
        )

    def request_address(d: dict[str, Any]) -> dict[str, Any]:
        return pools.request_address(
            str(d["PoolID"]), str(d.get("Address") or ""), d.get("Options") or {}
        )

    def release_pool(d: dict[str, Any]) -> dict[str, Any]:
        pools.reserved.pop(str(d.get("PoolID")), None)
        return {}

    routes = {
        "/Plugin.Activate": lambda d: {
            "Implements": ["IpamDriver" if is_ipam else "NetworkDriver"]
        },
        "/NetworkDriver.GetCapabilities": lambda d: {
            "Scope": "local",
            "ConnectivityScope": "local",
        },
        "/NetworkDriver.CreateNetwork": create_network,
        "/NetworkDriver.DeleteNetwork": lambda d: _none(dk.delete_network(svc, d["NetworkID"])),
        "/NetworkDriver.CreateEndpoint": create_endpoint,
        "/NetworkDriver.EndpointOperInfo": oper_info,
        "/NetworkDriver.DeleteEndpoint": lambda d: _none(dk.delete_endpoint(svc, d["EndpointID"])),
        "/NetworkDriver.Join": join,
        "/NetworkDriver.Leave": lambda d: {},
        "/NetworkDriver.ProgramExternalConnectivity": program,
        "/NetworkDriver.RevokeExternalConnectivity": lambda d: (
            dk.revoke_ports(svc, d["EndpointID"]) or {}
        ),
        "/NetworkDriver.DiscoverNew": lambda d: {},
        "/NetworkDriver.DiscoverDelete": lambda d: {},
    }
    ipam_routes = {
        "/IpamDriver.GetCapabilities": lambda d: {"RequiresMACAddress": False},
        "/IpamDriver.GetDefaultAddressSpaces": lambda d: {
            "LocalDefaultAddressSpace": "hostnet",
            "GlobalDefaultAddressSpace": "hostnet-global",
        },
        "/IpamDriver.RequestPool": request_pool,
        "/IpamDriver.ReleasePool": release_pool,
        "/IpamDriver.RequestAddress": request_address,
        "/IpamDriver.ReleaseAddress": lambda d: pools.release_address(
            str(d.get("PoolID")), str(d.get("Address") or "")
        ),
    }
    app = web.Application()
    app.router.add_post("/Plugin.Activate", handler(routes.pop("/Plugin.Activate")))
    if is_ipam:
        for path, fn in ipam_routes.items():
            app.router.add_post(path, handler(fn, "Error"))
    else:
        for path, fn in routes.items():
            app.router.add_post(path, handler(fn))
    return app


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
