"""HNS v1 objects <-> hostnet's model: what ``/hns`` answers, and what a v1 body asks for.

Pure translation (no service calls, no kernel): ``network_view``/``endpoint_view`` render a
hostnet Network/Endpoint as hcsshim's HNSNetwork/HNSEndpoint (``schema_v1``), whichever
face made it; ``network_request``/``endpoint_request`` turn a parsed v1 body into the
arguments of the service's create calls, refusing by name what hostnet cannot do. Objects
made through ``/hns`` get upper-case GUIDs (HNS answers them so); ids are looked up
without regard to case (``id_candidates``).
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from typing import Any

from hostnet.core import acl
from hostnet.drivers.registry import BUILTIN, hns_types
from hostnet.errors import InvalidRequest
from hostnet.hns import policy_settings as ps
from hostnet.hns.policies import check_v1
from hostnet.hns.schema_v1 import HNSEndpoint, HNSNetwork
from hostnet.model import Endpoint, Network, PortMapping, check_name, parse_mac

HNS_TYPE = {i.name: i.hns_type for i in BUILTIN if i.hns_type}  # hostnet driver -> HNS Type
STATE_CREATED, STATE_ATTACHED = 1, 2  # HNSEndpoint.State (schema_v1.ENDPOINT_STATES)


def new_guid() -> str:
    """A fresh id for an object made through /hns: a GUID, upper case as HNS writes them."""
    return str(uuid.uuid4()).upper()


def given_guid(value: str, what: str) -> str:
    """An ``ID`` a client put in a create body: a GUID (kept, upper case), or refused."""
    try:
        return str(uuid.UUID(value)).upper()
    except ValueError:
        raise InvalidRequest(
            f"{what} ID {value!r} is not a GUID",
            "leave ID out (hostnet chooses one) or give a GUID such as "
            "5f0b1190-63be-4e0c-b974-bd0f55675a42",
        ) from None


def id_candidates(ref: str) -> tuple[str, ...]:
    """The ids ``ref`` may name: as given, upper case (GUIDs made here), lower (hostnet's hex)."""
    return tuple(dict.fromkeys((ref, ref.upper(), ref.lower())))


def hns_mac(mac: str) -> str:
    """``02:42:ac:10:00:05`` as HNS writes MACs: ``02-42-AC-10-00-05``."""
    return mac.upper().replace(":", "-")


# -- views -------------------------------------------------------------------------------
def _subnet_policies(net: Network) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if net.options.get("vlanid"):
        out.append({"Type": "VLAN", "VLAN": int(net.options["vlanid"])})
    if net.options.get("vxlanid"):
        out.append({"Type": "VSID", "VSID": int(net.options["vxlanid"])})
    return out


def management_ip(net: Network, host_vnic_ip: str, holds_gateway: bool) -> str:
    """The host's address on the network: its adapter's (external switches), its vNIC's
    there, or the gateway when the host's switch carries it (nat)."""
    addrs = net.adapter_state.get("addrs") or []
    if addrs:
        return str(addrs[0][0])
    return host_vnic_ip or (net.gateway if holds_gateway else "")


def network_view(net: Network, mgmt_ip: str) -> dict[str, Any]:
    """A network as hcsshim's HNSNetwork marshals (omitempty)."""
    policies = _subnet_policies(net) or None
    subnets = [
        {"AddressPrefix": s, "GatewayAddress": g, "Policies": policies}
        for s, g in ((net.subnet, net.gateway), (net.subnet6, net.gateway6))
        if s
    ]
    view = HNSNetwork.model_validate(
        {
            "ID": net.id,
            "Name": net.name,
            "Type": HNS_TYPE.get(net.driver, net.driver),
            "NetworkAdapterName": net.options.get("interface", ""),
            "Subnets": subnets,
            "DNSSuffix": net.options.get("dnssuffix", ""),
            "DNSServerList": net.options.get("dnsservers", ""),
            "ManagementIP": mgmt_ip,
            "AutomaticDNS": net.options.get("discovery", "true") == "true",
        }
    )
    return view.to_json()


def _nat_policy(p: PortMapping) -> dict[str, Any]:
    return {
        "Type": "NAT",
        "Protocol": p.protocol.upper(),
        "InternalPort": p.container_port,
        "ExternalPort": p.host_port,
    }


def _acl_policy(r: acl.AclRule) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": "ACL", "Action": r.Action, "Direction": r.Direction}
    protocols = ",".join(str(p) for p in r.Protocols if p != 256)
    for key, value in (
        ("Protocols", protocols),
        ("LocalAddresses", ",".join(r.LocalAddresses)),
        ("RemoteAddresses", ",".join(r.RemoteAddresses)),
        ("LocalPorts", ",".join(r.LocalPorts)),
        ("RemotePorts", ",".join(r.RemotePorts)),
    ):
        if value:
            out[key] = value
    out["Priority"] = r.Priority
    return out


def endpoint_policies(ep: Endpoint) -> list[dict[str, Any]]:
    """An endpoint's policies in v1's flat shapes (NAT, ACL, QOS, OutBoundNAT, ROUTE)."""
    out = [_nat_policy(p) for p in ep.ports] + [_acl_policy(r) for r in ep.acl]
    if ep.bandwidth.get("egressRate"):
        rate = ep.bandwidth["egressRate"] // 8
        out.append({"Type": "QOS", "MaximumOutgoingBandwidthInBytes": rate})
    if ep.outbound_nat is not None:
        nat: dict[str, Any] = {"Type": "OutBoundNAT"}
        o = ep.outbound_nat
        for key, value in (
            ("VIP", o.virtual_ip),
            ("ExceptionList", o.exceptions),
            ("Destinations", o.destinations),
        ):
            if value:
                nat[key] = value
        out.append(nat)
    out += [
        {"Type": "ROUTE", "DestinationPrefix": r.destination, "NextHop": r.next_hop}
        for r in ep.routes
    ]
    return out


def endpoint_view(ep: Endpoint, net: Network | None, container_id: str) -> dict[str, Any]:
    """An endpoint as hcsshim's HNSEndpoint marshals; ``container_id``: the container it
    is attached to ("" for none or the host)."""
    dns = ep.dns or (net.dns() if net else {})
    discovery = net is not None and net.options.get("discovery", "true") == "true"
    view = HNSEndpoint.model_validate(
        {
            "ID": ep.id,
            "Name": ep.name,
            "VirtualNetwork": ep.network_id,
            "VirtualNetworkName": net.name if net else "",
            "Policies": endpoint_policies(ep) or None,
            "MacAddress": hns_mac(ep.mac) if ep.mac else "",
            "IPAddress": ep.ip,
            "IPv6Address": ep.ip6,
            "DNSSuffix": ",".join(dns.get("search", [])),
            "DNSServerList": ",".join(dns.get("nameservers", [])),
            "GatewayAddress": ep.gateway,
            "GatewayAddressV6": ep.gateway6,
            "EnableInternalDNS": discovery,
            "PrefixLength": ep.prefix_len,
            "IPv6PrefixLength": ep.prefix_len6,
            "SharedContainers": [container_id] if container_id else [],
            "State": STATE_ATTACHED if ep.attached else STATE_CREATED,
        }
    )
    return view.to_json()


# -- requests ----------------------------------------------------------------------------
def _refuse_set(fields: dict[str, Any], what: str, remedy: str) -> None:
    given = [k for k, v in fields.items() if v]
    if given:
        raise InvalidRequest(
            f"{what}: {', '.join(given)} {'is' if len(given) == 1 else 'are'} not supported by "
            "hostnet",
            remedy,
        )


@dataclass
class NetworkRequest:
    """``HostNetworkingService.create_network``'s arguments for a v1 HNSNetwork."""

    name: str
    driver: str
    subnets: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    nid: str = ""


def _driver(type_name: str) -> str:
    if not type_name:
        raise InvalidRequest("an HNSNetwork needs a Type", 'e.g. "Type": "NAT"')
    by_type = hns_types()
    if type_name not in by_type:
        raise InvalidRequest(
            f"network Type {type_name!r} is not supported by hostnet",
            f"use one of: {', '.join(by_type)}",
            type=type_name,
        )
    return by_type[type_name]


def network_request(n: HNSNetwork) -> NetworkRequest:
    """A parsed v1 HNSNetwork as a create: checked in full, nothing changed yet."""
    _refuse_set(
        {"ManagementIP": n.management_ip, "SourceMac": n.source_mac},
        "HNSNetwork",
        "leave them out: hostnet fills ManagementIP in, and switches keep their own MAC",
    )
    _refuse_set(
        {"MacPools": n.mac_pools, "DNSServerCompartment": n.dns_server_compartment},
        "HNSNetwork",
        "leave them out: hostnet derives each endpoint's MAC from its address (give an "
        "endpoint's MacAddress to choose one), and DNS servers are reached from each "
        "compartment",
    )
    if not n.name:
        raise InvalidRequest("an HNSNetwork needs a Name", 'e.g. "Name": "GoTestNat"')
    req = NetworkRequest(name=n.name, driver=_driver(n.type))
    req.nid = given_guid(n.id, "HNSNetwork") if n.id else new_guid()
    opts = req.options
    if n.network_adapter_name:
        opts["interface"] = n.network_adapter_name
    if n.dns_suffix:
        opts["dnssuffix"] = n.dns_suffix
    if n.dns_server_list:
        opts["dnsservers"] = n.dns_server_list
    if n.automatic_dns:
        opts["discovery"] = "true"
    for i, s in enumerate(n.subnets):
        if s.address_prefix and not s.gateway_address:
            raise InvalidRequest(
                f"Subnets[{i}] has AddressPrefix {s.address_prefix} but no GatewayAddress",
                "give the subnet's GatewayAddress (hcsshim refuses this too)",
            )
        if not s.address_prefix:
            raise InvalidRequest(f"Subnets[{i}] has no AddressPrefix", "give one, or no subnet")
        req.subnets.append(s.address_prefix)
        req.gateways.append(s.gateway_address)
        for pol in s.policies or []:
            _network_policy(pol, opts, f"Subnets[{i}].Policies")
    for pol in n.policies or []:
        _network_policy(pol, opts, "Policies")
    return req


def _network_policy(pol: Any, opts: dict[str, str], where: str) -> None:
    """A v1 policy on a network or subnet: VLAN and VSID are options; the rest refused."""
    type_name, settings = check_v1(pol)
    if isinstance(settings, ps.VlanV1Settings):
        opts["vlanid"] = str(settings.vlan)
    elif isinstance(settings, ps.VsidV1Settings):
        opts["vxlanid"] = str(settings.vsid)
    else:
        raise InvalidRequest(
            f"{where}: a {type_name} policy belongs on an endpoint, not a network",
            "give it in the HNSEndpoint's Policies",
            type=type_name,
        )


@dataclass
class EndpointRequest:
    """``HostNetworkingService.create_endpoint``'s arguments for a v1 HNSEndpoint, and the
    ACL rules set on it once made."""

    network: str
    name: str = ""
    ip: str = ""
    ip6: str = ""
    mac: str = ""
    port_specs: list[str] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)  # OutBoundNAT, SDNRoute (v2)
    acl: list[acl.AclRule] = field(default_factory=list)
    eid: str = ""


