"""What Docker's remote-driver calls mean for the service: networks bound to Docker
network ids, and endpoints whose vNIC Docker moves into its sandbox itself."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hostnet.errors import Conflict, InvalidRequest, NotFound
from hostnet.model import Container, Endpoint, Network

if TYPE_CHECKING:
    from hostnet.service import HostNetworkingService

log = logging.getLogger("hostnet")
ADOPT_OPTION = "hostnet.network"


def network_for(svc: HostNetworkingService, docker_id: str) -> Network:
    for n in svc.nets.values():
        if docker_id in n.docker_ids:
            return n
    raise NotFound(
        f"no hostnet network is bound to Docker network {docker_id[:12]}",
        "recreate the Docker network, or run 'hostnet system reconcile'",
    )


def create_network(
    svc: HostNetworkingService,
    driver: str,
    docker_id: str,
    options: dict[str, Any],
    ipv4: list[dict[str, Any]],
    ipv6: list[dict[str, Any]],
) -> Network:
    """A Docker network: a new hostnet network, or (``-o hostnet.network=NAME``) an existing one."""
    if any(docker_id in n.docker_ids for n in svc.nets.values()):
        return network_for(svc, docker_id)
    if ipv6:
        raise InvalidRequest(
            "IPv6 is not supported by hostnet yet", "create the network without --ipv6"
        )
    generic = {str(k): str(v) for k, v in (options.get("com.docker.network.generic") or {}).items()}
    adopt = generic.pop(ADOPT_OPTION, "")
    if len(ipv4) > 1:
        raise InvalidRequest("more than one IPv4 subnet given", "hostnet networks have one subnet")
    pool = str(ipv4[0].get("Pool", "")) if ipv4 else ""
    gateway = str(ipv4[0].get("Gateway", "")).split("/")[0] if ipv4 else ""
    if adopt:
        net = svc.network(adopt)
        if net.driver != driver:
            raise Conflict(
                f"network {adopt!r} uses the {net.driver} driver, not {driver}",
                f"create the Docker network with -d {net.driver}",
            )
        if pool and pool != net.subnet:
            raise Conflict(
                f"network {adopt!r} has subnet {net.subnet}, not {pool}",
                f"give --subnet {net.subnet} (or none with --ipam-driver {driver})",
            )
        net.docker_ids.append(docker_id)
        svc.store.update_network(net)
        log.info("Docker network %s bound to hostnet network %s", docker_id[:12], net.name)
        return net
    name = (
        generic.get("com.docker.network.windowsshim.networkname")
        or generic.get("networkname")
        or docker_id
    )
    net = svc.create_network(name, driver, pool, gateway, generic)
    net.docker_ids.append(docker_id)
    net.docker_owned = True
    svc.store.update_network(net)
    return net


def delete_network(svc: HostNetworkingService, docker_id: str) -> object:
    try:
        net = network_for(svc, docker_id)
    except NotFound:
        return None
    net.docker_ids.remove(docker_id)
    if net.docker_owned and not net.docker_ids:
        svc.remove_network(net.id, force=True)
    else:
        svc.store.update_network(net)
    return None


def create_endpoint(
    svc: HostNetworkingService, docker_net: str, eid: str, address: str, mac: str
) -> Endpoint:
    """A vNIC pair in the host namespace; Docker moves one end into the sandbox at Join."""
    net = network_for(svc, docker_net)
    if eid in svc.containers:
        return svc.endpoints_of(svc.containers[eid])[0]
    return svc.attach_docker(net, eid, address.split("/")[0], mac)


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


def program_ports(svc: HostNetworkingService, eid: str, portmap: list[dict[str, Any]]) -> None:
    specs = []
    for pm in portmap:
        proto = {6: "tcp", 17: "udp"}.get(int(pm.get("Proto", 6)))
        if proto is None:
            raise InvalidRequest(
                f"protocol {pm.get('Proto')} cannot be published", "publish tcp or udp ports"
            )
        host_ip = str(pm.get("HostIP") or "")
        host_ip = "" if host_ip in ("0.0.0.0", "::") else host_ip
        first, last = int(pm.get("HostPort") or 0), int(pm.get("HostPortEnd") or 0)
        host = f"{first}-{last}" if last > first else (str(first) if first else "")
        if host_ip:
            specs.append(f"{host_ip}:{host}:{pm['Port']}/{proto}")
        else:
            specs.append(f"{host}:{pm['Port']}/{proto}" if host else f"{pm['Port']}/{proto}")
    if specs:
        svc.add_ports(eid, specs)


def revoke_ports(svc: HostNetworkingService, eid: str) -> object:
    _, ep = endpoint(svc, eid)
    svc.unpublish(ep, list(ep.ports))
    return None
