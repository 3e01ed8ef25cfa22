"""Planning an endpoint before anything changes: its address, MAC, host ports, names,
bandwidth and policies, checked against the index. Pure: no store, no kernel.

A plan that passes every check here is what the orchestrator records and then realizes.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from hostnet.core import acl, ipam, policies, ports
from hostnet.core.index import Index
from hostnet.drivers.base import Driver
from hostnet.errors import Conflict, InvalidRequest
from hostnet.model import (
    VETH_PREFIX,
    Container,
    Endpoint,
    IPAddress,
    IPNetwork,
    Network,
    check_name,
    host_ip_family,
    mac_for,
    new_id,
    parse_ip,
    parse_subnet,
)

Prefixes = Callable[[], list[IPNetwork]]  # the host's own addresses and routes
DriverOf = Callable[[Network], Driver]


def check_overlap(
    index: Index,
    driver_of: DriverOf,
    subnet: IPNetwork,
    host_prefixes: Prefixes,
    host_too: bool = True,
) -> None:
    """Refuse a subnet overlapping another network or the host; external switches (host_too
    False) may share a subnet with each other: each is its own physical L2 network."""
    for n in index.nets.values():
        if not host_too and driver_of(n).on_host_subnet:
            continue
        for theirs in n.subnets():
            if theirs.version != subnet.version or not subnet.overlaps(theirs):  # type: ignore[arg-type,unused-ignore]
                continue
            if isinstance(subnet, ipaddress.IPv4Network) and index.may_carve(subnet, n):
                continue
            raise Conflict(
                f"subnet {subnet} overlaps network {n.name!r} ({theirs})",
                "choose a subnet that does not overlap, or leave --subnet out to get a free one",
            )
    hit = ipam.overlapping(subnet, host_prefixes()) if host_too else None
    if hit is not None:
        raise Conflict(
            f"subnet {subnet} overlaps the host's own address or route {hit}",
            "choose a subnet the host does not use, or leave --subnet out",
        )


@dataclass
class AddressPlan:
    """What a network create asks of IPAM (Docker's --subnet, --gateway, --ip-range and
    --aux-address, each repeatable, matched to a subnet by family; --ipv6, --ipv4)."""

    subnets: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    ip_ranges: list[str] = field(default_factory=list)
    aux: dict[str, str] = field(default_factory=dict)
    ipv6: bool = False
    ipv4: bool = True


@dataclass
class _Family:
    subnet: IPNetwork
    gateway: IPAddress
    ip_range: IPNetwork | None = None


def _by_family(plan: AddressPlan) -> dict[int, IPNetwork]:
    subnets: dict[int, IPNetwork] = {}
    for text in plan.subnets:
        sub = parse_subnet(text, None)
        if sub.version in subnets:
            raise InvalidRequest(
                f"two IPv{sub.version} subnets given ({subnets[sub.version]} and {sub})",
                "give at most one --subnet per family (one IPv4 and one IPv6)",
            )
        subnets[sub.version] = sub
    return subnets


def _one_per_family(what: str, texts: list[str], subnets: dict[int, IPNetwork]) -> dict[int, str]:
    """Each --gateway / --ip-range given belongs to the subnet of its family."""
    out: dict[int, str] = {}
    if texts and not subnets:
        raise InvalidRequest(f"{what} needs --subnet", "give --subnet too, or neither")
    for text in texts:
        version = 6 if ":" in text else 4
        if version not in subnets:
            raise InvalidRequest(
                f"{what} {text} is IPv{version} but the network has no IPv{version} subnet",
                f"give --subnet with an IPv{version} prefix too, or leave {what} {text} out",
            )
        if version in out:
            raise InvalidRequest(
                f"two IPv{version} values of {what} given ({out[version]} and {text})",
                f"give at most one {what} per subnet",
            )
        out[version] = text
    return out


def _families(
    index: Index,
    driver_of: DriverOf,
    drv: Driver,
    host_prefixes: Prefixes,
    plan: AddressPlan,
) -> dict[int, _Family]:
    """The network's subnets by family, every one checked (size, overlap, gateway, range)."""
    subnets = _by_family(plan)
    if 6 in subnets:
        plan.ipv6 = True  # an IPv6 subnet asks for IPv6 (as podman takes it)
    if not plan.ipv4 and 4 in subnets:
        raise InvalidRequest(
            f"--ipv4=false with an IPv4 subnet ({subnets[4]})", "leave one of them out"
        )
    if not plan.ipv4 and not plan.ipv6:
        raise InvalidRequest("--ipv4=false needs --ipv6", "a network needs an address family")
    gateways = _one_per_family("--gateway", plan.gateways, subnets)
    ranges = _one_per_family("--ip-range", plan.ip_ranges, subnets)
    host_too = not drv.on_host_subnet
    for sub in subnets.values():
        check_overlap(index, driver_of, sub, host_prefixes, host_too=host_too)
    if plan.ipv4 and 4 not in subnets:
        if drv.on_host_subnet and not drv.dhcp_without_subnet:
            raise InvalidRequest(
                f"the {drv.name} driver needs --subnet and --gateway (the host's network); "
                "it takes static addresses only",
                "give --subnet and --gateway, and --ip for each endpoint",
            )
        if not drv.dhcp_without_subnet:
            found = ipam.first_free_subnet(24, [*index.subnets_in_use(), *host_prefixes()])
            if found is None:
                raise Conflict("no free /24 left in 172.16.0.0/12", "give --subnet explicitly")
            subnets[4] = found
    if plan.ipv6 and 6 not in subnets and not drv.dhcp_without_subnet:
        if drv.on_host_subnet:
            raise InvalidRequest(
                f"the {drv.name} driver needs the IPv6 --subnet of the host's network",
                "give --subnet with the IPv6 prefix of the physical network",
            )
        used = [s for n in index.nets.values() for s in n.subnets()] + list(host_prefixes())
        subnets[6] = ipam.unique_local_subnet(used)
    out: dict[int, _Family] = {}
    for version, sub in sorted(subnets.items()):
        given = gateways.get(version)
        gw = parse_ip(given, "gateway", version) if given else ipam.default_gateway(sub)
        ipam.check_gateway(sub, gw)
        rng = None
        if version in ranges:
            rng = parse_subnet(ranges[version], version)
            ipam.check_range(sub, rng, gw)
        out[version] = _Family(sub, gw, rng)
    return out


