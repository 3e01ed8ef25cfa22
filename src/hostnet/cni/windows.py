"""The Windows CNI netconf (containernetworking/plugins' win-bridge and win-overlay) as
hostnet's own.

Those plugins read ``pkg/hns/netconf_windows.go``: ``apiVersion`` (2: HCN v2 policies
``{Type, Settings}``; else HNS v1 flat ones), ``policies: [{"name": "EndpointPolicy",
"value": …}]``, ``loopbackDSR``, ``ipMasq``/``ipMasqNetwork``, ``dns`` and the runtime's
``portMappings``/``dns``, keys in any case (Go's decoder). ``translate`` checks all of it
against the policy registry (``hns.policies``) and the named network, and gives the
netconf ``cni.add`` already takes: ``acl`` rule strings, ``policies`` (OutBoundNAT,
SDNRoute), ``runtimeConfig`` portMappings/bandwidth, ``dns``. Nothing is dropped
silently: what hostnet cannot honour is refused by name. ``in_version`` gives a result in
the oldest shapes (0.2.0, 0.3.x) those samples ask for.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hostnet.core.planning import qos_limit
from hostnet.errors import InvalidRequest, NotFound
from hostnet.hns import policies as registry
from hostnet.hns import policy_settings as ps
from hostnet.hns.gojson import GoModel

if TYPE_CHECKING:
    from hostnet.core.service import HostNetworkingService
    from hostnet.drivers.base import Driver
    from hostnet.model import Network

#: netconf keys as hostnet and the Windows plugins spell them (others pass through as given)
NETCONF_KEYS = (
    "cniVersion", "name", "type", "network", "socket", "apiVersion", "policies",
    "runtimeConfig", "loopbackDSR", "ipMasq", "ipMasqNetwork", "endpointMacPrefix", "dns",
    "capabilities", "ipam", "args", "prevResult", "acl",
)  # fmt: skip
WINDOWS_ONLY = ("apiVersion", "loopbackDSR", "ipMasq", "ipMasqNetwork", "endpointMacPrefix")
RUNTIME_KEYS = ("portMappings", "dns", "ips", "mac", "bandwidth")
PORT_KEYS = ("hostPort", "containerPort", "protocol", "hostIP")
DNS_KEYS = ("nameservers", "domain", "search", "options")
#: netconf_windows.go's protocol names; hostnet maps TCP and UDP
PROTOCOLS = {"6": "tcp", "17": "udp", "tcp": "tcp", "udp": "udp"}
LEGACY_VERSIONS = ("0.2.0", "0.3.0", "0.3.1")
EXAMPLE = '{"name": "EndpointPolicy", "value": {"Type": "OutBoundNAT", "Settings": {...}}}'


def fold(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Keys matched to ``names`` as Go's decoder does (exact, else any case; the later of
    two spellings wins); other keys kept as given."""
    by_lower = {n.lower(): n for n in names}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out[key if key in names else by_lower.get(str(key).lower(), key)] = value
    return out


def is_windows(conf: dict[str, Any]) -> bool:
    """A config in the Windows plugins' form: one of their own keys, or {name, value}
    policies (hostnet's own are {Type, Settings})."""
    keys = {str(k).lower() for k in conf}
    if keys & {k.lower() for k in WINDOWS_ONLY}:
        return True
    pols = next((v for k, v in conf.items() if str(k).lower() == "policies"), None)
    return isinstance(pols, list) and any(
        isinstance(p, dict) and {str(k).lower() for k in p} & {"name", "value"} for p in pols
    )


def fold_netconf(conf: dict[str, Any]) -> dict[str, Any]:
    """The top-level keys in their CNI spelling (a Windows config may write ``CniVersion``)."""
    return fold(conf, NETCONF_KEYS)


@dataclass(frozen=True)
class EncapRoute:
    """An SDNRoute with NeedEncap and no NextHop: on Windows, the prefix is sent through
    the host's VFP (a cluster's service range, the node's own address)."""

    prefix: str


@dataclass
class Parsed:
    """A Windows netconf, every field checked, before the network is looked at."""

    conf: dict[str, Any]
    policies: list[tuple[str, GoModel | EncapRoute]] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)  # ipMasqNetwork
    ip_masq: bool = False
    dns: dict[str, Any] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=dict)


