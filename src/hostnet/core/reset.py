"""``hostnet system reset``: remove everything this daemon made, then forget it.

Containers go first (their vNICs, DHCP clients, DNS, mappings), then networks (switches,
bound adapters given back their addresses, VXLAN devices), then any object the sweep
finds that still carries this daemon's mark, then hostnet's nftables tables. What is
left is the intent itself: the store forgets this host (``Store.wipe``) and the daemon
removes its state directory when it stops. On a shared store (etcd) the cluster's
overlay networks stay in the cluster; only this host's share of them goes.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from hostnet.core import lifecycle
from hostnet.core.reconcile import sweep
from hostnet.errors import HostnetError

if TYPE_CHECKING:
    from hostnet.core.service import HostNetworkingService

log = logging.getLogger("hostnet")

#: every nftables table hostnet makes is named hostnet or hostnet_<something>
_TABLE = re.compile(r"^table (ip|ip6|inet|bridge|netdev|arp) (hostnet(?:_\w+)?)$")


def plan(svc: HostNetworkingService) -> dict[str, Any]:
    """What a reset would remove: shown before the confirmation."""
    shared = svc.store.shared
    keep = [n.name for n in svc.nets.values() if shared and svc.driver_of(n).cluster_scoped]
    return {
        "Containers": sorted(c.name for c in svc.containers.values()),
        "Networks": sorted(n.name for n in svc.nets.values() if n.name not in keep),
        "KeptInCluster": sorted(keep),
        "Endpoints": len(svc.eps),
        "Store": svc.store.describe(),
        "StateDir": svc.state_dir,
    }


def reset(svc: HostNetworkingService) -> dict[str, Any]:
    """Remove every container, network and kernel object of this daemon; wipe its intent."""
    report: dict[str, Any] = {**plan(svc), "Swept": [], "Tables": [], "Errors": []}
    errors: list[str] = report["Errors"]
    for c in list(svc.containers.values()):
        if not c.external:  # what runs in a compartment hostnet made goes with it
            lifecycle.end_processes(svc, c, 2.0)
        errors += svc.teardown(c)
    for n in list(svc.nets.values()):
        try:
            if n.name in report["KeptInCluster"]:
                svc.driver_of(n).remove_network(n)  # this host's datapath only
                svc.index.drop_network(n.id)
            else:
                errors += svc.remove_network(n.id, force=True)
        except HostnetError as exc:
            errors.append(f"network {n.name}: {exc}")
    try:
        report["Swept"] = sweep(svc)
        report["Tables"] = drop_tables(svc)
    except HostnetError as exc:
        errors.append(str(exc))
    svc.dhcp.stop_all()
    svc.store.wipe()
    for e in errors:
        log.warning("reset: %s", e)
    log.info(
        "reset: removed %d container(s), %d network(s)",
        len(report["Containers"]),
        len(report["Networks"]),
    )
    return report


def drop_tables(svc: HostNetworkingService) -> list[str]:
    """Delete hostnet's nftables tables in this namespace, whatever is left of them."""
    found = [m.groups() for m in map(_TABLE.match, svc.nft.output("list tables").splitlines()) if m]
    if found:
        svc.nft.run("".join(f"delete table {fam} {name}\n" for fam, name in found))
    return [f"{fam} {name}" for fam, name in found]
