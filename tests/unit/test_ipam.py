from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostnet.core import ipam
from hostnet.errors import Conflict, InvalidRequest
from hostnet.model import parse_subnet

N = ipaddress.IPv4Network
A = ipaddress.IPv4Address


def test_allocate_skips_gateway_and_used_and_continues_after_last() -> None:
    net, gw = N("172.16.1.0/29"), A("172.16.1.1")
    assert ipam.allocate(net, gw, set()) == A("172.16.1.2")
    assert ipam.allocate(net, gw, {A("172.16.1.2")}) == A("172.16.1.3")
    # after the last one handed out, even when earlier ones are free again
    assert ipam.allocate(net, gw, set(), after=A("172.16.1.4")) == A("172.16.1.5")
    # wraps around
    assert ipam.allocate(net, gw, set(), after=A("172.16.1.6")) == A("172.16.1.2")


def test_allocate_exhausted_is_a_clear_conflict() -> None:
    net, gw = N("172.16.1.0/30"), A("172.16.1.1")
    with pytest.raises(Conflict, match="no free address"):
        ipam.allocate(net, gw, {A("172.16.1.2")})


def test_allocate_skips_carved_prefixes() -> None:
    net, gw = N("172.16.0.0/16"), A("172.16.0.1")
    got = ipam.allocate(
        net, gw, set(), after=A("172.16.0.254"), exclude=[N("172.16.0.255/32"), N("172.16.1.0/24")]
    )
    assert got == A("172.16.2.0")


@settings(max_examples=200)
@given(st.integers(24, 29), st.sets(st.integers(2, 6)), st.integers(0, 7))
def test_allocate_never_returns_used_gateway_or_reserved(
    prefix: int, used_off: set[int], after: int
) -> None:
    net = N(f"10.9.0.0/{prefix}")
    gw = net.network_address + 1
    used = {net.network_address + o for o in used_off}
    try:
        got = ipam.allocate(net, gw, used, after=net.network_address + after)
    except Conflict:
        hosts = set(net.hosts()) - {gw}
        assert hosts <= used
        return
    assert got in net and got != gw and got not in used
    assert got not in (net.network_address, net.broadcast_address)


def test_first_free_subnet_avoids_used() -> None:
    used = [N("172.16.0.0/16"), N("172.17.0.0/24")]
    assert ipam.first_free_subnet(24, used) == N("172.17.1.0/24")
    assert ipam.first_free_subnet(16, used) == N("172.18.0.0/16")


def test_gateway_checks() -> None:
    ipam.check_gateway(N("172.16.1.0/24"), A("172.16.1.1"))
    with pytest.raises(InvalidRequest, match="outside subnet"):
        ipam.check_gateway(N("172.16.1.0/24"), A("172.16.2.1"))
    with pytest.raises(InvalidRequest, match="network or broadcast"):
        ipam.check_gateway(N("172.16.1.0/24"), A("172.16.1.255"))


def test_static_checks() -> None:
    net, gw = N("172.16.1.0/24"), A("172.16.1.1")
    ipam.check_static(net, gw, A("172.16.1.105"), set())
    with pytest.raises(InvalidRequest, match="outside subnet"):
        ipam.check_static(net, gw, A("172.16.2.5"), set())
    with pytest.raises(InvalidRequest, match="gateway"):
        ipam.check_static(net, gw, gw, set())
    with pytest.raises(Conflict, match="already in use"):
        ipam.check_static(net, gw, A("172.16.1.5"), {A("172.16.1.5")})


@pytest.mark.parametrize(
    "text", ["172.16.1.0/33", "172.16.1.1/24", "banana", "172.16.1.0/31", "fd00::/64"]
)
def test_bad_subnets(text: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_subnet(text)
    assert exc.value.remedy