def _bool(conf: dict[str, Any], key: str) -> bool:
    value = conf.get(key, False)
    if not isinstance(value, bool):
        raise InvalidRequest(f'"{key}" must be true or false, not {value!r}')
    return value


def _strings(where: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"{where} must be a list of strings, not {value!r}")
    return list(value)


def _prefix(where: str, text: Any) -> str:
    try:
        if not isinstance(text, str):
            raise TypeError
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except (TypeError, ValueError):
        raise InvalidRequest(
            f"{where} {text!r} is not a prefix", "write it as A.B.C.D/N or an IPv6 X:Y::/N"
        ) from None


def _dns(conf_dns: Any, runtime_dns: Any) -> dict[str, Any]:
    """netconf ``dns`` (CNI's names, any case); the runtime's ``servers``/``searches`` (or
    CNI's ``nameservers``/``search``), when given, replace them (``GetDNS``)."""
    out: dict[str, Any] = {}
    for where, given, names in (
        ("dns", conf_dns, DNS_KEYS),
        ("runtimeConfig dns", runtime_dns, ("servers", "searches", *DNS_KEYS)),
    ):
        if given is None:
            continue
        if not isinstance(given, dict):
            raise InvalidRequest(f"{where} must be an object", 'e.g. {"nameservers": [...]}')
        folded = fold(given, names)
        unknown = set(folded) - set(names)
        if unknown:
            raise InvalidRequest(
                f"{where} key(s) {sorted(unknown)} unknown", f"use {', '.join(names)}"
            )
        folded.setdefault("nameservers", folded.pop("servers", None))
        folded.setdefault("search", folded.pop("searches", None))
        folded.pop("servers", None), folded.pop("searches", None)
        for key in ("nameservers", "search", "options"):
            if values := _strings(f"{where} {key}", folded.get(key)):
                out[key] = values
        domain = folded.get("domain")
        if domain is not None and not isinstance(domain, str):
            raise InvalidRequest(f"{where} domain must be a string, not {domain!r}")
        if domain:
            out["domain"] = domain
    return out


