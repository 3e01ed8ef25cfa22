"""How ``hostnet.hcn`` reaches hostnetd: the /hcn calls, hcsshim's ``hnsCall`` for /hns, and
the errors hcsshim's ``hcn`` package returns (``hcnerrors.go``), as Python exceptions.

The socket is ``HOSTNET_SOCKET`` (else hostnetd's default), or the one given to
``HcnClient``; ``set_default_client`` replaces the client the module-level calls use.
"""

from __future__ import annotations

import http.client
import json
import re
import uuid
from typing import Any
from urllib.parse import quote

from hostnet.client import Client, UnixConnection
from hostnet.errors import HostnetError, InvalidRequest, NotFound, Unavailable

ERROR_NOT_FOUND = 0x490  # Win32 ERROR_NOT_FOUND (1168), what IsElementNotFoundError tests
HCN_E_PORT_ALREADY_EXISTS = 0x803B0013
HCN_E_NOTIMPL = 0x80004001
HEX_ID = re.compile(r"[0-9a-fA-F]{12,64}")


class NotFoundError(NotFound):
    """Base of hcsshim's client-side not-found errors (``IsNotFoundError`` is true for all)."""


class NetworkNotFoundError(NotFoundError):
    """``Network name "<n>" not found`` / ``Network ID "<id>" not found``."""

    def __init__(self, network_name: str = "", network_id: str = "") -> None:
        self.network_name, self.network_id = network_name, network_id
        what = f'name "{network_name}"' if network_name else f'ID "{network_id}"'
        super().__init__(f"Network {what} not found", "list them with hcn.list_networks()")

    def __str__(self) -> str:
        return self.message


class EndpointNotFoundError(NotFoundError):
    """``Endpoint name "<n>" not found`` / ``Endpoint ID "<id>" not found``."""

    def __init__(self, endpoint_name: str = "", endpoint_id: str = "") -> None:
        self.endpoint_name, self.endpoint_id = endpoint_name, endpoint_id
        what = f'name "{endpoint_name}"' if endpoint_name else f'ID "{endpoint_id}"'
        super().__init__(f"Endpoint {what} not found", "list them with hcn.list_endpoints()")

    def __str__(self) -> str:
        return self.message


class NamespaceNotFoundError(NotFoundError):
    """``Namespace ID "<id>" not found``."""

    def __init__(self, namespace_id: str) -> None:
        self.namespace_id = namespace_id
        super().__init__(
            f'Namespace ID "{namespace_id}" not found', "list them with hcn.list_namespaces()"
        )

    def __str__(self) -> str:
        return self.message


class RouteNotFoundError(NotFoundError):
    """``SDN Route "<id>" not found``."""

    def __init__(self, route_id: str) -> None:
        self.route_id = route_id
        super().__init__(f'SDN Route "{route_id}" not found', "list them with hcn.list_routes()")

    def __str__(self) -> str:
        return self.message


class HnsError(HostnetError):
    """A /hns (v1) call answered ``Success: false``: ``hns failed with error : <Error>``."""

    default_remedy = ""  # hostnetd's Error text already says what to do

    def __init__(self, error: str, status: int) -> None:
        super().__init__(f"HNS failed with error : {error}")
        self.error, self.status = error, status

    def __str__(self) -> str:
        return self.message


class FeatureNotSupportedError(HostnetError):
    """``platform does not support feature <name>`` (the *_supported() checks)."""

    status = 501
    kind = "invalid"

    def __init__(self, title: str) -> None:
        super().__init__(
            f"platform does not support feature {title}",
            "hostnetd's GET /hns/globals/version says which features it implements",
        )

    def __str__(self) -> str:
        return self.message


def is_not_found_error(err: BaseException) -> bool:
    """hcsshim's IsNotFoundError: a client-side not-found, or the daemon's 404."""
    return isinstance(err, NotFound)


def is_element_not_found_error(err: BaseException) -> bool:
    """hcsshim's IsElementNotFoundError: the daemon said the object does not exist (0x490)."""
    return isinstance(err, NotFound) and not isinstance(err, NotFoundError)


