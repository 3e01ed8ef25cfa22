"""Host adapters bound to an external switch (a bridge), keeping the host's own addresses.

Binding moves the adapter's IPv4 and global IPv6 addresses and its static routes onto
the bridge (which takes the adapter's MAC), so the host stays reachable; releasing moves
them back. Link-local addresses stay: the bridge makes its own from the same MAC; routes
the kernel or router advertisements made are made again on the bridge the same way. What
was moved is returned to the caller, which keeps it in intent for reconcile.
"""

from __future__ import annotations

import errno
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from hostnet.errors import Conflict, KernelError, NotFound
from hostnet.kernel.links import Netlink

RTPROT_KERNEL, RTPROT_RA = 2, 9
IFA_F_NODAD = 0x02


def describe(nl: Netlink, name: str) -> dict[str, Any]:
    """The adapter's MAC, MTU, master, IPv4 addresses and non-kernel routes."""
    idx = nl.index(name)
    if idx is None:
        names = sorted(
            ln["name"] for ln in nl.links() if ln["kind"] in (None, "veth") and ln["name"] != "lo"
        )
        raise NotFound(f"adapter {name!r} does not exist", f"adapters here: {', '.join(names)}")
    msg = nl.ipr.get_links(idx)[0]
    addrs = [
        (a.get_attr("IFA_ADDRESS"), a["prefixlen"])
        for family in (2, 10)
        for a in nl.ipr.get_addr(family=family)
        if a["index"] == idx and a["scope"] == 0  # global: IPv6 link-local stays
    ]
    routes = []
    for family, anywhere in ((2, "0.0.0.0"), (10, "::")):
        for r in nl.ipr.get_routes(family=family, table=254):
            if r.get_attr("RTA_OIF") != idx or r["proto"] in (RTPROT_KERNEL, RTPROT_RA):
                continue
            if family == 10 and str(r.get_attr("RTA_DST") or "").startswith(("fe80", "ff")):
                continue
            routes.append(
                {
                    "dst": f"{r.get_attr('RTA_DST') or anywhere}/{r['dst_len']}",
                    "gateway": r.get_attr("RTA_GATEWAY"),
                    "priority": r.get_attr("RTA_PRIORITY") or 0,
                }
            )
    return {
        "index": idx,
        "mac": msg.get_attr("IFLA_ADDRESS"),
        "mtu": msg.get_attr("IFLA_MTU"),
        "master": msg.get_attr("IFLA_MASTER"),
        "addrs": addrs,
        "routes": routes,
    }


def _nodad(ip: str) -> dict[str, int]:
    """An IPv6 address moved between the host's own links needs no duplicate detection."""
    return {"flags": IFA_F_NODAD} if ":" in ip else {}


def _ignore_exists(fn: Any, *args: Any, **kwargs: Any) -> None:
    try:
        fn(*args, **kwargs)
    except NetlinkError as exc:
        if exc.code not in (errno.EEXIST, errno.EADDRNOTAVAIL, errno.ESRCH, errno.ENOENT):
            raise KernelError(f"changing adapter state failed: {exc}") from None


def bind(
    nl: Netlink, bridge: str, adapter: str, owner: str, saved: dict[str, Any] | None
) -> dict[str, Any]:
    """Ensure ``adapter`` is a port of ``bridge`` and the host's addresses live on the bridge.

    ``saved`` is what an earlier bind moved (None the first time); returns what is moved now.
    """
    state = describe(nl, adapter)
    br = nl.index(bridge)
    if state["master"] and state["master"] != br:
        owner_name = next((ln["name"] for ln in nl.links() if ln["index"] == state["master"]), "?")
        raise Conflict(
            f"adapter {adapter} is already a port of {owner_name}, which hostnet did not make",
            f"release it ('ip link set {adapter} nomaster') or choose another adapter",
        )
    moved = saved or {
        "mac": state["mac"],
        "mtu": state["mtu"],
        "addrs": state["addrs"],
        "routes": state["routes"],
    }
    if br is None:
        nl.ipr.link("add", ifname=bridge, kind="bridge")
        br = nl.index(bridge)
    assert br is not None
    nl.ipr.link("set", index=br, address=moved["mac"], mtu=moved["mtu"], state="up", ifalias=owner)
    if state["master"] != br:
        nl.ipr.link("set", index=state["index"], master=br, state="up")
    for ip, plen in moved["addrs"]:
        _ignore_exists(nl.ipr.addr, "add", index=br, address=ip, prefixlen=plen, **_nodad(ip))
        _ignore_exists(nl.ipr.addr, "del", index=state["index"], address=ip, prefixlen=plen)
    for r in moved["routes"]:
        kw = {"dst": r["dst"], "oif": br, "priority": r["priority"]}
        if r["gateway"]:
            kw["gateway"] = r["gateway"]
        _ignore_exists(nl.ipr.route, "replace", **kw)
    return moved


def release(nl: Netlink, bridge: str, adapter: str, saved: dict[str, Any]) -> None:
    """Give the adapter back its addresses and routes, then remove the bridge."""
    idx = nl.index(adapter)
    br = nl.index(bridge)
    if idx is not None:
        _ignore_exists(nl.ipr.link, "set", index=idx, master=0)
        for ip, plen in saved.get("addrs", []):
            _ignore_exists(nl.ipr.addr, "add", index=idx, address=ip, prefixlen=plen, **_nodad(ip))
        for r in saved.get("routes", []):
            kw = {"dst": r["dst"], "oif": idx, "priority": r["priority"]}
            if r["gateway"]:
                kw["gateway"] = r["gateway"]
            _ignore_exists(nl.ipr.route, "replace", **kw)
    if br is not None:
        nl.delete_link(bridge)