def _runtime(given: Any) -> dict[str, Any]:
    """runtimeConfig with CNI's key names; portMappings' protocol as hostnet names it."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise InvalidRequest('"runtimeConfig" must be an object')
    out = fold(given, RUNTIME_KEYS)
    maps = out.get("portMappings")
    if isinstance(maps, list):
        fixed = []
        for pm in maps:
            pm = fold(pm, PORT_KEYS) if isinstance(pm, dict) else pm
            if isinstance(pm, dict) and isinstance(pm.get("protocol"), str | int):
                proto = str(pm["protocol"]).strip().lower()
                pm = {**pm, "protocol": PROTOCOLS.get(proto, proto)}
            fixed.append(pm)
        out["portMappings"] = fixed
    return out


def _need_encap(kind: registry.Kind, value: dict[str, Any]) -> EncapRoute | None:
    """An SDNRoute/ROUTE asking for NeedEncap: the route hostnet makes of it, or None
    (not NeedEncap: the registry parses it). With a NextHop it cannot be honoured."""
    if kind == "v1":
        settings: Any = {k: v for k, v in value.items() if str(k).lower() != "type"}
    else:
        settings = next((v for k, v in value.items() if str(k).lower() == "settings"), None)
    if not isinstance(settings, dict):
        return None
    s = fold(settings, ("DestinationPrefix", "NextHop", "NeedEncap"))
    if s.get("NeedEncap") is not True:
        return None
    if s.get("NextHop"):
        raise InvalidRequest(
            "SDNRoute with NeedEncap and a NextHop is not supported by hostnet: NeedEncap "
            "sends the prefix through the host, a NextHop on the endpoint's link",
            "drop NeedEncap to route via NextHop, or drop NextHop to route via the host",
        )
    unknown = set(s) - {"DestinationPrefix", "NeedEncap"}
    if unknown:
        raise InvalidRequest(f"SDNRoute has unknown field(s) {sorted(unknown)}")
    return EncapRoute(_prefix("SDNRoute DestinationPrefix", s.get("DestinationPrefix")))


def _policy(api: int, index: int, item: Any) -> tuple[str, GoModel | EncapRoute]:
    """One ``{name, value}`` entry: its canonical Type and parsed settings, or refused."""
    where = f"policies[{index}]"
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where} must be an object", f"e.g. {EXAMPLE}")
    entry = fold(item, ("name", "value"))
    if set(entry) - {"name", "value"}:
        raise InvalidRequest(
            f"{where} has key(s) {sorted(set(entry) - {'name', 'value'})}; the Windows "
            "plugins' policies are {name, value}",
            f"e.g. {EXAMPLE}",
        )
    name, value = entry.get("name"), entry.get("value")
    if not isinstance(name, str) or name.lower() != "endpointpolicy":
        raise InvalidRequest(
            f"{where} is named {name!r}; the Windows plugins use only EndpointPolicy (and "
            "skip the others), so hostnet refuses it rather than drop it",
            'name it "EndpointPolicy", or leave it out',
        )
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} value must be a policy object", f"e.g. {EXAMPLE}")
    keys = {str(k).lower() for k in value}
    if api == 2 and keys - {"type", "settings"}:
        raise InvalidRequest(
            f"{where} value {value!r} is in the v1 shape (flat), but apiVersion is 2",
            'give it as {"Type": ..., "Settings": {...}}, or set apiVersion 1',
        )
    if api != 2 and "settings" in keys:
        raise InvalidRequest(
            f"{where} value has Settings (the v2 shape), but apiVersion is not 2",
            'set "apiVersion": 2, or give the v1 flat shape',
        )
    type_name = next((v for k, v in value.items() if str(k).lower() == "type"), "")
    kind: registry.Kind = "endpoint" if api == 2 else "v1"
    try:
        if isinstance(type_name, str) and type_name:
            canonical = registry.lookup(kind, type_name).name
            if canonical in ("SDNRoute", "ROUTE") and (route := _need_encap(kind, value)):
                return canonical, route
        return registry.check_v2(kind, value) if api == 2 else registry.check_v1(value)
    except InvalidRequest as exc:
        exc.message = f"{where}: {exc.message}"
        exc.args = (exc.message,)
        raise


def parse(conf: dict[str, Any]) -> Parsed:
    """Every Windows field checked (no network needed yet); refusals name what and why."""
    conf = fold_netconf(conf)
    api = conf.get("apiVersion", 1)
    if isinstance(api, bool) or api not in (1, 2):
        raise InvalidRequest(
            f'"apiVersion" {api!r} is not 1 or 2',
            "1: HNS v1 policies (flat), 2: HCN v2 policies ({Type, Settings})",
        )
    registry.check_option("loopbackDSR", _bool(conf, "loopbackDSR"))
    if conf.get("endpointMacPrefix"):
        raise InvalidRequest(
            "endpointMacPrefix is not supported by hostnet: it derives each vNIC's MAC from "
            "its address itself",
            'leave endpointMacPrefix out, or give the whole MAC as runtimeConfig "mac"',
        )
    out = Parsed(conf=conf, ip_masq=_bool(conf, "ipMasq"))
    if conf.get("ipMasqNetwork"):
        out.exceptions.append(_prefix("ipMasqNetwork", conf["ipMasqNetwork"]))
    given = conf.get("policies") or []
    if not isinstance(given, list):
        raise InvalidRequest('"policies" must be a list', f"e.g. [{EXAMPLE}]")
    out.policies = [_policy(int(api), i, item) for i, item in enumerate(given)]
    out.runtime = _runtime(conf.get("runtimeConfig"))
    out.dns = _dns(conf.get("dns"), out.runtime.pop("dns", None))
    return out


def network_of(svc: HostNetworkingService, conf: dict[str, Any]) -> Network:
    """The hostnet network the Windows plugins would look up as the HNS network ``name``
    (or ``network``); they never create one, so neither does this."""
    name = conf.get("network") or conf.get("name")
    found = next((n for n in svc.nets.values() if n.name == name), None)
    if found is None:
        ipam = conf.get("ipam")
        subnet = fold(ipam, ("subnet",)).get("subnet") if isinstance(ipam, dict) else ""
        subnet = subnet if isinstance(subnet, str) else ""
        raise NotFound(
            f"hostnet has no network named {name!r} (the Windows plugins attach to an "
            "existing HNS network of the config's name)",
            f"create it first: hostnet network create {f'--subnet {subnet} ' if subnet else ''}"
            f'{name}; or name an existing one with "network"',
        )
    return found


def _ipam(net: Network, ipam: Any) -> None:
    """hostnet is the IPAM: an ``ipam`` section may only restate the network's subnet."""
    if ipam is None:
        return
    if not isinstance(ipam, dict):
        raise InvalidRequest('"ipam" must be an object')
    subnet = fold(ipam, ("type", "subnet")).get("subnet")
    if subnet is None:
        return
    have = [s for s in (net.subnet, net.subnet6) if s]
    if _prefix("ipam subnet", subnet) not in [str(ipaddress.ip_network(s)) for s in have]:
        raise InvalidRequest(
            f"ipam subnet {subnet} is not the subnet of network {net.name!r} "
            f"({', '.join(have) or 'DHCP'}): "
            "hostnet gives the address from the network",
            f"set ipam subnet to {have[0] if have else 'the network subnet'}, or leave it out",
        )


