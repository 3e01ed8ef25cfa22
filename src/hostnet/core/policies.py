"""Endpoint policies beyond ACL and QoS: OutBoundNAT and Route (SDNRoute), in HNS form.

Given as HNS policy objects, e.g.
``{"Type": "OutBoundNAT", "Settings": {"VirtualIP": "198.51.100.9", "Exceptions": ["10.0.0.0/8"]}}``
or ``{"Type": "SDNRoute", "Settings": {"DestinationPrefix": "10.9.0.0/16", "NextHop": "172.16.0.9"}}``.
Parsing checks everything before anything changes; rendering back gives the same shape.
"""

from __future__ import annotations

import ipaddress
import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from hostnet.core import firewall
from hostnet.drivers import nat_rules
from hostnet.errors import InvalidRequest

if TYPE_CHECKING:
    from hostnet.model import Endpoint, Network

OUTBOUND_KEYS = {"VirtualIP", "Exceptions", "Destinations"}
ROUTE_KEYS = {"DestinationPrefix", "NextHop", "NeedEncap"}
EXAMPLE = '{"Type": "OutBoundNAT", "Settings": {"Exceptions": ["10.0.0.0/8"]}}'


class OutboundNatPolicy(BaseModel):
    """Traffic leaving the host is source-NATed (to VirtualIP, else the host's address),
    except to Exceptions; with Destinations, only traffic to those is NATed."""

    virtual_ip: str = ""
    exceptions: list[str] = Field(default_factory=list)
    destinations: list[str] = Field(default_factory=list)

    def hns(self) -> dict[str, Any]:
        s: dict[str, Any] = {}
        if self.virtual_ip:
            s["VirtualIP"] = self.virtual_ip
        if self.exceptions:
            s["Exceptions"] = self.exceptions
        if self.destinations:
            s["Destinations"] = self.destinations
        return {"Type": "OutBoundNAT", "Settings": s}


class RoutePolicy(BaseModel):
    """A route inside the compartment: DestinationPrefix via NextHop (on the endpoint's link)."""

    destination: str
    next_hop: str

    def hns(self) -> dict[str, Any]:
        return {
            "Type": "SDNRoute",
            "Settings": {"DestinationPrefix": self.destination, "NextHop": self.next_hop},
        }


def _bad(what: str, remedy: str = f"give an HNS policy object, e.g. {EXAMPLE}") -> InvalidRequest:
    return InvalidRequest(f"policy: {what}", remedy)


def _prefixes(key: str, value: Any) -> list[str]:
    """Prefixes of either family (a rule applies to the endpoint's address of its family)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"{key} must be a list of prefixes", f'e.g. "{key}": ["10.0.0.0/8", "fd00::/8"]')
    out = []
    for v in value:
        try:
            out.append(str(ipaddress.ip_network(v, strict=False)))
        except ValueError:
            raise _bad(
                f"{key} entry {v!r} is not a prefix", "write it as A.B.C.D/N or an IPv6 X:Y::/N"
            ) from None
    return out


def _address(key: str, value: Any) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise _bad(
            f"{key} {value!r} is not an IP address", "write it as A.B.C.D or an IPv6 address"
        ) from None


def of_family(items: list[str], version: int) -> list[str]:
    """The prefixes or addresses of one family (IPv6 ones have a ':')."""
    return [x for x in items if (":" in x) == (version == 6)]


def parse(given: str | dict[str, Any]) -> OutboundNatPolicy | RoutePolicy:
    if isinstance(given, str):
        try:
            given = json.loads(given)
        except json.JSONDecodeError as exc:
            raise _bad(f"not JSON ({exc.msg})") from None
    if not isinstance(given, dict) or not isinstance(given.get("Settings", {}), dict):
        raise _bad("must be an object with Type and Settings")
    kind, settings = str(given.get("Type", "")), given.get("Settings", {})
    extra = set(given) - {"Type", "Settings"}
    if extra:
        raise _bad(f"unknown field(s) {', '.join(sorted(extra))}", "only Type and Settings")
    if kind.lower() == "outboundnat":
        unknown = set(settings) - OUTBOUND_KEYS
        if unknown:
            raise _bad(
                f"OutBoundNAT setting(s) {', '.join(sorted(unknown))} not supported",
                f"use {', '.join(sorted(OUTBOUND_KEYS))}",
            )
        return OutboundNatPolicy(
            virtual_ip=_address("VirtualIP", settings["VirtualIP"])
            if settings.get("VirtualIP")
            else "",
            exceptions=_prefixes("Exceptions", settings.get("Exceptions", [])),
            destinations=_prefixes("Destinations", settings.get("Destinations", [])),
        )
    if kind.lower() in ("sdnroute", "route"):
        unknown = set(settings) - ROUTE_KEYS
        if unknown:
            raise _bad(
                f"SDNRoute setting(s) {', '.join(sorted(unknown))} not supported",
                "use DestinationPrefix and NextHop",
            )
        if settings.get("NeedEncap"):
            raise _bad(
                "SDNRoute NeedEncap is not supported",
                "encapsulation belongs to overlay networks; drop NeedEncap",
            )
        if "DestinationPrefix" not in settings or "NextHop" not in settings:
            raise _bad("SDNRoute needs DestinationPrefix and NextHop")
        dst = _prefixes("DestinationPrefix", [settings["DestinationPrefix"]])[0]
        hop = _address("NextHop", settings["NextHop"])
        if (":" in dst) != (":" in hop):
            raise _bad(
                f"SDNRoute DestinationPrefix {dst} and NextHop {hop} are of different families",
                "route an IPv4 prefix via an IPv4 next hop, an IPv6 prefix via an IPv6 one",
            )
        return RoutePolicy(destination=dst, next_hop=hop)
    raise _bad(
        f"type {kind!r} is not supported here",
        "ACL and QoS have their own flags (--acl, --max-bandwidth); "
        "policies take OutBoundNAT or SDNRoute",
    )


# -- the host-wide pieces policies contribute (firewall.py asks every network) ------------
class OutboundNatPieces:
    """The endpoints' OutBoundNAT policies, in each family's NAT table (only endpoints of
    drivers that publish ports carry one: planning.with_policies refuses it elsewhere)."""

    def firewall_tables(self) -> list[firewall.Table]:
        return []

    def firewall_pieces(self, table: str, net: Network, eps: list[Endpoint]) -> list[Any]:
        if table != firewall.NAT:
            return []
        return [nat_rules.NatPieces(v, endpoint_nat=tuple(endpoint_nat(eps, v))) for v in (4, 6)]


def endpoint_nat(eps: list[Endpoint], version: int) -> list[nat_rules.EndpointNat]:
    """The endpoints' OutBoundNAT policies in one family (a VirtualIP, exceptions and
    destinations of the other family do not apply to it)."""
    out = []
    for ep in eps:
        pol, ip = ep.outbound_nat, ep.ip if version == 4 else ep.ip6
        if pol is None or not ip:
            continue
        vip = pol.virtual_ip if (":" in pol.virtual_ip) == (version == 6) else ""
        exceptions = tuple(of_family(pol.exceptions, version))
        destinations = tuple(of_family(pol.destinations, version))
        exempt = bool(pol.destinations) and not destinations
        out.append(nat_rules.EndpointNat(ip, vip, exceptions, destinations, exempt))
    return out


#: every policy's contribution to the host-wide tables, in the order they are asked
FIREWALL_PIECES: tuple[firewall.Contributor, ...] = (OutboundNatPieces(),)