def endpoint_request(e: HNSEndpoint, net: Network) -> EndpointRequest:
    """A parsed v1 HNSEndpoint on ``net`` (found from VirtualNetwork/-Name) as a create."""
    _refuse_set(
        {
            "IsRemoteEndpoint": e.is_remote_endpoint,
            "EnableLowMetric": e.enable_low_metric,
            "EncapOverhead": e.encap_overhead,
            "DisableICC": e.disable_icc,
            "DNSDomain": e.dns_domain,
            "Namespace": e.namespace is not None,
        },
        "HNSEndpoint",
        "leave them out: remote endpoints belong to overlay routing (not implemented), ICC "
        "is the network's (-o disableicc), and a namespace is joined by POST "
        "/hns/endpoints/{id}/attach",
    )
    _refuse_set(
        {"State": e.state, "SharedContainers": e.shared_containers},
        "HNSEndpoint",
        "leave them out: they are read-only, hostnet fills them in",
    )
    if e.virtual_network_name and e.virtual_network_name != net.name:
        raise InvalidRequest(
            f"VirtualNetwork {e.virtual_network!r} is network {net.name!r}, but "
            f"VirtualNetworkName says {e.virtual_network_name!r}",
            "give one of them, or both naming the same network",
        )
    if e.name:
        check_name("endpoint", e.name)
    _check_matches(e, net)
    req = EndpointRequest(network=net.id, name=e.name, ip=e.ip_address, ip6=e.ipv6_address)
    req.eid = given_guid(e.id, "HNSEndpoint") if e.id else new_guid()
    req.mac = parse_mac(e.mac_address) if e.mac_address else ""
    for pol in e.policies or []:
        _endpoint_policy(pol, req)
    return req


