"""Bridge/netdev rule rendering for l2bridge and l2tunnel, and the VLAN eBPF programs."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from hostnet.drivers.l2_rules import RewriteNet, TunnelNet, render_table, render_tunnels
from hostnet.kernel.bpf import pop_program, push_program

GOLDEN = Path(__file__).parent / "golden"


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_rewrite_table() -> None:
    net = RewriteNet(
        "ab12cd34",
        "eth0",
        "02:00:00:00:00:01",
        {"198.51.100.105": "02:42:c6:33:64:69", "198.51.100.106": "02:42:c6:33:64:6a"},
        ("198.51.100.2",),
    )
    check("l2_rewrite.nft", render_table([net]))


def test_tunnel_table_skips_networks_without_endpoints() -> None:
    nets = [
        TunnelNet(
            "ab12cd34",
            "eth0",
            "02:00:00:00:00:01",
            ("hv0000000001", "hv0000000002"),
            ("02:42:c6:33:64:69", "02:42:c6:33:64:6a"),
        ),
        TunnelNet("ffff0000", "eth1", "02:00:00:00:00:02", ()),
    ]
    text = render_tunnels(nets)
    check("l2_tunnel.nft", text)
    assert "ffff0000" not in text


def decode(prog: bytes) -> list[tuple[int, int, int, int, int]]:
    out = []
    for i in range(0, len(prog), 8):
        code, regs, off, imm = struct.unpack("<BBhi", prog[i : i + 8])
        out.append((code, regs & 0xF, regs >> 4, off, imm))
    return out


def test_vlan_programs_push_and_pop_the_given_vid() -> None:
    push, pop = decode(push_program(11)), decode(pop_program(11))
    assert (0xB7, 3, 0, 0, 11) in push and (0x85, 0, 0, 0, 18) in push  # r3 = 11; vlan_push
    assert (0x55, 2, 0, 4, 11) in pop and (0x85, 0, 0, 0, 19) in pop  # r2 != 11 -> drop; vlan_pop
    assert push[-1][0] == pop[-1][0] == 0x95  # both end in exit
    # every jump lands inside the program, on the drop branch (r0 = TC_ACT_SHOT)
    for prog in (push, pop):
        for i, (code, _, _, off, _) in enumerate(prog):
            if code in (0x15, 0x55):
                assert prog[i + 1 + off] == (0xB7, 0, 0, 0, 2)


def test_team_spreads_over_live_members_only() -> None:
    from hostnet.drivers.team import Team, render

    both = render([Team("ab12cd34", "huab12cd34", ("eth1", "eth2"), ("eth1", "eth2"))])
    check("team_both.nft", both)
    one = render([Team("ab12cd34", "huab12cd34", ("eth1", "eth2"), ("eth2",))])
    assert 'mod 1 map { 0 : "eth2" }' in one and '"eth1"' in one.split("chain down")[1]
    none = render([Team("ab12cd34", "huab12cd34", ("eth1", "eth2"), ())])
    assert "fwd to jhash" not in none and "policy drop" in none


def test_the_nd_fix_word_keeps_the_icmpv6_checksum_of_a_rewritten_option() -> None:
    """A neighbour solicitation whose source link-layer option goes from the endpoint's
    MAC to the host's, with the fix word in its reserved field: the same ones' complement
    sum, so the checksum the endpoint computed still holds."""
    from hostnet.drivers.l2_rules import nd_fix

    def ones_sum(data: bytes) -> int:
        total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
        while total > 0xFFFF:
            total = (total & 0xFFFF) + (total >> 16)
        return total

    for ep_mac, host_mac in (
        ("02:42:ac:10:01:02", "0a:aa:aa:aa:aa:aa"),
        ("02:42:00:00:00:02", "ff:ff:ff:ff:ff:fe"),
        ("02:42:c6:33:64:07", "02:42:c6:33:64:07"),
    ):
        target = bytes(range(16))
        before = bytes([135, 0, 0, 0, 0, 0, 0, 0]) + target + bytes([1, 1])
        before += bytes.fromhex(ep_mac.replace(":", ""))
        fix = nd_fix(ep_mac, host_mac).to_bytes(2, "big")
        after = before[:6] + fix + before[8:26] + bytes.fromhex(host_mac.replace(":", ""))
        a, b = ones_sum(before), ones_sum(after)
        assert a == b or {a, b} == {0, 0xFFFF}, (ep_mac, host_mac)  # ones' complement


def test_outbound_nat_hands_ipv6_to_the_host_but_never_neighbour_discovery() -> None:
    from hostnet.drivers.l2_rules import RewriteNet, render_table

    n = RewriteNet(
        "k1", "up0", "0a:aa:aa:aa:aa:aa",
        {"10.0.0.2": "02:42:0a:00:00:02", "2001:db8:1::2": "02:42:0a:00:00:02"},
        (), ("10.0.0.0/24", "2001:db8:1::/64"),
    )  # fmt: skip
    text = render_table([n])
    assert "ether type ip ip daddr != { 10.0.0.0/24 } ether daddr set" in text
    assert (
        "ether type ip6 ip6 daddr != { 2001:db8:1::/64, fe80::/10, ff00::/8 } ether daddr set"
        in text
    )
