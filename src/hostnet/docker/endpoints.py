"""What Docker's remote-driver calls mean for the service: networks bound to Docker
network ids, and endpoints whose vNIC Docker moves into its sandbox itself."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hostnet.core import planning
from hostnet.docker import binding as bind
from hostnet.drivers import registry
from hostnet.errors import Conflict, InvalidRequest, NotFound
from hostnet.model import Container, Endpoint, Network, host_ip_family

if TYPE_CHECKING:
    from hostnet.core.service import HostNetworkingService

log = logging.getLogger("hostnet")
ADOPT_OPTION = bind.ADOPT_OPTION


def network_for(svc: HostNetworkingService, docker_id: str) -> Network:
    for n in svc.nets.values():
        if docker_id in n.docker_ids:
            return n
    raise bind.Unbound(docker_id)


def _bind(svc: HostNetworkingService, net: Network, docker_id: str, why: str) -> Network:
    if docker_id not in net.docker_ids:
        net.docker_ids.append(docker_id)
        net.docker_gone = False
        svc.store.update_network(net)
    log.info("Docker network %s re-bound to hostnet network %s (%s)", docker_id[:12], net.name, why)
    return net


def rebind(
    svc: HostNetworkingService, driver: str, docker_id: str, docker: dict[str, Any] | None
) -> Network:
    """Bind a Docker network hostnet has no record of to the hostnet network its options
    name (``docker``: Docker's view of it), if that one has its driver and subnets; else
    the error that says why not and what to do."""
    for n in svc.nets.values():
        if docker_id in n.docker_ids:
            return n
    wanted = bind.wanted_name(docker) if docker else ""
    if docker is None or not wanted:
        raise bind.unbound(docker_id, docker)
    subnets = {4: "", 6: ""}
    for s in bind.docker_subnets(docker):
        subnets[6 if ":" in s else 4] = s
    named = next((n for n in svc.nets.values() if n.name == wanted), None)
    plugin = registry.from_docker(driver)
    net = bind.check_rebind(named, str(docker.get("Name")), wanted, subnets, plugin)
    return _bind(svc, net, docker_id, "by the name in its options")


def _claimed(
    svc: HostNetworkingService, docker_id: str, address: str, pending: dict[str, set[Any]]
) -> Network | None:
    """The network hostnet-ipam just handed ``address`` out of for a Docker network whose
    id hostnet does not know (its pool re-bound by name): that network is this one."""
    if not address or not pending:
        return None
    try:
        addr = ipaddress.ip_address(_cidr_ip(address))
    except ValueError:
        return None  # create_endpoint's own checks say what is wrong with it
    for net_id, given in pending.items():
        net = svc.nets.get(net_id)
        if net is not None and addr in given:
            return _bind(svc, net, docker_id, f"its address pool names {net.name!r}")
    return None


INTERNAL_OPTION = "com.docker.network.internal"


def _cidr_ip(text: str) -> str:
    """The address of Docker's ADDR/PREFIX (gateways, --aux-address values)."""
    return str(text).split("/")[0]


def _one(data: list[dict[str, Any]], version: int) -> dict[str, Any]:
    if len(data) > 1:
        pools = ", ".join(str(d.get("Pool", "")) for d in data)
        raise InvalidRequest(
            f"more than one IPv{version} subnet given ({pools})",
            "hostnet networks have one subnet per address family: give one --subnet of each",
        )
    return data[0] if data else {}


def create_network(
    svc: HostNetworkingService,
    driver: str,
    docker_id: str,
    options: dict[str, Any],
    ipv4: list[dict[str, Any]],
    ipv6: list[dict[str, Any]],
    ranges: Callable[[str], str] = lambda _: "",
) -> Network:
    """A Docker network: a new hostnet network, or (``-o hostnet.network=NAME``) an existing
    one. ``ipv4``/``ipv6``: Docker's IPv4Data/IPv6Data; ``ranges``: the --ip-range hostnet's
    IPAM was asked for with a subnet (Docker's own IPAM keeps its ranges to itself)."""
    if any(docker_id in n.docker_ids for n in svc.nets.values()):
        return network_for(svc, docker_id)
    generic = {str(k): str(v) for k, v in (options.get("com.docker.network.generic") or {}).items()}
    adopt = generic.pop(ADOPT_OPTION, "")
    internal = str(options.get(INTERNAL_OPTION, False)).lower() == "true"
    v4, v6 = _one(ipv4, 4), _one(ipv6, 6)
    pool, pool6 = str(v4.get("Pool", "")), str(v6.get("Pool", ""))
    if adopt:
        return _adopt(svc, driver, docker_id, svc.network(adopt), pool, pool6, internal)
    aux: dict[str, str] = {}
    for data in (v4, v6):
        aux.update({str(k): _cidr_ip(v) for k, v in (data.get("AuxAddresses") or {}).items()})
    plan = planning.AddressPlan(
        subnets=[p for p in (pool, pool6) if p],
        gateways=[_cidr_ip(d["Gateway"]) for d in (v4, v6) if d.get("Gateway")],
        ip_ranges=[r for r in (ranges(pool) if pool else "", ranges(pool6) if pool6 else "") if r],
        aux=aux,
        ipv6=bool(ipv6),
        ipv4=bool(ipv4),
    )
    name = (
        generic.get("com.docker.network.windowsshim.networkname")
        or generic.get("networkname")
        or docker_id
    )
    net = svc.create_network(name, driver, "", "", generic, addresses=plan, internal=internal)
    net.docker_ids.append(docker_id)
    net.docker_owned = True
    svc.store.update_network(net)
    return net


def _adopt(
    svc: HostNetworkingService,
    driver: str,
    docker_id: str,
    net: Network,
    pool: str,
    pool6: str,
    internal: bool,
) -> Network:
    """Bind a Docker network to the existing hostnet network ``net`` (hostnet docker expose)."""
    if net.driver != driver:
        raise Conflict(
            f"network {net.name!r} uses the {net.driver} driver, not {driver}",
            f"create the Docker network with -d {net.driver}",
        )
    for given, have, version in ((pool, net.subnet, 4), (pool6, net.subnet6, 6)):
        if given and given != have:
            raise Conflict(
                f"network {net.name!r} has "
                + (f"IPv{version} subnet {have}" if have else f"no IPv{version} subnet")
                + f", not {given}",
                (f"give --subnet {have}" if have else f"leave the IPv{version} --subnet out")
                + f" (or none, with --ipam-driver hostnet-ipam -o {ADOPT_OPTION}={net.name})",
            )
    if internal and not net.internal:
        raise Conflict(
            f"network {net.name!r} is not internal", "leave --internal out to use this network"
        )
    net.docker_ids.append(docker_id)
    svc.store.update_network(net)
    log.info("Docker network %s bound to hostnet network %s", docker_id[:12], net.name)
    return net


def delete_network(svc: HostNetworkingService, docker_id: str) -> object:
    try:
        net = network_for(svc, docker_id)
    except bind.Unbound:  # hostnet lost it already: removing it is done
        return None
    net.docker_ids.remove(docker_id)
    if net.docker_owned and not net.docker_ids:
        svc.remove_network(net.id, force=True)
    else:
        svc.store.update_network(net)
    return None


def docker_lost(svc: HostNetworkingService, docker_ids: set[str], before: float) -> list[str]:
    """Docker listed ``docker_ids`` at ``before`` (its data root may have been wiped):
    networks Docker made that it no longer has are removed, or kept and marked gone when
    hostnet endpoints still use them; bindings of other networks to Docker networks Docker
    no longer has are dropped. Returns the names of the networks removed."""
    removed = []
    for net in bind.lost_by_docker(svc.nets.values(), docker_ids, before):
        if svc.endpoints_on(net):
            if not net.docker_gone:
                net.docker_gone = True
                svc.store.update_network(net)
                log.warning(
                    "network %s: Docker made it and no longer has it, but endpoints use it; "
                    "kept ('hostnet network rm %s' once they are gone)",
                    net.name,
                    net.name,
                )
            continue
        svc.remove_network(net.id, force=True)
        removed.append(net.name)
    for net in list(svc.nets.values()):
        if net.docker_owned or net.created >= before:
            continue
        kept = [i for i in net.docker_ids if i in docker_ids]
        if kept != net.docker_ids:
            net.docker_ids = kept
            svc.store.update_network(net)
    return removed


def create_endpoint(
    svc: HostNetworkingService,
    docker_net: str,
    eid: str,
    address: str,
    mac: str,
    address6: str = "",
    pending: dict[str, set[Any]] | None = None,
) -> Endpoint:
    """A vNIC pair in the host namespace; Docker moves one end into the sandbox at Join.
    ``address``/``address6``: what Docker's IPAM chose (ADDR/PREFIX), or "" for hostnet's;
    ``pending``: the addresses hostnet-ipam handed out and not yet claimed, by network id."""
    try:
        net = network_for(svc, docker_net)
    except bind.Unbound:
        claimed = _claimed(svc, docker_net, address or address6, pending or {})
        if claimed is None:
            raise
        net = claimed
    if eid in svc.containers:
        return svc.endpoints_of(svc.containers[eid])[0]
    return svc.attach_docker(net, eid, _cidr_ip(address), mac, ip6=_cidr_ip(address6))


def endpoint(svc: HostNetworkingService, eid: str) -> tuple[Container, Endpoint]:
    c = svc.containers.get(eid)
    eps = svc.endpoints_of(c) if c else []
    if c is None or not eps:
        raise NotFound(
            f"no endpoint {eid[:12]}", "Docker and hostnet disagree; recreate the container"
        )
    return c, eps[0]


def join(svc: HostNetworkingService, eid: str, sandbox: str) -> Endpoint:
    c, ep = endpoint(svc, eid)
    c.netns = sandbox
    svc.store.update_container(c)
    return ep


def delete_endpoint(svc: HostNetworkingService, eid: str) -> object:
    c = svc.containers.get(eid)
    if c is not None:
        svc.teardown(c)
    return None


ANY4, ANY6 = "0.0.0.0", "::"


def program_ports(svc: HostNetworkingService, eid: str, portmap: list[dict[str, Any]]) -> None:
    """Docker's port bindings as mappings. HostIP "" is every host address of both
    families, "0.0.0.0" every IPv4 one, "::" every IPv6 one: a pair of those two for the
    same ports is one mapping on both families (two would be the same ports twice)."""
    _, ep = endpoint(svc, eid)
    bindings: list[tuple[str, str, str, int]] = []  # protocol, host IP, host ports, port
    for pm in portmap:
        proto = {6: "tcp", 17: "udp"}.get(int(pm.get("Proto", 6)))
        if proto is None:
            raise InvalidRequest(
                f"protocol {pm.get('Proto')} cannot be published", "publish tcp or udp ports"
            )
        host_ip = str(pm.get("HostIP") or "")
        first, last = int(pm.get("HostPort") or 0), int(pm.get("HostPortEnd") or 0)
        host = f"{first}-{last}" if last > first else (str(first) if first else "")
        bindings.append((proto, host_ip, host, int(pm.get("Port") or 0)))
    specs: list[str] = []
    for proto, host_ip, host, port in bindings:
        other = {ANY4: ANY6, ANY6: ANY4}.get(host_ip)
        if other is not None and (proto, other, host, port) in bindings:
            if host_ip == ANY6:
                continue  # its IPv4 twin stands for both
            host_ip = ""
        version = host_ip_family(host_ip)
        if version and not (ep.ip if version == 4 else ep.ip6):
            net = svc.nets[ep.network_id]
            raise InvalidRequest(
                f"-p {_spec(proto, host_ip, host, port)} publishes on an IPv{version} host "
                f"address, but network {net.name!r} gives the container no IPv{version} "
                "address",
                "publish on the other family's address, or on every address (-p HOSTPORT:PORT)",
            )
        specs.append(_spec(proto, host_ip, host, port))
    if specs:
        svc.add_ports(eid, specs)


def _spec(proto: str, host_ip: str, host: str, port: int) -> str:
    """A -p value hostnet parses: [HOSTIP:][HOSTPORT:]PORT/proto, IPv6 in brackets."""
    where = f"[{host_ip}]" if ":" in host_ip else host_ip
    if where:
        return f"{where}:{host}:{port}/{proto}"
    return f"{host}:{port}/{proto}" if host else f"{port}/{proto}"


def port_bindings(ep: Endpoint) -> list[dict[str, Any]]:
    """The endpoint's mappings as Docker's portmap (EndpointOperInfo): one binding per
    family a mapping serves, as Docker shows 0.0.0.0:8080 and :::8080 for -p 8080:80."""
    out: list[dict[str, Any]] = []
    for p in ep.ports:
        for version, ip, any_ip in ((4, ep.ip, ANY4), (6, ep.ip6, ANY6)):
            if not ip or p.family not in (0, version):
                continue
            out.append(
                {
                    "Proto": 6 if p.protocol == "tcp" else 17,
                    "IP": ip,
                    "Port": p.container_port,
                    "HostIP": p.host_ip if p.family else any_ip,
                    "HostPort": p.host_port,
                }
            )
    return out


def revoke_ports(svc: HostNetworkingService, eid: str) -> object:
    try:
        _, ep = endpoint(svc, eid)
    except NotFound:  # hostnet lost it already: nothing left to revoke
        return None
    svc.unpublish(ep, list(ep.ports))
    return None
