from __future__ import annotations

import ipaddress

import pytest

from hostnet.drivers.nat import NatDriver
from hostnet.errors import HostnetError, InvalidRequest, NotFound
from hostnet.model import check_name, mac_for, parse_ip


class _Nothing:
    host = rt = nft = None


def driver() -> NatDriver:
    return NatDriver(_Nothing(), "hostnet:test")  # type: ignore[arg-type]


def test_options_accept_docker_and_short_names() -> None:
    got = driver().normalize_options(
        {
            "com.docker.network.windowsshim.disableicc": "True",
            "networkname": "sw1",
            "com.docker.network.driver.mtu": "1400",
        }
    )
    assert got == {"disableicc": "true", "networkname": "sw1", "mtu": "1400"}


@pytest.mark.parametrize(
    ("opts", "match"),
    [
        ({"com.docker.network.windowsshim.vlanid": "11"}, "not supported by the nat driver"),
        ({"bogus": "1"}, "'bogus' is not supported"),
        ({"disableicc": "maybe"}, "true or false"),
        ({"mtu": "big"}, "whole number"),
    ],
)
def test_bad_options_name_the_option(opts: dict[str, str], match: str) -> None:
    with pytest.raises(InvalidRequest, match=match):
        driver().normalize_options(opts)


def test_names() -> None:
    assert check_name("network", "CustomNat1") == "CustomNat1"
    for bad in ["", "-x", "a b", "x" * 65, "a/b"]:
        with pytest.raises(InvalidRequest):
            check_name("network", bad)


def test_mac_is_derived_from_ip() -> None:
    assert mac_for(ipaddress.IPv4Address("172.16.1.2")) == "02:42:ac:10:01:02"


def test_parse_ip() -> None:
    with pytest.raises(InvalidRequest, match="malformed"):
        parse_ip("1.2.3")


def test_error_round_trip_keeps_kind_message_remedy() -> None:
    err = NotFound("no network named 'x'", "list them")
    back = HostnetError.from_dict(404, err.to_dict())
    assert isinstance(back, NotFound) and back.message == err.message and back.remedy == "list them"
    assert str(back) == "no network named 'x'. list them"
