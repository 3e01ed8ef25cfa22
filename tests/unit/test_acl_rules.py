from __future__ import annotations

import pytest

from hostnet.core.acl import (
    DEFAULT_INBOUND_ALLOWED,
    families,
    merge_runs,
    parse_rule,
    render_default_table,
    render_endpoint,
    render_remove,
    render_remove_counter,
    render_rule,
)
from hostnet.errors import InvalidRequest


def _chain(text: str, chain: str) -> list[str]:
    """The rule bodies ``render_endpoint`` adds to one chain, in order."""
    head = f"add rule netdev hostnet_acl {chain} "
    return [ln.removeprefix(head) for ln in text.splitlines() if ln.startswith(head)]


def test_parse_short_and_hns_names() -> None:
    a = parse_rule("action=block;dir=in;proto=tcp,udp;lport=80,8000-8100;raddr=10.0.0.0/8;prio=5")
    b = parse_rule(
        "Action=Block;Direction=In;Protocols=6,17;LocalPorts=80,8000-8100;"
        "RemoteAddresses=10.0.0.0/8;Priority=5"
    )
    assert a == b
    assert a.Protocols == [6, 17] and a.LocalPorts == ["80", "8000-8100"] and a.Priority == 5


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("dir=in", "action is missing"),
        ("action=deny;dir=in", "allow or block"),
        ("action=block;dir=up", "in or out"),
        ("action=block;dir=in;proto=sctpx", "protocol 'sctpx'"),
        ("action=block;dir=in;proto=icmp;lport=80", "ports need proto=tcp"),
        ("action=block;dir=in;proto=tcp;lport=70000", "not a port"),
        ("action=block;dir=in;raddr=10.0.0.300/8", "address"),
        ("action=block;dir=in;colour=red", "unknown key"),
        ("action=block;dir=in;raddr=fd00::g/64", "address 'fd00::g/64'"),
        ("action=block;dir=in;raddr=fd00::/129", "address 'fd00::/129'"),
        ("action=block;dir=in;raddr=10.0.0.1-fd00::1", "mixes IPv4 and IPv6"),
        ("action=block;dir=in;raddr=fd00::9-fd00::1", "ends before it starts"),
        ("action=block;dir=in;raddr=fd00::1-fd00::2-fd00::3", "two addresses A-B"),
        ("action=block;dir=in;raddr=fe80::1%eth0", "zone indexes"),
        ("action=block;dir=in;laddr=10.0.0.2;raddr=fd00::/64", "share no address family"),
        ("action=block;dir=in;proto=icmp;raddr=fd00::/64", "use proto=icmpv6"),
        ("action=block;dir=in;proto=icmpv6;raddr=10.0.0.0/8", "use proto=icmp"),
    ],
)
def test_bad_rules_name_the_problem(spec: str, words: str) -> None:
    with pytest.raises(InvalidRequest, match=words) as exc:
        parse_rule(spec)
    assert exc.value.remedy
    assert "IPv6" in exc.value.remedy and "icmpv6" in exc.value.remedy  # what to give


def test_direction_maps_to_host_end_hooks() -> None:
    inbound = render_rule(parse_rule("action=block;dir=in;proto=tcp;lport=80;raddr=10.0.0.0/8"))
    assert inbound == ["meta protocol ip ip saddr 10.0.0.0/8 meta l4proto 6 tcp dport 80 drop"]
    outbound = render_rule(
        parse_rule("action=allow;dir=out;proto=udp;rport=53;raddr=10.0.0.1-10.0.0.9")
    )
    assert outbound == [
        "meta protocol ip ip daddr 10.0.0.1-10.0.0.9 meta l4proto 17 udp dport 53 accept"
    ]


