"""Port ACLs (the HNS ACL endpoint policy): parsing and nftables rendering (pure).

Rules are enforced per endpoint on the host end of its veth, in the netdev family:
egress of the host end is traffic *into* the container (Direction In), ingress is
traffic *out of* it (Direction Out). That works the same for every driver. Rules
run in Priority order (lower first); the first match decides. After them come the
Windows defaults: outbound allow all; inbound allow TCP, UDP, ICMP, IGMP and ICMPv6
(so IPv6 neighbour discovery never breaks), block the rest of IPv4 and IPv6. A chain
is replaced in one nftables transaction: no packet sees half a set.

Dual stack: addresses may be IPv4 or IPv6 (prefixes, single addresses, A-B ranges). A
rule naming both families renders as one nft rule per family, next to each other (the
families are disjoint, so their order does not matter); a rule naming no addresses
matches both. Protocol numbers are HNS's (IANA's): ``icmp`` is ICMPv4 (1) only and
``icmpv6`` is 58, so those two match one family each.

Most endpoints have no rules of their own. They get no chain at all: one bridge-family
table (``DEFAULT_TABLE``) applies the inbound default to every frame a hostnet switch
sends out of a vNIC port, except the ports in its ``ruled`` set (endpoints with chains
of their own, which end in the defaults, and overlay endpoints, which allow all). An
attach with the default policy so changes nothing in nftables, and the number of
chains, which libnftables lists on every rule or element it adds, stays small.

Every drop of an endpoint's chains (its Block rules and the inbound default after them)
counts into one named counter of that endpoint (``drops_KEY``, in the same table): a
named counter lives on while its chains are replaced, so a rule change or a reconcile
does not reset it, and the metrics endpoint reads all of them in one dump of the table's
counters (``kernel/nft_counters.py``). The default table counts nothing per endpoint.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, Field

from hostnet.errors import InvalidRequest

PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "igmp": 2, "any": 256}
TABLE = "hostnet_acl"
DEFAULT_TABLE = "hostnet_acl_default"
DEFAULT_INBOUND_ALLOWED = (6, 17, 1, 2, 58)
COUNTER_PREFIX = "drops_"  # + the endpoint's key: the named counter of its drops

Family = Literal["ip", "ip6"]  # nft's names, used as they are in the rendered rules
FAMILIES: tuple[Family, ...] = ("ip", "ip6")
# The protocols that exist in one family only; any other number may match either.
FAMILY_OF_PROTOCOL: dict[int, Family] = {1: "ip", 58: "ip6"}


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
        "use KEY=VALUE;... with action=allow|block, dir=in|out, "
        "proto=tcp,udp,icmp,icmpv6,igmp,any or numbers (icmp is ICMPv4 only), "
        "lport/rport=80,8000-8100, laddr/raddr=lists of IPv4 or IPv6 CIDRs, addresses or "
        "A-B ranges (e.g. 10.0.0.0/8,fd00::/64,10.0.0.1-10.0.0.9), prio=N",
    )


def _ports(spec: str, text: str) -> list[str]:
    out = []
    for part in filter(None, text.split(",")):
        bounds = part.split("-")
        if len(bounds) > 2 or not all(b.isdigit() and 0 < int(b) < 65536 for b in bounds):
            raise _bad(spec, f"port {part!r} is not a port or range")
        out.append(part)
    return out


def _check_address(part: str) -> None:
    """Raise ValueError saying what is wrong with one laddr/raddr entry."""
    if "%" in part:
        # ipaddress takes fe80::1%eth0, nft does not, and a zone means nothing on a veth
        raise ValueError("zone indexes (%...) are not allowed; give the address alone")
    if "-" not in part:
        ipaddress.ip_network(part, strict=False)
        return
    ends = part.split("-")
    if len(ends) != 2:
        raise ValueError("a range is two addresses A-B")
    lo, hi = (ipaddress.ip_address(x) for x in ends)
    if lo.version != hi.version:
        raise ValueError(
            f"range mixes IPv{lo.version} and IPv{hi.version}; give both ends in one family "
            "(or list the families separately)"
        )
    if int(hi) < int(lo):  # same family, checked above
        raise ValueError("range ends before it starts")


def _addresses(spec: str, text: str) -> list[str]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            _check_address(part)
        except ValueError as exc:
            raise _bad(spec, f"address {part!r}: {exc}") from None
        out.append(part)
    return out


def _family(entry: str) -> Family:
    # Entries were checked when parsed: every IPv6 form has a colon, no IPv4 form does.
    return "ip6" if ":" in entry else "ip"


def _of_family(entries: list[str], family: Family) -> list[str]:
    return [e for e in entries if _family(e) == family]


def families(rule: AclRule) -> list[Family]:
    """The IP families a rule can match: both if it names no addresses, else those found in
    every address list it names (an IPv6 packet cannot match IPv4-only LocalAddresses)."""
    out = list(FAMILIES)
    for entries in (rule.LocalAddresses, rule.RemoteAddresses):
        if entries:
            out = [f for f in out if _of_family(entries, f)]
    return out


def _protocols(spec: str, text: str) -> list[int]:
    out = []
    for part in filter(None, text.lower().split(",")):
        if part in PROTOCOLS:
            out.append(PROTOCOLS[part])
        elif part.isdigit() and 0 <= int(part) <= 255:
            out.append(int(part))
        else:
            raise _bad(
                spec,
                f"protocol {part!r} is not a name ({', '.join(PROTOCOLS)}; icmp is ICMPv4, "
                "icmpv6 is ICMPv6) or 0-255",
            )
    return out or [256]


# For the error when a one-family protocol meets addresses of the other family only.
PROTOCOL_HINT = {
    1: "proto=icmp is ICMPv4 (1) but the addresses are IPv6 only; use proto=icmpv6 (58)",
    58: "proto=icmpv6 (58) is IPv6 only but the addresses are IPv4 only; use proto=icmp (1)",
}


def _check_families(spec: str, rule: AclRule) -> None:
    """Refuse what could never match, rather than render a rule that silently does nothing."""
    can = families(rule)
    if not can:
        raise _bad(
            spec,
            "laddr and raddr share no address family, so no packet can match; "
            "give IPv4 or IPv6 addresses on both sides",
        )
    for proto, family in FAMILY_OF_PROTOCOL.items():
        if proto in rule.Protocols and family not in can:
            raise _bad(spec, PROTOCOL_HINT[proto])


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
    _check_families(spec, rule)
    return rule


def _set(items: list[str]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _address_match(rule: AclRule, family: Family, inbound: bool) -> str:
    """The family's part of the rule's address lists (``families`` says it has entries)."""
    local, remote = ("daddr", "saddr") if inbound else ("saddr", "daddr")
    match = f"meta protocol {family}"
    for entries, field in ((rule.LocalAddresses, local), (rule.RemoteAddresses, remote)):
        if entries:
            match += f" {family} {field} {_set(_of_family(entries, family))}"
    return match


def _protocol_matches(rule: AclRule, family: Family | None, inbound: bool) -> list[str]:
    """One match per protocol; ``family`` None: the rule names no addresses (both families).

    ``meta l4proto`` is set only for IPv4 and IPv6 packets, in the netdev and bridge
    families alike, so it needs no family match of its own, and ``tcp dport`` after it works
    for both. Only "any" and the one-family protocols (ICMP, ICMPv6) name the family, so
    ARP and other non-IP frames are never matched.
    """
    if 256 in rule.Protocols or not rule.Protocols:
        # one rule per family, not a { ip, ip6 } set: a set on a 16-bit key is a 16 KiB
        # bitmap in the kernel, per rule and so per endpoint
        return [""] if family else [f"meta protocol {f}" for f in FAMILIES]
    local_port, remote_port = ("dport", "sport") if inbound else ("sport", "dport")
    out = []
    for proto in rule.Protocols:
        bound = FAMILY_OF_PROTOCOL.get(proto)
        if family and bound and bound != family:
            continue  # e.g. ICMPv4 in the IPv6 half of a dual-stack rule
        match = f"meta l4proto {proto}"
        if family is None and bound:
            match = f"meta protocol {bound} {match}"
        name = {6: "tcp", 17: "udp"}.get(proto)
        if name and rule.LocalPorts:
            match += f" {name} {local_port} {_set(rule.LocalPorts)}"
        if name and rule.RemotePorts:
            match += f" {name} {remote_port} {_set(rule.RemotePorts)}"
        out.append(match)
    return out


def render_rule(rule: AclRule, drop: str = "drop") -> list[str]:
    """nft statements for one rule, as seen on the host end (In = towards the container);
    ``drop``: the statements a Block rule ends in (a counter, then ``drop``).

    A rule with IPv4 and IPv6 addresses gives one statement per family (and protocol), next
    to each other; the families are disjoint, so priority order is kept. A rule with no
    addresses matches both families.
    """
    inbound = rule.Direction == "In"
    verdict = "accept" if rule.Action == "Allow" else drop
    heads: list[tuple[Family | None, str]] = [(None, "")]
    if rule.LocalAddresses or rule.RemoteAddresses:
        heads = [(f, _address_match(rule, f, inbound)) for f in families(rule)]
    return [
        " ".join(filter(None, (head, proto, verdict)))
        for family, head in heads
        for proto in _protocol_matches(rule, family, inbound)
    ]


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


def counter_name(key: str) -> str:
    return COUNTER_PREFIX + key


def render_endpoint(device: str, key: str, rules: list[AclRule], allow_all: bool = False) -> str:
    """Both chains of one endpoint, replaced in one transaction; its drop counter made if
    it is not there yet (kept if it is)."""
    ordered = merge_runs(sorted(rules, key=lambda r: r.Priority))
    drop = f'counter name "{counter_name(key)}" drop'
    inbound = [ln for r in ordered if r.Direction == "In" for ln in render_rule(r, drop)]
    outbound = [ln for r in ordered if r.Direction == "Out" for ln in render_rule(r, drop)]
    if not allow_all:
        inbound += _default_inbound(drop)
    lines = [f"add table netdev {TABLE}", f"add counter netdev {TABLE} {counter_name(key)}"]
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
    """Both chains and then the counter their rules used, in one transaction."""
    chains = "".join(f"delete chain netdev {TABLE} {n}_{key}\n" for n in ("in", "out"))
    return f"add table netdev {TABLE}\n{chains}{render_remove_counter(key)}"


def render_remove_counter(key: str) -> str:
    """The counter alone (gone already is fine), for when the chains were gone already."""
    name = counter_name(key)
    return (
        f"add table netdev {TABLE}\nadd counter netdev {TABLE} {name}\n"
        f"delete counter netdev {TABLE} {name}\n"
    )


def _default_inbound(drop: str = "drop") -> list[str]:
    """Allow DEFAULT_INBOUND_ALLOWED (ICMPv6 among them: neighbour discovery), drop the rest
    of IPv4 and IPv6, leave non-IP frames (ARP) alone.

    The accept needs no family match (``meta l4proto`` is set for IPv4 and IPv6 packets
    only); the drops are one rule per family rather than a { ip, ip6 } set, which the kernel
    would keep as a 16 KiB bitmap in every endpoint's chain.
    """
    allowed = ", ".join(str(p) for p in DEFAULT_INBOUND_ALLOWED)
    return [
        f"meta l4proto {{ {allowed} }} accept",
        *(f"meta protocol {f} {drop}" for f in FAMILIES),
    ]


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
