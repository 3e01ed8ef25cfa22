"""The resolver's wire format and directory, without root or sockets."""

from __future__ import annotations

import copy
import struct
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest

from hostnet.core.index import Index
from hostnet.dns import names, wire
from hostnet.dns.publisher import DnsPublisher
from hostnet.model import Container, Endpoint, Network


def query(name: str, qtype: int = wire.A, qid: int = 7, edns: bool = False) -> bytes:
    head = struct.pack("!HHHHHH", qid, wire.RD, 1, 0, 0, 1 if edns else 0)
    opt = b"\x00" + struct.pack("!HHIH", wire.OPT, 4096, 0, 0) if edns else b""
    return head + wire.encode_name(name) + struct.pack("!HH", qtype, 1) + opt


def net(nid: str, **opts: str) -> Network:
    return Network(id=nid, name=nid, driver="nat", subnet="", gateway="", options=opts)


def ep(eid: str, nid: str, cid: str, ip: str, ifname: str = "eth0", **kw: object) -> Endpoint:
    return Endpoint(
        id=eid,
        network_id=nid,
        container_id=cid,
        ip=ip,
        prefix_len=24,
        gateway="",
        mac="",
        ifname=ifname,
        host_ifname="",
        **kw,  # type: ignore[arg-type]
    )


def world() -> names.Directory:
    nets = {"n1": net("n1", dnssuffix="corp.test", dnsservers="10.9.9.9"), "n2": net("n2")}
    cs = {
        x: Container(id=x, name=x.upper(), compartment_id=i, netns=x)
        for i, x in enumerate(["a", "b", "c"])
    }
    cs["d"] = Container(id="d", name="d", compartment_id=9, netns="d", runtime="docker")
    eps = [
        ep("1", "n1", "a", "172.20.1.2", aliases=["db"]),
        ep("2", "n1", "b", "172.20.1.3"),
        ep("3", "n2", "c", "172.20.2.2"),
        ep("4", "n2", "d", "172.20.2.3"),
    ]
    return names.build(nets, cs, eps)


def answer_ips(reply: bytes) -> list[str]:
    _, _, _, an, _, _ = struct.unpack_from("!HHHHHH", reply)
    return [".".join(str(b) for b in reply[-4 * (an - i) :][:4]) for i in range(an)]


def test_parse_query_reads_name_type_and_edns() -> None:
    q = wire.parse_query(query("Web.Corp.Test", wire.AAAA, edns=True))
    assert (q.id, q.name, q.qtype, q.edns) == (7, "web.corp.test", wire.AAAA, True)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 11, query("x")[:-2], struct.pack("!HHHHHH", 1, wire.QR, 1, 0, 0, 0) + b"\0"],
)
def test_bad_queries_are_refused_by_the_parser(data: bytes) -> None:
    with pytest.raises(wire.BadQuery):
        wire.parse_query(data)


def test_names_resolve_only_on_shared_networks() -> None:
    d = world()
    r = d.answer("b", wire.parse_query(query("a")))
    assert r is not None and wire.rcode_of(r) == wire.NOERROR and answer_ips(r) == ["172.20.1.2"]
    assert answer_ips(d.answer("b", wire.parse_query(query("db"))) or b"") == ["172.20.1.2"]
    assert answer_ips(d.answer("b", wire.parse_query(query("a.corp.test"))) or b"") == [
        "172.20.1.2"
    ]
    assert d.answer("b", wire.parse_query(query("c"))) is None  # forwarded, not answered
    assert d.answer("c", wire.parse_query(query("a"))) is None


def test_local_name_other_types_are_empty_and_ptr_answers() -> None:
    d = world()
    r = d.answer("b", wire.parse_query(query("a", wire.AAAA)))
    assert r is not None and wire.rcode_of(r) == wire.NOERROR and r[6:8] == b"\x00\x00"
    r = d.answer("b", wire.parse_query(query("2.1.20.172.in-addr.arpa", wire.PTR)))
    assert r is not None and r.endswith(wire.encode_name("a.corp.test"))


def test_scopes_upstreams_and_docker_sandboxes() -> None:
    d = world()
    assert d.scopes["a"].upstreams == ("10.9.9.9",) and d.scopes["c"].upstreams == ()
    assert "d" not in d.scopes  # Docker runs its own resolver in its sandboxes
    assert d.answer("d", wire.parse_query(query("a"))) is not None  # REFUSED, not forwarded


def test_discovery_off_gives_no_scope_and_plain_dns() -> None:
    nets = {"q": net("q", discovery="false", dnsservers="10.9.9.9")}
    c = Container(id="a", name="a", compartment_id=2, netns="a")
    e = ep("1", "q", "a", "172.20.1.2")
    assert names.build(nets, {"a": c}, [e]).scopes == {}
    assert names.dns_for(nets, c, [e]) == {"nameservers": ["10.9.9.9"]}
    nets["q"].options["discovery"] = "true"
    assert names.dns_for(nets, c, [e]) == {"nameservers": [names.LISTEN_ADDR]}


