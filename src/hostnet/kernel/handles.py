"""The kernel handles the service and its drivers work through: protocols, and the real ones.

``Kernel`` is what the service takes: the daemon namespace's links (``HostLinks``,
pyroute2), its hot-path rtnetlink sockets (``Links``), its nftables (``NftHandle``),
compartments, and settings. The daemon builds the real one (``LinuxKernel.real``); unit
tests hand the service a fake that implements the same protocols (tests/unit/
fake_kernel.py), so orchestration (attach, detach, hot add, rollback order) runs without
root. Everything that reaches into a compartment goes through here too.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from hostnet.errors import KernelError
from hostnet.kernel import netns
from hostnet.kernel.links import Netlink, write_sysctl
from hostnet.kernel.nft import Nft
from hostnet.kernel.reaper import Reaper
from hostnet.kernel.rtnl import Rtnl

Prefix = ipaddress.IPv4Network | ipaddress.IPv6Network


class HostLinks(Protocol):
    """Typed netlink in one namespace (``links.Netlink``): bridges, adapters, tunnels."""

    #: pyroute2's IPRoute, for the few helpers that speak it directly (adapters, bpf, tc)
    ipr: Any

    def __enter__(self) -> HostLinks: ...
    def __exit__(self, *exc: object) -> None: ...
    def close(self) -> None: ...
    def ip_config(self) -> list[dict[str, Any]]: ...
    def index(self, name: str) -> int | None: ...
    def link_info(self, name: str) -> dict[str, Any] | None: ...
    def link_stats(self, name: str) -> dict[str, int] | None: ...
    def links(self) -> list[dict[str, Any]]: ...
    def ensure_bridge(self, name: str, mtu: int, alias: str, mac: str) -> int: ...
    def ensure_vxlan(
        self, name: str, vni: int, local: str, mtu: int, master: int, alias: str
    ) -> int: ...
    def tunnel_entry(self, dev: str, mac: str, ip: str, vtep: str, present: bool) -> None: ...
    def tunnel_entries(self, dev: str) -> set[tuple[str, str, str]]: ...
    def autoconf_ipv6(self, name: str) -> tuple[str, int, str] | None: ...
    def ensure_addr(self, idx: int, ip: str, prefixlen: int, nodad: bool = False) -> None: ...
    def default_route_indexes(self) -> list[int]: ...
    def ensure_team_switch(
        self, bridge: str, port: str, uplink: str, members: tuple[str, ...], owner: str
    ) -> tuple[str, int]: ...
    def delete_link(self, name: str) -> None: ...
    def prefixes(self, exclude_prefix: str) -> list[Prefix]: ...


class Links(Protocol):
    """The hot-path rtnetlink socket (``rtnl.Rtnl``): in the daemon's namespace or a
    compartment's (a context manager: closed after)."""

    def __enter__(self) -> Links: ...
    def __exit__(self, *exc: object) -> None: ...
    def link(self, name: str) -> dict[str, Any] | None: ...
    def create_veth(
        self, host: str, peer: str, peer_ns_fd: Any, peer_mac: str, master: int, mtu: int
    ) -> None: ...
    def set_bridge_port(self, name: str, alias: str, hairpin: bool, isolated: bool) -> None: ...
    def without_ipv6_linklocal(self, name: str) -> None: ...
    def set_master_up(self, name: str, master: int) -> None: ...
    def set_up(self, name: str) -> None: ...
    def set_down(self, name: str) -> bool: ...
    def delete_link(self, name: str) -> None: ...
    def add_route(self, dst: str, gateway: str, oif: int) -> None: ...
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
    ) -> None: ...


class NftHandle(Protocol):
    """nftables of the daemon's namespace (``nft.Nft``): one atomic script at a time."""

    def run(self, script: str) -> None: ...
    def output(self, script: str) -> str: ...


