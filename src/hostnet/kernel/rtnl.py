"""A minimal rtnetlink client for the attach/detach hot path.

pyroute2 costs about half a millisecond per request (it runs an asyncio loop
per call); the few messages an attach needs are packed here by hand instead
and cost tens of microseconds. Everything else (dumps, reconcile) uses
pyroute2 through ``links.py``.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
import threading
from itertools import count
from typing import Any

from hostnet.errors import KernelError
from hostnet.kernel import netns

NETLINK_ROUTE = 0
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_NEWROUTE = 20, 24
IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_AF_SPEC, IFLA_NET_NS_FD = 18, 20, 26, 28
IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE = 8, 1
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE, IFLA_BRPORT_ISOLATED = 4, 33
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
IFA_F_NODAD = 0x02
RTA_DST, RTA_GATEWAY, RTA_OIF = 1, 5, 4
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 4, 0, 1

IFINFO = struct.Struct("=BxHiII")
HDR = struct.Struct("=IHHII")


def attr(kind: int, data: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(data), kind) + data
    return raw + b"\0" * (-len(raw) % 4)


def u32(v: int) -> bytes:
    return struct.pack("=I", v)


def cstr(s: str) -> bytes:
    return s.encode() + b"\0"


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change)


def no_ipv6_linklocal() -> bytes:
    """IFLA_AF_SPEC making a link generate no IPv6 link-local address: on an IPv4 network a
    vNIC then does no duplicate address detection, router solicitation or MLD (flooded to
    every port of its switch), and the host's namespace gets no fe80::/64 route per vNIC.
    Measured: a veth on a small bridge in a namespace holding 5,000 vNICs took 3.0 ms with
    link-local addresses and 0.9 ms without (0.8 ms with 10)."""
    mode = attr(IFLA_INET6_ADDR_GEN_MODE, bytes([IN6_ADDR_GEN_MODE_NONE]))
    return attr(IFLA_AF_SPEC, attr(socket.AF_INET6, mode))


def parse_attrs(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    off = 0
    while off + 4 <= len(data):
        ln, kind = struct.unpack_from("=HH", data, off)
        if ln < 4:
            break
        out[kind & 0x3FFF] = data[off + 4 : off + ln]
        off += (ln + 3) & ~3
    return out


class Rtnl:
    """One rtnetlink socket, opened inside a namespace (or the caller's own)."""

    _seq = count(1)

    def __init__(self, ns: str | None = None, per_thread: bool = False) -> None:
        """``per_thread``: each thread gets a socket of its own (in the caller's namespace,
        opened on first use), so that requests from the service's threads never share
        one socket's replies: the daemon's handle."""
        self._local: threading.local | None = None
        self._all: list[socket.socket] = []
        if per_thread:
            self._local = threading.local()
            return
        if ns is None:
            self._sock = self._open()
        else:
            with netns.entered(ns):
                self._sock = self._open()

    @property
    def sock(self) -> socket.socket:
        if self._local is None:
            return self._sock
        s: socket.socket | None = getattr(self._local, "sock", None)
        if s is None:
            s = self._local.sock = self._open()
            self._all.append(s)
        return s

    @staticmethod
    def _open() -> socket.socket:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        s.bind((0, 0))
        return s

    def close(self) -> None:
        if self._local is None:
            self._sock.close()
        for s in self._all:
            s.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, what: str, mtype: int, flags: int, body: bytes) -> bytes | None:
        """Send one request; return the reply payload (GET) or None (ACK). Errors raise."""
        seq = next(self._seq)
        self.sock.send(HDR.pack(HDR.size + len(body), mtype, NLM_F_REQUEST | flags, seq, 0) + body)
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + HDR.size <= len(data):
                ln, rtype, _, rseq, _ = HDR.unpack_from(data, off)
                payload = data[off + HDR.size : off + ln]
                off += (ln + 3) & ~3
                if rseq != seq:
                    continue
                if rtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise KernelError(f"{what} failed: {os.strerror(code)}", errno=code)
                    return None
                if rtype == NLMSG_DONE:
                    return None
                return payload

    # -- links ------------------------------------------------------------
    def link(self, name: str) -> dict[str, Any] | None:
        """Index, flags and master of a link by name (one request, no dump), or None."""
        body = ifinfo() + attr(IFLA_IFNAME, cstr(name))
        try:
            reply = self.request(f"looking up {name}", RTM_GETLINK, 0, body)
        except KernelError as exc:
            if exc.details.get("errno") in (errno.ENODEV, errno.ENOENT):
                return None
            raise
        assert reply is not None
        _, _, index, flags, _ = IFINFO.unpack_from(reply)
        attrs = parse_attrs(reply[IFINFO.size :])
        master = struct.unpack("=I", attrs[IFLA_MASTER])[0] if IFLA_MASTER in attrs else 0
        mac = attrs.get(IFLA_ADDRESS, b"")
        return {"index": index, "flags": flags, "master": master, "mac": mac.hex(":")}

    def create_veth(
        self, host: str, peer: str, peer_ns_fd: int | None, peer_mac: str, master: int, mtu: int
    ) -> None:
        """A veth pair: ``host`` (down) on bridge ``master``, ``peer`` inside another
        namespace (or left here, down, when ``peer_ns_fd`` is None: a runtime moves it)."""
        peer_info = (
            ifinfo()
            + attr(IFLA_IFNAME, cstr(peer))
            + attr(IFLA_ADDRESS, bytes.fromhex(peer_mac.replace(":", "")))
            + attr(IFLA_MTU, u32(mtu))
        )
        if peer_ns_fd is not None:
            peer_info += attr(IFLA_NET_NS_FD, u32(peer_ns_fd))
        linkinfo = attr(IFLA_INFO_KIND, cstr("veth")) + attr(
            IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info)
        )
        body = (
            ifinfo()  # down: set_bridge_port brings it up, once IPv6 is off on it
            + attr(IFLA_IFNAME, cstr(host))
            + attr(IFLA_MTU, u32(mtu))
            + attr(IFLA_MASTER, u32(master))
            + attr(IFLA_LINKINFO, linkinfo)
        )
        self.request(
            f"creating veth {host}", RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body
        )

    def set_bridge_port(self, name: str, alias: str, hairpin: bool, isolated: bool) -> None:
        """Mark a bridge port as ours (ifalias), set its hairpin and isolation flags, and
        bring it up."""
        slave = attr(IFLA_BRPORT_MODE, bytes([int(hairpin)])) + attr(
            IFLA_BRPORT_ISOLATED, bytes([int(isolated)])
        )
        linkinfo = attr(IFLA_INFO_SLAVE_KIND, cstr("bridge")) + attr(IFLA_INFO_SLAVE_DATA, slave)
        body = (
            ifinfo(flags=IFF_UP, change=IFF_UP)
            + attr(IFLA_IFNAME, cstr(name))
            + attr(IFLA_IFALIAS, alias.encode())
            + attr(IFLA_LINKINFO, linkinfo)
            + no_ipv6_linklocal()  # a switch port needs no address of its own
        )
        self.request(f"setting bridge port {name}", RTM_NEWLINK, NLM_F_ACK, body)

    def without_ipv6_linklocal(self, name: str) -> None:
        """No IPv6 link-local address on ``name`` (call before it goes up)."""
        body = ifinfo() + attr(IFLA_IFNAME, cstr(name)) + no_ipv6_linklocal()
        self.request(f"configuring {name}", RTM_NEWLINK, NLM_F_ACK, body)

    def set_master_up(self, name: str, master: int) -> None:
        body = ifinfo(flags=IFF_UP, change=IFF_UP) + attr(IFLA_IFNAME, cstr(name))
        body += attr(IFLA_MASTER, u32(master))
        self.request(f"attaching {name}", RTM_NEWLINK, NLM_F_ACK, body)

    def set_up(self, name: str) -> None:
        body = ifinfo(flags=IFF_UP, change=IFF_UP) + attr(IFLA_IFNAME, cstr(name))
        self.request(f"bringing up {name}", RTM_NEWLINK, NLM_F_ACK, body)

    def set_down(self, name: str) -> bool:
        """``name`` down (one request); False when it does not exist."""
        body = ifinfo(change=IFF_UP) + attr(IFLA_IFNAME, cstr(name))
        try:
            self.request(f"taking {name} down", RTM_NEWLINK, NLM_F_ACK, body)
        except KernelError as exc:
            if exc.details.get("errno") in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True

    def rename_down(self, name: str, new: str) -> None:
        """``name`` down, then renamed ``new`` (a link must be down to be renamed)."""
        info = self.link(name)
        if info is None:
            return
        index = info["index"]
        self.request(f"taking {name} down", RTM_NEWLINK, NLM_F_ACK, ifinfo(index, 0, IFF_UP))
        body = ifinfo(index) + attr(IFLA_IFNAME, cstr(new))
        self.request(f"renaming {name}", RTM_NEWLINK, NLM_F_ACK, body)

    def delete_link(self, name: str) -> None:
        """Delete a link by name; already gone is success."""
        try:
            body = ifinfo() + attr(IFLA_IFNAME, cstr(name))
            self.request(f"deleting {name}", RTM_DELLINK, NLM_F_ACK, body)
        except KernelError as exc:
            if exc.details.get("errno") not in (errno.ENODEV, errno.ENOENT):
                raise

    # -- addresses and routes ---------------------------------------------
    def add_address(self, index: int, ip: str, prefixlen: int) -> None:
        """Add an address (either family); already there is success. IPv6 addresses skip
        duplicate address detection: IPAM gave them once, and DAD would hold them back
        (tentative, unusable) for a second or more."""
        addr = ipaddress.ip_address(ip)
        family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
        body = struct.pack("=BBBBI", family, prefixlen, 0, 0, index)
        if addr.version == 4:
            body += attr(IFA_LOCAL, addr.packed) + attr(IFA_ADDRESS, addr.packed)
        else:
            body += attr(IFA_ADDRESS, addr.packed) + attr(IFA_FLAGS, u32(IFA_F_NODAD))
        try:
            self.request(
                f"adding {ip}/{prefixlen}", RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body
            )
        except KernelError as exc:
            if exc.details.get("errno") != errno.EEXIST:
                raise

    def add_default_route(self, gateway: str, oif: int) -> None:
        """Add the default route via ``gateway`` (either family); already there is success."""
        self.add_route("::/0" if ":" in gateway else "0.0.0.0/0", gateway, oif)

    def add_route(self, dst: str, gateway: str, oif: int) -> None:
        """Add a route to prefix ``dst`` via ``gateway``; already there is success."""
        net = ipaddress.ip_network(dst)
        family = socket.AF_INET if net.version == 4 else socket.AF_INET6
        body = struct.pack(
            "=BBBBBBBBI",
            family,
            net.prefixlen,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_STATIC,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
            0,
        )
        if net.prefixlen:
            body += attr(RTA_DST, net.network_address.packed)
        body += attr(RTA_GATEWAY, ipaddress.ip_address(gateway).packed) + attr(RTA_OIF, u32(oif))
        try:
            self.request(
                f"adding the route to {dst} via {gateway}",
                RTM_NEWROUTE,
                NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                body,
            )
        except KernelError as exc:
            if exc.details.get("errno") != errno.EEXIST:
                raise

    def configure_inside(
        self,
        ifname: str,
        ip: str,
        prefixlen: int,
        gateway: str | None,
        ip6: str = "",
        prefixlen6: int = 0,
        gateway6: str | None = None,
        autoconf: bool = False,
    ) -> None:
        """Inside a compartment: loopback up, the vNIC addressed (IPv4, IPv6 or both) and
        up, default routes. No IPv6 link-local address: on-link neighbours are found from
        the global addresses, and a vNIC without one sends no router solicitations or
        address detection to every port of its switch. ``autoconf``: it keeps its
        link-local address and takes its IPv6 address from router advertisements."""
        self.set_up("lo")
        info = self.link(ifname)
        if info is None:
            raise KernelError(f"{ifname} is missing inside the compartment")
        if ip:
            self.add_address(info["index"], ip, prefixlen)
        if not autoconf:
            self.without_ipv6_linklocal(ifname)
        if ip6:
            self.add_address(info["index"], ip6, prefixlen6)
        self.set_up(ifname)
        if gateway:
            self.add_default_route(gateway, info["index"])
        if gateway6:
            self.add_default_route(gateway6, info["index"])
