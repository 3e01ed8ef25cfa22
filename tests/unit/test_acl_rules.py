from __future__ import annotations

import pytest

from hostnet.acl import parse_rule, render_endpoint, render_rule
from hostnet.errors import InvalidRequest


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
    ],
)
def test_bad_rules_name_the_problem(spec: str, words: str) -> None:
    with pytest.raises(InvalidRequest, match=words) as exc:
        parse_rule(spec)
    assert exc.value.remedy


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
    lines = [ln for ln in text.splitlines() if ln.startswith("add rule netdev hostnet_acl in_k1")]
    assert "accept" in lines[0] and "198.51.100.3" in lines[0]
    assert lines[1].endswith("tcp dport 80 drop")
    assert lines[-2].endswith("meta l4proto { 6, 17, 1, 2 } accept") and lines[-1].endswith(
        "meta protocol ip drop"
    )
    assert "allow" not in render_endpoint("hv1", "k1", [], allow_all=True).split("in_k1")[-1]


def test_runs_of_port_rules_fold_into_one_set_lookup_keeping_priority() -> None:
    from hostnet.acl import merge_runs

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
    assert text.count("add rule netdev hostnet_acl in_k1") == 3  # the set rule and two defaults
    assert "tcp dport { 10000, 10001," in text