def test_response_echoes_id_rd_and_edns() -> None:
    q = wire.parse_query(query("a", qid=4242, edns=True))
    r = wire.response(q, wire.SERVFAIL, authoritative=False)
    qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", r)
    assert (qid, qd, an, ar) == (4242, 1, 0, 1)
    assert flags & wire.QR and flags & wire.RD and not flags & wire.AA
    assert wire.rcode_of(wire.with_id(r, 1)) == wire.SERVFAIL


# -- dual stack -----------------------------------------------------------------------
def dual() -> tuple[dict[str, Network], dict[str, Container], list[Endpoint]]:
    """ds: dual-stack with a suffix (x and y share the alias web); v6: IPv6 only (z)."""
    nets = {"ds": net("ds", dnssuffix="corp.test"), "v6": net("v6")}
    cs = {x: Container(id=x, name=x, compartment_id=i, netns=x) for i, x in enumerate("xyz")}
    eps = [
        ep("1", "ds", "x", "172.20.3.2", ip6="fd00:3::2", aliases=["web"]),
        ep("2", "ds", "y", "172.20.3.3", ip6="fd00:3::3", aliases=["web"]),
        ep("3", "v6", "z", "", ip6="fd00:4::2"),
        ep("4", "v6", "x", "", ip6="fd00:4::3", ifname="eth1"),
    ]
    return nets, cs, eps


def ask(d: names.Directory, cid: str, name: str, qtype: str) -> dns.message.Message | None:
    """The directory's answer as dnspython reads it; None: forwarded."""
    q = dns.message.make_query(name, qtype)
    out = d.answer(cid, wire.parse_query(q.to_wire()))
    if out is None:
        return None
    r = dns.message.from_wire(out)
    assert r.id == q.id and r.rcode() == dns.rcode.NOERROR
    return r


def addrs(r: dns.message.Message | None, qtype: str) -> list[str]:
    assert r is not None, "forwarded, not answered locally"
    want = dns.rdatatype.from_text(qtype)
    return sorted(rd.address for rrset in r.answer if rrset.rdtype == want for rd in rrset)


def ptr(r: dns.message.Message | None) -> list[str]:
    assert r is not None, "forwarded, not answered locally"
    return [rd.target.to_text() for rrset in r.answer for rd in rrset]


def test_aaaa_answers_the_ipv6_address_and_a_the_ipv4_one() -> None:
    d = names.build(*dual())
    assert addrs(ask(d, "y", "x", "AAAA"), "AAAA") == ["fd00:3::2"]
    assert addrs(ask(d, "y", "x.corp.test", "AAAA"), "AAAA") == ["fd00:3::2"]
    assert addrs(ask(d, "y", "x", "A"), "A") == ["172.20.3.2"]
    both = ask(d, "y", "web", "ANY")
    assert addrs(both, "A") == ["172.20.3.2", "172.20.3.3"]
    assert addrs(both, "AAAA") == ["fd00:3::2", "fd00:3::3"]
    # on v6 (all z shares with it) x is found by its IPv6 address only
    assert addrs(ask(d, "z", "x", "AAAA"), "AAAA") == ["fd00:4::3"]


def test_a_name_of_one_family_answers_the_other_type_empty_not_nxdomain() -> None:
    d = names.build(*dual())
    only6 = ask(d, "x", "z", "A")  # an IPv6-only container
    assert only6 is not None and only6.answer == []
    assert addrs(ask(d, "x", "z", "AAAA"), "AAAA") == ["fd00:4::2"]
    assert addrs(ask(d, "x", "z", "ANY"), "AAAA") == ["fd00:4::2"]
    only4 = ask(world(), "b", "a", "AAAA")  # an IPv4-only one, as before
    assert only4 is not None and only4.answer == []
    assert ask(d, "x", "nobody", "AAAA") is None  # not a local name: upstream's to answer


def test_ip6_arpa_ptr_answers_the_container_name() -> None:
    d = names.build(*dual())
    rev = dns.reversename.from_address("fd00:3::3").to_text()
    assert ptr(ask(d, "x", rev, "PTR")) == ["y.corp.test."]
    assert ptr(ask(d, "x", rev.upper(), "PTR")) == ["y.corp.test."]  # names are caseless
    assert ptr(ask(d, "x", dns.reversename.from_address("172.20.3.3").to_text(), "PTR")) == [
        "y.corp.test."
    ]
    assert ptr(ask(d, "x", dns.reversename.from_address("fd00:4::2").to_text(), "PTR")) == ["z."]
    assert ask(d, "y", dns.reversename.from_address("fd00:4::2").to_text(), "PTR") is None
    assert ask(d, "x", dns.reversename.from_address("fd00:9::1").to_text(), "PTR") is None


