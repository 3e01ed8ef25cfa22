"""nft rule rendering compared with golden text (regenerate: UPDATE_GOLDEN=1 pytest ...)."""

from __future__ import annotations

import os
from pathlib import Path

from hostnet.drivers.nat_rules import (
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
