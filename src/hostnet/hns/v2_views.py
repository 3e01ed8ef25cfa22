"""HCN (v2) objects <-> hostnet's model: what a create asks the service for, and views.

Pure translation (no service, no kernel): a HostComputeNetwork becomes ``create_network``'s
arguments, a HostComputeEndpoint ``create_endpoint``'s plus its ACL, QOS and ports; a
network, endpoint, namespace or route becomes the JSON hcsshim's ``hcn`` structs decode.
Anything hostnet cannot honour is refused here by name, before anything changes.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from typing import Any

from hostnet.core import acl, policies
from hostnet.core.planning import AddressPlan
from hostnet.drivers.registry import hns_types
from hostnet.errors import InvalidRequest
from hostnet.hns import policy_settings as ps
from hostnet.hns.policies import check_v2
from hostnet.hns.schema import (
    HostComputeEndpoint,
    HostComputeNetwork,
    HostComputeRoute,
)
from hostnet.model import Endpoint, Network, PortMapping

KINDS = ("networks", "endpoints", "namespaces", "routes")
SINGULAR = {"networks": "network", "endpoints": "endpoint", "namespaces": "namespace"}
SINGULAR["routes"] = "route"
DEFAULT_ROUTES = ("0.0.0.0/0", "::/0")
V2 = {"Major": 2, "Minor": 0}
_NO_TYPE = {
    "ICS": "Internet Connection Sharing has no counterpart; use NAT",
    "Private": "a switch with no host vNIC; use NAT with no published ports",
}


def check_guid(text: str, kind: str) -> str:
    """An HCN id: a GUID (any case, braces allowed), answered lower case."""
    try:
        return str(uuid.UUID(text.strip("{}")))
    except (ValueError, AttributeError):
        raise InvalidRequest(
            f"invalid {SINGULAR.get(kind, kind)} ID {text!r}: not a GUID",
            "give a GUID such as 5f0b1190-63be-4e0c-b974-bd0f55675a42, or leave ID out",
            id=text,
        ) from None


def norm_id(text: str) -> str:
    """A reference to an existing object: a GUID (any case, braces) or, for objects made
    elsewhere, hostnet's own id; matched lower case."""
    return text.strip().strip("{}").lower()


def guid_or_new(text: str, kind: str) -> str:
    return check_guid(text, kind) if text else str(uuid.uuid4())


def _refuse(what: str, remedy: str, **details: Any) -> InvalidRequest:
    return InvalidRequest(what, remedy, **details)


# ---- networks ----------------------------------------------------------------------
@dataclass
class NetworkPlan:
    """``create_network``'s arguments for a HostComputeNetwork, and its MAC pool."""

    nid: str
    name: str
    driver: str
    options: dict[str, str] = field(default_factory=dict)
    addresses: AddressPlan = field(default_factory=AddressPlan)
    acl_specs: list[str] = field(default_factory=list)
    mac_pool: list[dict[str, str]] = field(default_factory=list)


def network_plan(hcn: HostComputeNetwork) -> NetworkPlan:
    """Every field checked: those hostnet cannot honour are refused by name."""
    nid = guid_or_new(hcn.id, "networks")
    wanted = hcn.type or "NAT"
    drivers = hns_types()
    if wanted not in drivers:
        why = _NO_TYPE.get(wanted, "no driver serves it")
        raise _refuse(
            f"network Type {wanted!r} is not supported by hostnet: {why}",
            f"use one of: {', '.join(drivers)}",
            type=wanted,
        )
    if hcn.flags:
        raise _refuse(
            f"network Flags {hcn.flags} are not supported (8 EnableNonPersistent: hostnet's "
            "networks persist; 1024 DisableHostPort; 8192 EnableIov)",
            "leave Flags out (0)",
            field="Flags",
        )
    plan = NetworkPlan(nid, hcn.name or f"hcn-{nid[:8]}", drivers[wanted])
    _ipams(hcn, plan)
    for pol in hcn.policies:
        _network_policy(plan, pol.to_json())
    if hcn.dns.server_list:
        plan.options["dnsservers"] = ",".join(hcn.dns.server_list)
    if hcn.dns.domain:
        plan.options["dnssuffix"] = hcn.dns.domain
    if hcn.dns.search or hcn.dns.options:
        raise _refuse(
            "network Dns Search and Options are not supported (endpoints get the Domain)",
            "give Dns.Domain and Dns.ServerList only",
        )
    for r in hcn.mac_pool.ranges:
        lo, hi = _mac_int(r.start_mac_address), _mac_int(r.end_mac_address)
        if lo > hi:
            raise _refuse(
                f"MacPool range {r.start_mac_address}..{r.end_mac_address} is empty",
                "give StartMacAddress <= EndMacAddress",
            )
        plan.mac_pool.append(r.to_json())
    return plan


