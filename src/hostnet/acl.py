"""Port ACLs (the HNS ACL endpoint policy): parsing and nftables rendering (pure).

Rules are enforced per endpoint on the host end of its veth, in the netdev family:
egress of the host end is traffic *into* the container (Direction In), ingress is
traffic *out of* it (Direction Out). That works the same for every driver. Rules
run in Priority order (lower first); the first match decides. After them come the
Windows defaults: outbound allow all; inbound allow TCP, UDP, ICMP and IGMP, block
the rest. A chain is replaced in one nftables transaction: no packet sees half a set.

Most endpoints have no rules of their own. They get no chain at all: one bridge-family
table (``DEFAULT_TABLE``) applies the inbound default to every frame a hostnet switch
sends out of a vNIC port, except the ports in its ``ruled`` set (endpoints with chains
of their own, which end in the defaults, and overlay endpoints, which allow all). An
attach with the default policy so changes nothing in nftables, and the number of
chains, which libnftables lists on every rule or element it adds, stays small.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, Field

from hostnet.errors import InvalidRequest

PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "igmp": 2, "any": 256}
TABLE = "hostnet_acl"
DEFAULT_TABLE = "hostnet_acl_default"
DEFAULT_INBOUND_ALLOWED = (6, 17, 1, 2)


class AclRule(BaseModel):
    """One ACL rule in HNS form."""

    Action: Literal["Allow", "Block"]
    Direction: Literal["In", "Out"]
    Protocols: list[int] = Field(default_factory=lambda: [256])  # 256 = any
    LocalPorts: list[str] = Field(default_factory=list)
    RemotePorts: list[str] = Field(default_factory=list)
    LocalAddresses: list[str] = Field(default_factory=list)
    RemoteAddresses: list[str] = Field(default_factory=list)
    Priority: int = 100


def _bad(spec: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"bad ACL {spec!r}: {why}",
        "use KEY=VALUE;... with action=allow|block, dir=in|out, proto=tcp,udp,icmp,igmp,any or "
        "numbers, lport/rport=80,8000-8100, laddr/raddr=CIDR,A-B lists, prio=N",
    )


def _ports(spec: str, text: str) -> list[str]:
    out = []
    for part in filter(None, text.split(",")):
        bounds = part.split("-")
        if len(bounds) > 2 or not all(b.isdigit() and 0 < int(b) < 65536 for b in bounds):
            raise _bad(spec, f"port {part!r} is not a port or range")
        out.append(part)
    return out


def _addresses(spec: str, text: str) -> list[str]:
    out = []
    for part in filter(None, text.split(",")):
        try:
            if "-" in part:
                lo, hi = (ipaddress.IPv4Address(x) for x in part.split("-"))
                if hi < lo:
                    raise ValueError("range ends before it starts")
            else:
                ipaddress.IPv4Network(part, strict=False)
        except ValueError as exc:
            raise _bad(spec, f"address {part!r}: {exc}") from None
        out.append(part)
    return out


def _protocols(spec: str, text: str) -> list[int]:
    out = []
    for part in filter(None, text.lower().split(",")):
        if part in PROTOCOLS:
            out.append(PROTOCOLS[part])
        elif part.isdigit() and 0 <= int(part) <= 255:
            out.append(int(part))
        else:
            raise _bad(spec, f"protocol {part!r} is not a name ({', '.join(PROTOCOLS)}) or 0-255")
    return out or [256]


KEYS = {
    "action": "Action",
    "dir": "Direction",
    "direction": "Direction",
    "proto": "Protocols",
    "protocols": "Protocols",
    "lport": "LocalPorts",
    "localports": "LocalPorts",
    "rport": "RemotePorts",
    "remoteports": "RemotePorts",
    "laddr": "LocalAddresses",
    "localaddresses": "LocalAddresses",
    "raddr": "RemoteAddresses",
    "remoteaddresses": "RemoteAddresses",
    "prio": "Priority",
    "priority": "Priority",
}


def parse_rule(spec: str) -> AclRule:
    """``action=block;dir=in;proto=tcp;lport=80;raddr=10.0.0.0/8;prio=100`` (HNS names work too)."""
    fields: dict[str, object] = {}
    for item in filter(None, spec.split(";")):
        if "=" not in item:
            raise _bad(spec, f"{item!r} is not KEY=VALUE")
        key, value = (x.strip() for x in item.split("=", 1))
        name = KEYS.get(key.lower())
        if name is None:
            raise _bad(spec, f"unknown key {key!r}")
        if name == "Action":
            if value.lower() not in ("allow", "block"):
                raise _bad(spec, "action must be allow or block")
            fields[name] = value.capitalize()
        elif name == "Direction":
            if value.lower() not in ("in", "out"):
                raise _bad(spec, "dir must be in or out")
            fields[name] = value.capitalize()
        elif name == "Protocols":
            fields[name] = _protocols(spec, value)
        elif name in ("LocalPorts", "RemotePorts"):
            fields[name] = _ports(spec, value)
        elif name in ("LocalAddresses", "RemoteAddresses"):
            fields[name] = _addresses(spec, value)
        else:
            if not value.lstrip("-").isdigit():
                raise _bad(spec, "prio must be a whole number")
            fields[name] = int(value)
    for required in ("Action", "Direction"):
        if required not in fields:
            raise _bad(spec, f"{required.lower()} is missing")
    rule = AclRule.model_validate(fields)
    if (rule.LocalPorts or rule.RemotePorts) and not set(rule.Protocols) <= {6, 17}:
        raise _bad(spec, "ports need proto=tcp and/or udp")
    return rule


def _set(items: list[str]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def render_rule(rule: AclRule) -> list[str]:
    """nft statements for one rule, as seen on the host end (In = towards the container)."""
    inbound = rule.Direction == "In"
    local_addr, remote_addr = ("daddr", "saddr") if inbound else ("saddr", "daddr")
    local_port, remote_port = ("dport", "sport") if inbound else ("sport", "dport")
    verdict = "accept" if rule.Action == "Allow" else "drop"
    match = "meta protocol ip"
    if rule.LocalAddresses:
        match += f" ip {local_addr} {_set(rule.LocalAddresses)}"
    if rule.RemoteAddresses:
        match += f" ip {remote_addr} {_set(rule.RemoteAddresses)}"
    protos = [p for p in rule.Protocols if p != 256]
    if 256 in rule.Protocols or not protos:
        return [f"{match} {verdict}"]
    lines = []
    for proto in protos:
        name = {6: "tcp", 17: "udp"}.get(proto)
        line = f"{match} meta l4proto {proto}"
        if name and rule.LocalPorts:
            line += f" {name} {local_port} {_set(rule.LocalPorts)}"
        if name and rule.RemotePorts:
            line += f" {name} {remote_port} {_set(rule.RemotePorts)}"
        lines.append(f"{line} {verdict}")
    return lines


def merge_runs(ordered: list[AclRule]) -> list[AclRule]:
    """Fold consecutive rules that differ only in LocalPorts into one (an nft set lookup).

    Within a run of rules with the same verdict the first match and any match agree, so
    priority semantics hold; 1,000 port rules become one set lookup instead of 1,000 rules.
    """
    out: list[AclRule] = []
    for rule in ordered:
        prev = out[-1] if out else None
        same = (
            prev is not None
            and prev.LocalPorts
            and rule.LocalPorts
            and prev.model_dump(exclude={"LocalPorts", "Priority"})
            == rule.model_dump(exclude={"LocalPorts", "Priority"})
        )
        if same and prev is not None:
            ports = prev.LocalPorts + [p for p in rule.LocalPorts if p not in prev.LocalPorts]
            out[-1] = prev.model_copy(update={"LocalPorts": ports})
        else:
            out.append(rule)
    return out


def render_endpoint(device: str, key: str, rules: list[AclRule], allow_all: bool = False) -> str:
    """Both chains of one endpoint, replaced in one transaction."""
    ordered = merge_runs(sorted(rules, key=lambda r: r.Priority))
    inbound = [ln for r in ordered if r.Direction == "In" for ln in render_rule(r)]
    outbound = [ln for r in ordered if r.Direction == "Out" for ln in render_rule(r)]
    if not allow_all:
        inbound += _default_inbound()
    lines = [f"add table netdev {TABLE}"]
    for name, hook, body in (("in", "egress", inbound), ("out", "ingress", outbound)):
        chain = f"{name}_{key}"
        lines += [
            f'add chain netdev {TABLE} {chain} {{ type filter hook {hook} device "{device}" '
            "priority -10; policy accept; }",
            f"flush chain netdev {TABLE} {chain}",
            *(f"add rule netdev {TABLE} {chain} {b}" for b in body),
        ]
    return "\n".join(lines) + "\n"


def render_remove(key: str) -> str:
    return "".join(
        f"add table netdev {TABLE}\ndelete chain netdev {TABLE} {n}_{key}\n" for n in ("in", "out")
    )


def _default_inbound() -> list[str]:
    allowed = ", ".join(str(p) for p in DEFAULT_INBOUND_ALLOWED)
    return [f"meta protocol ip meta l4proto {{ {allowed} }} accept", "meta protocol ip drop"]


def render_default_table(port_prefix: str, ruled: list[str]) -> str:
    """The bridge-family table giving every vNIC port (``port_prefix*``) outside ``ruled``
    the inbound default, replaced whole (start, reconcile)."""
    t = DEFAULT_TABLE
    quoted = ", ".join(f'"{d}"' for d in sorted(ruled))
    elements = f" elements = {{ {quoted} }};" if ruled else ""
    body = "\n".join(f"    {r}" for r in _default_inbound())
    hooks = "".join(
        f"  chain {hook} {{\n"
        f"    type filter hook {hook} priority -10; policy accept;\n"
        f'    oifname "{port_prefix}*" jump into\n'
        "  }\n"
        for hook in ("forward", "output")
    )
    return (
        f"add table bridge {t}\ndelete table bridge {t}\n"
        f"table bridge {t} {{\n"
        f"  set ruled {{ type ifname;{elements} }}\n"
        f"  chain into {{\n    oifname @ruled accept\n{body}\n  }}\n"
        f"{hooks}}}\n"
    )


def render_ruled(device: str, add: bool) -> str:
    """Take a port out of (``add``) or back into the default table's care."""
    verb = "add" if add else "delete"
    return f'{verb} element bridge {DEFAULT_TABLE} ruled {{ "{device}" }}\n'
