"""A small client for hostnetd's REST API over its unix socket (stdlib only: fast to start)."""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any
from urllib.parse import quote

from hostnet.errors import HostnetError, Unavailable

DEFAULT_SOCKET = "/run/hostnet/hostnet.sock"


class UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket: hostnetd's (the CLI's, the tests' and the bench's raw
    calls) and Docker's (hostnetd's Docker watch)."""

    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


class Client:
    """Calls hostnetd; raises the daemon's own error (what, why, what to do) on failure."""

    def __init__(self, socket_path: str | None = None, timeout: float = 120.0) -> None:
        self.socket_path = socket_path or os.environ.get("HOSTNET_SOCKET") or DEFAULT_SOCKET
        self.timeout = timeout
        self._conn: UnixConnection | None = None

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (1, 2):
            conn = self._conn or UnixConnection(self.socket_path, self.timeout)
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                self._conn = conn
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                self._conn = None
                raise Unavailable(
                    f"cannot reach hostnetd at {self.socket_path}: {exc.strerror}",
                    "start it (see the README), or point --socket / HOSTNET_SOCKET at its socket",
                ) from None
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._conn = None
                conn.close()
                if attempt == 2:
                    raise Unavailable(
                        f"hostnetd at {self.socket_path} closed the connection",
                        "check that the daemon is running and see its log",
                    ) from None
        payload = json.loads(raw) if raw else None
        if resp.status >= 400:
            err = (payload or {}).get("error") if isinstance(payload, dict) else None
            if isinstance(err, dict):
                raise HostnetError.from_dict(resp.status, err)
            raise HostnetError(f"hostnetd answered {resp.status}: {raw[:200]!r}")
        return payload

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, body if body is not None else {})

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def q(ref: str) -> str:
    return quote(ref, safe="")