def _check_matches(e: HNSEndpoint, net: Network) -> None:
    """Fields HNS derives from the network: given, they must say what the network says."""
    for key, given, have in (
        ("GatewayAddress", e.gateway_address, net.gateway),
        ("GatewayAddressV6", e.gateway_address_v6, net.gateway6),
    ):
        if given and given != have:
            raise InvalidRequest(
                f"{key} {given} is not network {net.name!r}'s gateway ({have or 'none'})",
                f"leave {key} out; endpoints use their network's gateway",
            )
    for key, plen, subnet in (
        ("PrefixLength", e.prefix_length, net.subnet),
        ("IPv6PrefixLength", e.ipv6_prefix_length, net.subnet6),
    ):
        want = ipaddress.ip_network(subnet).prefixlen if subnet else 0
        if plen and plen != want:
            raise InvalidRequest(
                f"{key} {plen} is not network {net.name!r}'s ({want or 'no such subnet'})",
                f"leave {key} out; the network's subnet gives it",
            )
    dns = net.dns()
    for key, given, have in (
        ("DNSServerList", e.dns_server_list, ",".join(dns.get("nameservers", []))),
        ("DNSSuffix", e.dns_suffix, ",".join(dns.get("search", []))),
    ):
        if given and given.replace(" ", "") != have:
            raise InvalidRequest(
                f"{key} {given!r} differs from network {net.name!r}'s ({have or 'none'}): "
                "hostnet hands each endpoint its network's DNS settings",
                f"leave {key} out, or set it on the network (POST /hns/networks/)",
            )
    if e.enable_internal_dns and net.options.get("discovery", "true") != "true":
        raise InvalidRequest(
            f"EnableInternalDNS: network {net.name!r} has its embedded DNS off",
            "leave EnableInternalDNS out, or use a network with AutomaticDNS",
        )


def _endpoint_policy(pol: Any, req: EndpointRequest) -> None:
    type_name, s = check_v1(pol)
    if isinstance(s, ps.NatV1Settings):
        req.port_specs.append(f"{s.external_port}:{s.internal_port}/{s.protocol.lower()}")
    elif isinstance(s, ps.AclV1Settings):
        req.acl.append(s.to_rule())
    elif isinstance(s, ps.OutboundNatV1Settings | ps.SdnRouteSettings):
        req.policies.append(s.to_policy().hns())
    elif isinstance(s, ps.QosSettings):
        raise InvalidRequest(
            "a QOS policy on an endpoint made through /hns is not supported yet: hostnet "
            "sets egress caps when it makes a container's endpoint",
            "leave QOS out, or run the container with 'hostnet run --max-bandwidth'",
            type=type_name,
        )
    else:
        raise InvalidRequest(
            f"a {type_name} policy belongs on a network or subnet, not an endpoint",
            "give it in the HNSNetwork's Policies or a subnet's",
            type=type_name,
        )
