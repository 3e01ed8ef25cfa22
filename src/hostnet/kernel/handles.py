"""The kernel handles the service and its drivers work through, bundled.

The daemon builds the real one (``Kernel.real``); unit tests hand the service a fake with
the same methods, so orchestration (attach, detach, hot add, rollback order) runs without
root. Everything that reaches into a compartment goes through here too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from hostnet.errors import KernelError
from hostnet.kernel import netns
from hostnet.kernel.links import Netlink, write_sysctl
from hostnet.kernel.nft import Nft
from hostnet.kernel.reaper import Reaper
from hostnet.kernel.rtnl import Rtnl


@dataclass
class Kernel:
    host: Netlink  # pyroute2 in the daemon's namespace: bridges, adapters, dumps
    rt: Rtnl  # the hot-path rtnetlink sockets in the daemon's namespace (one per thread)
    nft: Nft  # the daemon namespace's nftables
    reaper: Reaper  # deletes cut vNICs in the background (the daemon starts it)

    @classmethod
    def real(cls) -> Kernel:
        rt = Rtnl(per_thread=True)
        return cls(Netlink(), rt, Nft(), Reaper(rt))

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