def _ipams(hcn: HostComputeNetwork, plan: NetworkPlan) -> None:
    for ipam in hcn.ipams:
        if ipam.type == "DHCP":
            if ipam.subnets:
                raise _refuse("a DHCP Ipam takes no Subnets", "leave Subnets out")
            continue
        for sub in ipam.subnets:
            if sub.flags:
                raise _refuse(
                    f"subnet Flags {sub.flags} (DoNotReserveGatewayAddress) are not "
                    "supported: the gateway is the switch's",
                    "leave Flags out",
                )
            if not sub.ip_address_prefix:
                raise _refuse("a subnet needs an IpAddressPrefix", "e.g. 192.168.100.0/24")
            gw = ""
            for r in sub.routes:
                if not r.next_hop:
                    raise _refuse(
                        "subnet has address prefix but no gateway specified",
                        "give each route a NextHop",
                    )
                if r.destination_prefix in DEFAULT_ROUTES and not gw:
                    gw = r.next_hop
                else:
                    raise _refuse(
                        f"subnet route to {r.destination_prefix!r}: hostnet routes a subnet via "
                        "one default gateway only",
                        "keep one route to 0.0.0.0/0 (or ::/0); give endpoints SDNRoute policies",
                    )
            if sub.routes and not gw:
                raise _refuse("no default gateway", "add a route to 0.0.0.0/0 or ::/0")
            plan.addresses.subnets.append(sub.ip_address_prefix)
            if gw:
                plan.addresses.gateways.append(gw)
            if any(":" in s for s in plan.addresses.subnets):
                plan.addresses.ipv6 = True
            for pol in sub.policies or []:
                name, s = check_v2("subnet", pol)
                key = "vlanid" if name == "VLAN" else "vxlanid"
                assert isinstance(s, ps.VlanSettings | ps.VsidSettings)
                plan.options[key] = str(s.isolation_id)
    if not any(":" not in s for s in plan.addresses.subnets) and plan.addresses.subnets:
        plan.addresses.ipv4 = False


def _network_policy(plan: NetworkPlan, policy: dict[str, Any]) -> None:
    name, s = check_v2("network", policy)
    if isinstance(s, ps.NetAdapterNameSettings):
        plan.options["interface"] = s.network_adapter_name
    elif isinstance(s, ps.InterfaceConstraintSettings):
        plan.options["interface"] = s.interface_alias
    elif isinstance(s, ps.AutomaticDnsSettings):
        plan.options["discovery"] = "true" if s.enable else "false"
    elif isinstance(s, ps.AclSettings):
        plan.acl_specs.append(s.spec())
    else:  # pragma: no cover - the registry and this list go together
        raise _refuse(f"network policy {name!r} is not handled here", "leave it out")


def _mac_int(text: str) -> int:
    try:
        return int(text.replace("-", "").replace(":", ""), 16) if text else 0
    except ValueError:
        raise _refuse(f"{text!r} is not a MAC address", "write it as 00-15-5D-52-C0-00") from None


def mac_from_pool(pool: list[dict[str, str]], net: Network, ip: str) -> str:
    """An endpoint's MAC from its network's pool: the pool's start plus the address's
    offset in the subnet (unique per address); "" when there is no pool."""
    if not pool or not ip or not net.subnet:
        return ""
    offset = int(ipaddress.ip_address(ip)) - int(net.ipv4_network().network_address)
    for r in pool:
        lo, hi = _mac_int(r.get("StartMacAddress", "")), _mac_int(r.get("EndMacAddress", ""))
        if lo + offset <= hi:
            raw = f"{lo + offset:012x}"
            return ":".join(raw[i : i + 2] for i in range(0, 12, 2))
        offset -= hi - lo + 1
    raise _refuse(
        f"network {net.name!r}'s MacPool has no MAC left for {ip}",
        "give the endpoint a MacAddress, or the network a larger pool",
    )


def hcn_mac(mac: str) -> str:
    """hostnet's ``aa:bb:..`` as HNS writes MACs: ``AA-BB-..``."""
    return mac.upper().replace(":", "-")


def _acl_settings(r: acl.AclRule) -> dict[str, Any]:
    s: dict[str, Any] = {"Action": r.Action, "Direction": r.Direction}
    if r.Protocols != [256]:
        s["Protocols"] = ",".join(str(p) for p in r.Protocols)
    for key in ("LocalAddresses", "RemoteAddresses", "LocalPorts", "RemotePorts"):
        if getattr(r, key):
            s[key] = ",".join(getattr(r, key))
    s["Priority"] = r.Priority
    return s


