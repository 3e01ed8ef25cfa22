"""The resolver's protocol edges, checked with dnspython (an independent implementation)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset
import pytest

from hostnet.dns import forward, names, wire
from hostnet.model import Container, Endpoint, Network


def many() -> tuple[names.Directory, bytes]:
    net = Network(id="n1", name="n1", driver="nat", subnet="", gateway="")
    cs = {
        f"c{i}": Container(id=f"c{i}", name=f"c{i}", compartment_id=i, netns="x") for i in range(60)
    }
    eps = [
        Endpoint(
            id=f"e{i}", network_id="n1", container_id=f"c{i}", ip=f"172.20.0.{i + 2}",
            prefix_len=24, gateway="", mac="", ifname="eth0", host_ifname="", aliases=["many"],
        )
        for i in range(60)
    ]  # fmt: skip
    return names.build({"n1": net}, cs, eps), b""


def test_sixty_local_records_are_cut_to_512_bytes_without_edns_and_whole_with_room() -> None:
    d, _ = many()
    plain = dns.message.make_query("many", "A", use_edns=False)
    q = wire.parse_query(plain.to_wire())
    out = wire.truncated(d.answer("c0", q) or b"", q, q.udp_size)
    r = dns.message.from_wire(out)
    assert len(out) <= 512 and r.flags & dns.flags.TC and not r.answer and r.id == plain.id
    big = dns.message.make_query("many", "A", use_edns=0, payload=4096)
    q = wire.parse_query(big.to_wire())
    r = dns.message.from_wire(wire.truncated(d.answer("c0", q) or b"", q, q.udp_size))
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == 60
    q = wire.parse_query(plain.to_wire())
    r = dns.message.from_wire(wire.truncated(d.answer("c0", q) or b"", q, 65535))  # TCP
    assert len(r.answer[0]) == 60


def test_responses_are_refused_other_opcodes_notimp_new_edns_badvers() -> None:
    with pytest.raises(wire.NotQuery):
        wire.parse_query(dns.message.make_response(dns.message.make_query("a", "A")).to_wire())
    upd = dns.message.make_query("a", "SOA")
    upd.set_opcode(dns.opcode.UPDATE)
    with pytest.raises(wire.Unsupported) as e:
        wire.parse_query(upd.to_wire())
    r = dns.message.from_wire(e.value.reply)
    assert r.rcode() == dns.rcode.NOTIMP and r.id == upd.id and r.opcode() == dns.opcode.UPDATE
    v1 = dns.message.make_query("a", "A", use_edns=1)
    with pytest.raises(wire.Unsupported) as e:
        wire.parse_query(v1.to_wire())
    r = dns.message.from_wire(e.value.reply)
    assert r.rcode() == dns.rcode.BADVERS and r.edns == 0 and r.question == v1.question


def test_only_plain_class_in_names_are_local() -> None:
    d, _ = many()
    ch = wire.parse_query(dns.message.make_query("many", "A", rdclass="CH").to_wire())
    assert d.answer("c0", ch) is None  # forwarded: not a local name in class CH
    dotted = dns.message.make_query(dns.name.Name([b"many.x", b""]), "A")
    assert not wire.parse_query(dotted.to_wire()).plain


def test_cache_lifetimes_follow_ttls_and_rfc2308() -> None:
    q = dns.message.make_query("a.ext", "A")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("a.ext.", 60, "IN", "A", "192.0.2.1"))
    r.answer.append(dns.rrset.from_text("a.ext.", 30, "IN", "A", "192.0.2.2"))
    rec = wire.records(r.to_wire())
    assert rec.cache_for == 30 and len(rec.ttl_offsets) == 2
    aged = dns.message.from_wire(wire.with_ttls(r.to_wire(), rec.ttl_offsets, 10))
    assert len(aged.answer[0]) == 2 and aged.answer[0].ttl == 10
    nx = dns.message.make_response(q)
    nx.set_rcode(dns.rcode.NXDOMAIN)
    soa = "ns.ext. host.ext. 1 3600 600 86400 45"
    nx.authority.append(dns.rrset.from_text("ext.", 300, "IN", "SOA", soa))
    assert wire.records(nx.to_wire()).cache_for == 45  # min(SOA TTL, MINIMUM)
    bare = dns.message.make_response(q)
    bare.set_rcode(dns.rcode.NXDOMAIN)
    assert wire.records(bare.to_wire()).cache_for is None  # no SOA: not cached
    fail = dns.message.make_response(q)
    fail.set_rcode(dns.rcode.SERVFAIL)
    assert wire.records(fail.to_wire()).cache_for is None


# -- IPv6 -----------------------------------------------------------------------------
def dual() -> names.Directory:
    net = Network(id="n1", name="n1", driver="nat", subnet="", gateway="")
    c = Container(id="c0", name="c0", compartment_id=0, netns="x")
    e = Endpoint(
        id="e0", network_id="n1", container_id="c0", ip="172.20.0.2", ip6="fd00:1::2",
        prefix_len=24, prefix_len6=64, gateway="", mac="", ifname="eth0", host_ifname="",
    )  # fmt: skip
    return names.build({"n1": net}, {"c0": c}, [e])


def test_aaaa_and_ip6_arpa_ptr_records_read_back_with_dnspython() -> None:
    d = dual()
    q = dns.message.make_query("c0", "ANY", use_edns=0)
    r = dns.message.from_wire(d.answer("c0", wire.parse_query(q.to_wire())) or b"")
    assert r.find_rrset(r.answer, q.question[0].name, dns.rdataclass.IN, dns.rdatatype.AAAA)
    got = {rd.to_text() for rrset in r.answer for rd in rrset}
    assert got == {"172.20.0.2", "fd00:1::2"} and r.edns == 0
    assert (
        wire.reverse_name("fd00:1::2") + "." == dns.reversename.from_address("fd00:1::2").to_text()
    )
    q = dns.message.make_query(dns.reversename.from_address("fd00:1::2"), "PTR")
    r = dns.message.from_wire(d.answer("c0", wire.parse_query(q.to_wire())) or b"")
    assert [rd.target.to_text() for rd in r.answer[0]] == ["c0."]


def test_upstream_addresses_for_both_families() -> None:
    v6 = forward.upstream("2001:db8::1")
    assert v6 is not None and v6.family == socket.AF_INET6
    assert v6.sockaddr == ("2001:db8::1", 53, 0, 0)
    v4 = forward.upstream("::ffff:10.0.0.1")  # sent as IPv4, answered from IPv4
    assert v4 is not None and v4.family == socket.AF_INET and v4.sockaddr == ("10.0.0.1", 53)
    lo = socket.if_nametoindex("lo")
    ll = forward.upstream("fe80::1%lo")  # the zone goes as the interface index
    assert ll is not None and ll.sockaddr == ("fe80::1", 53, 0, lo)
    assert forward.upstream(f"fe80::1%{lo}") == ll
    for bad in ("fe80::1", "fe80::1%no-such-if0", "dns.example", ""):
        assert forward.upstream(bad) is None  # skipped, never looked up on the loop
    # answers must come from the server asked, from port 53, however the kernel writes it
    src6 = forward.source_of(socket.AF_INET6, ("2001:db8:0::1", 53, 0, 0))
    assert src6 == v6.source
    assert forward.source_of(socket.AF_INET6, ("2001:db8::1", 5353, 0, 0)) is None
    assert forward.source_of(socket.AF_INET6, ("fe80::1%lo", 53, 0, lo)) == ll.source
    assert forward.source_of(socket.AF_INET6, ("fe80::1", 53, 0, 0)) != ll.source
    assert forward.source_of(socket.AF_INET, ("10.0.0.1", 53)) == v4.source


class FakeUpstream:
    """A DNS server on [::1] (UDP and TCP, one port) answering AAAA 2001:db8::7. Before its
    answer over UDP it sends a forgery from another port, and one with another ID: both
    must be ignored. ``forge_only``: only the forgeries."""

    def __init__(self, forge_only: bool = False) -> None:
        self.forge_only = forge_only
        self.udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            self.udp.bind(("::1", 0))
        except OSError:
            self.udp.close()
            pytest.skip("no IPv6 loopback here")
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.tcp.bind(("::1", self.port))
        self.tcp.listen()
        self.forger = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.forger.bind(("::1", 0))
        self.ids: list[int] = []
        for fn in (self._serve_udp, self._serve_tcp):
            threading.Thread(target=fn, daemon=True).start()

    def _answer(self, data: bytes, ip: str, qid: int | None = None) -> bytes:
        q = dns.message.from_wire(data)
        self.ids.append(q.id)
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "AAAA", ip))
        r.id = q.id if qid is None else qid
        return r.to_wire()

    def _serve_udp(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                data, addr = self.udp.recvfrom(4096)
                if not data:  # shut down
                    return
                qid = dns.message.from_wire(data).id
                self.forger.sendto(self._answer(data, "2001:db8::666"), addr)
                self.udp.sendto(self._answer(data, "2001:db8::667", qid ^ 1), addr)
                if not self.forge_only:
                    self.udp.sendto(self._answer(data, "2001:db8::7"), addr)

    def _serve_tcp(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.tcp.accept()
                with conn:
                    (n,) = struct.unpack("!H", conn.recv(2, socket.MSG_WAITALL))
                    out = self._answer(conn.recv(n, socket.MSG_WAITALL), "2001:db8::7")
                    conn.sendall(struct.pack("!H", len(out)) + out)

    def close(self) -> None:
        for s in (self.udp, self.tcp, self.forger):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.fixture
def upstream6(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeUpstream]:
    up = FakeUpstream()
    monkeypatch.setattr(forward, "PORT", up.port)  # port 53 would take root
    monkeypatch.setattr(forward, "FORWARD_DEADLINE_S", 0.6)
    yield up
    up.close()


def forwarded(servers: tuple[str, ...], tcp: bool = False) -> tuple[dns.message.Message, int]:
    """One query through a Forwarder of its own: the answer, and how many it sent."""
    loop = asyncio.new_event_loop()
    try:
        fwd = forward.Forwarder(loop)
        query = dns.message.make_query("ext.example", "AAAA")
        fut: asyncio.Future[bytes] = loop.create_future()
        fwd.forward(wire.parse_query(query.to_wire()), query.to_wire(), fut.set_result,
                    servers, tcp)  # fmt: skip
        reply = dns.message.from_wire(loop.run_until_complete(asyncio.wait_for(fut, 5)))
        assert reply.id == query.id
        return reply, fwd.sent
    finally:
        loop.close()


def aaaa(r: dns.message.Message) -> list[str]:
    return [rd.address for rrset in r.answer for rd in rrset]


def test_forwarding_to_an_ipv6_upstream_over_udp_and_tcp(upstream6: FakeUpstream) -> None:
    r, sent = forwarded(("::1",))
    assert r.rcode() == dns.rcode.NOERROR and aaaa(r) == ["2001:db8::7"] and sent == 1
    r, sent = forwarded(("::1",), tcp=True)
    assert r.rcode() == dns.rcode.NOERROR and aaaa(r) == ["2001:db8::7"] and sent == 1
    r, _ = forwarded(("0:0::1",))  # the same server, written another way
    assert aaaa(r) == ["2001:db8::7"]


def test_ipv6_forgeries_are_ignored(upstream6: FakeUpstream) -> None:
    upstream6.forge_only = True  # another port, another ID: no answer at all
    r, _ = forwarded(("::1",))
    assert r.rcode() == dns.rcode.SERVFAIL and not r.answer


def test_servers_of_both_families_in_one_query(upstream6: FakeUpstream) -> None:
    # the IPv4 one is silent: its share of the time passes, then the IPv6 one answers
    r, sent = forwarded(("127.0.0.1", "fe80::1", "::1"))  # fe80::1: no zone, skipped
    assert aaaa(r) == ["2001:db8::7"] and sent == 2
    assert len(set(upstream6.ids)) == 1  # the query keeps its one ID