def error_code(err: BaseException) -> int:
    """The Win32/HRESULT code an HcnError would carry for ``err`` (0 when none applies)."""
    if isinstance(err, NotFound):
        return ERROR_NOT_FOUND
    if isinstance(err, FeatureNotSupportedError):
        return HCN_E_NOTIMPL
    if isinstance(err, HostnetError) and err.kind == "conflict" and "port" in err.message:
        return HCN_E_PORT_ALREADY_EXISTS
    return 0


class HcnClient:
    """The calls of hcsshim's ``hcn`` (Enumerate, Create, Modify, Delete) on hostnetd's socket."""

    def __init__(self, socket_path: str | None = None, timeout: float = 120.0) -> None:
        self.api = Client(socket_path, timeout)
        self._features: Any = None  # GetCachedSupportedFeatures: once per client

    @property
    def socket_path(self) -> str:
        return self.api.socket_path

    # -- HCN (v2) --------------------------------------------------------------------------
    def enumerate(self, kind: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        suffix = "?query=" + quote(json.dumps(query), safe="") if query else ""
        found: list[dict[str, Any]] = self.api.get(f"/hcn/{kind}{suffix}")
        return found

    def create(self, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
        made: dict[str, Any] = self.api.post(f"/hcn/{kind}", settings)
        return made

    def modify(self, kind: str, oid: str, request: dict[str, Any]) -> dict[str, Any]:
        done: dict[str, Any] = self.api.post(f"/hcn/{kind}/{quote(oid, safe='')}/modify", request)
        return done

    def delete(self, kind: str, oid: str) -> None:
        self.api.delete(f"/hcn/{kind}/{quote(oid, safe='')}")

    # -- HNS (v1): hcsshim's hnsCall -------------------------------------------------------
    def hns_call(self, method: str, path: str, body: Any = None) -> Any:
        """``/hns`` + path; returns ``Output`` (None when empty), raises HnsError on failure."""
        data = json.dumps(body).encode() if body is not None else b""
        conn = UnixConnection(self.api.socket_path, self.api.timeout)
        try:
            conn.request(
                method, "/hns" + path, body=data, headers={"Content-Type": "application/json"}
            )
            resp = conn.getresponse()
            raw, status = resp.read(), resp.status
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise Unavailable(
                f"cannot reach hostnetd at {self.api.socket_path}: {exc.strerror}",
                "start it, or point HOSTNET_SOCKET (or the socket argument) at its socket",
            ) from None
        except (http.client.HTTPException, OSError) as exc:
            raise Unavailable(f"hostnetd at {self.api.socket_path} failed: {exc}") from None
        finally:
            conn.close()
        try:
            answer = json.loads(raw)
        except json.JSONDecodeError:
            raise HostnetError(f"hostnetd answered {status} without JSON: {raw[:200]!r}") from None
        if not isinstance(answer, dict):
            raise HostnetError(f"hostnetd answered {status} with no HNS envelope: {raw[:200]!r}")
        if not answer.get("Success"):
            raise HnsError(str(answer.get("Error", "")), status)
        return answer.get("Output")


_default: HcnClient | None = None


def default_client() -> HcnClient:
    """The client module-level calls use (made on first use, from HOSTNET_SOCKET)."""
    global _default
    if _default is None:
        _default = HcnClient()
    return _default


def set_default_client(client: HcnClient | str | None) -> HcnClient:
    """Point the module-level calls at another client or socket path (None: HOSTNET_SOCKET)."""
    global _default
    _default = client if isinstance(client, HcnClient) else HcnClient(client)
    return _default


def pick(client: HcnClient | None) -> HcnClient:
    return client if client is not None else default_client()


def check_guid(value: str, what: str) -> None:
    """hcsshim parses an id as a GUID before the call: ``invalid network ID`` and so on.
    hostnet's objects made elsewhere keep their hex ids (Docker's 64 digits): those pass too."""
    try:
        uuid.UUID(value.strip("{}"))
    except ValueError:
        if not HEX_ID.fullmatch(value):
            raise InvalidRequest(
                f"invalid {what} ID", f"give the {what}'s ID (a GUID), not {value!r}"
            ) from None
