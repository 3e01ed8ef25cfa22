"""Links, addresses and routes through netlink (pyroute2), one socket per namespace."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from hostnet.errors import Conflict, KernelError
from hostnet.kernel import netns

IFA_F_NODAD = 0x02  # an IPv6 address without duplicate address detection
IFA_F_TENTATIVE = 0x40  # still in duplicate address detection


def _kernel_error(what: str, exc: NetlinkError) -> KernelError:
    return KernelError(f"{what} failed: {os.strerror(exc.code)}", errno=exc.code)


class Netlink:
    """Typed netlink operations in one namespace; the socket is opened inside it."""

    def __init__(self, ns: str | None = None) -> None:
        self.ns = ns
        self._vx_index: dict[str, int] = {}  # VXLAN device -> index (a name look-up lists all)
        if ns is None:
            self.ipr = IPRoute()
        else:
            with netns.entered(ns):
                self.ipr = IPRoute()

    def close(self) -> None:
        self.ipr.close()

    def ip_config(self) -> list[dict[str, Any]]:
        """Each interface but lo, as ipconfig shows it: index, name, MAC, addresses
        (address, prefixlen, family 4/6, scope) and the default gateways through it."""
        gateways: dict[int, list[str]] = {}
        for family in (socket.AF_INET, socket.AF_INET6):
            for r in self.ipr.get_routes(family=family, table=254):
                if r["dst_len"] == 0 and r.get_attr("RTA_GATEWAY"):
                    gateways.setdefault(r.get_attr("RTA_OIF"), []).append(r.get_attr("RTA_GATEWAY"))
        addrs: dict[int, list[dict[str, Any]]] = {}
        for a in self.ipr.get_addr():
            addrs.setdefault(a["index"], []).append(
                {
                    "address": a.get_attr("IFA_ADDRESS"),
                    "prefixlen": a["prefixlen"],
                    "family": 6 if a["family"] == socket.AF_INET6 else 4,
                    "scope": "link"
                    if a["scope"] == 253
                    else "global"
                    if a["scope"] == 0
                    else "host",
                }
            )
        out = []
        for msg in self.ipr.get_links():
            name = msg.get_attr("IFLA_IFNAME")
            if name == "lo":
                continue
            idx = msg["index"]
            out.append(
                {
                    "index": idx,
                    "name": name,
                    "mac": msg.get_attr("IFLA_ADDRESS"),
                    "addresses": addrs.get(idx, []),
                    "gateways": gateways.get(idx, []),
                }
            )
        return out

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NetlinkError as exc:
            raise _kernel_error(what, exc) from None

    # -- links -----------------------------------------------------------
    def index(self, name: str) -> int | None:
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    def link_info(self, name: str) -> dict[str, Any] | None:
        idx = self.index(name)
        if idx is None:
            return None
        msg = self.ipr.get_links(idx)[0]
        info = msg.get_attr("IFLA_LINKINFO")
        master = msg.get_attr("IFLA_MASTER")
        return {
            "index": idx,
            "kind": info.get_attr("IFLA_INFO_KIND") if info else None,
            "master": master,
            "up": bool(msg["flags"] & 1),
            "mac": msg.get_attr("IFLA_ADDRESS"),
        }

    def link_stats(self, name: str) -> dict[str, int] | None:
        """The link's 64-bit counters (IFLA_STATS64: rx_bytes, tx_packets, rx_dropped ...)."""
        idx = self.index(name)
        if idx is None:
            return None
        stats = self.ipr.get_links(idx)[0].get_attr("IFLA_STATS64")
        if stats is None:
            return None
        keys = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_dropped", "tx_dropped")
        return {k: int(stats.get(k) or 0) for k in keys}

    def links(self) -> list[dict[str, Any]]:
        out = []
        for msg in self.ipr.get_links():
            info = msg.get_attr("IFLA_LINKINFO")
            out.append(
                {
                    "index": msg["index"],
                    "name": msg.get_attr("IFLA_IFNAME"),
                    "kind": info.get_attr("IFLA_INFO_KIND") if info else None,
                    "master": msg.get_attr("IFLA_MASTER"),
                    "alias": msg.get_attr("IFLA_IFALIAS"),
                }
            )
        return out

    def ensure_bridge(self, name: str, mtu: int, alias: str, mac: str) -> int:
        """Make sure bridge ``name`` exists with MAC ``mac`` and is up; refuse a non-bridge
        of that name. A MAC given keeps the bridge from taking its ports' as they come and
        go; it is set only when it differs (setting one flushes the bridge's neighbours)."""
        info = self.link_info(name)
        if info is not None and info["kind"] != "bridge":
            raise KernelError(
                f"a link named {name} exists but is a {info['kind'] or 'device'}, not a bridge",
                f"remove or rename {name}",
            )
        if info is None:
            self._call(
                f"creating bridge {name}",
                self.ipr.link,
                "add",
                ifname=name,
                kind="bridge",
                mtu=mtu,
                address=mac,
            )
        idx = self.index(name)
        assert idx is not None
        fix = {"address": mac} if info is not None and info["mac"] != mac else {}
        self._call(
            f"bringing up {name}", self.ipr.link, "set", index=idx, state="up", ifalias=alias, **fix
        )
        return idx

    def ensure_vxlan(
        self, name: str, vni: int, local: str, mtu: int, master: int, alias: str
    ) -> int:
        """A VXLAN device on ``master`` that learns nothing and answers ARP from its
        neighbour table (proxy): forwarding comes only from the entries hostnet programs."""
        info = self.link_info(name)
        if info is not None and info["kind"] != "vxlan":
            raise KernelError(f"a link named {name} exists but is not a VXLAN device")
        if info is None:
            self._call(
                f"creating VXLAN {name} (VNI {vni})",
                self.ipr.link,
                "add",
                ifname=name,
                kind="vxlan",
                vxlan_id=vni,
                vxlan_local=local,
                vxlan_port=4789,
                vxlan_learning=0,
                vxlan_proxy=1,
                vxlan_udp_csum=0,  # IPv4 allows a zero outer checksum: less work per packet
                mtu=mtu,
            )
        idx = self.index(name)
        assert idx is not None
        self._vx_index[name] = idx
        self._call(
            f"bringing up {name}",
            self.ipr.link,
            "set",
            index=idx,
            master=master,
            state="up",
            ifalias=alias,
        )
        return idx

    def tunnel_entry(self, dev: str, mac: str, ip: str, vtep: str, present: bool) -> None:
        """Forwarding (FDB: MAC -> remote VTEP) and a proxy neighbour (IP -> MAC: answered
        as ARP for IPv4, neighbour discovery for IPv6) for one remote endpoint address on
        VXLAN device ``dev``; adding what is there and removing what is not are both
        success. An endpoint of both families has two entries sharing its FDB entry."""
        idx = self._vxlan_index(dev)
        if idx is None:
            return
        try:
            if present:
                try:  # "append": the VXLAN device's own entry (self), not the bridge's
                    self.ipr.fdb("append", ifindex=idx, lladdr=mac, dst=vtep)
                except NetlinkError as exc:
                    if exc.code != errno.EEXIST:
                        raise
                self.ipr.neigh("replace", dst=ip, lladdr=mac, ifindex=idx, state=0x80)
            else:
                with contextlib.suppress(NetlinkError):
                    self.ipr.fdb("del", ifindex=idx, lladdr=mac, dst=vtep)
                with contextlib.suppress(NetlinkError):
                    self.ipr.neigh("del", dst=ip, lladdr=mac, ifindex=idx)
        except NetlinkError as exc:
            self._vx_index.pop(dev, None)  # recreated? look it up again
            raise _kernel_error(f"programming {mac}/{ip} via {vtep} on {dev}", exc) from None

    def _vxlan_index(self, dev: str) -> int | None:
        """Index of a VXLAN device, looked up once (a name look-up lists every link)."""
        if dev not in self._vx_index:
            found = self.index(dev)
            if found is None:
                return None
            self._vx_index[dev] = found
        return self._vx_index[dev]

    def tunnel_entries(self, dev: str) -> set[tuple[str, str, str]]:
        """What ``dev`` forwards to remote VTEPs: (mac, ip, vtep) from its FDB and neighbours."""
        idx = self._vxlan_index(dev)
        if idx is None:
            return set()
        fdb = {
            m.get_attr("NDA_LLADDR"): m.get_attr("NDA_DST")
            for m in self.ipr.fdb("dump", ifindex=idx)
            if m.get_attr("NDA_DST")
        }
        out = set()
        for family in (socket.AF_INET, socket.AF_INET6):
            for m in self.ipr.get_neighbours(ifindex=idx, family=family):
                mac, ip = m.get_attr("NDA_LLADDR"), m.get_attr("NDA_DST")
                if mac in fdb:
                    out.add((mac, ip, fdb[mac]))
        return out

    def autoconf_ipv6(self, name: str) -> tuple[str, int, str] | None:
        """The global IPv6 address ``name`` made from a router advertisement (SLAAC), its
        prefix length and the router (the default route's gateway), once the address has
        passed duplicate detection; None until then."""
        idx = self.index(name)
        if idx is None:
            return None
        addrs = [
            (a.get_attr("IFA_ADDRESS"), a["prefixlen"])
            for a in self.ipr.get_addr(family=socket.AF_INET6, index=idx)
            if a["scope"] == 0 and not (a.get_attr("IFA_FLAGS") or a["flags"]) & IFA_F_TENTATIVE
        ]
        routers = [
            r.get_attr("RTA_GATEWAY")
            for r in self.ipr.get_routes(family=socket.AF_INET6, table=254)
            if r["dst_len"] == 0 and r.get_attr("RTA_OIF") == idx and r.get_attr("RTA_GATEWAY")
        ]
        if not addrs or not routers:
            return None
        return str(addrs[0][0]), int(addrs[0][1]), str(routers[0])

    def ensure_addr(self, idx: int, ip: str, prefixlen: int, nodad: bool = False) -> None:
        """``nodad``: an IPv6 address usable at once (no duplicate address detection)."""
        extra = {"flags": IFA_F_NODAD} if nodad else {}
        try:
            self.ipr.addr("add", index=idx, address=ip, prefixlen=prefixlen, **extra)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise _kernel_error(f"adding address {ip}/{prefixlen}", exc) from None

    def default_route_indexes(self) -> list[int]:
        """Interface indexes of the main table's IPv4 default routes."""
        return [
            int(r.get_attr("RTA_OIF"))
            for r in self.ipr.get_routes(family=2, table=254)
            if r["dst_len"] == 0 and r.get_attr("RTA_OIF")
        ]

    def ensure_team_switch(
        self, bridge: str, port: str, uplink: str, members: tuple[str, ...], owner: str
    ) -> tuple[str, int]:
        """A bridge whose one port towards the wire is a veth pair (``port`` on the bridge,
        ``uplink`` for nftables to spread from) for a team of ``members``: members up and
        free of the host's IPv4 addresses; the bridge takes the first member's MAC and MTU,
        which are returned."""
        first = None
        for m in members:
            idx = self.index(m)
            if idx is None:
                raise KernelError(f"team member {m} is missing")
            msg = self.ipr.get_links(idx)[0]
            if any(a["index"] == idx for a in self.ipr.get_addr(family=2)):
                raise Conflict(
                    f"team member {m} carries IPv4 addresses of the host",
                    "team adapters that only carry containers; move the host's addresses off",
                )
            first = first or msg
            self.ipr.link("set", index=idx, state="up")
        assert first is not None
        mac, mtu = first.get_attr("IFLA_ADDRESS"), first.get_attr("IFLA_MTU")
        br = self.index(bridge)
        if br is None:
            self.ipr.link("add", ifname=bridge, kind="bridge")
            br = self.index(bridge)
        self.ipr.link("set", index=br, address=mac, mtu=mtu, state="up", ifalias=owner)
        if self.index(port) is None:
            self.ipr.link(
                "add", ifname=port, kind="veth", peer={"ifname": uplink, "mtu": mtu}, mtu=mtu
            )
        for name in (port, uplink):
            idx = self.index(name)
            assert idx is not None
            self.ipr.link("set", index=idx, state="up", ifalias=owner)
        self.ipr.link("set", index=self.index(port), master=br)
        return str(mac), int(mtu)

    def delete_link(self, name: str) -> None:
        """Delete a link; already gone is success."""
        idx = self.index(name)
        if idx is None:
            return
        try:
            self.ipr.link("del", index=idx)
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:
                raise _kernel_error(f"deleting {name}", exc) from None

    # -- addresses and routes -------------------------------------------
    def prefixes(self, exclude_prefix: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """Prefixes of this namespace's addresses and routes (IPv4 and IPv6, link-local and
        multicast left out), except on links we own."""
        own = {ln["index"] for ln in self.links() if (ln["name"] or "").startswith(exclude_prefix)}
        nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for a in self.ipr.get_addr(family=family):
                if a["index"] in own or a["index"] == 1:
                    continue
                ip = a.get_attr("IFA_ADDRESS")
                nets.append(ipaddress.ip_network(f"{ip}/{a['prefixlen']}", strict=False))
            for r in self.ipr.get_routes(family=family, table=254):
                if r.get_attr("RTA_OIF") in own or r["dst_len"] == 0:
                    continue
                dst = r.get_attr("RTA_DST")
                if dst:
                    nets.append(ipaddress.ip_network(f"{dst}/{r['dst_len']}", strict=False))
        return [n for n in nets if n.version == 4 or not (n.is_link_local or n.is_multicast)]


def write_sysctl(path: str, value: str) -> None:  # path like "net/ipv4/ip_forward"
    """Write a /proc/sys value in the calling thread's network namespace."""
    full = "/proc/sys/" + path
    try:
        with open(full, "w") as fh:
            fh.write(value)
    except OSError as exc:
        raise KernelError(f"setting {path}={value} failed: {exc.strerror}") from None