def network_view(net: Network, mac_pool: list[dict[str, str]]) -> dict[str, Any]:
    """A network as hcn.HostComputeNetwork (Type always written, as hcsshim presets NAT)."""
    types = {v: k for k, v in hns_types().items()}
    subnets = []
    for prefix, gw in ((net.subnet, net.gateway), (net.subnet6, net.gateway6)):
        if prefix:
            dst = "::/0" if ":" in prefix else "0.0.0.0/0"
            subnets.append(
                {"IpAddressPrefix": prefix, "Routes": [{"NextHop": gw, "DestinationPrefix": dst}]}
            )
    for sub in subnets:
        for opt, ptype in (("vlanid", "VLAN"), ("vxlanid", "VSID")):
            if net.options.get(opt):
                sub["Policies"] = [
                    {"Type": ptype, "Settings": {"IsolationId": int(net.options[opt])}}
                ]
    pols: list[dict[str, Any]] = []
    if net.options.get("interface"):
        pols.append(
            {"Type": "NetAdapterName", "Settings": {"NetworkAdapterName": net.options["interface"]}}
        )
    if "discovery" in net.options:
        pols.append({"Type": "AutomaticDNS", "Settings": {"Enable": net.flag("discovery")}})
    pols += [{"Type": "NetworkACL", "Settings": _acl_settings(r)} for r in net.acl]
    dns = {
        k: v
        for k, v in (
            ("Domain", net.options.get("dnssuffix", "")),
            ("ServerList", [s for s in net.options.get("dnsservers", "").split(",") if s]),
        )
        if v
    }
    out = {
        "ID": net.id,
        "Name": net.name,
        "Type": types.get(net.driver, net.driver),
        "MacPool": {"Ranges": mac_pool} if mac_pool else {},
        "Dns": dns,
        "Ipams": [
            {
                "Type": "DHCP" if net.dhcp and not subnets else "Static",
                **({"Subnets": subnets} if subnets else {}),
            }
        ],
        "Health": {"Extra": {}},
        "SchemaVersion": V2,
    }
    if pols:
        out["Policies"] = pols
    return out


# ---- endpoints ---------------------------------------------------------------------
@dataclass
class EndpointPlan:
    """``create_endpoint``'s arguments for a HostComputeEndpoint, and what follows it."""

    eid: str
    network: str
    name: str = ""
    ip: str = ""
    ip6: str = ""
    mac: str = ""
    port_specs: list[str] = field(default_factory=list)
    policy_specs: list[dict[str, Any]] = field(default_factory=list)
    acl: list[acl.AclRule] = field(default_factory=list)
    egress_bytes: int = 0


def port_spec(s: ps.PortMappingSettings) -> str:
    """A PortMapping as hostnet's -p value."""
    host = s.host_ip()
    where = f"[{host}]:" if ":" in host else f"{host}:" if host else ""
    return f"{where}{s.external_port}:{s.internal_port}/{'tcp' if s.protocol == 6 else 'udp'}"


def endpoint_plan(hcn: HostComputeEndpoint) -> EndpointPlan:
    if hcn.host_compute_namespace:
        raise _refuse(
            "endpoint json HostComputeNamespace is read only",
            "create the endpoint, then add it to a namespace (modify the namespace)",
        )
    if not hcn.host_compute_network:
        raise _refuse(
            "an endpoint needs its HostComputeNetwork (the network's ID)",
            "create it on a network: HostComputeNetwork = the network's GUID",
        )
    if hcn.flags:
        raise _refuse(
            f"endpoint Flags {hcn.flags} (1: RemoteEndpoint) are not supported: "
            "remote endpoints belong to overlay networks' cluster store",
            "leave Flags out",
        )
    plan = EndpointPlan(
        guid_or_new(hcn.id, "endpoints"), norm_id(hcn.host_compute_network), hcn.name
    )
    plan.mac = hcn.mac_address
    for cfg in hcn.ip_configurations:
        which = "ip6" if ":" in cfg.ip_address else "ip"
        if getattr(plan, which):
            raise _refuse("an endpoint takes one IpConfiguration per family", "give one of each")
        setattr(plan, which, cfg.ip_address)
    if hcn.routes or hcn.dns.to_json():
        raise _refuse(
            "endpoint Routes and Dns are the network's in hostnet",
            "leave them out; give SDNRoute policies for more routes",
        )
    for pol in hcn.policies:
        endpoint_policy(plan, pol.to_json())
    return plan


