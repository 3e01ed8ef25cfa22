"""Forwarding what is not a local name: to the compartment's upstreams, from the daemon's
own namespace, on the resolver's loop.

- Every forwarded query goes out on a socket of its own: a fresh random source port and a
  fresh random ID each, so an off-path attacker racing forged answers must guess both.
  An answer counts only from the server asked, from port 53, with our ID and our question.
  Upstreams may be IPv4 or IPv6 (a link-local one with its zone, ``fe80::1%eth0``); a
  query whose servers are of both families gets one socket per family, opened when the
  first server of that family is asked, each with its own random port.
- A query that came over TCP goes upstream over TCP (an answer too large for UDP is
  fetched whole).
- An upstream that let a query time out (or could not be sent to at all: no route, no
  socket of its family) is skipped for ``DEAD_FOR_S``; while every upstream of a
  compartment is, queries get SERVFAIL at once (one is still sent, as a probe: an answer
  brings the server back). A dead upstream costs one timeout, not one
  per query, retry and search-list entry.
- Answers are cached within their TTL (negative ones as RFC 2308 says: the SOA's TTL
  capped by its MINIMUM; without an SOA, not at all), at most ``CACHE_MAX`` of them.
- Each answer's round trip (sent to that server, its answer back) goes into ``latency``,
  per server, for the metrics endpoint: plain counts written on this loop only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hostnet.core.stats import DNS_BUCKETS, Histograms
from hostnet.dns import wire
from hostnet.kernel import fds

log = logging.getLogger("hostnet")
FORWARD_DEADLINE_S = 1.8  # SERVFAIL before a stub's usual 2 s timeout
DEAD_FOR_S = 10.0
CACHE_MAX = 10000
CACHE_TTL_MAX = 3600  # seconds, for any answer
UPSTREAMS_MAX = 1024  # server strings whose addressing is remembered
PORT = 53
Reply = Callable[[bytes], None]
Source = tuple[bytes, int]  # an address as sent from: packed, and its scope (interface)


@dataclass(frozen=True)
class Upstream:
    """How to reach one upstream server, and what its answers' source must be."""

    family: int
    sockaddr: tuple[Any, ...]  # for sendto/connect: (ip, 53), or (ip, 53, 0, scope index)
    source: Source


def upstream(server: str) -> Upstream | None:
    """How to reach ``server`` (an IPv4 or IPv6 address; link-local with its zone, as a
    name or an index) on port 53; None when it is no address, or its zone names no
    interface here. Numeric only: a host name here would be a lookup blocking the loop."""
    try:
        addr = ipaddress.ip_address(server)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if isinstance(addr, ipaddress.IPv4Address):
        return Upstream(socket.AF_INET, (str(addr), PORT), (addr.packed, 0))
    scope = 0
    if addr.is_link_local:  # the only ones whose zone the kernel uses (and needs)
        scope = _ifindex(addr.scope_id or "")
        if not scope:
            return None
    # the zone goes as the index in the 4-tuple, the text bare: asyncio's sock_connect
    # would hand a zoned text to getaddrinfo in a thread; this way nothing is looked up
    bare = str(ipaddress.IPv6Address(addr.packed))
    return Upstream(socket.AF_INET6, (bare, PORT, 0, scope), (addr.packed, scope))


def _ifindex(zone: str) -> int:
    if zone.isdigit():
        return int(zone)
    try:
        return socket.if_nametoindex(zone) if zone else 0
    except OSError:
        return 0


def source_of(family: int, addr: Any) -> Source | None:
    """Where a datagram came from, comparable with ``Upstream.source``; None unless from
    port 53. Packed, not text: the kernel's text of an address need not be ours."""
    if addr[1] != PORT:
        return None
    try:
        if family == socket.AF_INET6:  # (host%zone, port, flowinfo, scope index)
            return socket.inet_pton(family, addr[0].partition("%")[0]), addr[3]
        return socket.inet_pton(family, addr[0]), 0
    except OSError:
        return None


