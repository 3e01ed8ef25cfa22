"""Forwarding what is not a local name: to the compartment's upstreams, from the daemon's
own namespace, on the resolver's loop.

- Every forwarded query goes out on a socket of its own: a fresh random source port and a
  fresh random ID each, so an off-path attacker racing forged answers must guess both.
  An answer counts only from the server asked, from port 53, with our ID and our question.
- A query that came over TCP goes upstream over TCP (an answer too large for UDP is
  fetched whole).
- An upstream that let a query time out is skipped for ``DEAD_FOR_S``; while every
  upstream of a compartment is, queries get SERVFAIL at once (one is still sent, as a
  probe: an answer brings the server back). A dead upstream costs one timeout, not one
  per query, retry and search-list entry.
- Answers are cached within their TTL (negative ones as RFC 2308 says: the SOA's TTL
  capped by its MINIMUM; without an SOA, not at all), at most ``CACHE_MAX`` of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from hostnet.dns import wire
from hostnet.kernel import fds

log = logging.getLogger("hostnet")
FORWARD_DEADLINE_S = 1.8  # SERVFAIL before a stub's usual 2 s timeout
DEAD_FOR_S = 10.0
CACHE_MAX = 10000
CACHE_TTL_MAX = 3600  # seconds, for any answer
Reply = Callable[[bytes], None]


@dataclass
class _Query:
    q: wire.Question
    query: bytes  # as sent upstream (our id)
    reply: Reply
    servers: tuple[str, ...]
    deadline: float
    key: tuple[tuple[str, ...], bytes]
    sock: socket.socket | None = None
    asked: tuple[str, ...] = ()
    timer: asyncio.TimerHandle | None = None
    done: bool = False


@dataclass(frozen=True)
class _Cached:
    reply: bytes  # as the upstream sent it (its id)
    offsets: tuple[int, ...]
    stored: float
    ttl: int


class Forwarder:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.dead: dict[str, float] = {}  # server -> skipped until (loop time)
        self.cache: OrderedDict[tuple[tuple[str, ...], bytes], _Cached] = OrderedDict()
        self.sent = 0  # queries sent upstream (UDP and TCP), for tests and metrics

    # -- the way in ----------------------------------------------------------------
    def forward(
        self, q: wire.Question, data: bytes, reply: Reply, servers: tuple[str, ...], tcp: bool
    ) -> None:
        key = (servers, data[2:])
        hit = self._cached(key, q)
        if hit is not None:
            reply(hit)
            return
        live = [s for s in servers if self.dead.get(s, 0.0) <= self.loop.time()]
        qid = secrets.randbelow(65536)
        fq = _Query(
            q,
            wire.with_id(data, qid),
            reply,
            tuple(live),
            self.loop.time() + FORWARD_DEADLINE_S,
            key,
        )
        if not live:  # every upstream timed out lately: fail now, probe the first one
            reply(wire.response(q, wire.SERVFAIL, authoritative=False))
            fq.reply, fq.servers = (lambda _: None), servers[:1]
        if tcp:
            self.loop.create_task(self._over_tcp(fq))
        else:
            self._over_udp(fq)

    # -- UDP ---------------------------------------------------------------------------
    def _over_udp(self, fq: _Query) -> None:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock = fds.park_socket(sock)  # above the select() range: libnftables uses it
        except OSError as exc:
            log.warning("dns: no socket to forward on: %s", exc)
            self._finish(fq, None)
            return
        fq.sock = sock
        self.loop.add_reader(sock.fileno(), self._on_udp, fq)
        self._try_next(fq)

    def _try_next(self, fq: _Query) -> None:
        if fq.done:
            return
        if fq.asked:  # the last one asked let its share of the time pass
            self.dead[fq.asked[-1]] = self.loop.time() + DEAD_FOR_S
        left = fq.deadline - self.loop.time()
        if len(fq.asked) >= len(fq.servers) or left <= 0.01:
            self._finish(fq, None)
            return
        server = fq.servers[len(fq.asked)]
        fq.asked += (server,)
        if fq.sock is not None:
            with contextlib.suppress(OSError):
                fq.sock.sendto(fq.query, (server, 53))
                self.sent += 1
        wait = left / (len(fq.servers) - len(fq.asked) + 1)
        fq.timer = self.loop.call_later(wait, self._try_next, fq)

    def _on_udp(self, fq: _Query) -> None:
        assert fq.sock is not None
        while not fq.done:
            try:
                data, (ip, port) = fq.sock.recvfrom(65535)
            except OSError:
                return
            if port == 53 and ip in fq.asked and self._ours(fq, data):
                self._finish(fq, data, ip)

    # -- TCP ---------------------------------------------------------------------------
    async def _over_tcp(self, fq: _Query) -> None:
        for server in fq.servers:
            left = fq.deadline - self.loop.time()
            if left <= 0.01:
                break
            fq.asked += (server,)
            try:
                data = await asyncio.wait_for(self._tcp_exchange(server, fq.query), left)
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                self.dead[server] = self.loop.time() + DEAD_FOR_S
                continue
            if self._ours(fq, data):
                self._finish(fq, data, server)
                return
        self._finish(fq, None)

    async def _tcp_exchange(self, server: str, query: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(server, 53)
        try:
            self.sent += 1
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            (n,) = struct.unpack("!H", await reader.readexactly(2))
            return await reader.readexactly(n)
        finally:
            writer.close()

    # -- answers -------------------------------------------------------------------------
    @staticmethod
    def _ours(fq: _Query, data: bytes) -> bool:
        """Our id, a response, and our question (its case as we sent it)."""
        if len(data) < 12 or data[:2] != fq.query[:2] or not data[2] & 0x80:
            return False
        return data[12 : 12 + len(fq.q.wire)].lower() == fq.q.wire.lower()

    def _finish(self, fq: _Query, data: bytes | None, server: str = "") -> None:
        if fq.done:
            return
        fq.done = True
        if fq.timer is not None:
            fq.timer.cancel()
        if fq.sock is not None:
            self.loop.remove_reader(fq.sock.fileno())
            fq.sock.close()
        if data is None:
            fq.reply(wire.response(fq.q, wire.SERVFAIL, authoritative=False))
            return
        self.dead.pop(server, None)
        self._store(fq.key, data)
        fq.reply(wire.as_recursive(wire.with_id(data, fq.q.id)))

    # -- the cache -------------------------------------------------------------------
    def _store(self, key: tuple[tuple[str, ...], bytes], data: bytes) -> None:
        try:
            rec = wire.records(data)
        except (wire.BadQuery, struct.error):
            return  # not an answer we can read through: pass it on, do not keep it
        if not rec.cache_for:
            return
        self.cache[key] = _Cached(
            data, rec.ttl_offsets, self.loop.time(), min(rec.cache_for, CACHE_TTL_MAX)
        )
        self.cache.move_to_end(key)
        while len(self.cache) > CACHE_MAX:
            self.cache.popitem(last=False)

    def _cached(self, key: tuple[tuple[str, ...], bytes], q: wire.Question) -> bytes | None:
        c = self.cache.get(key)
        if c is None:
            return None
        left = int(c.ttl - (self.loop.time() - c.stored))
        if left <= 0:
            del self.cache[key]
            return None
        self.cache.move_to_end(key)
        return wire.as_recursive(wire.with_id(wire.with_ttls(c.reply, c.offsets, left), q.id))