def endpoint_policy(plan: EndpointPlan, policy: dict[str, Any]) -> None:
    """One endpoint policy onto the plan (PortMapping, ACL, QOS, OutBoundNAT, SDNRoute)."""
    name, s = check_v2("endpoint", policy)
    if isinstance(s, ps.PortMappingSettings):
        plan.port_specs.append(port_spec(s))
    elif isinstance(s, ps.AclSettings):
        plan.acl.append(s.to_rule())
    elif isinstance(s, ps.QosSettings):
        plan.egress_bytes = s.maximum_outgoing_bandwidth_in_bytes
    elif isinstance(s, ps.OutboundNatSettings | ps.SdnRouteSettings):
        plan.policy_specs.append(s.to_policy().hns())
    else:
        raise _refuse(
            f"endpoint policy {name!r} is not supported when creating an endpoint through /hcn",
            "leave it out",
            type=name,
        )


def port_policy(p: PortMapping) -> dict[str, Any]:
    s: dict[str, Any] = {
        "Protocol": 6 if p.protocol == "tcp" else 17,
        "InternalPort": p.container_port,
        "ExternalPort": p.host_port,
    }
    if p.host_ip and p.host_ip != "::":
        s["VIP"] = p.host_ip
    if p.host_ip == "::":
        s["Flags"] = 2
    return {"Type": "PortMapping", "Settings": s}


def endpoint_view(ep: Endpoint, namespace: str) -> dict[str, Any]:
    """An endpoint as hcn.HostComputeEndpoint; ``namespace``: its namespace's GUID or ""."""
    pols: list[dict[str, Any]] = [port_policy(p) for p in ep.ports]
    pols += [{"Type": "ACL", "Settings": _acl_settings(r)} for r in ep.acl]
    if ep.bandwidth.get("egressRate"):
        pols.append(
            {
                "Type": "QOS",
                "Settings": {"MaximumOutgoingBandwidthInBytes": ep.bandwidth["egressRate"] // 8},
            }
        )
    if ep.outbound_nat is not None:
        pols.append(ep.outbound_nat.hns())
    pols += [r.hns() for r in ep.routes]
    routes = [
        {"NextHop": gw, "DestinationPrefix": dst}
        for gw, dst in ((ep.gateway, "0.0.0.0/0"), (ep.gateway6, "::/0"))
        if gw
    ]
    out: dict[str, Any] = {
        "ID": ep.id,
        "Name": ep.name or ep.host_ifname,
        "HostComputeNetwork": ep.network_id,
        "IpConfigurations": [
            {"IpAddress": ip, "PrefixLength": n}
            for ip, n in ((ep.ip, ep.prefix_len), (ep.ip6, ep.prefix_len6))
            if ip
        ],
        "Dns": {
            k: v
            for k, v in (
                ("Domain", (ep.dns.get("search") or [""])[0]),
                ("ServerList", ep.dns.get("nameservers", [])),
            )
            if v
        },
        "MacAddress": hcn_mac(ep.mac),
        "Health": {"Extra": {}},
        "SchemaVersion": V2,
    }
    if namespace:
        out["HostComputeNamespace"] = namespace
    if pols:
        out["Policies"] = pols
    if routes:
        out["Routes"] = routes
    return out


# ---- namespaces and routes ---------------------------------------------------------
def namespace_view(nsid: str, ns_type: str, compartment: int, eids: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ID": nsid,
        "NamespaceId": compartment,
        "Type": ns_type,
        "SchemaVersion": V2,
    }
    if eids:
        out["Resources"] = [{"Type": "Endpoint", "Data": {"ID": e}} for e in eids]
    return out


def route_record(hcn: HostComputeRoute) -> dict[str, Any]:
    """A HostComputeRoute checked (GUIDs, SDNRoute settings) as stored and shown."""
    rid = guid_or_new(hcn.id, "routes")
    if not hcn.host_compute_endpoints:
        raise _refuse("missing endpoints", "a route names the endpoints it applies to")
    if not hcn.setting:
        raise _refuse(
            "a route needs a Setting (DestinationPrefix, NextHop)",
            'e.g. "Setting": [{"DestinationPrefix": "10.9.0.0/16", "NextHop": "..."}]',
        )
    settings = []
    for s in hcn.setting:
        pol = {"Type": "SDNRoute", "Settings": s.to_json()}
        check_v2("endpoint", pol)  # NeedEncap and the prefixes checked as a policy
        settings.append(s.to_json())
    return {
        "ID": rid,
        "HostComputeEndpoints": [norm_id(e) for e in hcn.host_compute_endpoints],
        "Setting": settings,
        "SchemaVersion": V2,
    }


def route_policies(record: dict[str, Any]) -> list[policies.RoutePolicy]:
    out = []
    for s in record["Setting"]:
        pol = policies.parse({"Type": "SDNRoute", "Settings": s})
        assert isinstance(pol, policies.RoutePolicy)
        out.append(pol)
    return out
