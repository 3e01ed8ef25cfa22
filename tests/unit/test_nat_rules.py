"""nft rule rendering compared with golden text (regenerate: UPDATE_GOLDEN=1 pytest ...)."""

from __future__ import annotations

import os
from pathlib import Path

from hostnet.drivers.nat_rules import (
    V6,
    Mapping,
    NatNet,
    render_add_mappings,
    render_delete_mappings,
    render_table,
)
from hostnet.model import PortMapping

GOLDEN = Path(__file__).parent / "golden"


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def mappings() -> list[Mapping]:
    return [
        Mapping(PortMapping(protocol="tcp", host_port=8082, container_port=80), "172.16.1.2"),
        Mapping(PortMapping(protocol="udp", host_port=5353, container_port=53), "172.16.1.3"),
        Mapping(
            PortMapping(protocol="tcp", host_ip="198.51.100.7", host_port=9000, container_port=80),
            "172.16.2.2",
        ),
    ]


def test_table_with_two_networks_and_mappings() -> None:
    nets = [
        NatNet("hn-bbbb", "172.16.2.0/24", "172.16.2.1"),
        NatNet("hn-aaaa", "172.16.1.0/24", "172.16.1.1"),
    ]
    check("nat_table.nft", render_table(nets, mappings()))


def test_empty_table() -> None:
    check("nat_table_empty.nft", render_table([], []))


def test_element_changes() -> None:
    check("nat_elements.nft", render_add_mappings(mappings()) + render_delete_mappings(mappings()))


def test_ipv6_table_of_a_dual_stack_and_an_internal_network() -> None:
    """The same shape in the ip6 family; an internal network gets no NAT and no way out;
    [::1] is left to the user-space relay."""
    nets = [
        NatNet("hn-aaaa", "fd12:3456:789a:1::/64", "fd12:3456:789a:1::1"),
        NatNet("hn-cccc", "fd12:3456:789a:3::/64", "fd12:3456:789a:3::1", internal=True),
    ]
    maps = [
        Mapping(PortMapping(host_port=8082, container_port=80), "fd12:3456:789a:1::2"),
        Mapping(
            PortMapping(host_ip="2001:db8::5", host_port=80, container_port=80),
            "fd12:3456:789a:1::3",
        ),
    ]
    check("nat_table6.nft", render_table(nets, maps, fam=V6))
    add = render_add_mappings(maps, V6)
    assert "add element ip6 hostnet pm_any { tcp . 8082 : fd12:3456:789a:1::2 . 80 }" in add
    assert "pm_ip { 2001:db8::5 . tcp . 80 : fd12:3456:789a:1::3 . 80 }" in add


def test_family_bound_mappings_go_to_their_family_only() -> None:
    from hostnet.drivers.nat import mappings as family_maps
    from hostnet.model import Endpoint

    ep = Endpoint(
        id="e" * 64, network_id="n", container_id="c", ip="172.16.1.2", prefix_len=24,
        gateway="172.16.1.1", mac="02:42:ac:10:01:02", ifname="eth0", host_ifname="hve",
        ip6="fd12::2", prefix_len6=64, gateway6="fd12::1",
    )  # fmt: skip
    ports = [
        PortMapping(host_port=1, container_port=1),
        PortMapping(host_ip="0.0.0.0", host_port=2, container_port=2),
        PortMapping(host_ip="::", host_port=3, container_port=3),
    ]
    assert [m.port.host_port for m in family_maps(ep, ports, 4)] == [1, 2]
    assert [m.port.host_port for m in family_maps(ep, ports, 6)] == [1, 3]
    assert {m.container_ip for m in family_maps(ep, ports, 6)} == {"fd12::2"}


def test_l2bridge_outbound_nat_in_ipv6_masquerades_and_drops_redirects() -> None:
    from hostnet.drivers.nat_rules import OutboundNat

    out = [OutboundNat("hb-aaaa", ("2001:db8:100::105",), ("2001:db8:100::/64",))]
    table = render_table([], [], out, fam=V6)
    assert (
        'oifname "hb-aaaa" ip6 saddr { 2001:db8:100::105 } '
        "ip6 daddr != { 2001:db8:100::/64 } masquerade"
    ) in table
    assert 'oifname { "hb-aaaa" } icmpv6 type nd-redirect drop' in table
    assert "nd-redirect" not in render_table([], [], fam=V6)  # only with outbound NAT
