"""Adapter names (name, else alias), bridges made outside hostnet, -o switch= checks, and the
switch extension view, on canned link dumps and rulesets (no root, no kernel)."""

from __future__ import annotations

from typing import Any

import pytest

from hostnet.core import extension
from hostnet.drivers import foreign
from hostnet.errors import Conflict, InvalidRequest, NotFound
from hostnet.kernel import datapath as dp
from hostnet.kernel.adapters import Link, is_adapter, resolve
from hostnet.model import Network
from hostnet.rest import views


def ln(index: int, name: str, kind: str | None = None, **kw: Any) -> Link:
    base = Link(
        index=index,
        name=name,
        kind=kind,
        master=None,
        alias="",
        mac=f"02:00:00:00:00:{index:02x}",
        mtu=1500,
        up=True,
        ether=True,
        peer_elsewhere=False,
    )
    base.update(kw)  # type: ignore[typeddict-item]
    return base


LINKS = [
    ln(1, "lo", ether=False),
    ln(2, "eth0"),
    ln(3, "eth1", alias="Ethernet", master=6),
    ln(4, "eth2", "veth", peer_elsewhere=True, alias="Ethernet 2"),
    ln(5, "vethab12", "veth", peer_elsewhere=True, master=7),  # a Docker container's
    ln(6, "br-oob", "bridge"),
    ln(7, "docker0", "bridge"),
    ln(8, "hx-1234abcd", "bridge", alias="hostnet:9f1e"),
    ln(9, "hv1234567890", "veth", peer_elsewhere=True, alias="hostnet:9f1e", master=8),
    ln(10, "eth3", master=8),
]


def test_an_adapter_is_named_by_its_name_else_its_alias_in_any_case() -> None:
    assert resolve("eth1", LINKS) == "eth1"
    assert resolve("Ethernet", LINKS) == "eth1"
    assert resolve("ETHERNET 2", LINKS) == "eth2"
    # a name wins over another link's alias
    assert resolve("eth0", [*LINKS, ln(11, "x", alias="eth0")]) == "eth0"


def test_an_unknown_adapter_name_lists_the_adapters_with_their_aliases() -> None:
    with pytest.raises(NotFound) as err:
        resolve("Wi-Fi", LINKS)
    assert "'Wi-Fi' does not exist" in err.value.message
    assert "eth1 (alias 'Ethernet')" in err.value.remedy
    assert "eth2 (alias 'Ethernet 2')" in err.value.remedy and "eth0" in err.value.remedy
    for not_an_adapter in ("vethab12", "hv1234567890", "br-oob", "lo"):
        assert not_an_adapter not in err.value.remedy


def test_an_alias_two_links_share_is_ambiguous() -> None:
    with pytest.raises(Conflict, match="ambiguous"):
        resolve("dup", [ln(2, "eth0", alias="dup"), ln(3, "eth1", alias="DUP")])


def test_adapters_are_ethernet_devices_or_veths_to_elsewhere_not_hostnets_or_runtimes() -> None:
    assert [x["name"] for x in LINKS if is_adapter(x)] == ["eth0", "eth1", "eth2", "eth3"]


def test_switch_ls_lists_foreign_bridges_and_who_likely_made_them() -> None:
    rows = views.foreign_switches(LINKS, used=set())
    assert [r["Switch"] for r in rows] == ["br-oob", "docker0"]  # not hostnet's hx-
    oob, docker = rows
    assert oob["SwitchType"] == views.FOREIGN_TYPE == "External (not managed by hostnet)"
    assert oob["Adapter"] == "eth1" and oob["PortNames"] == ["eth1"] and oob["Ports"] == 1
    assert oob["Origin"] == "out of band"
    assert docker["Adapter"] == "-" and docker["PortNames"] == ["vethab12"]
    assert docker["Origin"] == "Docker (likely)"
    assert views.foreign_switches(LINKS, used={"br-oob"})[0]["Switch"] == "docker0"
    assert views.likely_maker("br-0123456789ab") == "Docker (likely)"
    assert views.likely_maker("virbr0") == "libvirt (likely)"


def _net(**opts: str) -> Network:
    return Network(id="ab" * 16, name="oob", driver="transparent", subnet="", gateway="",
                   options=opts, switch="hx-abababab")  # fmt: skip


def test_switch_option_adopts_the_bridge_and_its_adapter() -> None:
    net = _net(switch="br-oob")
    foreign.adopt(net, [], LINKS, "transparent")
    assert net.switch == "br-oob" and net.options["interface"] == "eth1"
    net = _net(switch="br-oob", interface="eth1")
    foreign.adopt(net, [], LINKS, "l2bridge")
    assert net.options["interface"] == "eth1"
    net = _net(switch="docker0")  # no adapter port: transparent only
    foreign.adopt(net, [], LINKS, "transparent")
    assert "interface" not in net.options


