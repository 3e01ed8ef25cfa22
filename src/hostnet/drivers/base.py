"""The driver contract: validate options, then idempotent ensure/remove steps.

The service calls ``normalize_options`` before anything changes, then
``ensure_network`` / ``attach`` to realize intent, and ``detach`` /
``remove_network`` to undo it. Every step may run again on something that is
already (or no longer) there: that is how reconcile repairs the kernel.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from hostnet.errors import InvalidRequest
from hostnet.model import SHIM_PREFIX, Container, Endpoint, Network, PortMapping

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
    #: the network shares the host's own subnet (external switches): no host-overlap check
    on_host_subnet: ClassVar[bool] = False

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
    def detach(self, net: Network, ep: Endpoint, c: Container, cut_link: bool = True) -> None:
        """Remove the endpoint's vNIC and mappings; gone already is success."""

    @abstractmethod
    def add_ports(self, ep: Endpoint, added: list[PortMapping]) -> None: ...

    @abstractmethod
    def remove_ports(self, ep: Endpoint, removed: list[PortMapping]) -> None: ...

    @abstractmethod
    def endpoint_present(self, net: Network, ep: Endpoint) -> bool: ...

    @abstractmethod
    def switch_view(self, net: Network) -> dict[str, Any]: ...
