"""The CNI adapter, daemon side: ADD/DEL/CHECK/GC requests from the ``hostnet-cni`` shim.

The shim forwards the runtime's environment and config; this module turns them
into service calls and builds the CNI result (interfaces, ips, routes, dns).
"""

from __future__ import annotations

import json
from typing import Any

from hostnet.api import requests as rq
from hostnet.dns import names
from hostnet.errors import HostnetError, InvalidRequest, KernelError, NotFound
from hostnet.kernel.rtnl import Rtnl
from hostnet.service import HostNetworkingService

SUPPORTED = ("0.4.0", "1.0.0", "1.1.0")
NEEDS = {
    "ADD": ("containerID", "netns", "ifname"),
    "DEL": ("containerID", "ifname"),
    "CHECK": ("containerID", "netns", "ifname"),
    "GC": (),
    "STATUS": (),
}
ENV = {"containerID": "CNI_CONTAINERID", "netns": "CNI_NETNS", "ifname": "CNI_IFNAME"}
RUNTIME_KEYS = {"portMappings", "ips", "mac", "dns", "bandwidth"}


def _network_ref(svc: HostNetworkingService, conf: dict[str, Any]) -> str:
    """The hostnet network a config names; made on first use when it says how."""
    name = conf.get("network") or conf.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(
            "config has no network name", 'set "name" (or "network") in the config'
        )
    if any(n.name == name for n in svc.nets.values()):
        return name
    if "subnet" not in conf and "driver" not in conf:
        raise NotFound(
            f"hostnet has no network named {name!r}",
            "create it ('hostnet network create'), or give driver and subnet in the config",
        )
    opts = conf.get("options") or {}
    if not isinstance(opts, dict):
        raise InvalidRequest('"options" must be an object of strings')
    svc.create_network(
        name,
        str(conf.get("driver", "nat")),
        str(conf.get("subnet", "")),
        str(conf.get("gateway", "")),
        {str(k): str(v) for k, v in opts.items()},
    )
    return name


def _port_specs(runtime: dict[str, Any]) -> list[str]:
    specs = []
    for pm in runtime.get("portMappings") or []:
        try:
            host, cont = int(pm["hostPort"]), int(pm["containerPort"])
        except (KeyError, TypeError, ValueError):
            raise InvalidRequest(
                f"bad portMappings entry {pm!r}", "give hostPort and containerPort"
            ) from None
        proto = str(pm.get("protocol", "tcp")).lower()
        ip = str(pm.get("hostIP", "") or "")
        ip = "" if ip in ("0.0.0.0", "::") else ip
        specs.append(f"{ip + ':' if ip else ''}{host}:{cont}/{proto}")
    return specs


def _static(runtime: dict[str, Any], conf: dict[str, Any]) -> str:
    ips = runtime.get("ips") or (conf.get("args", {}).get("cni", {}).get("ips")) or []
    if len(ips) > 1:
        raise InvalidRequest(
            "more than one address asked for", "hostnet gives one IPv4 address per interface"
        )
    return str(ips[0]).split("/")[0] if ips else ""


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


def add(svc: HostNetworkingService, req: dict[str, Any]) -> dict[str, Any]:
    conf, version = req["config"], str(req["config"].get("cniVersion", ""))
    runtime = conf.get("runtimeConfig") or {}
    unknown = set(runtime) - RUNTIME_KEYS
    if unknown:
        raise InvalidRequest(f"runtimeConfig {sorted(unknown)} is not supported by hostnet")
    bandwidth = _bandwidth(runtime.get("bandwidth") or {})
    acl_specs, policies = _acl_and_policies(conf)
    ref = _network_ref(svc, conf)
    c, ep = svc.attach_external(
        req["containerID"],
        req["netns"],
        req["ifname"],
        ref,
        ip=_static(runtime, conf),
        mac=str(runtime.get("mac", "")),
        port_specs=_port_specs(runtime),
        bandwidth=bandwidth,
        acl_specs=acl_specs,
        policy_specs=policies,
    )
    host = svc.rt.link(ep.host_ifname) or {}
    ip4: dict[str, Any] = {
        "address": f"{ep.ip}/{ep.prefix_len}",
        "gateway": ep.gateway,
        "interface": 1,
    }
    if version == "0.4.0":
        ip4["version"] = "4"
    result: dict[str, Any] = {
        "cniVersion": version,
        "interfaces": [
            {"name": ep.host_ifname, "mac": host.get("mac", "")},
            {"name": ep.ifname, "mac": ep.mac, "sandbox": req["netns"]},
        ],
        "ips": [ip4],
        "routes": [{"dst": "0.0.0.0/0", "gw": ep.gateway}]
        if svc.endpoints_of(c)[0].id == ep.id
        else [],
        "dns": runtime.get("dns")
        or conf.get("dns")
        or names.dns_for(svc.nets, c, svc.endpoints_of(c)),
    }
    return result


def delete(svc: HostNetworkingService, req: dict[str, Any]) -> dict[str, Any]:
    return {"errors": svc.detach_external(req["containerID"], req["ifname"])}


def check(svc: HostNetworkingService, req: dict[str, Any]) -> dict[str, Any]:
    c = svc.containers.get(req["containerID"])
    eps = [e for e in svc.endpoints_of(c) if e.ifname == req["ifname"]] if c else []
    if not eps:
        raise NotFound(f"no attachment {req['containerID'][:12]}/{req['ifname']}", "run ADD first")
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
    valid = {(a.get("containerID"), a.get("ifname")) for a in req.get("valid") or []}
    removed = []
    for ep in list(svc.endpoints_on(net)):
        c = svc.containers.get(ep.container_id)
        if c is not None and c.external and (c.id, ep.ifname) not in valid:
            svc.detach_external(c.id, ep.ifname)
            removed.append(f"{c.id[:12]}/{ep.ifname}")
    return {"removed": removed}


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
    version = str(conf.get("cniVersion", ""))
    if version not in SUPPORTED:
        raise CniFailure(
            1, f"cniVersion {version!r} is not supported", f"use one of {', '.join(SUPPORTED)}"
        )
    if command not in NEEDS:
        raise CniFailure(
            4, f"unknown CNI_COMMAND {command!r}", "use ADD, DEL, CHECK, GC, STATUS or VERSION"
        )
    for key in ("name", "type"):
        if not isinstance(conf.get(key), str) or not conf[key]:
            raise CniFailure(7, f"network config has no {key!r}", f"set {key!r} in the config")
    missing = [ENV[k] for k in NEEDS[command] if not env.get(k)]
    if missing:
        raise CniFailure(4, f"missing environment {', '.join(missing)}", f"{command} needs them")
    return version, conf


def handle(
    svc: HostNetworkingService, command: str, env: dict[str, str], raw: bytes
) -> tuple[int, str]:
    """One CNI call as the shim forwarded it; returns (exit code, stdout)."""
    if command == "VERSION":
        return 0, json.dumps({"cniVersion": SUPPORTED[-1], "supportedVersions": list(SUPPORTED)})
    version = ""
    try:
        version, conf = _checked(command, env, raw)
        req = {"config": conf, **env}
        if command == "ADD":
            return 0, json.dumps(merge_prev(conf.get("prevResult"), add(svc, req)))
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
