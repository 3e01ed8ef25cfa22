"""A small etcd v3 client over etcd's JSON gateway (HTTP/1.1): range, put, delete, txn,
leases and watch. No gRPC stack; keys and values are base64 in the JSON, as etcd expects.

Every call tries the configured members in turn and fails within ``timeout`` seconds per
member with ``StoreUnavailable``: a caller never hangs on a dead cluster.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hostnet.errors import HostnetError


class StoreUnavailable(HostnetError):
    kind = "unavailable"
    default_remedy = "check that etcd is running and reachable (hostnetd --store etcd://...)"


def b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def unb64(s: str) -> str:
    return base64.b64decode(s).decode()


def prefix_end(prefix: str) -> str:
    """The range_end that makes a range cover every key starting with ``prefix``."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return b64(bytes(raw))


@dataclass(frozen=True)
class KV:
    key: str
    value: str
    mod_revision: int
    create_revision: int


def _kv(d: dict[str, Any]) -> KV:
    return KV(
        unb64(d["key"]),
        unb64(d.get("value", "")),
        int(d.get("mod_revision", 0)),
        int(d.get("create_revision", 0)),
    )


WATCH_DEAD_S = 8  # a watch on a path that drops every packet ends after about this long


def _notice_silent_cuts(sock: socket.socket) -> None:
    """A watch is quiet when nothing changes: TCP keepalive probes tell quiet from cut (a
    path that drops packets, with no reset). Probes from 4 s of silence, every 2 s; two
    unanswered, or data unacknowledged for WATCH_DEAD_S, and the read fails."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 4)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 2)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 2)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, WATCH_DEAD_S * 1000)


# txn building blocks (etcd's JSON field names)
def cmp_absent(key: str) -> dict[str, Any]:
    return {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}


def cmp_mod(key: str, rev: int) -> dict[str, Any]:
    return {"key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(rev)}


def cmp_value(key: str, value: str) -> dict[str, Any]:
    return {"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(value)}


def op_put(key: str, value: str, lease: int = 0) -> dict[str, Any]:
    req: dict[str, Any] = {"key": b64(key), "value": b64(value)}
    if lease:
        req["lease"] = str(lease)
    return {"request_put": req}


def op_delete(key: str, prefix: bool = False) -> dict[str, Any]:
    req = {"key": b64(key)}
    if prefix:
        req["range_end"] = prefix_end(key)
    return {"request_delete_range": req}


class Etcd:
    def __init__(
        self,
        endpoints: list[str],
        timeout: float = 1.0,
        ssl_context: Any = None,
        socket_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.members = [urlsplit(e if "://" in e else f"http://{e}") for e in endpoints]
        self.timeout = timeout
        self.ssl = ssl_context
        self.socket_factory = socket_factory  # e.g. sockets opened in another netns
        # idle keep-alive connections per member: concurrent calls each take their own, so
        # one slow round trip holds up no other caller
        self._idle: dict[int, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()  # guards _idle, _preferred, failures: never a round trip
        self._preferred = 0
        #: calls that failed, by kind: unavailable (no member answered), refused (etcd
        #: said no), watch (a watch ended; it is re-listed and made again)
        self.failures: dict[str, int] = {}

    def _failed(self, kind: str) -> None:
        with self._lock:
            self.failures[kind] = self.failures.get(kind, 0) + 1

    def _connect(self, i: int, timeout: float | None) -> http.client.HTTPConnection:
        u = self.members[i]
        host, port = u.hostname or "127.0.0.1", u.port or 2379
        conn: http.client.HTTPConnection
        if u.scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self.ssl)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        if self.socket_factory is not None:
            factory = self.socket_factory

            def connect() -> None:
                with factory():
                    conn.sock = socket.create_connection((host, port), timeout)
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if isinstance(conn, http.client.HTTPSConnection):
                    conn.sock = conn._context.wrap_socket(conn.sock, server_hostname=host)  # type: ignore[attr-defined]

            conn.connect = connect  # type: ignore[method-assign]
        return conn

    def _take(self, i: int) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to member ``i``, and whether it is a reused (idle) one."""
        with self._lock:
            idle = self._idle.get(i)
            if idle:
                return idle.pop(), True
        return self._connect(i, self.timeout), False

    def _round_trip(self, i: int, path: str, data: bytes) -> tuple[int, bytes]:
        """One POST to member ``i``. A reused connection the member closed while it was idle
        is replaced by a new one once; any other failure raises."""
        conn, reused = self._take(i)
        while True:
            try:
                conn.request("POST", path, data, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                if not reused:
                    raise
                conn, reused = self._connect(i, self.timeout), False
                continue
            except BaseException:
                conn.close()
                raise
            self._give_back(i, conn)
            return resp.status, raw

    def _give_back(self, i: int, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.setdefault(i, []).append(conn)

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to the first member that answers; raise StoreUnavailable if none does.
        Safe from many threads at once: each call has a connection of its own."""
        data = json.dumps(body).encode()
        errors = []
        n = len(self.members)
        first = self._preferred
        for k in range(n):
            i = (first + k) % n
            try:
                status, raw = self._round_trip(i, path, data)
            except (OSError, http.client.HTTPException) as exc:
                self._drop_idle(i)  # the member went away: its other connections too
                errors.append(f"{self.members[i].netloc}: {exc or type(exc).__name__}")
                continue
            out: dict[str, Any] = json.loads(raw or b"{}")
            if status != 200:
                msg = out.get("error") or out.get("message") or raw[:200].decode()
                if status in (503, 504) or "leader" in str(msg):
                    errors.append(f"{self.members[i].netloc}: {msg}")
                    continue
                self._failed("refused")
                raise HostnetError(f"etcd refused {path}: {msg}")
            self._preferred = i
            return out
        self._failed("unavailable")
        raise StoreUnavailable(f"cluster store unavailable ({'; '.join(errors)})")

    def _drop_idle(self, i: int) -> None:
        with self._lock:
            idle = self._idle.pop(i, [])
        for conn in idle:
            conn.close()

    # -- key-value ----------------------------------------------------------
    def get(self, key: str) -> KV | None:
        kvs = self.call("/v3/kv/range", {"key": b64(key)}).get("kvs") or []
        return _kv(kvs[0]) if kvs else None

    def get_prefix(self, prefix: str) -> tuple[list[KV], int]:
        """Every key under ``prefix`` and the store revision they were read at."""
        out = self.call("/v3/kv/range", {"key": b64(prefix), "range_end": prefix_end(prefix)})
        return [_kv(d) for d in out.get("kvs") or []], int(out["header"]["revision"])

    def put(self, key: str, value: str, lease: int = 0) -> None:
        self.call("/v3/kv/put", op_put(key, value, lease)["request_put"])

    def delete(self, key: str, prefix: bool = False) -> None:
        self.call("/v3/kv/deleterange", op_delete(key, prefix)["request_delete_range"])

    def txn(
        self,
        compare: list[dict[str, Any]],
        success: list[dict[str, Any]],
        failure: list[dict[str, Any]] | None = None,
    ) -> bool:
        out = self.call(
            "/v3/kv/txn", {"compare": compare, "success": success, "failure": failure or []}
        )
        return bool(out.get("succeeded", False))

    # -- leases ---------------------------------------------------------------
    def grant(self, ttl: int) -> int:
        return int(self.call("/v3/lease/grant", {"TTL": str(ttl)})["ID"])

    def revoke(self, lease: int) -> None:
        self.call("/v3/lease/revoke", {"ID": str(lease)})

    def keepalive(self, lease: int) -> bool:
        out = self.call("/v3/lease/keepalive", {"ID": str(lease)})
        return int((out.get("result") or {}).get("TTL", 0)) > 0

    # -- watch ------------------------------------------------------------------
    def watch(self, prefix: str, start_revision: int) -> Iterator[list[tuple[str, KV]]]:
        """Batches of (PUT|DELETE, kv) under ``prefix`` from ``start_revision`` on; ends
        (StoreUnavailable) when the member goes away; the caller re-lists and re-watches."""
        body = json.dumps(
            {
                "create_request": {
                    "key": b64(prefix),
                    "range_end": prefix_end(prefix),
                    "start_revision": str(start_revision),
                }
            }
        ).encode()
        errors = []
        for i in range(len(self.members)):
            conn = self._connect((self._preferred + i) % len(self.members), self.timeout)
            try:
                conn.request("POST", "/v3/watch", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                if resp.status != 200:
                    raise http.client.HTTPException(f"status {resp.status}")
                if conn.sock is not None:
                    conn.sock.settimeout(None)  # events come when they come
                    _notice_silent_cuts(conn.sock)
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                errors.append(str(exc))
                continue
            try:
                for line in resp:
                    if not line.strip():
                        continue
                    result = json.loads(line).get("result") or {}
                    if result.get("canceled") or result.get("compact_revision"):
                        self._failed("watch")
                        raise StoreUnavailable("watch cancelled (compacted); re-list")
                    events = [
                        (ev.get("type", "PUT"), _kv(ev["kv"])) for ev in result.get("events") or []
                    ]
                    if events:
                        yield events
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self._failed("watch")
                raise StoreUnavailable(f"watch ended: {exc}") from None
            finally:
                with contextlib.suppress(OSError):
                    conn.close()
            self._failed("watch")
            raise StoreUnavailable("watch ended: the member closed the stream")
        self._failed("watch")
        raise StoreUnavailable(f"cluster store unavailable for watch ({'; '.join(errors)})")
