"""The driver registry: each network driver's names on every face, its scope and its needs.

One entry per driver says what it is called by hostnet (``-d NAME``, the CLI, the store),
by Docker (the plugin sockets it is served under), by HNS (the network ``Type``) and by
the seed's cmdlets (``New-ContainerNetwork -Mode``); whether its networks are this host's
or the cluster's; and what it needs (a host adapter, the cluster store). Every name table
of the faces is read off ``BUILTIN``. The module is pure data (no pydantic, no kernel):
the CLI reads it at start. ``Drivers`` is the service's set of built drivers, looked up
by name or by capability; tests build one with fake drivers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from hostnet.core.loopback import LoopbackProxy
    from hostnet.drivers.base import Driver
    from hostnet.kernel.dhcp import DhcpClients
    from hostnet.kernel.handles import Kernel

Scope = Literal["local", "global"]
#: what a driver may need: a host adapter to bind to, the cluster store (and this host's
#: underlay address), DHCP clients for endpoints of the physical network
NEEDS = frozenset({"adapter", "cluster-store", "dhcp"})


@dataclass(frozen=True)
class DriverContext:
    """What a driver is built with: the kernel handles, the owner mark of this daemon's
    kernel objects, and the DHCP clients (for drivers that need them)."""

    kernel: Kernel
    owner: str
    dhcp: DhcpClients | None = None


Factory = Callable[[DriverContext], "Driver"]


def lazy(path: str) -> Factory:
    """A factory for the driver class at ``module:Class``, imported when first built (the
    CLI reads the registry without importing any driver)."""
    module, cls = path.split(":")

    def build(ctx: DriverContext) -> Driver:
        kind: type[Driver] = getattr(importlib.import_module(module), cls)
        return kind.build(ctx)

    return build


@dataclass(frozen=True)
class DriverInfo:
    """A driver as the registry declares it."""

    name: str  # hostnet's name: -d NAME, Network.driver in the store, the REST API
    factory: Factory = field(compare=False, repr=False)
    docker: tuple[str, ...] = ()  # the Docker plugin names it is served under
    hns_type: str = ""  # the HNS network Type (HNSNetwork.Type, HostComputeNetwork.Type)
    modes: tuple[str, ...] = ()  # the cmdlets' -Mode words (matched without case)
    scope: Scope = "local"  # global: its networks and addresses are claimed cluster-wide
    needs: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = self.needs - NEEDS
        if unknown:
            raise ValueError(f"driver {self.name}: unknown needs {sorted(unknown)}")

    @property
    def cluster_scoped(self) -> bool:
        return self.scope == "global"


BUILTIN: tuple[DriverInfo, ...] = (
    DriverInfo("nat", lazy("hostnet.drivers.nat:NatDriver"), ("nat",), "NAT", ("NAT",), "local"),
    DriverInfo(
        "transparent",
        lazy("hostnet.drivers.external:TransparentDriver"),
        ("transparent",),
        "Transparent",
        ("Transparent",),
        needs=frozenset({"adapter", "dhcp"}),
    ),
    DriverInfo(
        "l2bridge",
        lazy("hostnet.drivers.external:L2BridgeDriver"),
        ("l2bridge",),
        "L2Bridge",
        ("L2Bridge",),
        needs=frozenset({"adapter", "dhcp"}),
    ),
    DriverInfo(
        "l2tunnel",
        lazy("hostnet.drivers.external:L2TunnelDriver"),
        ("l2tunnel",),
        "L2Tunnel",
        ("L2Tunnel",),
        needs=frozenset({"adapter", "dhcp"}),
    ),
    # Docker on Linux has a built-in "overlay": hostnet's is served as hostnet-overlay
    DriverInfo(
        "overlay",
        lazy("hostnet.drivers.overlay:OverlayDriver"),
        ("hostnet-overlay",),
        "Overlay",
        ("Overlay",),
        "global",
        frozenset({"cluster-store"}),
    ),
)


# -- the faces' name tables, read off the entries ----------------------------------------
def docker_names(infos: Iterable[DriverInfo] = BUILTIN) -> dict[str, str]:
    """Docker plugin name -> hostnet driver name, in registry order."""
    return {d: i.name for i in infos for d in i.docker}


def docker_name(driver: str, infos: Iterable[DriverInfo] = BUILTIN) -> str:
    """The Docker plugin name a hostnet driver is served under (its own name if none)."""
    return next((i.docker[0] for i in infos if i.name == driver and i.docker), driver)


def from_docker(plugin: str, infos: Iterable[DriverInfo] = BUILTIN) -> str:
    """The hostnet driver a Docker plugin name stands for (the name itself if none)."""
    return docker_names(infos).get(plugin, plugin)


def modes(infos: Iterable[DriverInfo] = BUILTIN) -> dict[str, str]:
    """The cmdlets' -Mode word, lower case -> hostnet driver name."""
    return {m.lower(): i.name for i in infos for m in i.modes}


def hns_types(infos: Iterable[DriverInfo] = BUILTIN) -> dict[str, str]:
    """HNS network Type -> hostnet driver name."""
    return {i.hns_type: i.name for i in infos if i.hns_type}


def global_names(infos: Iterable[DriverInfo] = BUILTIN) -> tuple[str, ...]:
    """Drivers whose networks are the cluster's (kept in the cluster store's shared keys)."""
    return tuple(i.name for i in infos if i.cluster_scoped)


# -- the built drivers ---------------------------------------------------------------------
class Drivers(Mapping[str, "Driver"]):
    """The service's drivers by hostnet name, each with its registry entry; the service
    finds drivers by what they do (a capability, the cluster scope), never by name."""

    def __init__(self, pairs: Iterable[tuple[DriverInfo, Driver]]) -> None:
        self._by_name: dict[str, Driver] = {}
        self._info: dict[str, DriverInfo] = {}
        for info, drv in pairs:
            if drv.name != info.name:
                raise ValueError(f"driver {drv.name!r} registered as {info.name!r}")
            if info.name in self._by_name:
                raise ValueError(f"driver {info.name!r} registered twice")
            drv.info = info
            self._by_name[info.name], self._info[info.name] = drv, info

    @classmethod
    def build(cls, ctx: DriverContext, infos: Iterable[DriverInfo] = BUILTIN) -> Drivers:
        return cls((i, i.factory(ctx)) for i in infos)

    def __getitem__(self, name: str) -> Driver:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def info(self, name: str) -> DriverInfo:
        return self._info[name]

    def infos(self) -> list[DriverInfo]:
        return list(self._info.values())

    def with_capability(self, capability: str) -> list[Driver]:
        """The drivers whose capability flag (``publishes_ports``, ``rewrites_macs``...) is on."""
        return [d for d in self._by_name.values() if getattr(d, capability)]

    def cluster_driver(self) -> Driver | None:
        """The driver of cluster-wide networks (global scope), if one is registered."""
        return next((d for d in self._by_name.values() if d.cluster_scoped), None)

    def relay_loopback(self, proxy: LoopbackProxy) -> None:
        """Hand the daemon's [::1] relay to the drivers that publish ports."""
        for d in self.with_capability("publishes_ports"):
            d.loopback = proxy

    def loopbacks(self) -> list[LoopbackProxy]:
        """The relays handed out (stopped by the daemon at its end), each once."""
        out: list[LoopbackProxy] = []
        for d in self._by_name.values():
            if d.loopback is not None and all(p is not d.loopback for p in out):
                out.append(d.loopback)
        return out
