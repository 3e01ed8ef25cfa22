"""Live changes in HCN's terms: a network's and an endpoint's policies, and SDN routes.

What hostnet changes live: a network's NetworkACL rules (every endpoint's chains re-applied
in one batch each), an endpoint's ACL rules (``set_endpoint_acl``: one batch) and its
PortMappings (``publish``/``unpublish``). A policy hostnet sets only when the object is
made (NetAdapterName, QOS, OutBoundNAT...) is refused by name. Every policy of a request
is parsed and checked before the first change. Routes (HostComputeRoute) are SDNRoute
policies of the endpoints they name, kept as records in the store.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from hostnet.core import acl, planning, ports
from hostnet.errors import Conflict, HostnetError, InvalidRequest, NotFound
from hostnet.hns import policy_settings as ps
from hostnet.hns.gojson import GoModel, parse
from hostnet.hns.policies import check_v2
from hostnet.hns.schema import PolicyRequest
from hostnet.hns.v2_views import port_spec, route_policies
from hostnet.model import Endpoint, Network, PortMapping

if TYPE_CHECKING:
    from hostnet.core.service import HostNetworkingService

log = logging.getLogger("hostnet")
ROUTES_KEY = "hcn:routes"  # the store's record of HostComputeRoutes: {id: route JSON}


def _policies(kind: str, settings: Any) -> list[tuple[str, GoModel]]:
    req = parse(PolicyRequest, settings if settings is not None else {}, "Policy request")
    if not req.policies:
        raise InvalidRequest(
            "the request names no policy", 'give Settings {"Policies": [{"Type": ..}]}'
        )
    return [check_v2(kind, p.to_json()) for p in req.policies]  # type: ignore[arg-type]


def _live_only(name: str, what: str, types: str) -> InvalidRequest:
    return InvalidRequest(
        f"{what} policy {name!r} cannot change on a live {what} in hostnet (it is set "
        f"when the {what} is created)",
        f"change {types} live; for {name}, create the {what} again with it",
        type=name,
    )


def _request_type(rt: str, allowed: tuple[str, ...], what: str) -> str:
    if rt not in allowed:
        raise InvalidRequest(
            f"RequestType {rt or '(none)'!r} is not supported for {what}",
            f"use one of: {', '.join(allowed)}",
        )
    return rt


def _remove_each(have: list[Any], gone: list[Any], what: str) -> list[Any]:
    left = list(have)
    for g in gone:
        if g not in left:
            raise NotFound(f"no such {what} to remove: {g!r}", "GET the object to see its policies")
        left.remove(g)
    return left


# ---- networks ---------------------------------------------------------------------
def modify_network(
    svc: HostNetworkingService, net: Network, resource: str, rt: str, settings: Any
) -> None:
    if resource != "Policy":
        raise InvalidRequest(
            f"ResourceType {resource or '(none)'!r} is not supported on a network "
            "(DNS and Extension settings have no counterpart)",
            'use ResourceType "Policy"',
        )
    rt = _request_type(rt, ("Add", "Remove", "Update", "Refresh"), "network policies")
    rules: list[acl.AclRule] = []
    if rt != "Refresh":
        for name, s in _policies("network", settings):
            if not isinstance(s, ps.AclSettings):
                raise _live_only(name, "network", "NetworkACL")
            rules.append(s.to_rule())
    new = {"Add": [*net.acl, *rules], "Update": rules, "Refresh": list(net.acl)}.get(rt)
    if new is None:
        new = _remove_each(net.acl, rules, "NetworkACL")
    set_network_acl(svc, net, new)


def set_network_acl(svc: HostNetworkingService, net: Network, rules: list[acl.AclRule]) -> None:
    """Replace a network's ACL rules; each endpoint's chains are re-applied (one batch
    each); a failure puts the old rules back."""
    old = list(net.acl)
    drv = svc.driver_of(net)
    eps = svc.endpoints_on(net)
    had = {e.id for e in eps if drv.has_own_acl(e, net)}
    net.acl = list(rules)
    try:
        _apply(svc, net, eps, had)
    except BaseException:
        net.acl = old
        try:
            _apply(svc, net, eps, {e.id for e in eps})
        except HostnetError as exc:
            log.warning("putting back network %s's ACL: %s", net.name, exc)
        raise
    svc.store.update_network(net)


def _apply(svc: HostNetworkingService, net: Network, eps: list[Endpoint], had: set[str]) -> None:
    drv = svc.driver_of(net)
    for ep in eps:
        if drv.has_own_acl(ep, net):
            drv.apply_acl(ep, net)
        elif ep.id in had:
            drv.remove_acl(ep)


# ---- endpoints --------------------------------------------------------------------
def modify_endpoint(
    svc: HostNetworkingService, ep: Endpoint, resource: str, rt: str, settings: Any
) -> None:
    if resource != "Policy":
        raise InvalidRequest(
            f"ResourceType {resource or '(none)'!r} is not supported on an endpoint (Port "
            "is a VM's switch port; hostnet has no VM-isolated endpoints)",
            'use ResourceType "Policy"',
        )
    rt = _request_type(rt, ("Add", "Remove", "Update", "Refresh"), "endpoint policies")
    rules: list[acl.AclRule] = []
    maps: list[str] = []
    if rt != "Refresh":
        for name, s in _policies("endpoint", settings):
            if isinstance(s, ps.AclSettings):
                rules.append(s.to_rule())
            elif isinstance(s, ps.PortMappingSettings) and rt in ("Add", "Remove"):
                maps.append(port_spec(s))
            else:
                raise _live_only(name, "endpoint", "ACL and (Add/Remove) PortMapping")
    gone: list[PortMapping] = []
    if rt == "Remove":
        gone = ports.matching(ep.ports, maps) if maps else []
        if len(gone) < len(maps):
            raise NotFound(f"endpoint {ep.id} has no such PortMapping", "GET it to see its ports")
    new_acl = {"Add": [*ep.acl, *rules], "Update": rules, "Refresh": list(ep.acl)}.get(rt)
    if new_acl is None:
        new_acl = _remove_each(ep.acl, rules, "ACL")
    if rt == "Add" and maps:
        _publish(svc, ep, maps)
    if rules or rt in ("Update", "Refresh"):
        try:
            svc.set_endpoint_acl(ep, new_acl)
        except BaseException:
            if rt == "Add" and maps:
                _unpublish(svc, ep, ports.matching(ep.ports, maps))
            raise
    if gone:
        _unpublish(svc, ep, gone)


def _publish(svc: HostNetworkingService, ep: Endpoint, specs: list[str]) -> None:
    net = svc.nets[ep.network_id]
    if not svc.driver_of(net).publishes_ports or net.internal:
        raise InvalidRequest(
            f"network {net.name!r} publishes no ports ({net.driver}"
            f"{', internal' if net.internal else ''})",
            "its endpoints are reachable at their own address; leave PortMapping out",
        )
    if ep.attached:
        svc.publish(net, ep, specs)
        return
    added = ports.resolve([ports.parse_port_spec(s) for s in specs], svc.index.port_index)
    svc.store.add_ports(ep, added)  # unattached: its attach maps them
    svc.index.add_ports(ep, added)


def _unpublish(svc: HostNetworkingService, ep: Endpoint, gone: list[PortMapping]) -> None:
    if ep.attached:
        svc.unpublish(ep, gone)
    elif gone:
        svc.store.remove_ports(ep, gone)
        svc.index.remove_ports(ep, gone)


# ---- routes -----------------------------------------------------------------------
def routes(svc: HostNetworkingService) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = json.loads(svc.store.get_meta(ROUTES_KEY) or "{}")
    return found


def _save_routes(svc: HostNetworkingService, table: dict[str, dict[str, Any]]) -> None:
    svc.store.set_meta(ROUTES_KEY, json.dumps(table, sort_keys=True))


def _unattached(svc: HostNetworkingService, eids: list[str]) -> list[Endpoint]:
    eps = []
    for eid in eids:
        ep = svc.index.endpoint(eid)
        if ep is None:
            raise NotFound(f'Endpoint ID "{eid}" not found', "create the endpoint first")
        if ep.attached:
            raise Conflict(
                f"endpoint {eid} is attached: hostnet changes a compartment's routes only "
                "when the endpoint joins it",
                "add the route before adding the endpoint to a namespace, or remove the "
                "endpoint from its namespace first",
            )
        eps.append(ep)
    return eps


def create_route(svc: HostNetworkingService, record: dict[str, Any]) -> dict[str, Any]:
    """The route's SDNRoute policies onto each of its (unattached) endpoints."""
    table = routes(svc)
    if record["ID"] in table:
        raise Conflict(f"a route with ID {record['ID']} exists already", "give another ID")
    eps = _unattached(svc, record["HostComputeEndpoints"])
    pols = route_policies(record)
    for ep in eps:
        net = svc.nets[ep.network_id]
        trial = ep.model_copy(update={"routes": []})
        planning.with_policies(net, svc.driver_of(net), trial, [p.hns() for p in pols])
    for ep in eps:
        ep.routes = [*ep.routes, *pols]
        svc.store.update_endpoint(ep)
    table[record["ID"]] = record
    _save_routes(svc, table)
    return record


def delete_route(svc: HostNetworkingService, rid: str) -> None:
    table = routes(svc)
    record = table.get(rid)
    if record is None:
        return  # hcsshim: a route already gone is success
    present = [e for e in record["HostComputeEndpoints"] if svc.index.endpoint(e) is not None]
    eps = _unattached(svc, present)
    pols = route_policies(record)
    for ep in eps:
        left = list(ep.routes)
        for p in pols:
            if p in left:
                left.remove(p)
        ep.routes = left
        svc.store.update_endpoint(ep)
    del table[rid]
    _save_routes(svc, table)