def test_priority_orders_rules_and_defaults_come_last() -> None:
    rules = [
        parse_rule("action=block;dir=in;proto=tcp;lport=80;prio=200"),
        parse_rule("action=allow;dir=in;proto=tcp;lport=80;raddr=198.51.100.3;prio=100"),
    ]
    text = render_endpoint("hv1", "k1", rules)
    lines = _chain(text, "in_k1")
    assert "accept" in lines[0] and "198.51.100.3" in lines[0]
    drop = 'counter name "drops_k1" drop'  # every drop counts into the endpoint's counter
    assert lines[1] == f"meta l4proto 6 tcp dport 80 {drop}"  # no addresses: both families
    assert lines[-3:] == [
        "meta l4proto { 6, 17, 1, 2, 58 } accept",
        f"meta protocol ip {drop}",
        f"meta protocol ip6 {drop}",
    ]
    assert "allow" not in render_endpoint("hv1", "k1", [], allow_all=True).split("in_k1")[-1]


def test_runs_of_port_rules_fold_into_one_set_lookup_keeping_priority() -> None:
    rules = [
        parse_rule(f"action=block;dir=in;proto=tcp;lport={10000 + i};prio={i}") for i in range(1000)
    ]
    merged = merge_runs(rules)
    assert len(merged) == 1 and len(merged[0].LocalPorts) == 1000
    # an allow between blocks splits the run: order still decides
    mixed = [
        parse_rule("action=block;dir=in;proto=tcp;lport=80;prio=1"),
        parse_rule("action=allow;dir=in;proto=tcp;lport=81;prio=2"),
        parse_rule("action=block;dir=in;proto=tcp;lport=81;prio=3"),
    ]
    assert [r.Action for r in merge_runs(mixed)] == ["Block", "Allow", "Block"]
    text = render_endpoint("hv1", "k1", rules)
    assert len(_chain(text, "in_k1")) == 4  # the set rule and three defaults
    assert "tcp dport { 10000, 10001," in text


def test_ipv6_prefixes_addresses_and_ranges_parse_next_to_ipv4() -> None:
    rule = parse_rule(
        "action=block;dir=in;laddr=fd00::2;"
        "raddr=fd00::/64, 2001:db8::1-2001:db8::9,10.0.0.0/8,10.0.0.1-10.0.0.9"
    )
    assert rule.LocalAddresses == ["fd00::2"]
    assert rule.RemoteAddresses == [
        "fd00::/64",
        "2001:db8::1-2001:db8::9",
        "10.0.0.0/8",
        "10.0.0.1-10.0.0.9",
    ]
    assert families(rule) == ["ip6"]  # an IPv4 packet cannot match laddr fd00::2
    assert families(parse_rule("action=block;dir=in;raddr=10.0.0.1,fd00::1")) == ["ip", "ip6"]
    assert families(parse_rule("action=block;dir=in")) == ["ip", "ip6"]


def test_ipv6_addresses_render_with_ip6_in_both_directions() -> None:
    inbound = render_rule(
        parse_rule("action=block;dir=in;proto=tcp;lport=80;laddr=fd00::2;raddr=fd00::/64")
    )
    assert inbound == [
        "meta protocol ip6 ip6 daddr fd00::2 ip6 saddr fd00::/64 meta l4proto 6 tcp dport 80 drop"
    ]
    outbound = render_rule(
        parse_rule("action=allow;dir=out;proto=udp;rport=53;raddr=2001:db8::1-2001:db8::9")
    )
    assert outbound == [
        "meta protocol ip6 ip6 daddr 2001:db8::1-2001:db8::9 meta l4proto 17 udp dport 53 accept"
    ]


def test_mixed_family_rule_renders_one_rule_per_family_in_its_priority_place() -> None:
    rules = [
        parse_rule("action=allow;dir=in;proto=tcp;lport=22;prio=300"),
        parse_rule(
            "action=block;dir=in;proto=tcp;lport=22;raddr=10.0.0.0/8,fd00::/64,fd01::7;prio=1"
        ),
    ]
    drop = 'counter name "drops_k1" drop'
    assert _chain(render_endpoint("hv1", "k1", rules), "in_k1")[:3] == [
        f"meta protocol ip ip saddr 10.0.0.0/8 meta l4proto 6 tcp dport 22 {drop}",
        f"meta protocol ip6 ip6 saddr {{ fd00::/64, fd01::7 }} meta l4proto 6 tcp dport 22 {drop}",
        "meta l4proto 6 tcp dport 22 accept",
    ]


