"""Mapped ports on the host's IPv6 loopback address ([::1]:PORT), relayed in user space.

IPv4 loopback mappings are NAT like every other (route_localnet lets 127.0.0.1 sources
leave on a bridge). IPv6 has no such setting: the kernel never routes ::1 off the host,
so a DNAT of [::1]:8080 to a container goes nowhere. Docker relays those through its
userland proxy; hostnet does the same for its IPv6 endpoints' mappings on every address
(or on ::1), and only for them: every other path stays in the kernel.

One listener per mapping, in the daemon's namespace, on a thread and event loop of its
own; the service opens and closes them from its threads (``sync`` makes the set exactly
what intent says, at start and reconcile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hostnet.core.loops import call_in

log = logging.getLogger("hostnet")

LOOPBACK = "::1"
UDP_IDLE_S = 60.0  # a UDP client's relay socket goes after this long without traffic


@dataclass(frozen=True)
class Relay:
    """[::1]:port/protocol -> target:target_port."""

    protocol: str
    port: int
    target: str
    target_port: int

    @property
    def key(self) -> tuple[str, int]:
        return (self.protocol, self.port)


class LoopbackProxy:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._open: dict[tuple[str, int], tuple[Relay, Any]] = {}
        self._thread = threading.Thread(target=self._run, name="hostnet-loopback", daemon=True)
        self._thread.start()

    # -- called from the service's threads ----------------------------------
    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return call_in(self.loop, fn, *args)

    def open(self, relays: Iterable[Relay]) -> None:
        for r in relays:
            self._call(self._start, r)

    def close(self, relays: Iterable[Relay]) -> None:
        for r in relays:
            self._call(self._stop, r.key)

    def sync(self, wanted: Iterable[Relay]) -> None:
        """Exactly ``wanted`` from now on (a changed target is reopened)."""
        want = {r.key: r for r in wanted}
        for key, (have, _) in list(self._open.items()):
            if want.get(key) != have:
                self._call(self._stop, key)
        for r in want.values():
            if r.key not in self._open:
                self._call(self._start, r)

    def relays(self) -> list[Relay]:
        return [r for r, _ in self._open.values()]

    def stop(self) -> None:
        for key in list(self._open):
            self._call(self._stop, key)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

    # -- the loop's thread ----------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _start(self, r: Relay) -> None:
        if r.key in self._open:
            return
        kind = socket.SOCK_STREAM if r.protocol == "tcp" else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_INET6, kind)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((LOOPBACK, r.port))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            log.warning("[::1]:%d/%s is not relayed: %s", r.port, r.protocol, exc.strerror)
            return
        handle: asyncio.Task[None] | _UdpRelay
        if r.protocol == "tcp":
            sock.listen(128)
            handle = self.loop.create_task(self._serve_tcp(sock, r))
        else:
            handle = _UdpRelay(self.loop, sock, r)
        self._open[r.key] = (r, handle)

    def _stop(self, key: tuple[str, int]) -> None:
        entry = self._open.pop(key, None)
        if entry is not None:
            entry[1].cancel()

    async def _serve_tcp(self, sock: socket.socket, r: Relay) -> None:
        server = await asyncio.start_server(lambda rd, wr: self._tcp_client(rd, wr, r), sock=sock)
        try:
            await server.serve_forever()
        finally:
            server.close()

    async def _tcp_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, r: Relay
    ) -> None:
        try:
            up_r, up_w = await asyncio.wait_for(
                asyncio.open_connection(r.target, r.target_port), timeout=10
            )
        except (OSError, TimeoutError):
            writer.close()
            return
        try:
            await asyncio.gather(_pump(reader, up_w), _pump(up_r, writer))
        finally:
            writer.close()
            up_w.close()


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()  # a half close reaches the other side
    except OSError:
        pass


class _UdpRelay:
    """Datagrams from each local client go out on a socket of their own (so replies find
    their way back); a client quiet for UDP_IDLE_S loses it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, r: Relay) -> None:
        self.loop, self.sock, self.r = loop, sock, r
        self.clients: dict[Any, tuple[socket.socket, float]] = {}
        loop.add_reader(sock.fileno(), self._from_client)
        self._sweeper = loop.call_later(UDP_IDLE_S, self._sweep)

    def _from_client(self) -> None:
        try:
            data, addr = self.sock.recvfrom(65536)
        except OSError:
            return
        entry = self.clients.get(addr)
        if entry is None:
            family = socket.AF_INET6 if ":" in self.r.target else socket.AF_INET
            up = socket.socket(family, socket.SOCK_DGRAM)
            up.setblocking(False)
            up.connect((self.r.target, self.r.target_port))
            self.loop.add_reader(up.fileno(), self._from_target, addr, up)
        else:
            up = entry[0]
        self.clients[addr] = (up, self.loop.time())
        with contextlib.suppress(OSError):  # the target is gone: the client retries
            up.send(data)

    def _from_target(self, addr: Any, up: socket.socket) -> None:
        try:
            data = up.recv(65536)
            self.sock.sendto(data, addr)
        except OSError:
            return
        self.clients[addr] = (up, self.loop.time())

    def _sweep(self) -> None:
        now = self.loop.time()
        for addr, (up, seen) in list(self.clients.items()):
            if now - seen > UDP_IDLE_S:
                self._drop(addr, up)
        self._sweeper = self.loop.call_later(UDP_IDLE_S, self._sweep)

    def _drop(self, addr: Any, up: socket.socket) -> None:
        self.loop.remove_reader(up.fileno())
        up.close()
        self.clients.pop(addr, None)

    def cancel(self) -> None:
        self._sweeper.cancel()
        for addr, (up, _) in list(self.clients.items()):
            self._drop(addr, up)
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
