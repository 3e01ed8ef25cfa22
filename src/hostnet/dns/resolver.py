"""The embedded resolver: one asyncio loop (its own thread) serving every compartment.

Each compartment gets a UDP and a TCP socket on 127.0.0.11 *inside its namespace*
(opened by the service thread while it is in there; port 53 is rewritten to theirs by a
stateless nft rule), so only that compartment can reach it: never an open resolver. Local names are answered
from the Directory (A, AAAA, and PTR in in-addr.arpa and ip6.arpa), the answer cached
per compartment until the directory changes; anything else is forwarded from the daemon's own namespace to the
compartment's upstreams (its network's dnsservers, else the host's; ``forward.py``), and
a question no upstream answers in time gets SERVFAIL, never silence. Answers too large
for the client's UDP size (512 bytes, or its EDNS size) are cut with TC set; its retry
over TCP gets them whole. Responses are dropped, other opcodes get NOTIMP, EDNS versions
above 0 BADVERS; only class IN questions with plain labels match local names.
Every answer is counted by source and rcode in ``answers`` (plain ints on this loop's
thread, read by a metrics scrape): one list index per query, no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hostnet.core.loops import call_in
from hostnet.dns import wire
from hostnet.dns.forward import Forwarder
from hostnet.dns.names import LISTEN_ADDR, Directory, read_resolv_conf
from hostnet.kernel import compartment_dns

log = logging.getLogger("hostnet")
CACHE_MAX = 4096
Reply = Callable[[bytes], None]
# ``Resolver.answers`` index: the source's base plus the answer's rcode (its header's)
ANSWERED_LOCALLY = 0  # by the resolver itself: local names, errors, REFUSED out of scope
FORWARDED = 16  # a question for the upstreams: their answer, or SERVFAIL when none came


@dataclass
class _Listener:
    cid: str
    udp: socket.socket
    tcp: socket.socket
    server: asyncio.AbstractServer | None = None
    cache: dict[bytes, bytes] = field(default_factory=dict)
    gen: int = -1  # the directory generation the cache was filled from
    conns: set[asyncio.Transport] = field(default_factory=set)


class _TcpConn(asyncio.Protocol):
    def __init__(self, resolver: Resolver, lst: _Listener) -> None:
        self.resolver, self.lst = resolver, lst
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.lst.conns.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.lst.conns.discard(self.transport)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 2:
            (n,) = struct.unpack_from("!H", self.buf)
            if len(self.buf) < 2 + n:
                return
            msg, self.buf = self.buf[2 : 2 + n], self.buf[2 + n :]
            self.resolver.handle(self.lst, msg, self.send, tcp=True)

    def send(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(struct.pack("!H", len(reply)) + reply)


class Resolver:
    def __init__(self, host_resolv_conf: str = "/etc/resolv.conf") -> None:
        self.host_resolv_conf = host_resolv_conf
        self._host_servers: tuple[str, ...] = ()
        self._host_stat: tuple[int, int, int] | None = None  # of the file they were read from
        self.directory = Directory()
        self.listeners: dict[str, _Listener] = {}
        self.loop = asyncio.new_event_loop()
        self.forwarder = Forwarder(self.loop)
        # answers sent, by ANSWERED_LOCALLY/FORWARDED + rcode; only the loop's thread
        # writes, a metrics scrape copies (no lock on the hot path)
        self.answers = [0] * 32
        self._thread = threading.Thread(target=self._run, name="hostnet-dns", daemon=True)
        self._thread.start()
        compartment_dns.start()  # its helper thread now, in the daemon's namespace

    # -- called from other threads ----------------------------------------
    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return call_in(self.loop, fn, *args)

    def publish(self, directory: Directory) -> None:
        """Answer from ``directory`` from now on; the service then changes it in place."""
        self._call(self._publish, directory)

    def serving(self) -> set[str]:
        return set(self.listeners)

    def listen(self, cid: str, netns_path: str) -> None:
        """Serve a compartment (idempotent). Call from the thread that may setns."""
        if cid in self.listeners:
            return
        udp, tcp = compartment_dns.open_sockets(netns_path, LISTEN_ADDR)
        self._call(self._add, cid, udp, tcp)

    def close(self, cid: str) -> bool:
        """Stop serving a compartment; its sockets are closed on return (they pin the netns).
        True if it was served."""
        if cid not in self.listeners:
            return False
        self._call(self._remove, cid)
        return True

    def stop(self) -> None:
        for cid in list(self.listeners):
            self.close(cid)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

    # -- the loop's thread --------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _publish(self, directory: Directory) -> None:
        self.directory = directory
        for lst in self.listeners.values():
            lst.cache.clear()

    def _add(self, cid: str, udp: socket.socket, tcp: socket.socket) -> None:
        if cid in self.listeners:  # two requests served it at once: keep the first
            udp.close()
            tcp.close()
            return
        lst = _Listener(cid, udp, tcp)
        self.listeners[cid] = lst
        self.loop.add_reader(udp.fileno(), self._on_udp, lst)
        self.loop.create_task(self._serve_tcp(lst))

    async def _serve_tcp(self, lst: _Listener) -> None:
        if self.listeners.get(lst.cid) is lst:
            lst.server = await self.loop.create_server(lambda: _TcpConn(self, lst), sock=lst.tcp)

    def _remove(self, cid: str) -> None:
        lst = self.listeners.pop(cid)
        self.loop.remove_reader(lst.udp.fileno())
        lst.udp.close()
        if lst.server is not None:
            lst.server.close()
        for t in list(lst.conns):
            t.abort()
        lst.tcp.close()

    def _on_udp(self, lst: _Listener) -> None:
        recv, send, cache, answers = lst.udp.recvfrom, lst.udp.sendto, lst.cache, self.answers
        if lst.gen != self.directory.gen:  # names changed since: drop the local answers
            cache.clear()
            lst.gen = self.directory.gen
        while True:
            try:
                data, addr = recv(4096)
            except OSError:  # drained (EAGAIN) or closed
                return
            hit = cache.get(data[2:])
            if hit is not None:  # a local answer without its id: the rcode is in hit[1]
                answers[hit[1] & 0x0F] += 1
                with contextlib.suppress(OSError):
                    send(data[:2] + hit, addr)
                continue
            self.handle(lst, data, functools.partial(self._send_udp, lst.udp, addr))

    def host_servers(self) -> tuple[str, ...]:
        """The host's resolvers, read again only when the file changed (a stat per query,
        not a read and an address parse of every line)."""
        try:
            st = os.stat(self.host_resolv_conf)
        except OSError:
            self._host_stat, self._host_servers = None, ()
            return ()
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._host_stat:
            self._host_servers = tuple(read_resolv_conf(self.host_resolv_conf))
            # file times are kernel ticks: a file changed within the last second may change
            # again under the same stamp, so it is not trusted until it has settled
            settled = time.time_ns() - st.st_mtime_ns > 1_000_000_000
            self._host_stat = stamp if settled else None
        return self._host_servers

    @staticmethod
    def _send_udp(udp: socket.socket, addr: Any, reply: bytes) -> None:
        with contextlib.suppress(OSError):
            udp.sendto(reply, addr)

    def handle(self, lst: _Listener, data: bytes, reply: Reply, tcp: bool = False) -> None:
        """One message from a compartment: a local answer (cut to the client's UDP size,
        TC set, when it does not fit), or forwarded; never silence for a query."""
        try:
            q = wire.parse_query(data)
        except wire.NotQuery:
            return  # a response sent to a resolver: dropped
        except wire.Unsupported as exc:
            self.answers[wire.rcode_of(exc.reply)] += 1
            reply(exc.reply)
            return
        except wire.BadQuery:
            if len(data) >= 12:  # answer FORMERR with the id, nothing else
                self.answers[wire.FORMERR] += 1
                reply(data[:2] + struct.pack("!HHHHH", wire.QR | wire.FORMERR, 0, 0, 0, 0))
            return
        limit = 65535 if tcp else q.udp_size
        local = self.directory.answer(lst.cid, q)
        if local is not None:
            out = wire.truncated(local, q, limit)
            if not tcp:
                if len(lst.cache) >= CACHE_MAX:
                    lst.cache.clear()
                lst.cache[data[2:]] = out[2:]
            self.answers[out[3] & 0x0F] += 1
            reply(out)
            return
        scope = self.directory.scopes.get(lst.cid)
        servers = (scope.upstreams if scope else ()) or self.host_servers()
        if not servers:
            self.answers[FORWARDED + wire.SERVFAIL] += 1
            reply(wire.response(q, wire.SERVFAIL, authoritative=False))
            return
        answers = self.answers

        def counted(r: bytes) -> None:  # the forwarder answers once per query
            answers[FORWARDED + (r[3] & 0x0F)] += 1
            reply(r if tcp else wire.truncated(r, q, limit))

        self.forwarder.forward(q, data, counted, servers, tcp)
