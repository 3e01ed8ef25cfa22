"""A fake of ``hostnet.kernel.handles.Kernel`` for orchestration tests without root.

It implements the kernel protocols (``Kernel``, ``HostLinks``, ``Links``, ``NftHandle``;
mypy checks it, see the end of the module). It keeps just enough state (links,
compartments, what nftables was told) to answer the service's questions, records every
change in ``calls`` in order, and raises a KernelError from any step named in ``fail``;
what it does not fake (VXLAN, teams, traffic control) raises NotImplementedError.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from hostnet.errors import KernelError

if TYPE_CHECKING:
    from hostnet.kernel.handles import HostLinks, Kernel, Links, NftHandle


class FakeKernel:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.links: dict[str, dict[str, Any]] = {}  # daemon namespace: name -> info
        self.spaces: dict[str, dict[str, dict[str, Any]]] = {}  # compartment -> its links
        self.nft_scripts: list[str] = []
        self.fail: set[str] = set()
        self.hooks: dict[str, Any] = {}  # step name -> what happens meanwhile (once)
        self._index = 10
        self.host, self.rt, self.nft = _Host(self), _Rtnl(self, None), _Nft(self)

    def step(self, *call: Any) -> None:
        self.calls.append(call)
        hook = self.hooks.pop(call[0], None)
        if hook is not None:  # another request, run while this step is under way
            hook()
        if call[0] in self.fail:
            raise KernelError(f"{call[0]} failed (injected)")

    def new_link(self, space: dict[str, dict[str, Any]], name: str, **info: Any) -> None:
        self._index += 1
        space[name] = {"index": self._index, "flags": 1, "master": 0, "mac": "", **info}

    # -- the Kernel interface ---------------------------------------------------
    def start(self) -> None:
        pass

    def create_compartment(self, name: str) -> None:
        self.step("create_compartment", name)
        self.spaces[name] = {}

    def remove_compartment(self, name: str) -> None:
        self.step("remove_compartment", name)
        self.spaces.pop(name, None)  # its vNICs go with it, the host ends too
        for link in [n for n, i in self.links.items() if i.get("peer_ns") == name]:
            del self.links[link]

    def cut_vnic(self, host: str, netns: str | None, ifname: str, aside: str) -> None:
        self.step("delete_link", host)  # the real one defers the deletion; the order is this
        self.links.pop(host, None)
        if netns in self.spaces:  # the peer goes with the pair
            self.spaces[netns].pop(ifname, None)

    def flush_cuts(self) -> None:
        pass

    def compartment_exists(self, name: str) -> bool:
        return name in self.spaces

    def compartments(self, prefix: str) -> list[str]:
        return sorted(n for n in self.spaces if n.startswith(prefix))

    @contextlib.contextmanager
    def compartment_fd(self, name: str) -> Iterator[Any]:
        yield name  # create_veth is told the namespace by name

    def inside(self, name: str) -> _Rtnl:
        return _Rtnl(self, name)

    def netlink_inside(self, name: str) -> _Host:
        raise NotImplementedError("traffic control is not faked")

    def sysctl(self, key: str, value: str) -> None:
        self.calls.append(("sysctl", key, value))

    def ipv6_forwarding(self) -> None:
        self.calls.append(("sysctl", "net/ipv6/conf/all/forwarding", "1"))


class _Host:
    """pyroute2's side: bridges and addresses in the daemon's namespace."""

    ipr: Any = None  # no pyroute2 behind the fake

    def __init__(self, k: FakeKernel) -> None:
        self.k = k

    def __enter__(self) -> _Host:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def close(self) -> None:
        pass

    def index(self, name: str) -> int | None:
        info = self.k.links.get(name)
        return None if info is None else int(info["index"])

    def link_info(self, name: str) -> dict[str, Any] | None:
        info = self.k.links.get(name)
        return None if info is None else {"name": name, **info}

    def link_stats(self, name: str) -> dict[str, int] | None:
        if name not in self.k.links:
            return None
        keys = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_dropped", "tx_dropped")
        return dict.fromkeys(keys, 0)

    def ip_config(self) -> list[dict[str, Any]]:
        raise NotImplementedError("ipconfig is not faked")

    def ensure_vxlan(
        self, name: str, vni: int, local: str, mtu: int, master: int, alias: str
    ) -> int:
        raise NotImplementedError("VXLAN is not faked")

    def tunnel_entry(self, dev: str, mac: str, ip: str, vtep: str, present: bool) -> None:
        raise NotImplementedError("VXLAN is not faked")

    def tunnel_entries(self, dev: str) -> set[tuple[str, str, str]]:
        return set()

    def autoconf_ipv6(self, name: str) -> tuple[str, int, str] | None:
        raise NotImplementedError("router advertisements are not faked")

    def default_route_indexes(self) -> list[int]:
        return []

    def ensure_team_switch(
        self, bridge: str, port: str, uplink: str, members: tuple[str, ...], owner: str
    ) -> tuple[str, int]:
        raise NotImplementedError("adapter teams are not faked")

    def ensure_bridge(self, name: str, mtu: int, alias: str, mac: str) -> int:
        self.k.step("ensure_bridge", name)
        if name not in self.k.links:
            self.k.new_link(self.k.links, name, kind="bridge")
        return int(self.k.links[name]["index"])

    def ensure_addr(self, index: int, ip: str, prefixlen: int, nodad: bool = False) -> None:
        self.k.step("ensure_addr", ip)

    def prefixes(self, skip_prefix: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return []

    def delete_link(self, name: str) -> None:
        self.k.step("host_delete_link", name)
        self.k.links.pop(name, None)

    def links(self) -> list[dict[str, Any]]:
        return [
            {"name": n, "alias": "", "kind": i.get("kind"), **i} for n, i in self.k.links.items()
        ]


class _Rtnl:
    """The hand-packed rtnetlink socket: in the daemon's namespace or a compartment's."""

    def __init__(self, k: FakeKernel, ns: str | None) -> None:
        self.k, self.ns = k, ns

    def __enter__(self) -> _Rtnl:
        if self.ns is not None and self.ns not in self.k.spaces:
            raise KernelError(f"namespace {self.ns!r} does not exist")
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _space(self) -> dict[str, dict[str, Any]]:
        return self.k.links if self.ns is None else self.k.spaces[self.ns]

    def link(self, name: str) -> dict[str, Any] | None:
        return self._space().get(name)

    def create_veth(
        self, host: str, peer: str, peer_ns: Any, mac: str, master: int, mtu: int
    ) -> None:
        self.k.step("create_veth", host, peer, peer_ns)
        self.k.new_link(self.k.links, host, kind="veth", master=master, peer_ns=peer_ns)
        self.k.new_link(self.k.spaces[peer_ns] if peer_ns else self.k.links, peer, kind="veth")

    def set_bridge_port(self, name: str, alias: str, hairpin: bool, isolated: bool) -> None:
        self.k.step("set_bridge_port", name)

    def set_master_up(self, name: str, master: int) -> None:
        self.k.step("set_master_up", name)

    def delete_link(self, name: str) -> None:
        self.k.step("delete_link", name)
        self.k.links.pop(name, None)

    def without_ipv6_linklocal(self, name: str) -> None:
        pass

    def set_up(self, name: str) -> None:
        pass

    def set_down(self, name: str) -> bool:
        self.k.step("set_down", name)
        return name in self._space()

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
        self.k.step(
            "configure_inside", self.ns, ifname, ip, gateway, *((ip6, gateway6) if ip6 else ())
        )

    def add_route(self, dst: str, gateway: str, oif: int) -> None:
        self.k.step("add_route", self.ns, dst, gateway)


class _Nft:
    def __init__(self, k: FakeKernel) -> None:
        self.k = k

    def run(self, script: str) -> None:
        self.k.step("nft", script.strip().splitlines()[0] if script.strip() else "")
        self.k.nft_scripts.append(script)

    def output(self, script: str) -> str:
        """``list tables``: every table a script added and none deleted since."""
        self.run(script)
        tables: list[str] = []
        for sc in self.k.nft_scripts:
            for line in sc.splitlines():
                words = line.split()
                if (words[:2] == ["add", "table"] or words[:1] == ["table"]) and len(words) >= 3:
                    t = " ".join(words[1:4] if words[0] == "add" else words[0:3]).rstrip(" {")
                    tables += [] if t in tables else [t]
                elif words[:2] == ["delete", "table"]:
                    t = "table " + " ".join(words[2:4])
                    tables = [x for x in tables if x != t]
        return "\n".join(tables)


if TYPE_CHECKING:  # the fake implements the protocols (mypy tests/unit/fake_kernel.py)
    _kernel: Kernel = FakeKernel()
    _host: HostLinks = _Host(FakeKernel())
    _rt: Links = _Rtnl(FakeKernel(), None)
    _nft: NftHandle = _Nft(FakeKernel())
