"""The resolver's wire format and directory, without root or sockets."""

from __future__ import annotations

import struct

import pytest

from hostnet.dns import names, wire
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
