"""hostnet doctor's checks on canned inputs (no root, no kernel)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hostnet.doctor import adapter_checks, findings, host_checks, probe, store_checks
from hostnet.doctor import firewall_checks as fw
from hostnet.doctor.findings import Finding
from hostnet.errors import InvalidRequest

NAT = {"Name": "nat", "Driver": "nat", "Subnet": "172.16.0.0/16", "SubnetIPv6": ""}
DS = {"Name": "ds", "Driver": "nat", "Subnet": "172.20.0.0/24", "SubnetIPv6": "fd00::/64"}


def levels(fs: list[Finding]) -> list[str]:
    return [f.level for f in fs]


def sysctls(**values: str) -> Any:
    table = {k.replace("__", "."): v for k, v in values.items()}
    return lambda name: table.get(name)


def test_exit_codes_and_forms() -> None:
    good = findings.ok("a", "fine")
    warn = findings.warning("b", "hm", "why", "do this", "true")
    bad = findings.error("c", "broken", "why", "fix it")
    assert findings.exit_code([]) == 0
    assert findings.exit_code([good]) == 0
    assert findings.exit_code([good, warn]) == 1
    assert findings.exit_code([warn, bad, good]) == 2
    doc = json.loads(findings.as_json([good, warn]))
    assert doc["status"] == "warning"
    assert doc["counts"] == {"ok": 1, "warning": 1, "error": 0}
    assert doc["findings"][1] == {
        "check": "b",
        "level": "warning",
        "what": "hm",
        "why": "why",
        "remedy": "do this",
        "command": "true",
    }
    table = findings.as_table([good, warn, bad])
    assert "fix: do this" in table and "run: true" in table
    assert table.rstrip().endswith("1 ok, 1 warning, 1 error")


def test_forwarding_off_with_nat_networks_is_an_error_with_the_command() -> None:
    fs = host_checks.check_forwarding(
        sysctls(net__ipv4__ip_forward="0", **{"net__ipv6__conf__all__forwarding": "0"}),
        [NAT, DS],
    )
    assert levels(fs) == ["error", "error"]
    assert "nat, ds" in fs[0].what
    assert fs[0].command == "sysctl -w net.ipv4.ip_forward=1"
    assert fs[1].command == "sysctl -w net.ipv6.conf.all.forwarding=1"
    assert "ds" in fs[1].what and "nat" not in fs[1].what.split(":")[1]


def test_forwarding_off_without_networks_or_daemon() -> None:
    off = sysctls(net__ipv4__ip_forward="0", net__ipv6__conf__all__forwarding="0")
    assert levels(host_checks.check_forwarding(off, [])) == ["ok", "ok"]
    unknown = host_checks.check_forwarding(off, None)  # the daemon could not be asked
    assert levels(unknown) == ["warning", "ok"]
    on = sysctls(net__ipv4__ip_forward="1", net__ipv6__conf__all__forwarding="1")
    assert levels(host_checks.check_forwarding(on, [NAT, DS])) == ["ok", "ok"]


def test_ipv6_disabled() -> None:
    off = sysctls(
        net__ipv6__conf__all__disable_ipv6="1", net__ipv6__conf__default__disable_ipv6="0"
    )
    (f,) = host_checks.check_ipv6(off, [NAT])
    assert f.level == "warning" and f.command == "sysctl -w net.ipv6.conf.all.disable_ipv6=0"
    (f,) = host_checks.check_ipv6(off, [DS])
    assert f.level == "error" and "ds" in f.what
    (f,) = host_checks.check_ipv6(sysctls(), [NAT])  # no /proc/sys/net/ipv6 at all
    assert f.level == "warning" and "ipv6.disable=1" in f.remedy
    on = sysctls(net__ipv6__conf__all__disable_ipv6="0", net__ipv6__conf__default__disable_ipv6="0")
    assert levels(host_checks.check_ipv6(on, [DS])) == ["ok"]


def test_kernel_config_and_module_paths() -> None:
    config = probe.parse_config(
        "CONFIG_VXLAN=m\n# CONFIG_VLAN_8021Q is not set\nCONFIG_NET_CLS_BPF=y\n"
        'CONFIG_NET_SCH_INGRESS=y\nCONFIG_LOCALVERSION=""\n'
    )
    assert config["CONFIG_VXLAN"] == "m" and "CONFIG_VLAN_8021Q" not in config
    assert levels(host_checks.check_vxlan(config, False, [])) == ["ok"]
    (f,) = host_checks.check_vxlan({}, False, [{"Name": "ov", "Driver": "overlay"}])
    assert f.level == "error" and "ov" in f.what
    assert levels(host_checks.check_vxlan({}, False, [NAT])) == ["warning"]
    mods = host_checks.check_modules(config, lambda m: False)
    assert levels(mods) == ["ok", "ok"]
    assert "absent" in mods[0].what and "eBPF" in mods[0].what
    assert "nftables netdev fwd" in mods[1].what
    assert levels(host_checks.check_bpf("", config)) == ["ok"]
    (f,) = host_checks.check_bpf("", {"CONFIG_NET_SCH_INGRESS": "y"})
    assert f.level == "warning" and "CONFIG_NET_CLS_BPF" in f.what


def test_nftables_refusals() -> None:
    good = {fam: "" for fam in host_checks.NFT_USES}
    assert levels(host_checks.check_nftables(good)) == ["ok"]
    bad = host_checks.check_nftables({**good, "bridge": "Error: Could not process rule"})
    assert levels(bad) == ["error"] and bad[0].check == "kernel.nftables.bridge"
    denied = {fam: "Error: Operation not permitted" for fam in good}
    assert levels(host_checks.check_nftables(denied)) == ["warning"]


def test_fd_limits() -> None:
    text = (
        "Limit                     Soft Limit           Hard Limit           Units\n"
        "Max open files            1024                 524288               files\n"
    )
    assert probe.parse_fd_limits(text) == (1024, 524288)
    (f,) = host_checks.check_fd_limit((1024, 524288), 42)
    assert f.level == "warning" and f.command == "prlimit --pid 42 --nofile=524288:524288"
    (f,) = host_checks.check_fd_limit((1024, 1024), 42)  # above the hard limit: root only
    assert f.command == "prlimit --pid 42 --nofile=1048576:1048576"
    assert levels(host_checks.check_fd_limit((524288, 524288), 42)) == ["ok"]
    # no daemon: a daemon started from this shell raises its soft limit to the hard one
    assert levels(host_checks.check_fd_limit((1024, 524288), 0)) == ["ok"]
    assert levels(host_checks.check_fd_limit((1024, 1024), 0)) == ["warning"]


# --- other firewalls -----------------------------------------------------------------


def match(key: str, value: Any) -> dict[str, Any]:
    return {"match": {"op": "==", "left": {"meta": {"key": key}}, "right": value}}


def rule(table: str, chain: str, *expr: dict[str, Any], family: str = "ip") -> dict[str, Any]:
    return {"rule": {"family": family, "table": table, "chain": chain, "expr": list(expr)}}


def chain(table: str, name: str, family: str = "ip", **base: Any) -> dict[str, Any]:
    return {"chain": {"family": family, "table": table, "name": name, **base}}


FORWARD_DROP = chain("filter", "FORWARD", type="filter", hook="forward", prio=0, policy="drop")
ACCEPT = {"accept": None}
COUNTER = {"counter": {"packets": 0, "bytes": 0}}
# what Docker (iptables-nft) makes, as `nft -j list ruleset` shows it
DOCKER = [
    {"table": {"family": "ip", "name": "filter"}},
    FORWARD_DROP,
    chain("filter", "DOCKER-USER"),
    chain("filter", "DOCKER"),
    rule("filter", "FORWARD", COUNTER, {"jump": {"target": "DOCKER-USER"}}),
    rule(
        "filter",
        "FORWARD",
        match("oifname", "docker0"),
        {"xt": {"type": "match", "name": "conntrack"}},
        COUNTER,
        ACCEPT,
    ),
    rule("filter", "DOCKER-USER", COUNTER, {"return": None}),
]


def test_docker_forward_drop_is_found_with_docker_user_remedy() -> None:
    (f,) = fw.check_forward_policy(DOCKER, ["hn-1234"], [NAT])
    assert f.level == "error" and "(docker)" in f.what and "hn-*" in f.what
    assert f.command == (
        "iptables-nft -I DOCKER-USER -i hn-+ -j ACCEPT && "
        "iptables-nft -I DOCKER-USER -o hn-+ -j ACCEPT"
    )
    # no hostnet network yet: a warning (nothing is broken yet)
    assert levels(fw.check_forward_policy(DOCKER, [], [])) == ["warning"]


def test_accept_rules_for_both_directions_make_it_ok() -> None:
    both = [
        *DOCKER,
        rule("filter", "DOCKER-USER", match("iifname", "hn-*"), COUNTER, ACCEPT),
        rule("filter", "DOCKER-USER", match("oifname", "hn-*"), COUNTER, ACCEPT),
    ]
    (f,) = fw.check_forward_policy(both, ["hn-1234"], [NAT])
    assert f.level == "ok" and "lets hostnet's switches through" in f.what
    one_way = both[:-1]
    assert levels(fw.check_forward_policy(one_way, ["hn-1234"], [NAT])) == ["error"]
    # an external switch too: hx-* is not let through
    (f,) = fw.check_forward_policy(both, ["hn-1234", "hx-abcd"], [NAT])
    assert f.level == "error" and "hx-*" in f.what and "hn-*" not in f.what


def test_accept_limited_to_other_traffic_does_not_count() -> None:
    limited = [
        chain("t", "fwd", hook="forward", type="filter", policy="drop"),
        rule(
            "t",
            "fwd",
            match("iifname", "hn-*"),
            {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established"]}},
            ACCEPT,
        ),
        rule("t", "fwd", match("oifname", {"set": ["eth0", "hn-*"]}), ACCEPT),
    ]
    (f,) = fw.check_forward_policy(limited, [], [NAT])
    assert f.level == "error" and f.command == (
        "nft 'insert rule ip t fwd iifname \"hn-*\" accept' && "
        "nft 'insert rule ip t fwd oifname \"hn-*\" accept'"
    )


def test_hostnet_tables_and_accepting_chains_are_not_reported() -> None:
    ruleset = [
        chain("hostnet", "forward", hook="forward", type="filter", policy="drop"),
        chain("other", "fwd", family="inet", hook="forward", type="filter", policy="accept"),
        chain("other", "input", family="inet", hook="input", type="filter", policy="drop"),
    ]
    (f,) = fw.check_forward_policy(ruleset, [], [NAT])
    assert f.level == "ok" and "no other firewall" in f.what


def test_firewalld_final_reject_and_ufw() -> None:
    firewalld = [
        chain("firewalld", "filter_FORWARD", family="inet", hook="forward", policy="accept"),
        rule("firewalld", "filter_FORWARD", {"reject": {"type": "icmpx"}}, family="inet"),
    ]
    (f,) = fw.check_forward_policy(firewalld, ["hn-1234"], [NAT])
    assert f.level == "error" and "(firewalld)" in f.what and "final reject" in f.what
    assert "firewall-cmd --zone=trusted --add-interface=hn-1234" in f.command
    ufw = [FORWARD_DROP, chain("filter", "ufw-before-forward")]
    (f,) = fw.check_forward_policy(ufw, ["hn-1234"], [NAT])
    assert "(ufw)" in f.what and "ufw route allow in on hn-1234" in f.command


def test_iptables_legacy_rules_are_read() -> None:
    save = (
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:DOCKER-USER - [0:0]\n"
        "-A FORWARD -j DOCKER-USER\n-A FORWARD ! -i docker0 -o docker0 -j ACCEPT\n"
        "-A DOCKER-USER -i hn-+ -j ACCEPT\nCOMMIT\n"
    )
    ruleset = fw.legacy_ruleset(save)
    (f,) = fw.check_forward_policy(ruleset, [], [NAT])
    assert f.level == "error" and "iptables-legacy" in f.what
    assert f.command.startswith("iptables-legacy -I DOCKER-USER -i hn-+ -j ACCEPT")
    fixed = fw.legacy_ruleset(save.replace("COMMIT", "-A DOCKER-USER -o hn-+ -j ACCEPT\nCOMMIT"))
    assert levels(fw.check_forward_policy(fixed, [], [NAT])) == ["ok"]


def test_br_netfilter() -> None:
    assert levels(fw.check_br_netfilter("0", DOCKER, [])) == ["ok"]
    assert levels(fw.check_br_netfilter(None, DOCKER, [])) == ["ok"]
    assert levels(fw.check_br_netfilter("1", [], [])) == ["ok"]
    (f,) = fw.check_br_netfilter("1", DOCKER, [])
    assert f.level == "warning" and "bridge-nf-call-iptables=0" in f.command


# --- adapters, MAC spoofing ---------------------------------------------------------


def link(name: str, kind: str | None = None, **extra: Any) -> dict[str, Any]:
    ln: dict[str, Any] = {"ifname": name, "link_type": "ether", **extra}
    if kind:
        ln["linkinfo"] = {"info_kind": kind}
    return ln


LINKS = [
    {"ifname": "lo", "link_type": "loopback"},
    link("eth0"),
    link("eth1", master="br0", linkinfo={"info_slave_kind": "bridge"}),
    link("eth2", master="hx-1234abcd"),
    link("br0", "bridge"),
    link("hx-1234abcd", "bridge"),
    link("hv0123456789", "veth", link_netnsid=1, master="hn-aaaa"),
    link("veth12ab", "veth", link_netnsid=2, master="docker0"),
    link("lab0", "veth", link_netnsid=0),
    link("pair0", "veth"),  # both ends here: not an adapter
]
SWITCHES = [
    {"Switch": "ext", "SwitchType": "External", "Adapter": "eth2", "Networks": "ext"},
    {"Switch": "nat", "SwitchType": "Internal", "Adapter": "-", "Networks": "nat"},
]


def test_adapters_found_and_foreign_bridge_reported() -> None:
    assert [a["ifname"] for a in adapter_checks.adapters(LINKS)] == [
        "eth0",
        "eth1",
        "eth2",
        "lab0",
    ]
    fs = adapter_checks.check_adapters(LINKS, ["eth0"], SWITCHES)
    assert levels(fs) == ["ok", "warning"]
    assert "eth0 (default route, free)" in fs[0].what and "eth2 (network ext)" in fs[0].what
    assert "takes eth0" in fs[0].what
    assert "eth1 is a port of bridge br0" in fs[1].what
    assert fs[1].command == "ip link set eth1 nomaster"
    free = [ln for ln in LINKS if ln["ifname"] != "eth1"]
    assert levels(adapter_checks.check_adapters(free, ["eth0"], None)) == ["ok"]


def test_mac_spoofing() -> None:
    nets = [{"Name": "ext", "Driver": "transparent"}]
    assert levels(adapter_checks.check_mac_spoofing("", nets, SWITCHES, {})) == ["ok"]
    (f,) = adapter_checks.check_mac_spoofing("microsoft", nets, SWITCHES, {"eth2": "hv_netvsc"})
    assert f.level == "warning" and "ext on eth2 (hv_netvsc)" in f.what
    assert "MacAddressSpoofing On" in f.remedy and "l2bridge" in f.remedy
    (f,) = adapter_checks.check_mac_spoofing("kvm", [NAT], SWITCHES, {})
    assert f.level == "ok" and "no transparent network" in f.what and "l2bridge" in f.why
    # a veth (a lab's adapter) is no device the hypervisor filters: a note, not a warning
    (f,) = adapter_checks.check_mac_spoofing("kvm", nets, SWITCHES, {})
    assert f.level == "ok" and "virtual links: ext on eth2" in f.what


# --- etcd -------------------------------------------------------------------------------


def test_store_urls() -> None:
    assert store_checks.members("etcd://10.0.0.1:2379, 10.0.0.2:2379") == [
        "http://10.0.0.1:2379",
        "http://10.0.0.2:2379",
    ]
    assert store_checks.members("etcds://e:2379/") == ["https://e:2379"]
    for bad in ("sqlite:///x.db", "etcd://", "10.0.0.1:2379"):
        with pytest.raises(InvalidRequest, match="not an etcd store URL"):
            store_checks.members(bad)


def test_etcd_members_and_clock() -> None:
    up = store_checks.Answer("http://a:2379", version="3.4.23", healthy=True, skew_s=0.4)
    down = store_checks.Answer("http://b:2379", problem="[Errno 111] Connection refused")
    sick = store_checks.Answer("http://c:2379", version="3.4.23", healthy=False)
    assert levels(store_checks.check_members([up])) == ["ok"]
    fs = store_checks.check_members([up, down])
    assert levels(fs) == ["ok", "warning"] and "b:2379 is not reachable" in fs[1].what
    assert levels(store_checks.check_members([down])) == ["error"]
    assert levels(store_checks.check_members([sick])) == ["error"]
    assert levels(store_checks.check_clock([up, down])) == ["ok"]
    late = store_checks.Answer("http://a:2379", healthy=True, skew_s=-42.2)
    (f,) = store_checks.check_clock([up, late])
    assert f.level == "warning" and "42 s behind" in f.what and "set-ntp" in f.remedy
    assert store_checks.check_clock([down]) == []