class Kernel(Protocol):
    """Every kernel handle the service and its drivers use."""

    @property
    def host(self) -> HostLinks: ...
    @property
    def rt(self) -> Links: ...
    @property
    def nft(self) -> NftHandle: ...

    def start(self) -> None:
        """Start background work (deleting cut vNICs), from the daemon's own namespace."""

    def create_compartment(self, name: str) -> None: ...
    def remove_compartment(self, name: str) -> None: ...
    def compartment_exists(self, name: str) -> bool: ...
    def compartments(self, prefix: str) -> list[str]: ...
    def compartment_fd(self, name: str) -> contextlib.AbstractContextManager[Any]:
        """What ``create_veth`` moves a peer into the compartment with (a descriptor)."""
        ...

    def inside(self, name: str) -> Links: ...
    def netlink_inside(self, name: str) -> HostLinks: ...
    def cut_vnic(self, host_ifname: str, netns: str | None, ifname: str, aside: str) -> None: ...
    def flush_cuts(self) -> None: ...
    def sysctl(self, key: str, value: str) -> None: ...
    def ipv6_forwarding(self) -> None: ...


@dataclass
class LinuxKernel:
    """The real handles (implements ``Kernel``)."""

    host: Netlink  # pyroute2 in the daemon's namespace: bridges, adapters, dumps
    rt: Rtnl  # the hot-path rtnetlink sockets in the daemon's namespace (one per thread)
    nft: Nft  # the daemon namespace's nftables
    reaper: Reaper  # deletes cut vNICs in the background (the daemon starts it)

    @classmethod
    def real(cls) -> LinuxKernel:
        rt = Rtnl(per_thread=True)
        return cls(Netlink(), rt, Nft(), Reaper(rt))

    def start(self) -> None:
        self.reaper.start()

    # -- compartments ---------------------------------------------------------
    def create_compartment(self, name: str) -> None:
        netns.create(name)

    def remove_compartment(self, name: str) -> None:
        netns.remove(name)

    def compartment_exists(self, name: str) -> bool:
        return netns.exists(name)

    def compartments(self, prefix: str) -> list[str]:
        return netns.list_names(prefix)

    @contextlib.contextmanager
    def compartment_fd(self, name: str) -> Iterator[int]:
        """A descriptor of the compartment (to move a vNIC into it), closed after."""
        fd = os.open(netns.path_of(name), os.O_RDONLY)
        try:
            yield fd
        finally:
            os.close(fd)

    def inside(self, name: str) -> Rtnl:
        """An rtnetlink socket inside a compartment (a context manager: closed after)."""
        return Rtnl(name)

    def netlink_inside(self, name: str) -> Netlink:
        """pyroute2 inside a compartment (traffic control)."""
        return Netlink(name)

    def cut_vnic(self, host_ifname: str, netns: str | None, ifname: str, aside: str) -> None:
        """Take a vNIC out of service now (its compartment's name ``ifname`` free again:
        the peer is renamed ``aside``); the pair is deleted in the background."""
        self.reaper.cut(host_ifname, netns, ifname, aside)

    def flush_cuts(self) -> None:
        """Wait for the vNICs cut so far to be deleted (they hold switch ports till then)."""
        self.reaper.flush()

    # -- settings -------------------------------------------------------------
    def sysctl(self, key: str, value: str) -> None:
        write_sysctl(key, value)

    def ipv6_forwarding(self) -> None:
        """Route IPv6 in this namespace. A router ignores router advertisements where
        accept_ra is 1, so links taking their address or default route from them (the
        host's uplink) are set to 2 first: they keep doing so while forwarding."""
        base = "/proc/sys/net/ipv6/conf"
        for link in sorted(os.listdir(base)):
            if link in ("all", "default"):
                continue
            try:
                with open(f"{base}/{link}/accept_ra") as fh:
                    if fh.read().strip() == "1":
                        write_sysctl(f"net/ipv6/conf/{link}/accept_ra", "2")
            except (OSError, KernelError):
                continue  # gone meanwhile, or IPv6 off on it
        write_sysctl("net/ipv6/conf/all/forwarding", "1")