def _aux(aux: dict[str, str], fams: dict[int, _Family]) -> dict[str, str]:
    """--aux-address NAME=ADDR: inside one of the subnets, never its gateway."""
    out: dict[str, str] = {}
    for name, text in aux.items():
        addr = parse_ip(text, f"--aux-address {name}", None)
        fam = fams.get(addr.version)
        if fam is None or addr not in fam.subnet:
            raise InvalidRequest(
                f"--aux-address {name}={text} is outside the network's subnets",
                "give an address inside --subnet",
            )
        if addr == fam.gateway or addr == fam.subnet.network_address:
            raise InvalidRequest(
                f"--aux-address {name}={text} is the network or gateway address",
                "reserve a host address other than the gateway",
            )
        out[name] = str(addr)
    return out


def plan_network(
    index: Index,
    driver_of: DriverOf,
    drv: Driver,
    host_prefixes: Prefixes,
    name: str,
    addresses: AddressPlan,
    options: dict[str, str],
    acl_specs: list[str],
    note: str = "",
    carvable: bool = False,
    internal: bool = False,
    nid: str = "",
) -> Network:
    """A new network (``nid``: its id, else a new one), every check done: name, options, subnets (given, or the first free
    IPv4 /24 and a unique local IPv6 /64), gateways, ranges, reserved addresses, ACL rules,
    and what its driver checks against the others."""
    check_name("network", name)
    opts = drv.normalize_options(options)
    net_acl = [acl.parse_rule(spec) for spec in acl_specs]
    if index.network_named(name) is not None:
        raise Conflict(f"a network named {name!r} already exists", "choose another name")
    if internal and not drv.publishes_ports:
        raise InvalidRequest(
            f"--internal is for nat networks; a {drv.name} network's endpoints sit on "
            "another network (the physical one, or an overlay) that hostnet does not close",
            "leave --internal out, or use the nat driver",
        )
    fams = _families(index, driver_of, drv, host_prefixes, addresses)
    aux = _aux(addresses.aux, fams)
    v4, v6 = fams.get(4), fams.get(6)
    nid = nid or new_id()
    net = Network(
        id=nid,
        name=name,
        driver=drv.name,
        subnet=str(v4.subnet) if v4 else "",
        gateway=str(v4.gateway) if v4 else "",
        subnet6=str(v6.subnet) if v6 else "",
        gateway6=str(v6.gateway) if v6 else "",
        ip_range=str(v4.ip_range) if v4 and v4.ip_range else "",
        ip_range6=str(v6.ip_range) if v6 and v6.ip_range else "",
        aux_addresses=aux,
        internal=internal,
        enable_ipv6=addresses.ipv6,
        ipv4=4 in fams or (addresses.ipv4 and drv.dhcp_without_subnet),
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
            hop = ipaddress.ip_address(pol.next_hop)
            subnet = net.subnet if hop.version == 4 else net.subnet6
            dynamic = ep.dhcp if hop.version == 4 else ep.slaac
            if dynamic or not subnet:
                raise InvalidRequest(
                    f"SDNRoute via {hop} needs an endpoint with a static IPv{hop.version} subnet",
                    f"use a network with an IPv{hop.version} --subnet",
                )
            if hop not in ipaddress.ip_network(subnet):
                raise InvalidRequest(
                    f"SDNRoute next hop {pol.next_hop} is not on the endpoint's subnet {subnet}",
                    "give a next hop the endpoint reaches directly",
                )
            ep.routes.append(pol)


def _address(
    net: Network, version: int, given: str, after: str, taken: ipam.Taken, carved: list[Any]
) -> IPAddress:
    """The endpoint's address in one family: the given one, checked, or the next free one
    (from --ip-range when the network has one)."""
    sub = net.ipv4_network() if version == 4 else net.ipv6_network()
    gw = ipaddress.ip_address(net.gateway if version == 4 else net.gateway6)
    if given:
        addr = parse_ip(given, "address" if version == 4 else "--ip6 address", version)
        ipam.check_static(sub, gw, addr, taken, carved)
        return addr
    rng = net.ip_range if version == 4 else net.ip_range6
    last = ipaddress.ip_address(after) if after else None
    return ipam.allocate(
        sub, gw, taken, last, carved, within=ipaddress.ip_network(rng) if rng else None
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
    ip6: str = "",
    also_used: AbstractSet[IPAddress] = frozenset(),
    after: str = "",
    after6: str = "",
    eid: str = "",
) -> Endpoint:
    """An endpoint (``eid``: its id, else a new one) of ``c`` on ``net``: the given addresses or the next free ones after
    ``after``/``after6``; ``also_used`` are addresses taken elsewhere (other hosts' claims)."""
    for given, version, have in ((ip, 4, net.subnet), (ip6, 6, net.subnet6)):
        if not given or have:
            continue
        flag = "--ip" if version == 4 else "--ip6"
        if version == 4 and net.dhcp:
            raise InvalidRequest(
                f"network {net.name!r} takes addresses from DHCP; --ip needs a subnet",
                "create the network with --subnet and --gateway for static addresses",
            )
        if version == 6 and net.slaac:
            raise InvalidRequest(
                f"network {net.name!r} takes IPv6 addresses from router advertisements "
                "(SLAAC); --ip6 needs an IPv6 subnet",
                "create the network with --subnet and --gateway of the IPv6 network",
            )
        raise InvalidRequest(
            f"network {net.name!r} has no IPv{version} subnet; {flag} {given} has no place on it",
            f"leave {flag} out"
            + (", or create the network with --ipv6 --subnet ..." if version == 6 else ""),
        )
    aux = {ipaddress.ip_address(a) for a in net.aux_addresses.values()}
    host_addrs = {ipaddress.ip_address(a[0]) for a in net.adapter_state.get("addrs", [])}
    # external switches: the host's own addresses there are taken too
    taken = ipam.Taken(index.addresses_used(net), also_used, aux, host_addrs)
    carved = index.carved(net)
    addr4 = _address(net, 4, ip, after, taken, carved) if net.subnet else None
    addr6 = _address(net, 6, ip6, after6, taken, []) if net.subnet6 else None
    if port_specs and not drv.publishes_ports:
        raise InvalidRequest(
            f"the {net.driver} driver publishes no ports",
            "its endpoints are reachable at their own address; remove -p",
        )
    if port_specs and net.internal:
        raise InvalidRequest(
            f"network {net.name!r} is internal: nothing outside reaches it, so it publishes "
            "no ports",
            "remove -p, or use a network created without --internal",
        )
    requests = [ports.parse_port_spec(s) for s in port_specs]
    for spec, req in zip(port_specs, requests, strict=True):
        version = host_ip_family(req.host_ip)
        if version and not (addr4 if version == 4 else addr6):
            raise InvalidRequest(
                f"-p {spec} publishes on an IPv{version} host address, but network "
                f"{net.name!r} gives the container no IPv{version} address",
                "publish on the other family's address, or on every address (-p HOSTPORT:PORT)",
            )
    mappings = ports.resolve(requests, index.port_index)
    eid = eid or new_id()
    if addr4 is not None:
        mac = mac_for(addr4)
    elif addr6 is not None and not net.dhcp:
        mac = mac_for(addr6)
    else:  # every address comes at attach (DHCP, SLAAC): nothing to derive it from
        mac = "02:42:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(4))
    return Endpoint(
        id=eid,
        network_id=net.id,
        container_id=c.id,
        ip=str(addr4) if addr4 else "",
        prefix_len=net.ipv4_network().prefixlen if addr4 else 0,
        gateway=net.gateway if addr4 else "",
        ip6=str(addr6) if addr6 else "",
        prefix_len6=net.ipv6_network().prefixlen if addr6 else 0,
        gateway6=net.gateway6 if addr6 else "",
        mac=mac,
        ifname=ifname,
        host_ifname=VETH_PREFIX + eid[:10],
        dhcp=net.dhcp,
        slaac=net.slaac,
        ports=mappings,
    )
