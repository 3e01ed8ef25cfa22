from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hostnet.core.ports import PortIndex, parse_port_spec, resolve
from hostnet.errors import Conflict, InvalidRequest
from hostnet.model import PortMapping


def pm(port: int, cport: int = 80, ip: str = "", proto: str = "tcp") -> PortMapping:
    return PortMapping(protocol=proto, host_ip=ip, host_port=port, container_port=cport)  # type: ignore[arg-type]


def test_simple_mapping() -> None:
    r = parse_port_spec("8082:80")
    assert (r.protocol, r.host_ip, r.host_start, r.host_end, r.container_start) == (
        "tcp",
        "",
        8082,
        8082,
        80,
    )
    assert resolve([r], PortIndex()) == [pm(8082)]


def test_host_ip_udp_and_ranges() -> None:
    r = parse_port_spec("127.0.0.1:5353:53/udp")
    assert (r.host_ip, r.protocol, r.host_start, r.container_start) == (
        "127.0.0.1",
        "udp",
        5353,
        53,
    )
    got = resolve([parse_port_spec("9100-9102:80-82")], PortIndex())
    assert [(p.host_port, p.container_port) for p in got] == [(9100, 80), (9101, 81), (9102, 82)]


def test_host_range_to_one_port_picks_first_free() -> None:
    got = resolve([parse_port_spec("8000-8002:80")], PortIndex([pm(8000)]))
    assert got == [pm(8001)]


def test_container_port_only_gets_ephemeral_host_port() -> None:
    got = resolve([parse_port_spec("80")], PortIndex())
    assert 49153 <= got[0].host_port <= 65535 and got[0].container_port == 80


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "abc",
        "80:",
        ":80",
        "1:2:3:4",
        "70000:80",
        "0:80",
        "8080:80/sctp",
        "300.1.1.1:80:80",
        "90-80:80",
        "8000-8001:80-82",
        "80-81",
        "8080:80/",
    ],
)
def test_bad_specs_are_refused_with_the_syntax(spec: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_port_spec(spec)
    assert "bad port mapping" in exc.value.message or "malformed" in exc.value.message
    assert exc.value.remedy


def test_taken_port_is_a_conflict_across_any_and_specific_addresses() -> None:
    with pytest.raises(Conflict, match="8082/tcp"):
        resolve([parse_port_spec("8082:80")], PortIndex([pm(8082, ip="10.0.0.1")]))
    with pytest.raises(Conflict):
        resolve([parse_port_spec("10.0.0.1:8082:80")], PortIndex([pm(8082)]))
    # another address, or another protocol, is fine
    assert resolve([parse_port_spec("10.0.0.2:8082:80")], PortIndex([pm(8082, ip="10.0.0.1")]))
    assert resolve([parse_port_spec("8082:80/udp")], PortIndex([pm(8082)]))


def test_duplicate_inside_one_request_is_a_conflict() -> None:
    with pytest.raises(Conflict):
        resolve([parse_port_spec("8082:80"), parse_port_spec("8082:81")], PortIndex())


@given(st.integers(1, 65535), st.integers(1, 65535), st.sampled_from(["tcp", "udp"]))
def test_round_trip(host: int, cont: int, proto: str) -> None:
    got = resolve([parse_port_spec(f"{host}:{cont}/{proto}")], PortIndex())
    assert got == [pm(host, cont, proto=proto)]


mapping = st.builds(
    lambda port, ip, proto: pm(port, ip=ip, proto=proto),
    st.integers(1000, 1003),
    st.sampled_from(["", "10.0.0.1", "10.0.0.2"]),
    st.sampled_from(["tcp", "udp"]),
)


@given(st.lists(st.tuples(st.booleans(), mapping), max_size=30), mapping)
def test_port_index_agrees_with_pairwise_conflicts(
    ops: list[tuple[bool, PortMapping]], probe: PortMapping
) -> None:
    index, held = PortIndex(), []
    for add, m in ops:
        if add and not index.taken(m):
            index.add(m)
            held.append(m)
        elif not add and m in held:
            index.remove(m)
            held.remove(m)
    assert index.taken(probe) == any(probe.conflicts_with(h) for h in held)


def test_ipv6_host_addresses_go_in_brackets_and_families_clash_only_with_their_own() -> None:
    r = parse_port_spec("[::]:8080:80")
    assert (r.host_ip, r.host_start, r.container_start) == ("::", 8080, 80)
    assert parse_port_spec("[2001:db8::5]:80:80/udp").host_ip == "2001:db8::5"
    assert parse_port_spec("[::1]::80").host_start == 0  # a free host port, as Docker
    for bad, why in (
        ("[::1:80:80", "brackets"),
        ("[fe80::1]:80", "brackets"),
        ("2001:db8::5:80:80", "too many"),
        ("[10.0.0.1]:80:80", "IPv4"),
    ):
        with pytest.raises(InvalidRequest, match=why):
            parse_port_spec(bad)
    ix = PortIndex([pm(8080, ip="0.0.0.0")])
    assert not ix.taken(pm(8080, ip="::")) and not ix.taken(pm(8080, ip="2001:db8::5"))
    assert ix.taken(pm(8080, ip="")) and ix.taken(pm(8080, ip="10.0.0.1"))
    ix6 = PortIndex([pm(8080, ip="::")])
    assert ix6.taken(pm(8080, ip="2001:db8::5")) and not ix6.taken(pm(8080, ip="10.0.0.1"))
