"""Docker's v1 plugin protocol (remote NetworkDriver + IpamDriver), one socket per driver.

``docker network create -d nat`` finds ``nat.sock`` in Docker's plugin directory;
every hostnet driver is served under its own name, and hostnet's overlay under
``hostnet-overlay`` (Docker on Linux has a built-in ``overlay``). Errors reach
the docker CLI as ``{"Err": "..."}`` carrying hostnet's own message and remedy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from hostnet import docker_binding as bind
from hostnet import docker_endpoints as dk
from hostnet import ipam
from hostnet.api import requests as rq
from hostnet.errors import Conflict, HostnetError, InvalidRequest
from hostnet.model import IPAddress, IPNetwork, Network, parse_ip, parse_subnet
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


@dataclass
class _Reserved:
    """A pool handed to Docker for a network it is about to create (CreateNetwork comes
    after the gateway and --aux-address requests): its subnet and --ip-range (SubPool)."""

    subnet: IPNetwork
    sub_pool: str = ""


class IpamPools:
    """IpamDriver pools: each pool is one subnet of a hostnet network (``net:ID`` for its
    IPv4 subnet, ``net6:ID`` for its IPv6 one, adopted with ``-o hostnet.network``), or
    ``pool:SUBNET`` reserved for a network Docker is about to create, which names that
    network's subnet once it exists; addresses come from the network's own IPAM."""

    def __init__(self, svc: HostNetworkingService) -> None:
        self.svc = svc
        self.reserved: dict[str, _Reserved] = {}  # pool id -> a network not yet created
        # addresses handed to Docker but not yet claimed by CreateEndpoint, by network id
        self.pending: dict[str, set[IPAddress]] = {}
        # networks reached through a pool id whose network id is gone, by the name it
        # carries: CreateEndpoint binds the unknown Docker network to the one whose pending
        # addresses hold its address
        self.rebound: set[str] = set()

    def pending_rebound(self) -> dict[str, set[IPAddress]]:
        return {k: v for k, v in self.pending.items() if k in self.rebound}

    # -- pools -------------------------------------------------------------------
    def request_pool(
        self, pool: str, sub_pool: str, options: dict[str, str], v6: bool
    ) -> dict[str, Any]:
        version = 6 if v6 else 4
        adopt = options.get(dk.ADOPT_OPTION)
        if adopt:
            return self._adopted_pool(self.svc.network(adopt), version, pool, sub_pool)
        if pool:
            subnet = parse_subnet(pool, version)
            self.svc.check_overlap(subnet)
        elif sub_pool:
            raise InvalidRequest(
                f"--ip-range {sub_pool} without --subnet", "give --subnet too, or neither"
            )
        else:
            subnet = self._free_subnet(version)
        if sub_pool:
            _check_sub_pool(subnet, sub_pool)
        pool_id = f"pool:{subnet}"
        self.reserved[pool_id] = _Reserved(subnet, sub_pool)
        return {"PoolID": pool_id, "Pool": str(subnet), "Data": {}}

    def _adopted_pool(self, net: Network, version: int, pool: str, sub_pool: str) -> dict[str, Any]:
        """The pool of an existing hostnet network's subnet of one family."""
        subnet, gateway, ip_range = _family(net, version)
        if not subnet:
            hint = (
                "leave --ipv6 out, or create the hostnet network with --ipv6"
                if version == 6
                else "Docker 20.10 networks always have an IPv4 subnet; expose a network "
                "that has one"
            )
            raise InvalidRequest(f"network {net.name!r} has no IPv{version} subnet", hint)
        if pool and pool != subnet:
            raise InvalidRequest(
                f"network {net.name!r} has IPv{version} subnet {subnet}, not {pool}",
                f"give --subnet {subnet}",
            )
        if sub_pool and sub_pool != ip_range:
            raise InvalidRequest(
                f"network {net.name!r} hands out IPv{version} addresses from "
                f"{ip_range or 'its whole subnet'}, not --ip-range {sub_pool}",
                "leave --ip-range out: the hostnet network's own range applies",
            )
        prefix = ipaddress.ip_network(subnet).prefixlen
        return {
            "PoolID": bind.pool_id(net, version),
            "Pool": subnet,
            "Data": {GATEWAY_TYPE: f"{gateway}/{prefix}"},
        }

    def _free_subnet(self, version: int) -> IPNetwork:
        """A pool of hostnet's choice: the first free IPv4 /24, or a unique local /64."""
        reserved = [r.subnet for r in self.reserved.values()]
        if version == 6:
            used = [s for n in self.svc.nets.values() for s in n.subnets()]
            return ipam.unique_local_subnet([*used, *self.svc.host_prefixes(), *reserved])
        used4 = self.svc.subnets_in_use() + self.svc.host_prefixes() + reserved
        found = ipam.first_free_subnet(24, used4)
        if found is None:
            raise InvalidRequest("no free /24 left in 172.16.0.0/12", "give --subnet")
        return found

    def release_pool(self, pool_id: str) -> dict[str, Any]:
        self.reserved.pop(pool_id, None)
        return {}

    def sub_pool(self, subnet: str) -> str:
        """The --ip-range Docker asked for with ``subnet`` (for CreateNetwork)."""
        got = self.reserved.get(f"pool:{subnet}")
        return got.sub_pool if got else ""

    def _network(self, pool_id: str) -> tuple[Network | None, int]:
        """The hostnet network a pool belongs to (None: not created yet), and its family."""
        ref = bind.parse_pool_id(pool_id)
        if ref is not None:
            net = bind.network_for_pool(self.svc.nets, ref, pool_id)
            if net.id != ref.net_id:
                self.rebound.add(net.id)
                log.info("docker: pool %s re-bound to network %s (%s)", pool_id, net.name, net.id)
            return net, ref.version
        bind.check_pool_kind(pool_id)
        subnet = parse_subnet(pool_id.partition(":")[2], None)
        for n in self.svc.nets.values():
            if str(subnet) in (n.subnet, n.subnet6):
                return n, subnet.version
        return None, subnet.version

    # -- addresses ---------------------------------------------------------------
    def release_address(self, pool_id: str, address: str) -> dict[str, Any]:
        if not address:
            return {}
        with contextlib.suppress(HostnetError, ValueError):
            net, _ = self._network(pool_id)
            if net is not None:
                addr = ipaddress.ip_address(address.split("/")[0])
                self.pending.get(net.id, set()).discard(addr)
        return {}

    def request_address(
        self, pool_id: str, address: str, options: dict[str, str]
    ) -> dict[str, Any]:
        gateway_wanted = options.get("RequestAddressType") == GATEWAY_TYPE
        net, version = self._network(pool_id)
        if net is None:
            return self._reserving(pool_id, version, address, gateway_wanted)
        subnet_text, gateway, ip_range = _family(net, version)
        if not subnet_text:
            raise Conflict(
                f"network {net.name!r} no longer has an IPv{version} subnet",
                "remove the Docker network and create it again",
            )
        subnet = ipaddress.ip_network(subnet_text)
        gw = ipaddress.ip_address(gateway)
        flag = "--ip6" if version == 6 else "--ip"
        if gateway_wanted:
            if address and parse_ip(address, "--gateway", version) != gw:
                raise InvalidRequest(
                    f"network {net.name!r} has IPv{version} gateway {gw}, not {address}",
                    f"give --gateway {gw}, or leave --gateway out",
                )
            return {"Address": f"{gw}/{subnet.prefixlen}"}
        pending = self.pending.setdefault(net.id, set())
        aux = {ipaddress.ip_address(a) for a in net.aux_addresses.values()}
        taken = ipam.Taken(self.svc.addresses_used(net), pending, aux)
        carved = self.svc.carved(net) if version == 4 else []
        if address:
            addr = parse_ip(address, f"{flag} address", version)
            ipam.check_static(subnet, gw, addr, taken, carved)
        else:
            within = ipaddress.ip_network(ip_range) if ip_range else None
            addr = ipam.allocate(subnet, gw, taken, None, carved, within=within)
        pending.add(addr)
        return {"Address": f"{addr}/{subnet.prefixlen}"}

    def _reserving(
        self, pool_id: str, version: int, address: str, gateway_wanted: bool
    ) -> dict[str, Any]:
        """The gateway and --aux-address requests of a network Docker is creating; the
        network checks them again when it is created."""
        got = self.reserved.get(pool_id)
        subnet = got.subnet if got else parse_subnet(pool_id.split(":", 1)[1], version)
        if got is None:  # not a network being created: one hostnet has lost
            raise bind.StaleBinding(
                f"the Docker network with subnet {subnet} (hostnet-ipam pool {pool_id}) is "
                "bound to no hostnet network: hostnet has no record of it (hostnet's state "
                "was lost, or the network was removed)",
                "remove the Docker network and create it again ('docker network rm NAME', "
                "then 'docker network create ...' as before; 'docker network ls' names it)",
            )
        if not address:
            if gateway_wanted:
                return {"Address": f"{ipam.default_gateway(subnet)}/{subnet.prefixlen}"}
            raise InvalidRequest(
                f"address pool {subnet} belongs to no hostnet network",
                "use hostnet-ipam with a hostnet driver (-d nat, transparent, l2bridge, "
                "l2tunnel), or leave --ipam-driver out",
            )
        what = "--gateway" if gateway_wanted else "--aux-address"
        addr = parse_ip(address, what, version)
        if gateway_wanted:
            ipam.check_gateway(subnet, addr)
        elif addr not in subnet:
            raise InvalidRequest(
                f"{what} {addr} is outside subnet {subnet}", f"give an address inside {subnet}"
            )
        return {"Address": f"{addr}/{subnet.prefixlen}"}


def _family(net: Network, version: int) -> tuple[str, str, str]:
    """A network's subnet, gateway and --ip-range of one family ("" when it has none)."""
    if version == 6:
        return net.subnet6, net.gateway6, net.ip_range6
    return net.subnet, net.gateway, net.ip_range


def _check_sub_pool(subnet: IPNetwork, sub_pool: str) -> None:
    rng = parse_subnet(sub_pool, subnet.version)
    if not rng.subnet_of(subnet):  # type: ignore[arg-type]
        raise InvalidRequest(
            f"--ip-range {rng} is not inside subnet {subnet}",
            f"give a prefix of {subnet}, e.g. {next(subnet.subnets(prefixlen_diff=1))}",
        )


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