@dataclass
class _Out:
    """What the policies add up to, in hostnet's own netconf terms."""

    acl: list[str] = field(default_factory=list)
    routes: list[dict[str, Any]] = field(default_factory=list)
    ports: list[dict[str, Any]] = field(default_factory=list)
    qos: dict[str, int] = field(default_factory=dict)
    nat: dict[str, Any] = field(default_factory=dict)  # merged OutBoundNAT Settings


def _merge_nat(out: _Out, pol: Any) -> None:
    """The Windows plugins add one OutBoundNAT per source (config, ipMasqNetwork, ipMasq);
    a hostnet endpoint has one: their prefixes together, one VirtualIP."""
    vip = pol.virtual_ip
    if vip and out.nat.get("VirtualIP", vip) != vip:
        raise InvalidRequest(
            f"two OutBoundNAT policies with different VirtualIPs ({out.nat['VirtualIP']}, {vip})",
            "an endpoint's traffic leaves with one address: keep one VirtualIP",
        )
    if vip:
        out.nat["VirtualIP"] = vip
    for key, values in (("Exceptions", pol.exceptions), ("Destinations", pol.destinations)):
        have = out.nat.setdefault(key, [])
        have += [v for v in values if v not in have]


def _encap_route(net: Network, drv: Driver, route: EncapRoute) -> dict[str, Any]:
    """NeedEncap without NextHop means "this prefix goes via the host". On a network whose
    gateway is the host's own address on the switch (the NAT-publishing drivers) that is
    a route via the gateway; elsewhere the gateway is not the host, so it is refused."""
    v6 = ":" in route.prefix
    gateway = net.gateway6 if v6 else net.gateway
    if not drv.publishes_ports or not gateway:
        raise InvalidRequest(
            f"SDNRoute {route.prefix} with NeedEncap (Windows: send it through the host) "
            f"cannot be honoured on network {net.name!r} ({net.driver}): its gateway is "
            "not this host",
            "give a NextHop on the endpoint's subnet instead of NeedEncap, or leave the "
            "route out (the default route reaches it via the gateway)",
        )
    return {"Type": "SDNRoute", "Settings": {"DestinationPrefix": route.prefix, "NextHop": gateway}}


def _on_network(net: Network, drv: Driver, type_name: str, s: Any) -> None:
    """Policies that restate what the network is (MAC rewrite, its VLAN or VSID)."""
    if type_name == "L2Driver" and not drv.rewrites_macs:
        raise InvalidRequest(
            f"L2Driver (MAC rewrite) is not what network {net.name!r} ({net.driver}) does",
            "leave it out, or attach to an l2bridge or l2tunnel network",
        )
    for kind, option, want in (("VLAN", "vlanid", "vlan"), ("VSID", "vxlanid", "vsid")):
        if type_name == kind and net.options.get(option) != str(getattr(s, want)):
            raise InvalidRequest(
                f"{kind} {getattr(s, want)} is not the {kind} of network {net.name!r} "
                f"({option}={net.options.get(option, 'none')}): hostnet sets it per network",
                f"leave it out, or use a network made with -o {option}={getattr(s, want)}",
            )