@dataclass
class _Query:
    q: wire.Question
    query: bytes  # as sent upstream (our id)
    reply: Reply
    servers: tuple[str, ...]
    deadline: float
    key: tuple[tuple[str, ...], bytes]
    socks: dict[int, socket.socket] = field(default_factory=dict)  # family -> its socket
    asked: tuple[str, ...] = ()
    # sent to (UDP) -> the server, and when (loop time)
    sources: dict[Source, tuple[str, float]] = field(default_factory=dict)
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
        self.upstreams: dict[str, Upstream | None] = {}  # server -> how to reach it
        self.cache: OrderedDict[tuple[tuple[str, ...], bytes], _Cached] = OrderedDict()
        self.sent = 0  # queries sent upstream (UDP and TCP), for tests and metrics
        self.latency = Histograms(DNS_BUCKETS)  # server -> answers' round trips (seconds)

    # -- the way in ----------------------------------------------------------------
    def forward(
        self, q: wire.Question, data: bytes, reply: Reply, servers: tuple[str, ...], tcp: bool
    ) -> None:
        key = (servers, data[2:])
        hit = self._cached(key, q)
        if hit is not None:
            reply(hit)
            return
        # no address (a name, a zone naming no interface): never asked, never a probe
        usable = [s for s in servers if self._upstream(s) is not None]
        live = [s for s in usable if self.dead.get(s, 0.0) <= self.loop.time()]
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
            fq.reply, fq.servers = (lambda _: None), tuple(usable[:1])
        if tcp:
            self.loop.create_task(self._over_tcp(fq))
        else:
            self._over_udp(fq)

    # -- addressing -----------------------------------------------------------------
    def _upstream(self, server: str) -> Upstream | None:
        """``upstream(server)``, worked out once per server (not per query)."""
        try:
            return self.upstreams[server]
        except KeyError:
            pass
        if len(self.upstreams) >= UPSTREAMS_MAX:  # lease after lease of new servers
            self.upstreams.clear()
        up = self.upstreams[server] = upstream(server)
        if up is None:
            log.warning("dns: upstream %r is no address to forward to: skipped", server)
        return up

    def _down(self, server: str) -> None:
        """Skip ``server`` for a while; work out its address again after that (a zone's
        interface may have been made anew, with another index)."""
        self.dead[server] = self.loop.time() + DEAD_FOR_S
        self.upstreams.pop(server, None)

    # -- UDP ---------------------------------------------------------------------------
    def _over_udp(self, fq: _Query) -> None:
        self._try_next(fq)

    def _try_next(self, fq: _Query) -> None:
        if fq.done:
            return
        if fq.asked:  # the last one asked let its share of the time pass
            self._down(fq.asked[-1])
        while True:
            left = fq.deadline - self.loop.time()
            if len(fq.asked) >= len(fq.servers) or left <= 0.01:
                self._finish(fq, None)
                return
            server = fq.servers[len(fq.asked)]
            fq.asked += (server,)
            if self._send_udp(fq, server):
                break
            # not sent (no address, no socket of its family, no route): the next one now
        wait = left / (len(fq.servers) - len(fq.asked) + 1)
        fq.timer = self.loop.call_later(wait, self._try_next, fq)

    def _send_udp(self, fq: _Query, server: str) -> bool:
        up = self._upstream(server)
        if up is None:
            return False
        sock = fq.socks.get(up.family) or self._open_udp(fq, up.family)
        if sock is None:
            self._down(server)
            return False
        try:
            sock.sendto(fq.query, up.sockaddr)
        except OSError as exc:
            log.debug("dns: cannot send to %s: %s", server, exc)
            self._down(server)
            return False
        fq.sources[up.source] = (server, self.loop.time())
        self.sent += 1
        return True

    def _open_udp(self, fq: _Query, family: int) -> socket.socket | None:
        """The query's own socket of ``family`` (unbound: the kernel picks a random port
        at the first send)."""
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:  # e.g. no IPv6 in this kernel
            log.warning("dns: no socket to forward on: %s", exc)
            return None
        try:
            if family == socket.AF_INET6:  # else IPv4 datagrams to its port come in too
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setblocking(False)
            sock = fds.park_socket(sock)  # above the select() range: libnftables uses it
        except OSError as exc:
            sock.close()
            log.warning("dns: no socket to forward on: %s", exc)
            return None
        fq.socks[family] = sock
        self.loop.add_reader(sock.fileno(), self._on_udp, fq, sock)
        return sock

    def _on_udp(self, fq: _Query, sock: socket.socket) -> None:
        while not fq.done:
            try:
                data, addr = sock.recvfrom(65535)
            except OSError:
                return
            source = source_of(sock.family, addr)
            sent = fq.sources.get(source) if source is not None else None
            if sent is not None and self._ours(fq, data):
                self.latency.observe(sent[0], self.loop.time() - sent[1])
                self._finish(fq, data, sent[0])

    # -- TCP ---------------------------------------------------------------------------
    async def _over_tcp(self, fq: _Query) -> None:
        for server in fq.servers:
            left = fq.deadline - self.loop.time()
            if left <= 0.01:
                break
            up = self._upstream(server)
            if up is None:
                continue
            fq.asked += (server,)
            sent = self.loop.time()
            try:
                data = await asyncio.wait_for(self._tcp_exchange(up, fq.query), left)
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                self._down(server)
                continue
            if self._ours(fq, data):
                self.latency.observe(server, self.loop.time() - sent)
                self._finish(fq, data, server)
                return
        self._finish(fq, None)

    async def _tcp_exchange(self, up: Upstream, query: bytes) -> bytes:
        # our own socket of the server's family, connected to the numeric address: no
        # getaddrinfo on the way (asyncio would run one in a thread for a zone)
        sock = socket.socket(up.family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await self.loop.sock_connect(sock, up.sockaddr)
            reader, writer = await asyncio.open_connection(sock=sock)
        except BaseException:  # a timeout cancels us too: never leave the socket open
            sock.close()
            raise
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
        for sock in fq.socks.values():
            self.loop.remove_reader(sock.fileno())
            sock.close()
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
