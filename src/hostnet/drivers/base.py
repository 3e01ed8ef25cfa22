"""The driver contract: validate options, then idempotent ensure/remove steps.

The service calls ``normalize_options`` before anything changes, then
``ensure_network`` / ``attach`` to realize intent, and ``detach`` /
``remove_network`` to undo it. Every step may run again on something that is
already (or no longer) there: that is how reconcile repairs the kernel.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from hostnet.core import acl, firewall
from hostnet.drivers import vnic
from hostnet.errors import InvalidRequest
from hostnet.kernel import datapath as dp
from hostnet.kernel.handles import Kernel, NftHandle
from hostnet.model import SHIM_PREFIX, Container, Endpoint, Network, PortMapping

if TYPE_CHECKING:
    from hostnet.core.loopback import LoopbackProxy
    from hostnet.drivers.registry import DriverContext, DriverInfo

BOOL_WORDS = {
    "true": "true",
    "1": "true",
    "yes": "true",
    "false": "false",
    "0": "false",
    "no": "false",
}


class Driver(ABC):
    """One network mode (nat, transparent, l2bridge, l2tunnel, overlay)."""

    name: ClassVar[str]
    #: canonical option name -> (kind, help); kind is "bool", "int" or "str"
    options: ClassVar[dict[str, tuple[str, str]]]
    #: other spellings accepted for an option (Docker's names) -> canonical name
    aliases: ClassVar[dict[str, str]] = {}
    # What the driver does: the orchestrator asks these, never a driver's name.
    #: the network shares the host's own subnet (external switches): no host-overlap check
    on_host_subnet: ClassVar[bool] = False
    #: without --subnet, endpoints take addresses from the physical network's DHCP server
    dhcp_without_subnet: ClassVar[bool] = False
    #: maps host ports to endpoints (-p) and takes OutBoundNAT endpoint policies
    publishes_ports: ClassVar[bool] = False
    #: its endpoints may give a compartment its default route (an overlay reaches only itself)
    routes_out: ClassVar[bool] = True
    #: endpoints allow everything after their ACL rules (not the Windows inbound default)
    acl_allow_all: ClassVar[bool] = False
    #: the kernel name prefix of its switches
    switch_prefix: ClassVar[str] = "hn-"
    #: endpoints' frames leave with the host adapter's MAC (the rewrite table follows them)
    rewrites_macs: ClassVar[bool] = False
    #: attach and detach change only the kernel objects of the one endpoint (its vNIC, its
    #: elements in tables that exist): the service lets other requests run meanwhile
    realizes_unlocked: ClassVar[bool] = False

    nft: NftHandle  # every driver's handle on the host's nftables
    #: its entry in the registry (names, scope, needs): set when registered (registry.py)
    info: DriverInfo | None = None
    #: this host's underlay address, for drivers whose networks span hosts (the daemon
    #: sets it on the cluster-scoped driver)
    vtep: str = ""
    #: relays [::1]:PORT to IPv6 endpoints, for drivers that publish ports (the daemon
    #: hands it out; none in unit tests)
    loopback: LoopbackProxy | None = None

    def __init__(self, kernel: Kernel, owner: str) -> None:
        self.kernel, self.owner = kernel, owner  # owner: the ifalias marking our links
        self.host, self.rt, self.nft = kernel.host, kernel.rt, kernel.nft

    @classmethod
    def build(cls, ctx: DriverContext) -> Driver:
        """The driver, made with what the registry hands every driver."""
        return cls(ctx.kernel, ctx.owner)

    @property
    def cluster_scoped(self) -> bool:
        """Networks and addresses are claimed cluster-wide (the cluster store, VNIs): its
        registry entry's scope is global."""
        return self.info is not None and self.info.cluster_scoped

    def check_network(self, net: Network, others: list[Network]) -> None:  # noqa: B027
        """Driver checks that need the kernel, before anything changes (default: none)."""

    def normalize_options(self, given: dict[str, str]) -> dict[str, str]:
        """Check every option is known for this driver and well-formed; return canonical names."""
        out: dict[str, str] = {}
        for raw, value in given.items():
            key = self.aliases.get(raw, raw)
            if key.startswith(SHIM_PREFIX):
                key = key[len(SHIM_PREFIX) :]
            if key not in self.options:
                known = ", ".join(sorted(self.options))
                raise InvalidRequest(
                    f"option {raw!r} is not supported by the {self.name} driver",
                    f"remove it; the {self.name} driver supports: {known}",
                )
            kind, _ = self.options[key]
            out[key] = self._check_value(raw, kind, str(value))
        return out

    @staticmethod
    def _check_value(raw: str, kind: str, value: str) -> str:
        if kind == "bool":
            word = BOOL_WORDS.get(value.lower())
            if word is None:
                raise InvalidRequest(
                    f"option {raw} must be true or false, not {value!r}",
                    f"give {raw}=true or {raw}=false",
                )
            return word
        if kind == "int":
            if not value.isdigit():
                raise InvalidRequest(
                    f"option {raw} must be a whole number, not {value!r}", f"give e.g. {raw}=1500"
                )
            return value
        return value

    @abstractmethod
    def ensure_network(self, net: Network) -> None: ...

    @abstractmethod
    def remove_network(self, net: Network) -> None: ...

    @abstractmethod
    def attach(self, net: Network, ep: Endpoint, c: Container, default_route: bool) -> None:
        """Create the endpoint's vNIC in the compartment; idempotent (reconcile re-runs it)."""

    @abstractmethod
    def detach(self, net: Network, ep: Endpoint, c: Container) -> None:
        """Undo what the driver set up for the endpoint besides the vNIC itself (mappings,
        ACLs, a DHCP client); the orchestrator cuts the vNIC. Gone already is success."""

    @abstractmethod
    def add_ports(self, ep: Endpoint, added: list[PortMapping]) -> None: ...

    @abstractmethod
    def remove_ports(self, ep: Endpoint, removed: list[PortMapping]) -> None: ...

    @abstractmethod
    def endpoint_present(self, net: Network, ep: Endpoint) -> bool: ...

    @abstractmethod
    def switch_view(self, net: Network) -> dict[str, Any]: ...

    def datapath(self, net: Network, eps: list[Endpoint]) -> list[dp.Piece]:
        """The pieces that serve the network's switch (``hostnet switch extension``): the
        bridge, the default ACL table, each vNIC's; drivers add their own."""
        out = [
            dp.link(net.switch, "bridge", "the switch (a Linux bridge)"),
            dp.nft_chain("bridge", acl.DEFAULT_TABLE, "into", "ACL: the inbound default of vNICs"),
        ]
        for ep in eps:
            out += vnic.pieces(net, ep, self.acl_allow_all)
        return out

    # Port ACLs, the same for every driver: on the host end of the endpoint's vNIC.
    def has_own_acl(self, ep: Endpoint, net: Network) -> bool:
        return vnic.has_own_acl(ep, net, self.acl_allow_all)

    def apply_acl(self, ep: Endpoint, net: Network, also: str = "") -> None:
        vnic.apply_acl(self.nft, ep, net, self.acl_allow_all, also)

    def remove_acl(self, ep: Endpoint, net: Network | None = None) -> None:
        """The endpoint's own chains (all it may have when ``net`` is None: a rule set
        replaced by the default)."""
        vnic.remove_acl(self.nft, ep, net, self.acl_allow_all)

    # The host-wide tables (core/firewall.py): the driver's own, and its networks' pieces.
    def firewall_tables(self) -> list[firewall.Table]:
        """The host-wide tables this driver renders: every driver's vNICs share the default
        ACL table."""
        return [vnic.ACL_TABLE]

    def firewall_pieces(self, table: str, net: Network, eps: list[Endpoint]) -> list[Any]:
        """What network ``net`` (of this driver) contributes to host-wide ``table``: by
        default, its vNICs with ACL rules of their own leave the default ACL table."""
        if table == firewall.ACL:
            return [e.host_ifname for e in eps if self.has_own_acl(e, net)]
        return []
