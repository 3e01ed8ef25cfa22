"""Reconcile: make the kernel match intent, and remove what hostnet owns but no intent names."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from hostnet.core import lifecycle
from hostnet.drivers import vnic
from hostnet.errors import HostnetError
from hostnet.model import BRIDGE_PREFIX, VETH_PREFIX

if TYPE_CHECKING:
    from hostnet.core.service import HostNetworkingService
    from hostnet.model import Container

log = logging.getLogger("hostnet")


# A compartment made for `hostnet run` whose process never registered: its client is gone.
UNCLAIMED_GRACE_S = 60.0


def reconcile(svc: HostNetworkingService, at_start: bool = False) -> dict[str, Any]:
    """Idempotent repair; returns what it did, and the errors it carried on past.

    At start, a compartment whose process never registered is removed: the
    client that asked for it lost its daemon connection and gave up.
    """
    report: dict[str, Any] = {
        "removed_containers": [],
        "repaired_endpoints": [],
        "swept": [],
        "errors": [],
    }
    for ct in list(svc.containers.values()):
        if ct.runtime == "docker":
            continue  # Docker owns the sandbox (often out of sight) and calls DeleteEndpoint
        gone = not svc.kernel.compartment_exists(ct.netns)
        dead = ct.pid > 0 and not svc.process_alive(ct)
        if ct.state:  # made with 'hostnet create': intent outlives its process
            _keep_stateful(svc, ct, gone, dead, report)
            continue
        unclaimed = (
            not ct.external
            and ct.pid == 0
            and (at_start or time.time() - ct.created > UNCLAIMED_GRACE_S)
        )
        if gone or dead or unclaimed:
            why = (
                "its compartment is gone"
                if gone
                else f"its process {ct.pid} has exited"
                if dead
                else "no process ever started in it"
            )
            log.info("removing container %s: %s", ct.name, why)
            report["errors"] += svc.teardown(ct)
            report["removed_containers"].append(ct.name)
    for n in list(svc.nets.values()):
        try:
            svc.driver_of(n).ensure_network(n)
        except HostnetError as exc:
            report["errors"].append(str(exc))
    for ep in list(svc.index.unattached.values()):  # no kernel objects: nothing to repair
        if ep.network_id not in svc.nets:
            svc.store.delete_endpoint(ep.id)
            svc.index.forget(ep)
    for ep in list(svc.eps.values()):
        net, c = svc.nets.get(ep.network_id), svc.compartment_of(ep)
        if net is None or c is None:
            svc.store.delete_endpoint(ep.id)
            svc.index.forget(ep)
            continue
        drv = svc.driver_of(net)
        if drv.endpoint_present(net, ep) and not (ep.dhcp and not svc.dhcp.running(ep.id)):
            continue
        if ep.runtime_moves_peer and svc.rt.link(ep.host_ifname) is None:
            report["errors"].append(
                f"{c.name}/{ep.ifname}: the vNIC Docker moved is gone; restart that container"
            )
            continue
        first = svc.endpoints_of(c)[0].id == ep.id and not ep.on_host  # the host has its own
        try:
            drv.attach(net, ep, c, default_route=first)
            vnic.add_routes(svc.kernel, ep, c)
            report["repaired_endpoints"].append(f"{c.name}/{ep.ifname}")
        except HostnetError as exc:
            report["errors"].append(str(exc))
    try:
        svc.firewall.sync()
    except HostnetError as exc:
        report["errors"].append(str(exc))
    for ep in list(svc.eps.values()):  # ACL chains hang off devices: re-apply where present
        if ep.network_id in svc.nets and svc.rt.link(ep.host_ifname) is not None:
            try:
                svc.driver_of(svc.nets[ep.network_id]).apply_acl(ep, svc.nets[ep.network_id])
            except HostnetError as exc:
                report["errors"].append(str(exc))
    report["swept"] = sweep(svc)
    svc.resync_dns()
    svc.stats.reconciled(report)
    return report


def _keep_stateful(
    svc: HostNetworkingService, ct: Container, gone: bool, dead: bool, report: dict[str, Any]
) -> None:
    """A created container has nothing to repair; a started one whose process ended is
    stopped; a started one whose compartment went gets it back (its endpoints follow)."""
    if ct.state == "created":
        return
    if dead:
        lifecycle.exited(svc, ct)
    if gone:
        log.info("container %s: its compartment is gone; making it again", ct.name)
        try:
            svc.kernel.create_compartment(ct.netns)
            report["repaired_endpoints"].append(f"{ct.name} (compartment)")
        except HostnetError as exc:
            report["errors"].append(str(exc))


def sweep(svc: HostNetworkingService) -> list[str]:
    """Delete hostnet-owned links and compartments that no intent names."""

    wanted_links = {n.switch for n in svc.nets.values()} | {e.host_ifname for e in svc.eps.values()}
    wanted_ns = {c.netns for c in svc.containers.values() if not c.external}
    swept: list[str] = []
    for link in svc.host.links():
        name = link["name"] or ""
        marked = link["alias"] == svc.owner
        owned = marked and (
            (name.startswith(BRIDGE_PREFIX) and link["kind"] == "bridge")
            or (name.startswith(VETH_PREFIX) and link["kind"] == "veth")
        )
        if owned and name not in wanted_links:
            svc.host.delete_link(name)
            swept.append(f"link {name}")
    for name in svc.kernel.compartments(svc.ns_prefix):
        if name not in wanted_ns:
            svc.kernel.remove_compartment(name)
            swept.append(f"compartment {name}")
    for s in swept:
        log.info("swept stale %s", s)
    return swept
