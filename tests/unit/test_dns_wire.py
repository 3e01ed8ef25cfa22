"""The resolver's protocol edges, checked with dnspython (an independent implementation)."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rrset
import pytest

from hostnet.dns import names, wire
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