def test_adding_and_removing_dual_stack_endpoints_is_exact() -> None:
    nets, cs, eps = dual()
    d = names.build(nets, cs, eps)
    before = (copy.deepcopy(d.names), copy.deepcopy(d.names6), copy.deepcopy(d.ptrs))
    x = eps[0]
    own = names.own_names(nets["ds"], cs["x"], x)
    d.remove(nets["ds"], own, x.ip, x.ip6)
    # x's names and both its PTRs are gone; y keeps the alias they shared, in both families
    assert ask(d, "y", "x", "AAAA") is None and ask(d, "y", "x.corp.test", "A") is None
    assert addrs(ask(d, "x", "web", "ANY"), "A") == ["172.20.3.3"]
    assert addrs(ask(d, "x", "web", "ANY"), "AAAA") == ["fd00:3::3"]
    for ip in ("172.20.3.2", "fd00:3::2"):
        assert ask(d, "y", dns.reversename.from_address(ip).to_text(), "PTR") is None
    for ip in ("172.20.3.3", "fd00:3::3"):
        assert ptr(ask(d, "x", dns.reversename.from_address(ip).to_text(), "PTR")) == [
            "y.corp.test."
        ]
    assert addrs(ask(d, "z", "x", "AAAA"), "AAAA") == ["fd00:4::3"]  # its other network
    d.add(nets["ds"], own, x.ip, x.ip6)
    assert (d.names, d.names6, d.ptrs) == before  # back exactly as built
    for e in eps:  # everyone out: nothing left behind
        n = nets[e.network_id]
        d.remove(n, names.own_names(n, cs[e.container_id], e), e.ip, e.ip6)
    assert d.names == {"ds": {}} and d.names6 == {"ds": {}, "v6": {}}
    assert d.ptrs == {"ds": {}, "v6": {}}


def test_an_address_two_endpoints_hold_stays_until_both_are_gone() -> None:
    # another host's endpoint leaving after ours took its address (a move): ours stays
    n, d = net("n"), names.Directory()
    d.add(n, ["old"], "172.20.5.2", "fd00:5::2")
    d.add(n, ["new"], "172.20.5.2", "fd00:5::2")
    d.add(n, ["new"], "172.20.5.2", "fd00:5::2")  # the same one twice (a replayed event)
    d.remove(n, ["old"], "172.20.5.2", "fd00:5::2")
    d.remove(n, ["new"], "172.20.5.2", "fd00:5::2")
    d.set_scope("c", names.Scope(("n",), ()))
    assert addrs(ask(d, "c", "new", "ANY"), "AAAA") == ["fd00:5::2"]
    assert ptr(ask(d, "c", dns.reversename.from_address("fd00:5::2").to_text(), "PTR")) == ["new."]
    assert ask(d, "c", "old", "A") is None


def test_the_publisher_adds_and_removes_both_addresses() -> None:
    nets, cs, eps = dual()
    pub = DnsPublisher(Index(nets.values(), cs.values()))
    pub.directory.set_scope("y", names.Scope(("ds", "v6"), ()))
    pub.names(eps[0], present=True)
    pub.names(eps[2], present=True)
    assert addrs(ask(pub.directory, "y", "x", "ANY"), "A") == ["172.20.3.2"]
    assert addrs(ask(pub.directory, "y", "x", "ANY"), "AAAA") == ["fd00:3::2"]
    assert addrs(ask(pub.directory, "y", "z", "AAAA"), "AAAA") == ["fd00:4::2"]
    pub.names(eps[0], present=False)
    pub.names(eps[2], present=False)
    assert (
        ask(pub.directory, "y", "x", "AAAA") is None and ask(pub.directory, "y", "z", "A") is None
    )


def test_read_resolv_conf_keeps_ipv6_nameservers(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text(
        "# written by hand\n"
        "search corp.test\n"
        "nameserver 10.0.0.2\n"
        "nameserver 2001:DB8:0:0::1\n"  # canonical form: the forwarder's key for it
        "nameserver fe80::1%eth0\n"  # link-local with its zone: kept, zone and all
        "nameserver fe80::2\n"  # link-local without a zone: no interface to send it on
        "nameserver 2001:db8::53%eth0\n"  # a zone on a global address means nothing
        "nameserver ::ffff:10.0.0.3\n"  # IPv4-mapped: IPv4
        "nameserver 127.0.0.11\n"  # ourselves
        "nameserver dns.example\n"  # not an address: glibc skips it too
        "nameserver 10.0.0.2\n"
        "options edns0\n"
    )
    assert names.read_resolv_conf(str(conf)) == [
        "10.0.0.2",
        "2001:db8::1",
        "fe80::1%eth0",
        "2001:db8::53",
        "10.0.0.3",
    ]
    assert names.read_resolv_conf(str(tmp_path / "missing")) == []
