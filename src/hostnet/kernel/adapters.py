"""Host adapters bound to an external switch (a bridge), keeping the host's own addresses.

Binding moves the adapter's IPv4 and global IPv6 addresses and its static routes onto
the bridge (which takes the adapter's MAC), so the host stays reachable; releasing moves
them back. Link-local addresses stay: the bridge makes its own from the same MAC; routes
the kernel or router advertisements made are made again on the bridge the same way. What
was moved is returned to the caller, which keeps it in intent for reconcile.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, TypedDict

from pyroute2.netlink.exceptions import NetlinkError

from hostnet.errors import Conflict, KernelError, NotFound

if TYPE_CHECKING:
    from hostnet.kernel.handles import HostLinks

RTPROT_KERNEL, RTPROT_RA = 2, 9
IFA_F_NODAD = 0x02
ARPHRD_ETHER = 1
OWNER_ALIAS = "hostnet:"  # every link hostnet makes carries "hostnet:INSTANCE" as its alias
HOSTNET_NAMES = ("hn-", "hx-", "ho-", "vo-", "hv", "ht", "hu")  # switches, VXLAN, vNICs, teams
OTHER_RUNTIMES = ("veth", "docker", "virbr", "cni", "podman", "lxc", "lxd", "vnet", "tap")


class Link(TypedDict):
    """One row of a link dump: what adapter resolution and the switch views need."""

    index: int
    name: str
    kind: str | None  # rtnl kind (bridge, veth, vxlan...); None: a device with a driver
    master: int | None
    alias: str
    mac: str
    mtu: int
    up: bool
    ether: bool
    peer_elsewhere: bool  # a veth whose peer is in another namespace


def link_table(nl: HostLinks) -> list[Link]:
    """Every link of the namespace, in one dump."""
    out: list[Link] = []
    for msg in nl.ipr.get_links():
        info = msg.get_attr("IFLA_LINKINFO")
        out.append(
            Link(
                index=msg["index"],
                name=msg.get_attr("IFLA_IFNAME") or "",
                kind=info.get_attr("IFLA_INFO_KIND") if info else None,
                master=msg.get_attr("IFLA_MASTER"),
                alias=msg.get_attr("IFLA_IFALIAS") or "",
                mac=msg.get_attr("IFLA_ADDRESS") or "",
                mtu=msg.get_attr("IFLA_MTU") or 0,
                up=bool(msg["flags"] & 1),
                ether=msg["ifi_type"] == ARPHRD_ETHER,
                peer_elsewhere=msg.get_attr("IFLA_LINK_NETNSID") is not None,
            )
        )
    return out


def hostnets(link: Link) -> bool:
    """Made by a hostnet daemon (this one or another): its alias, or one of its names."""
    return link["alias"].startswith(OWNER_ALIAS) or link["name"].startswith(HOSTNET_NAMES)


def is_adapter(link: Link) -> bool:
    """A host adapter ("physical-ish"): an Ethernet device with a driver (no rtnl kind), or
    a veth whose peer lives in another namespace (a VM's or a lab's wire), that no hostnet
    daemon and no other container runtime (veth*, docker*, virbr*, cni*...) made."""
    if not link["ether"] or hostnets(link) or link["name"].startswith(OTHER_RUNTIMES):
        return False
    return link["kind"] is None or (link["kind"] == "veth" and link["peer_elsewhere"])


def _listed(link: Link) -> str:
    return f"{link['name']} (alias {link['alias']!r})" if link["alias"] else link["name"]


def resolve(asked: str, links: list[Link]) -> str:
    """The Linux name of the adapter named ``asked``: a link whose name is exactly that,
    else the one whose alias (``ip link set DEV alias NAME``) is that, ignoring case."""
    if any(ln["name"] == asked for ln in links):
        return asked
    by_alias = [ln for ln in links if ln["alias"].casefold() == asked.casefold()]
    if len(by_alias) == 1:
        return by_alias[0]["name"]
    there = ", ".join(
        _listed(ln) for ln in sorted(links, key=lambda ln: ln["name"]) if is_adapter(ln)
    )
    if by_alias:
        raise Conflict(
            f"adapter {asked!r} is ambiguous: it is the alias of "
            + ", ".join(ln["name"] for ln in by_alias),
            f"name the adapter by its interface name; adapters here: {there}",
        )
    raise NotFound(
        f"adapter {asked!r} does not exist: no interface has that name or alias",
        f"name an interface, or give one that alias ('ip link set DEV alias \"{asked}\"'); "
        f"adapters here: {there or 'none'}",
    )


def adapter_ports(links: list[Link], bridge_index: int) -> list[str]:
    """The adapters that are ports of the bridge with that index."""
    return sorted(ln["name"] for ln in links if ln["master"] == bridge_index and is_adapter(ln))


def describe(nl: HostLinks, name: str) -> dict[str, Any]:
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


def in_foreign_bridge(adapter: str, bridge: str) -> Conflict:
    """The seed's "an existing vSwitch blocks a transparent network", and its three ways out."""
    return Conflict(
        f"adapter {adapter} is already a port of bridge {bridge}, which hostnet did not make",
        f"three ways: use that bridge as the network's switch (-o switch={bridge}; hostnet "
        f"leaves it as it is, and never deletes it); release the adapter ('ip link set "
        f"{adapter} nomaster'; move {bridge}'s addresses back to {adapter}, and delete "
        f"{bridge} if nothing else uses it); or bind another adapter (-o interface=NAME)",
    )


def keep_mac(nl: HostLinks, bridge: str, mac: str) -> None:
    """Set a bridge's MAC to the one it has: a bridge whose MAC was never set takes the
    lowest of its ports', so a vNIC plugged into it could change the host's MAC there."""
    idx = nl.index(bridge)
    if idx is not None:
        _ignore_exists(nl.ipr.link, "set", index=idx, address=mac)


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
    nl: HostLinks, bridge: str, adapter: str, owner: str, saved: dict[str, Any] | None
) -> dict[str, Any]:
    """Ensure ``adapter`` is a port of ``bridge`` and the host's addresses live on the bridge.

    ``saved`` is what an earlier bind moved (None the first time); returns what is moved now.
    """
    state = describe(nl, adapter)
    br = nl.index(bridge)
    if state["master"] and state["master"] != br:
        owner_name = next((ln["name"] for ln in nl.links() if ln["index"] == state["master"]), "?")
        raise in_foreign_bridge(adapter, owner_name)
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


def release(nl: HostLinks, bridge: str, adapter: str, saved: dict[str, Any]) -> None:
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