def test_rule_without_addresses_matches_both_families_but_never_arp() -> None:
    assert render_rule(parse_rule("action=block;dir=out;proto=udp;rport=53")) == [
        "meta l4proto 17 udp dport 53 drop"  # l4proto is set for IPv4 and IPv6 packets only
    ]
    assert render_rule(parse_rule("action=block;dir=in")) == [
        "meta protocol ip drop",
        "meta protocol ip6 drop",
    ]


def test_icmpv6_is_protocol_58_and_icmp_stays_icmpv4() -> None:
    assert parse_rule("action=block;dir=in;proto=icmpv6").Protocols == [58]
    assert render_rule(parse_rule("action=block;dir=in;proto=icmp,icmpv6")) == [
        "meta protocol ip meta l4proto 1 drop",
        "meta protocol ip6 meta l4proto 58 drop",
    ]
    # each half of a dual-stack rule keeps only the protocols its family has
    dual = parse_rule("action=allow;dir=in;proto=icmp,icmpv6;raddr=10.0.0.0/8,fd00::/64")
    assert render_rule(dual) == [
        "meta protocol ip ip saddr 10.0.0.0/8 meta l4proto 1 accept",
        "meta protocol ip6 ip6 saddr fd00::/64 meta l4proto 58 accept",
    ]


def test_default_inbound_allows_icmpv6_for_neighbour_discovery() -> None:
    assert 58 in DEFAULT_INBOUND_ALLOWED
    table = render_default_table("hv", ["hvabc"])
    assert "    meta l4proto { 6, 17, 1, 2, 58 } accept\n" in table
    assert "    meta protocol ip drop\n    meta protocol ip6 drop\n" in table


def test_runs_of_ipv6_port_rules_still_fold_and_split_per_family() -> None:
    rules = [
        parse_rule(
            f"action=block;dir=in;proto=tcp;lport={80 + i};raddr=10.0.0.0/8,fd00::/64;prio={i}"
        )
        for i in range(3)
    ]
    merged = merge_runs(rules)
    assert len(merged) == 1 and merged[0].LocalPorts == ["80", "81", "82"]
    assert render_rule(merged[0]) == [
        "meta protocol ip ip saddr 10.0.0.0/8 meta l4proto 6 tcp dport { 80, 81, 82 } drop",
        "meta protocol ip6 ip6 saddr fd00::/64 meta l4proto 6 tcp dport { 80, 81, 82 } drop",
    ]


def test_an_endpoints_drops_count_into_its_named_counter_kept_across_replacement() -> None:
    text = render_endpoint("hv1", "k1", [parse_rule("action=block;dir=out;proto=udp")])
    # made before the chains that use it, and never flushed: a replacement keeps its count
    assert text.index("add counter netdev hostnet_acl drops_k1") < text.index("add chain")
    assert "delete counter" not in text and "reset" not in text
    assert _chain(text, "out_k1") == ['meta l4proto 17 counter name "drops_k1" drop']
    # removal: the chains first (their rules hold the counter), then the counter
    gone = render_remove("k1")
    assert gone.index("delete chain netdev hostnet_acl out_k1") < gone.index(
        "delete counter netdev hostnet_acl drops_k1"
    )
    # the counter alone, when its chains are gone already: made first, so never an error
    assert render_remove_counter("k1").splitlines()[1:] == [
        "add counter netdev hostnet_acl drops_k1",
        "delete counter netdev hostnet_acl drops_k1",
    ]
    # allow-all (overlay endpoints) drops nothing but still names its counter
    assert "drop" not in "".join(_chain(render_endpoint("hv1", "k1", [], allow_all=True), "in_k1"))
    # the default table (endpoints without rules of their own) counts nothing per endpoint
    assert "counter" not in render_default_table("hv", [])
