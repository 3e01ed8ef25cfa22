"""One error family: each error says what failed, why, and what to do.

The same error reaches the CLI (exit code), REST (status + JSON), and later the
Docker plugin (``{"Err": ...}``) and CNI (code + msg + details).
"""

from __future__ import annotations

from typing import Any


class HostnetError(Exception):
    """Base of every error a user can see."""

    status = 500
    cni_code = 100
    kind = "internal"
    default_remedy = "this is likely a hostnet bug; see the daemon log"

    def __init__(self, message: str, remedy: str = "", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy or self.default_remedy
        self.details = details

    def __str__(self) -> str:
        if self.remedy:
            return f"{self.message}. {self.remedy}"
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "remedy": self.remedy,
            "details": self.details,
            "cni_code": self.cni_code,
        }

    @classmethod
    def from_dict(cls, status: int, data: dict[str, Any]) -> HostnetError:
        kind = data.get("kind", "internal")
        klass = _BY_KIND.get(kind, HostnetError)
        err = klass(data.get("message", "unknown error"), data.get("remedy", ""))
        err.details = data.get("details") or {}
        if isinstance(data.get("cni_code"), int):
            err.cni_code = data["cni_code"]
        if klass is HostnetError:
            err.status = status
        return err


class InvalidRequest(HostnetError):
    """The request is malformed or names an unsupported option."""

    status = 400
    cni_code = 7
    kind = "invalid"
    default_remedy = "fix the request; see 'hostnet --help' and the README"


class NotFound(HostnetError):
    """A named network, container or endpoint does not exist."""

    status = 404
    cni_code = 3
    kind = "not_found"
    default_remedy = "check the name with the matching 'ls' command"


class Conflict(HostnetError):
    """The request collides with existing state (name, address, port, overlap, in use)."""

    status = 409
    cni_code = 100
    kind = "conflict"
    default_remedy = "change the request so it does not collide with what exists"


class KernelError(HostnetError):
    """The kernel refused a change."""

    status = 500
    cni_code = 5
    kind = "kernel"
    default_remedy = "run 'hostnet system reconcile'; if it persists, see the daemon log"


class Unavailable(HostnetError):
    """The daemon or a store it needs cannot be reached."""

    status = 503
    cni_code = 11
    kind = "unavailable"
    default_remedy = "start the daemon or the store it needs, then retry"


_BY_KIND: dict[str, type[HostnetError]] = {
    k.kind: k for k in (HostnetError, InvalidRequest, NotFound, Conflict, KernelError, Unavailable)
}
