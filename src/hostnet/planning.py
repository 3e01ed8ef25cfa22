"""Planning an endpoint before anything changes: its address, MAC, host ports, names,
bandwidth and policies, checked against the index. Pure: no store, no kernel.

A plan that passes every check here is what the orchestrator records and then realizes.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from typing import Any

from hostnet import acl, ipam, policies, ports
from hostnet.drivers.base import Driver
from hostnet.errors import Conflict, InvalidRequest
from hostnet.index import Index
from hostnet.model import (
    VETH_PREFIX,
    Container,
    Endpoint,
    Network,
    check_name,
    mac_for,
    new_id,
    parse_ip,
    parse_subnet,
)

Prefixes = Callable[[], list[ipaddress.IPv4Network]]  # the host's own addresses and routes
DriverOf = Callable[[Network], Driver]


def check_overlap(
    index: Index,
    driver_of: DriverOf,
    subnet: ipaddress.IPv4Network,
    host_prefixes: Prefixes,
    host_too: bool = True,
) -> None:
    """Refuse a subnet overlapping another network or the host; external switches (host_too
    False) may share a subnet with each other: each is its own physical L2 network."""
    for n in index.nets.values():
        if not host_too and driver_of(n).on_host_subnet:
            continue
        overlaps = n.subnet and subnet.overlaps(n.ipv4_network())
        if overlaps and not index.may_carve(subnet, n):
            raise Conflict(
                f"subnet {subnet} overlaps network {n.name!r} ({n.subnet})",
                "choose a subnet that does not overlap, or leave --subnet out to get a free one",
            )
    hit = ipam.overlapping(subnet, host_prefixes()) if host_too else None
    if hit is not None:
        raise Conflict(
            f"subnet {subnet} overlaps the host's own address or route {hit}",
            "choose a subnet the host does not use, or leave --subnet out",
        )


def plan_network(
    index: Index,
    driver_of: DriverOf,
    drv: Driver,
    host_prefixes: Prefixes,
    name: str,
    subnet: str,
    gateway: str,
    options: dict[str, str],
    acl_specs: list[str],
    note: str = "",
    carvable: bool = False,
) -> Network:
    """A new network, every check done: name, options, subnet (given, or the first free
    /24), gateway, ACL rules, and what its driver checks against the others."""
    check_name("network", name)
    opts = drv.normalize_options(options)
    net_acl = [acl.parse_rule(spec) for spec in acl_specs]
    if index.network_named(name) is not None:
        raise Conflict(f"a network named {name!r} already exists", "choose another name")
    net4: ipaddress.IPv4Network | None
    if subnet:
        net4 = parse_subnet(subnet)
        check_overlap(index, driver_of, net4, host_prefixes, host_too=not drv.on_host_subnet)
    elif drv.on_host_subnet and not drv.dhcp_without_subnet:
        raise InvalidRequest(
            f"the {drv.name} driver needs --subnet and --gateway (the host's network); "
            "it takes static addresses only",
            "give --subnet and --gateway, and --ip for each endpoint",
        )
    elif gateway:
        raise InvalidRequest("--gateway needs --subnet", "give --subnet too, or neither")
    elif drv.dhcp_without_subnet:
        net4 = None  # addresses from DHCP: the external DHCP server owns the subnet
    else:
        found = ipam.first_free_subnet(24, index.subnets_in_use() + host_prefixes())
        if found is None:
            raise Conflict("no free /24 left in 172.16.0.0/12", "give --subnet explicitly")
        net4 = found
    gw: ipaddress.IPv4Address | None = None
    if net4 is not None:
        gw = parse_ip(gateway, "gateway") if gateway else ipam.default_gateway(net4)
        ipam.check_gateway(net4, gw)
    nid = new_id()
    net = Network(
        id=nid,
        name=name,
        driver=drv.name,
        subnet=str(net4) if net4 else "",
        gateway=str(gw) if gw else "",
        options=opts,
        switch=drv.switch_prefix + nid[:8],
        note=note,
        carvable=carvable,
        acl=net_acl,
    )
    drv.check_network(net, list(index.nets.values()))
    return net


def qos_limit(text: str) -> dict[str, int]:
    """HNS QoS MaximumOutgoingBandwidthInBytes (bytes/s, k/m/g = 1000s) as an egress limit."""
    value, factor = text.strip().lower(), 1
    if value[-1:] in ("k", "m", "g"):
        factor = {"k": 10**3, "m": 10**6, "g": 10**9}[value[-1]]
        value = value[:-1]
    if not value.isdigit() or int(value) == 0:
        raise InvalidRequest(
            f"--max-bandwidth {text!r} is not a positive number of bytes/s",
            "give e.g. 2500000 or 2.5m written as 2500k",
        )
    rate = int(value) * factor * 8
    return {"egressRate": rate, "egressBurst": max(rate // 10, 24000)}


def aliases(given: list[str]) -> list[str]:
    """Network aliases are DNS names: one or more labels of letters, digits and '-'."""
    for a in given:
        labels = a.split(".") if isinstance(a, str) else [""]
        if not all(
            0 < len(x) <= 63 and x.replace("-", "").isalnum() and x.isascii() for x in labels
        ):
            raise InvalidRequest(
                f"network alias {a!r} is not a DNS name",
                "use letters, digits and '-' in dot-separated labels, e.g. db or db.internal",
            )
    return list(dict.fromkeys(a.lower() for a in given))


def with_policies(net: Network, drv: Driver, ep: Endpoint, given: list[Any]) -> None:
    """Parse and check HNS OutBoundNAT / SDNRoute policies for this endpoint, then set them."""
    for pol in (policies.parse(p) for p in given):
        if isinstance(pol, policies.OutboundNatPolicy):
            if not drv.publishes_ports:
                raise InvalidRequest(
                    f"an OutBoundNAT endpoint policy needs a nat network; {net.name!r} is "
                    f"{net.driver}",
                    "for l2bridge use the network's -o enable_outboundnat=true "
                    "and -o outboundnat_exceptions=...",
                )
            if ep.outbound_nat is not None:
                raise InvalidRequest("an endpoint takes one OutBoundNAT policy", "merge them")
            ep.outbound_nat = pol
        else:
            if ep.dhcp or not net.subnet:
                raise InvalidRequest(
                    "SDNRoute needs an endpoint with a static subnet", "use a network with --subnet"
                )
            if ipaddress.IPv4Address(pol.next_hop) not in net.ipv4_network():
                raise InvalidRequest(
                    f"SDNRoute next hop {pol.next_hop} is not on the endpoint's subnet "
                    f"{net.subnet}",
                    "give a next hop the endpoint reaches directly",
                )
            ep.routes.append(pol)


def _dhcp_endpoint(
    net: Network, c: Container, ifname: str, ip: str, port_specs: list[str]
) -> Endpoint:
    if ip:
        raise InvalidRequest(
            f"network {net.name!r} takes addresses from DHCP; --ip needs a subnet",
            "create the network with --subnet and --gateway for static addresses",
        )
    if port_specs:
        raise InvalidRequest(f"the {net.driver} driver publishes no ports", "remove -p")
    eid = new_id()
    return Endpoint(
        id=eid,
        network_id=net.id,
        container_id=c.id,
        ip="",
        prefix_len=0,
        gateway="",
        mac="02:42:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(4)),
        ifname=ifname,
        host_ifname=VETH_PREFIX + eid[:10],
        dhcp=True,
    )


def plan_endpoint(
    index: Index,
    drv: Driver,
    net: Network,
    c: Container,
    ifname: str,
    ip: str,
    port_specs: list[str],
    *,
    also_used: set[ipaddress.IPv4Address] | frozenset[ipaddress.IPv4Address] = frozenset(),
    after: str = "",
) -> Endpoint:
    """An endpoint of ``c`` on ``net``: the given address or the next free one after
    ``after``; ``also_used`` are addresses taken elsewhere (other hosts' claims)."""
    if not net.subnet:  # DHCP: the address comes with the lease, at attach
        return _dhcp_endpoint(net, c, ifname, ip, port_specs)
    subnet, gw = net.ipv4_network(), ipaddress.IPv4Address(net.gateway)
    used = index.addresses_used(net)
    if also_used:
        used = used | also_used
    host_addrs = {ipaddress.IPv4Address(a[0]) for a in net.adapter_state.get("addrs", [])}
    if host_addrs:  # external switches: the host's own addresses there are taken too
        used = used | {a for a in host_addrs if a in subnet}
    if ip:
        addr = parse_ip(ip)
        ipam.check_static(subnet, gw, addr, used, index.carved(net))
    else:
        last = ipaddress.IPv4Address(after) if after else None
        addr = ipam.allocate(subnet, gw, used, last, index.carved(net))
    if port_specs and not drv.publishes_ports:
        raise InvalidRequest(
            f"the {net.driver} driver publishes no ports",
            "its endpoints are reachable at their own address; remove -p",
        )
    requests = [ports.parse_port_spec(s) for s in port_specs]
    mappings = ports.resolve(requests, index.port_index)
    eid = new_id()
    return Endpoint(
        id=eid,
        network_id=net.id,
        container_id=c.id,
        ip=str(addr),
        prefix_len=subnet.prefixlen,
        gateway=net.gateway,
        mac=mac_for(addr),
        ifname=ifname,
        host_ifname=VETH_PREFIX + eid[:10],
        ports=mappings,
    )
