"""The CNI adapter, daemon side: ADD/DEL/CHECK/GC requests from the ``hostnet-cni`` shim.

The shim forwards the runtime's environment and config; this module turns them
into service calls and builds the CNI result (interfaces, ips, routes, dns).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from hostnet.cni import env as cni_env
from hostnet.cni import windows as cni_windows
from hostnet.core.planning import AddressPlan
from hostnet.core.service import HostNetworkingService
from hostnet.dns import names
from hostnet.errors import HostnetError, InvalidRequest, KernelError, NotFound
from hostnet.kernel.rtnl import Rtnl
from hostnet.model import Container, Endpoint, Network
from hostnet.rest import requests as rq

SUPPORTED = ("0.4.0", "1.0.0", "1.1.0")
#: the versions the Windows plugins' samples name: ADD and DEL, results in their shapes
LEGACY = cni_windows.LEGACY_VERSIONS
#: the version each command first appeared in (libcni's skel refuses it before)
SINCE = {"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}
NEEDS = {
    "ADD": ("containerID", "netns", "ifname"),
    "DEL": ("containerID", "ifname"),
    "CHECK": ("containerID", "netns", "ifname"),
    "GC": (),
    "STATUS": (),
}
ENV = {"containerID": "CNI_CONTAINERID", "netns": "CNI_NETNS", "ifname": "CNI_IFNAME"}
MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")
RUNTIME_KEYS = {"portMappings", "ips", "mac", "dns", "bandwidth"}


def _network_ref(svc: HostNetworkingService, conf: dict[str, Any]) -> str:
    """The hostnet network a config names; made on first use when it says how (``driver``,
    ``subnet`` or ``subnets`` (one of each family), ``gateway``, ``ipv6``, ``ipv4``,
    ``options``, as ``hostnet network create`` takes them)."""
    name = conf.get("network") or conf.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(
            "config has no network name", 'set "name" (or "network") in the config'
        )
    if any(n.name == name for n in svc.nets.values()):
        return name
    if not {"subnet", "subnets", "driver"} & set(conf):
        raise NotFound(
            f"hostnet has no network named {name!r}",
            "create it ('hostnet network create'), or give driver and subnet in the config",
        )
    opts = conf.get("options") or {}
    if not isinstance(opts, dict):
        raise InvalidRequest('"options" must be an object of strings')
    subnets = conf.get("subnets") or []
    if not isinstance(subnets, list) or not all(isinstance(s, str) for s in subnets):
        raise InvalidRequest(
            '"subnets" must be a list of prefixes', 'e.g. ["172.20.0.0/24", "fd12::/64"]'
        )
    for key in ("ipv6", "ipv4"):
        if not isinstance(conf.get(key, key == "ipv4"), bool):
            raise InvalidRequest(f'"{key}" must be true or false, not {conf[key]!r}')
    svc.create_network(
        name,
        str(conf.get("driver", "nat")),
        str(conf.get("subnet", "")),
        str(conf.get("gateway", "")),
        {str(k): str(v) for k, v in opts.items()},
        addresses=AddressPlan(
            subnets=list(subnets),
            ipv6=conf.get("ipv6", False),
            ipv4=conf.get("ipv4", True),
        ),
    )
    return name


ANY_HOST_IP_HINT = (
    "give an address of the host, 0.0.0.0 (every IPv4 address), :: (every IPv6 address), "
    "or no hostIP (every address of both families)"
)


def _port_specs(runtime: dict[str, Any]) -> list[tuple[str, int, str]]:
    """The portMappings capability as ``-p`` values, each with its host family (0: both)
    and hostIP. hostIP as Docker takes it: none (or "") publishes on both families,
    0.0.0.0 on IPv4 only, :: on IPv6 only, an address on that address alone."""
    given = runtime.get("portMappings") or []
    if not isinstance(given, list):
        raise InvalidRequest("runtimeConfig portMappings must be a list of objects")
    specs = []
    for pm in given:
        try:
            host, cont = int(pm["hostPort"]), int(pm["containerPort"])
        except (KeyError, TypeError, ValueError):
            raise InvalidRequest(
                f"bad portMappings entry {pm!r}", "give hostPort and containerPort"
            ) from None
        proto = str(pm.get("protocol") or "tcp").lower()
        if proto not in ("tcp", "udp"):
            raise InvalidRequest(
                f"portMappings protocol {proto!r} is not supported", "use tcp or udp"
            )
        text = pm.get("hostIP") or ""
        if not isinstance(text, str):
            raise InvalidRequest(f"portMappings hostIP {text!r} is not a string", ANY_HOST_IP_HINT)
        where, family = "", 0
        if text:
            try:
                addr = ipaddress.ip_address(text.strip())
            except ValueError:
                raise InvalidRequest(
                    f"portMappings hostIP {text!r} is not an IP address", ANY_HOST_IP_HINT
                ) from None
            where, family = (f"[{addr}]:" if addr.version == 6 else f"{addr}:"), addr.version
        specs.append((f"{where}{host}:{cont}/{proto}", family, text))
    return specs


def _check_families(net: Network, ports: list[tuple[str, int, str]]) -> None:
    """A mapping bound to one family needs the container to have an address of it."""
    for _, family, host_ip in ports:
        if family and not net.dhcp and not (net.subnet if family == 4 else net.subnet6):
            raise InvalidRequest(
                f"portMappings hostIP {host_ip} is IPv{family}, but network {net.name!r} has "
                f"no IPv{family} subnet",
                "leave hostIP out (every address the network's families have), or use "
                + ("0.0.0.0" if family == 6 else "::"),
            )


def cni_args(text: str) -> dict[str, str]:
    """CNI_ARGS: ``KEY=VALUE`` pairs separated by ';' (libcni's format)."""
    out: dict[str, str] = {}
    for pair in text.split(";"):
        if not pair.strip():
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CniFailure(
                4, f"CNI_ARGS has {pair!r}, which is not KEY=VALUE", "separate KEY=VALUE with ';'"
            )
        out[key.strip()] = value.strip()
    return out


def _asked_addresses(
    runtime: dict[str, Any], conf: dict[str, Any], args: dict[str, str]
) -> list[tuple[str, Any]]:
    """Each static address asked for, with where it came from. The places host-local reads:
    runtimeConfig ``ips`` (the ips capability: podman's for two or more addresses, the
    static plugin's), ``args.cni.ips`` in the config, and ``IP=`` in CNI_ARGS (comma
    separated: podman's for one address, host-local's and static's)."""
    given: list[tuple[str, Any]] = []
    cni_conf_args = conf.get("args") or {}
    from_conf = cni_conf_args.get("cni", {}) if isinstance(cni_conf_args, dict) else {}
    for where, items in (
        ("runtimeConfig ips", runtime.get("ips")),
        ("args.cni.ips", from_conf.get("ips") if isinstance(from_conf, dict) else None),
    ):
        if items is None:
            continue
        if not isinstance(items, list):
            raise InvalidRequest(
                f"{where} must be a list of addresses", 'e.g. ["172.20.0.5/24", "fd12::5/64"]'
            )
        given += [(where, item) for item in items]
    if args.get("IP"):
        given += [("CNI_ARGS IP", item) for item in args["IP"].split(",") if item.strip()]
    return given


def _static(net: Network, asked: list[tuple[str, Any]]) -> tuple[str, str]:
    """The static (IPv4, IPv6) addresses asked for, "" for IPAM's choice; each checked
    against the network's subnet of its family. An address may come with its prefix
    (172.20.0.5/24), which must be the subnet's."""
    chosen: dict[int, ipaddress.IPv4Address | ipaddress.IPv6Address] = {}
    for where, text in asked:
        try:
            if not isinstance(text, str):
                raise TypeError
            iface = ipaddress.ip_interface(text.strip())
        except (TypeError, ValueError):
            raise InvalidRequest(
                f"{where} entry {text!r} is not an IP address",
                "give an address such as 172.20.0.5 or fd12::5, with or without its /PREFIX",
            ) from None
        addr, version = iface.ip, iface.version
        if net.dhcp:  # the service refuses with its own reason
            chosen.setdefault(version, addr)
            continue
        have = net.subnet if version == 4 else net.subnet6
        if not have:
            raise InvalidRequest(
                f"{where} asks for IPv{version} address {addr}, but network {net.name!r} "
                f"has no IPv{version} subnet",
                f"leave {addr} out"
                + (
                    ", or use a network with an IPv6 subnet ('hostnet network create --ipv6')"
                    if version == 6
                    else ""
                ),
            )
        sub = ipaddress.ip_network(have)
        if addr not in sub:
            raise InvalidRequest(
                f"{where} address {addr} is outside network {net.name!r}'s IPv{version} "
                f"subnet {sub}",
                f"give an address inside {sub}, or leave it out to get a free one",
            )
        if "/" in text and iface.network.prefixlen != sub.prefixlen:
            raise InvalidRequest(
                f"{where} entry {text} has prefix /{iface.network.prefixlen}, but network "
                f"{net.name!r}'s subnet is {sub}",
                f"give {addr}/{sub.prefixlen}, or the address alone",
            )
        if chosen.get(version, addr) != addr:
            raise InvalidRequest(
                f"two IPv{version} addresses asked for ({chosen[version]} and {addr})",
                "hostnet gives an interface one address of each family",
            )
        chosen[version] = addr
    return (str(chosen.get(4, "")), str(chosen.get(6, "")))


BANDWIDTH_KEYS = ("ingressRate", "ingressBurst", "egressRate", "egressBurst")


def _bandwidth(given: dict[str, Any]) -> dict[str, int]:
    """CNI's bandwidth capability: rates in bits/s, bursts in bits; a rate needs its burst."""
    if not isinstance(given, dict):
        raise InvalidRequest("runtimeConfig bandwidth must be an object")
    unknown = set(given) - set(BANDWIDTH_KEYS)
    if unknown:
        raise InvalidRequest(
            f"bandwidth {sorted(unknown)} is not supported", f"use {', '.join(BANDWIDTH_KEYS)}"
        )
    out: dict[str, int] = {}
    for key, value in given.items():
        if not isinstance(value, int) or value < 0:
            raise InvalidRequest(f"bandwidth {key} must be a whole number >= 0, not {value!r}")
        out[key] = value
    for side in ("ingress", "egress"):
        if out.get(f"{side}Rate") and not out.get(f"{side}Burst"):
            raise InvalidRequest(
                f"bandwidth {side}Rate needs {side}Burst",
                f"give {side}Burst in bits, e.g. the rate divided by 10",
            )
    return out


def _acl_and_policies(conf: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """Config ``acl`` (rule strings, as ``hostnet run --acl``) and ``policies`` (HNS policy
    objects: ACL, OutBoundNAT, SDNRoute), as Windows CNI configs carry endpoint policies."""
    rules, policies = conf.get("acl") or [], conf.get("policies") or []
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        raise InvalidRequest('"acl" must be a list of rule strings', 'e.g. ["action=block;dir=in"]')
    if not isinstance(policies, list) or not all(isinstance(p, dict) for p in policies):
        raise InvalidRequest('"policies" must be a list of HNS policy objects')
    others = []
    for p in policies:
        if str(p.get("Type", "")).upper() == "ACL":
            settings = p.get("Settings") or {}
            if not isinstance(settings, dict):
                raise InvalidRequest("an ACL policy's Settings must be an object")
            rules = [
                *rules,
                ";".join(
                    f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                    for k, v in settings.items()
                ),
            ]
        else:
            others.append(p)
    return list(rules), others


def _ip_entry(version: str, family: int, ip: str, prefix: int, gateway: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"address": f"{ip}/{prefix}"}
    if gateway:
        entry["gateway"] = gateway
    entry["interface"] = 1  # the sandbox interface, after the host end
    if version in ("0.3.0", "0.3.1", "0.4.0"):
        entry["version"] = str(family)
    return entry


def _routes_out(svc: HostNetworkingService, net: Network, c: Container, ep: Endpoint) -> bool:
    """The endpoint got default routes: the container's first, on a network with a way out
    (not internal; an overlay reaches only itself), as the drivers set them."""
    return (
        svc.endpoints_of(c)[0].id == ep.id
        and not net.internal
        and not svc.driver_of(net).cluster_scoped
    )


def _result(
    svc: HostNetworkingService,
    version: str,
    netns: str,
    c: Container,
    ep: Endpoint,
    dns: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The CNI result of an attachment: both vNIC ends, an address of each family the
    endpoint has (IPv4 first), default routes via the gateways, DNS."""
    net = svc.nets[ep.network_id]
    host = svc.rt.link(ep.host_ifname) or {}
    ips: list[dict[str, Any]] = []
    routes: list[dict[str, str]] = []
    routed = _routes_out(svc, net, c, ep)
    for family, ip, prefix, gateway, default in (
        (4, ep.ip, ep.prefix_len, ep.gateway, "0.0.0.0/0"),
        (6, ep.ip6, ep.prefix_len6, ep.gateway6, "::/0"),
    ):
        if not ip:
            continue
        ips.append(_ip_entry(version, family, ip, prefix, gateway))
        if routed and gateway:
            routes.append({"dst": default, "gw": gateway})
    return {
        "cniVersion": version,
        "interfaces": [
            {"name": ep.host_ifname, "mac": host.get("mac", "")},
            {"name": ep.ifname, "mac": ep.mac, "sandbox": netns},
        ],
        "ips": ips,
        "routes": routes,
        "dns": dns or names.dns_for(svc.nets, c, svc.endpoints_of(c)),
    }


def add(svc: HostNetworkingService, req: dict[str, Any]) -> dict[str, Any]:
    conf, version = req["config"], str(req["config"].get("cniVersion", ""))
    if cni_windows.is_windows(conf):  # win-bridge/win-overlay netconf: as hostnet's own
        conf = cni_windows.translate(svc, conf)
    runtime = conf.get("runtimeConfig") or {}
    if not isinstance(runtime, dict):
        raise InvalidRequest('"runtimeConfig" must be an object')
    unknown = set(runtime) - RUNTIME_KEYS
    if unknown:
        raise InvalidRequest(f"runtimeConfig {sorted(unknown)} is not supported by hostnet")
    args = cni_args(str(req.get("args") or ""))
    bandwidth = _bandwidth(runtime.get("bandwidth") or {})
    acl_specs, policies = _acl_and_policies(conf)
    port_specs = _port_specs(runtime)
    asked = _asked_addresses(runtime, conf, args)
    mac = runtime.get("mac") or args.get("MAC") or ""
    if not isinstance(mac, str) or (mac and not MAC.fullmatch(mac)):
        raise InvalidRequest(f"MAC address {mac!r} is malformed", "e.g. 02:11:22:33:44:55")
    ref = _network_ref(svc, conf)
    net = svc.network(ref)
    _check_families(net, port_specs)
    ip, ip6 = _static(net, asked)
    c, ep = svc.attach_external(
        req["containerID"],
        req["netns"],
        req["ifname"],
        ref,
        ip=ip,
        ip6=ip6,
        mac=mac,
        port_specs=[spec for spec, _, _ in port_specs],
        bandwidth=bandwidth,
        acl_specs=acl_specs,
        policy_specs=policies,
    )
    res = _result(svc, version, req["netns"], c, ep, runtime.get("dns") or conf.get("dns"))
    return cni_windows.in_version(res)


def delete(svc: HostNetworkingService, req: dict[str, Any]) -> dict[str, Any]:
    return {"errors": svc.detach_external(req["containerID"], req["ifname"])}


def check(svc: HostNetworkingService, req: dict[str, Any]) -> dict[str, Any]:
    c = svc.containers.get(req["containerID"])
    eps = [e for e in svc.endpoints_of(c) if e.ifname == req["ifname"]] if c else []
    if not eps:
        raise NotFound(f"no attachment {req['containerID'][:12]}/{req['ifname']}", "run ADD first")
    assert c is not None
    if not cni_env.same_netns(req["netns"], c.netns):
        # code 4 (CNI_NETNS names the wrong namespace), not 3: the attachment exists, and
        # a runtime must still DEL it
        raise CniFailure(
            4,
            f"CNI_NETNS {req['netns']} is not the namespace attachment "
            f"{c.id[:12]}/{req['ifname']} was made in: its ADD was given {c.netns}",
            f"CHECK with CNI_NETNS={c.netns}, as ADD had it; a container now in another "
            "namespace needs DEL, then ADD with the new one",
        )
    ep, net = eps[0], svc.nets[eps[0].network_id]
    if not svc.driver_of(net).endpoint_present(net, ep):
        raise KernelError(
            f"the host end {ep.host_ifname} of {ep.ifname} is missing or detached",
            "DEL and ADD again, or run 'hostnet system reconcile'",
        )
    with Rtnl(req["netns"]) as inside:
        link = inside.link(ep.ifname)
    if link is None:
        raise KernelError(f"{ep.ifname} is missing inside {req['netns']}", "DEL and ADD again")
    return {}


def gc(svc: HostNetworkingService, req: dict[str, Any]) -> dict[str, Any]:
    """Remove this network's external attachments that the runtime no longer lists."""
    ref = req["config"].get("network") or req["config"].get("name")
    net = svc.network(str(ref))
    given = req.get("valid") or []
    if not isinstance(given, list) or not all(isinstance(a, dict) for a in given):
        raise InvalidRequest(
            '"cni.dev/valid-attachments" must be a list of objects',
            'each {"containerID": ..., "ifname": ...}',
        )
    valid = {(a.get("containerID"), a.get("ifname")) for a in given}
    removed = []
    for ep in list(svc.endpoints_on(net)):
        c = svc.containers.get(ep.container_id)
        if c is not None and c.external and (c.id, ep.ifname) not in valid:
            svc.detach_external(c.id, ep.ifname)
            removed.append(f"{c.id[:12]}/{ep.ifname}")
    return {"removed": removed}


def prev_result(conf: dict[str, Any]) -> dict[str, Any] | None:
    """An earlier plugin's result (a chained ADD), checked before the attach: an object whose
    interfaces, ips and routes are lists of objects."""
    prev = conf.get("prevResult")
    if prev is None:
        return None
    if conf.get("cniVersion") == "0.2.0":
        raise InvalidRequest(
            "prevResult with cniVersion 0.2.0: chaining came with CNI 0.3.0",
            "use cniVersion 0.3.1 or later for a chained config",
        )
    if not isinstance(prev, dict) or not all(
        isinstance(prev.get(k) or [], list) and all(isinstance(x, dict) for x in prev.get(k) or [])
        for k in ("interfaces", "ips", "routes")
    ):
        raise InvalidRequest(
            '"prevResult" must be a CNI result: an object whose interfaces, ips and routes '
            "are lists of objects",
            "pass the previous plugin's result unchanged",
        )
    return prev


def merge_prev(prev: dict[str, Any] | None, ours: dict[str, Any]) -> dict[str, Any]:
    """Append our interfaces and addresses to an earlier plugin's result."""
    if not prev:
        return ours
    out = dict(prev)
    base = len(prev.get("interfaces") or [])
    out["interfaces"] = list(prev.get("interfaces") or []) + ours["interfaces"]
    out["ips"] = list(prev.get("ips") or []) + [
        {**ip, "interface": ip["interface"] + base} for ip in ours["ips"]
    ]
    out["routes"] = list(prev.get("routes") or []) + ours["routes"]
    out["cniVersion"] = ours["cniVersion"]
    if ours.get("dns"):
        out["dns"] = ours["dns"]
    return out


class CniFailure(Exception):
    """A CNI error result: code, msg, details."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def _checked(command: str, env: dict[str, str], raw: bytes) -> tuple[str, dict[str, Any]]:
    """Decode and check a call before anything changes; return (version, config)."""
    try:
        conf = rq.load(raw)  # size, UTF-8, JSON, nesting: each refused with its reason
    except InvalidRequest as exc:
        raise CniFailure(
            6, f"cannot decode the network config on stdin: {exc.message}", exc.remedy
        ) from None
    if not conf:
        raise CniFailure(6, "the network config on stdin is empty", "it must be one JSON object")
    if cni_windows.is_windows(conf):
        conf = cni_windows.fold_netconf(conf)  # Go's decoder: CniVersion is cniVersion
    version = str(conf.get("cniVersion", ""))
    if version not in (*LEGACY, *SUPPORTED):
        raise CniFailure(
            1,
            f"cniVersion {version!r} is not supported",
            f"use one of {', '.join((*LEGACY, *SUPPORTED))}",
        )
    if command not in NEEDS:
        raise CniFailure(
            4, f"unknown CNI_COMMAND {command!r}", "use ADD, DEL, CHECK, GC, STATUS or VERSION"
        )
    if version in LEGACY and command in SINCE:
        raise CniFailure(
            1,
            f"cniVersion {version} does not allow {command} (CNI added it in {SINCE[command]})",
            f"use cniVersion {SINCE[command]} or later for {command}",
        )
    for key in ("name", "type"):
        if not isinstance(conf.get(key), str) or not conf[key]:
            raise CniFailure(7, f"network config has no {key!r}", f"set {key!r} in the config")
    missing = [ENV[k] for k in NEEDS[command] if not env.get(k)]
    if missing:
        raise CniFailure(4, f"missing environment {', '.join(missing)}", f"{command} needs them")
    try:  # a hostile id, name or path is refused here, before it reaches the kernel or store
        if command in ("ADD", "DEL", "CHECK"):
            cni_env.check_container_id(env["containerID"])
            cni_env.check_ifname(env["ifname"])
        if command in ("ADD", "CHECK"):
            cni_env.check_netns(env["netns"])
    except cni_env.EnvError as exc:
        raise CniFailure(4, str(exc), exc.remedy) from None
    return version, conf


def handle(
    svc: HostNetworkingService, command: str, env: dict[str, str], raw: bytes
) -> tuple[int, str]:
    """One CNI call as the shim forwarded it; returns (exit code, stdout)."""
    if command == "VERSION":
        versions = [*LEGACY, *SUPPORTED]
        return 0, json.dumps({"cniVersion": SUPPORTED[-1], "supportedVersions": versions})
    version = ""
    try:
        version, conf = _checked(command, env, raw)
        req = {"config": conf, **env}
        if command == "ADD":
            prev = prev_result(conf)  # refused before anything is attached
            return 0, json.dumps(merge_prev(prev, add(svc, req)))
        if command == "DEL":
            delete(svc, req)
        elif command == "CHECK":
            check(svc, req)
        elif command == "GC":
            gc(svc, {**req, "valid": conf.get("cni.dev/valid-attachments") or []})
        return 0, ""
    except CniFailure as exc:
        code, msg, details = exc.code, exc.msg, exc.details
    except HostnetError as exc:
        code, msg, details = exc.cni_code, exc.message, exc.remedy
    body = {"cniVersion": version or SUPPORTED[-1], "code": code, "msg": msg, "details": details}
    return 1, json.dumps(body)