@pytest.mark.parametrize(
    ("opts", "driver", "error", "says"),
    [
        ({"switch": "br-none"}, "transparent", NotFound, "does not exist"),
        ({"switch": "eth0"}, "transparent", InvalidRequest, "not a bridge"),
        ({"switch": "hx-1234abcd"}, "transparent", Conflict, "one hostnet made"),
        ({"switch": "br-oob", "interface": "eth0"}, "transparent", InvalidRequest, "not a port"),
        ({"switch": "br-oob", "interface": "eth0,eth2"}, "transparent", InvalidRequest, "team"),
        ({"switch": "docker0"}, "l2bridge", InvalidRequest, "no adapter"),
    ],
)
def test_switch_option_refusals(
    opts: dict[str, str], driver: str, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        foreign.adopt(_net(**opts), [], LINKS, driver)


def test_a_bridge_is_one_networks_switch() -> None:
    other = _net(switch="br-oob").model_copy(update={"name": "first", "switch": "br-oob"})
    with pytest.raises(Conflict, match="already the switch of network 'first'"):
        foreign.adopt(_net(switch="br-oob"), [other], LINKS, "transparent")


def test_several_adapter_ports_need_interface() -> None:
    links = [*LINKS, ln(12, "eth4", master=6)]
    with pytest.raises(InvalidRequest, match="several adapters"):
        foreign.adopt(_net(switch="br-oob"), [], links, "transparent")


RULESET: list[dict[str, Any]] = [
    {"metainfo": {"version": "1.0.6"}},
    {"table": {"family": "bridge", "name": "hostnet_acl_default"}},
    {"chain": {"family": "bridge", "table": "hostnet_acl_default", "name": "into"}},
    {"set": {"family": "bridge", "table": "hostnet_acl_default", "name": "ruled", "elem": []}},
    {"table": {"family": "ip", "name": "hostnet"}},
    {"set": {"family": "ip", "table": "hostnet", "name": "bridges", "elem": ["hn-1"]}},
    {"map": {"family": "ip", "table": "hostnet", "name": "pm_any", "map": "x", "elem": []}},
]


def _snapshot() -> dp.Snapshot:
    tc = {"hv1234567890": {"qdiscs": ["clsact"], "ingress": ["hn_vlan_push"], "egress": []}}
    return dp.Snapshot(LINKS, RULESET, lambda dev: tc.get(dev, {}))


def test_pieces_are_checked_against_the_snapshot() -> None:
    snap = _snapshot()
    yes = [
        dp.link("hx-1234abcd", "bridge", ""),
        dp.link("eth3", "*", ""),
        dp.port("hv1234567890", "hx-1234abcd", ""),
        dp.nft_table("ip", "hostnet", ""),
        dp.nft_chain("bridge", "hostnet_acl_default", "into", ""),
        dp.nft_set("ip", "hostnet", "pm_any", ""),  # a map counts
        dp.nft_element("ip", "hostnet", "bridges", "hn-1", ""),
        dp.bpf("hv1234567890", "ingress", "hn_vlan_push", ""),
        dp.qdisc("hv1234567890", "clsact", ""),
    ]
    no = [
        dp.link("hx-1234abcd", "vxlan", ""),
        dp.port("eth2", "br-oob", ""),
        dp.nft_table("bridge", "hostnet", ""),
        dp.nft_chain("ip", "hostnet", "portmap", ""),
        dp.nft_element("ip", "hostnet", "bridges", "hn-2", ""),
        dp.bpf("hv1234567890", "egress", "hn_vlan_pop", ""),
        dp.bpf("hv-gone", "ingress", "hn_vlan_push", ""),
        dp.qdisc("hv1234567890", "tbf", ""),
    ]
    assert [snap.has(p) for p in yes] == [True] * len(yes)
    assert [snap.has(p) for p in no] == [False] * len(no)


def test_the_extension_view_shapes_get_vmswitchextension() -> None:
    net = _net(networkname="MySwitch").model_copy(update={"switch": "hx-1234abcd"})
    pieces = [
        dp.link("hx-1234abcd", "bridge", "the switch"),
        dp.bpf("hv1234567890", "egress", "hn_vlan_pop", "VLAN 7: untag frames in"),
    ]
    view = extension.render(net, pieces, [True, False])
    assert view["Name"] == "Microsoft Azure VFP Switch Extension"
    assert (view["SwitchName"], view["Kernel"], view["Network"]) == (
        "MySwitch",
        "hx-1234abcd",
        "oob",
    )
    assert view["Enabled"] is True and view["Running"] is False
    assert view["Missing"] == ["hv1234567890 egress hn_vlan_pop"]
    assert view["Pieces"][0] == {
        "Kind": "link",
        "Name": "hx-1234abcd bridge",
        "Role": "the switch",
        "Present": True,
    }
    assert extension.render(net, pieces[:1], [True])["Running"] is True
    other = extension.render_unmanaged("br-oob", ["eth1"])
    assert other["Enabled"] is False and other["Running"] is False
    assert [p["Name"] for p in other["Pieces"]] == ["br-oob", "eth1"]