def _collect(net: Network, drv: Driver, parsed: Parsed) -> _Out:
    out = _Out()
    for type_name, s in parsed.policies:
        if isinstance(s, EncapRoute):
            route = _encap_route(net, drv, s)
            if route not in out.routes:
                out.routes.append(route)
        elif isinstance(s, ps.AclSettings):  # the v1 ACL too
            out.acl.append(s.spec())
        elif isinstance(s, ps.OutboundNatSettings):  # the v1 OutBoundNAT too
            _merge_nat(out, s.to_policy())
        elif isinstance(s, ps.SdnRouteSettings):
            route = s.to_policy().hns()
            if route not in out.routes:
                out.routes.append(route)
        elif isinstance(s, ps.PortMappingSettings):
            proto = "tcp" if s.protocol == 6 else "udp"
            out.ports.append(
                {"hostPort": s.external_port, "containerPort": s.internal_port,
                 "protocol": proto, "hostIP": s.host_ip()}
            )  # fmt: skip
        elif isinstance(s, ps.NatV1Settings):
            out.ports.append(
                {"hostPort": s.external_port, "containerPort": s.internal_port,
                 "protocol": s.protocol.lower()}
            )  # fmt: skip
        elif isinstance(s, ps.QosSettings):
            if out.qos:
                raise InvalidRequest("two QOS policies", "an endpoint takes one egress cap")
            out.qos = qos_limit(str(s.maximum_outgoing_bandwidth_in_bytes))
        else:
            _on_network(net, drv, type_name, s)
    masq = parsed.exceptions + (
        [s for s in (net.subnet, net.subnet6) if s] if parsed.ip_masq else []
    )
    if masq:
        _merge_nat(out, ps.OutboundNatSettings(Exceptions=masq).to_policy())
    return out


def netconf(net: Network, drv: Driver, parsed: Parsed) -> dict[str, Any]:
    """hostnet's own netconf for ``cni.add``: the policies as acl/policies/runtimeConfig."""
    _ipam(net, parsed.conf.get("ipam"))
    out = _collect(net, drv, parsed)
    runtime = dict(parsed.runtime)
    if out.ports:
        given = runtime.get("portMappings") or []
        if not isinstance(given, list):
            raise InvalidRequest("runtimeConfig portMappings must be a list of objects")
        runtime["portMappings"] = [*given, *out.ports]
    if out.qos:
        bandwidth = runtime.get("bandwidth") or {}
        if isinstance(bandwidth, dict) and bandwidth.get("egressRate"):
            raise InvalidRequest(
                "a QOS policy and runtimeConfig bandwidth egressRate both cap egress",
                "keep one of them",
            )
        runtime["bandwidth"] = (
            {**bandwidth, **out.qos} if isinstance(bandwidth, dict) else bandwidth
        )
    acl = parsed.conf.get("acl") or []
    if not isinstance(acl, list):
        raise InvalidRequest('"acl" must be a list of rule strings')
    conf = {k: v for k, v in parsed.conf.items() if k not in (*WINDOWS_ONLY, "policies", "ipam")}
    settings = {k: v for k, v in out.nat.items() if v}
    nat = [{"Type": "OutBoundNAT", "Settings": settings}] if out.nat else []
    conf.update(acl=[*acl, *out.acl], policies=[*nat, *out.routes], runtimeConfig=runtime)
    if parsed.dns:
        conf["dns"] = parsed.dns
    else:
        conf.pop("dns", None)
    return conf


def translate(svc: HostNetworkingService, conf: dict[str, Any]) -> dict[str, Any]:
    """A Windows netconf as hostnet's own, checked in full before anything changes."""
    parsed = parse(conf)
    net = network_of(svc, parsed.conf)
    return netconf(net, svc.driver_of(net), parsed)


def in_version(result: dict[str, Any]) -> dict[str, Any]:
    """A current-shape result in its cniVersion's shape: 0.3.x as 0.4.0 (``version`` on
    each ip); 0.2.0 as ``ip4``/``ip6`` objects, each with its family's routes."""
    if result.get("cniVersion") != "0.2.0":
        return result
    out: dict[str, Any] = {"cniVersion": "0.2.0"}
    for ip in result.get("ips") or []:
        key = "ip6" if ":" in ip["address"] else "ip4"
        if key in out:
            continue
        entry: dict[str, Any] = {"ip": ip["address"]}
        if ip.get("gateway"):
            entry["gateway"] = ip["gateway"]
        routes = [r for r in result.get("routes") or [] if (":" in r["dst"]) == (key == "ip6")]
        if routes:
            entry["routes"] = routes
        out[key] = entry
    if result.get("dns"):
        out["dns"] = result["dns"]
    return out
