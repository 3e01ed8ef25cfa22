"""hostnet topology: the graph built from the API's answers, drawn as a tree and as DOT."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from hostnet.cli import topology as topo

SWITCHES = [
    {
        "Switch": "ext",
        "SwitchType": "External",
        "Adapter": "eth1,eth2",
        "VLAN": "11",
        "Kernel": "hx-eca22506",
        "Networks": "ext",
    },
    {"Switch": "web", "SwitchType": "Internal", "Adapter": "-", "VLAN": "-", "Kernel": "hn-cb2b"},
    {
        "Switch": "ov1",
        "SwitchType": "Overlay",
        "Adapter": "vo-4097",
        "VLAN": "-",
        "Kernel": "ho-1234",
        "Networks": "ov1",
        "VNI": 4097,
        "VTEP": "198.51.100.2",
    },
]
SWITCHES[1]["Networks"] = "web"
NETWORKS = [
    {"Name": "ext", "Id": "e1", "Driver": "transparent", "Subnet": "198.51.100.0/24"},
    {
        "Name": "web",
        "Id": "w1",
        "Driver": "nat",
        "Subnet": "172.20.1.0/24",
        "SubnetIPv6": "fd00:1::/64",
    },
    {"Name": "ov1", "Id": "o1", "Driver": "overlay", "Subnet": "10.0.9.0/24", "Internal": False},
]


def endpoint(eid: str, ifname: str, ip: str, ip6: str = "") -> dict[str, Any]:
    return {
        "Id": eid,
        "IfName": ifname,
        "HostIfName": "hv" + eid,
        "IPAddress": ip,
        "PrefixLength": 24,
        "GlobalIPv6Address": ip6,
        "GlobalIPv6PrefixLen": 64 if ip6 else 0,
        "MacAddress": "02:42:ac:14:01:03",
    }


CONTAINERS = [
    {
        "Id": "c-db",
        "Name": "db",
        "CompartmentId": 3,
        "Netns": "hn10f3-db",
        "Running": True,
        "Networks": {
            "web": endpoint("ep1", "eth0", "172.20.1.3", "fd00:1::3"),
            "ext": endpoint("ep2", "eth1", "198.51.100.50"),
        },
    },
    {"Id": "c-idle", "Name": 'odd "name"', "CompartmentId": 4, "Netns": "hn10f3-x", "Networks": {}},
]


def graph() -> topo.Topology:
    return topo.build(SWITCHES, NETWORKS, CONTAINERS, "10f3")


def test_tree() -> None:
    assert topo.render_tree(graph()) == "\n".join(
        [
            "host (compartment 1, hostnet instance 10f3)",
            "├── switch ext (External, hx-eca22506, VLAN 11)",
            "│   ├── adapter eth1",
            "│   ├── adapter eth2",
            "│   └── network ext (transparent, 198.51.100.0/24)",
            "│       └── endpoint eth1 198.51.100.50/24 (02:42:ac:14:01:03, vNIC hvep2)",
            "│           └── compartment 3: container db (hn10f3-db)",
            "├── switch web (Internal, hn-cb2b)",
            "│   └── network web (nat, 172.20.1.0/24, fd00:1::/64)",
            "│       └── endpoint eth0 172.20.1.3/24 fd00:1::3/64 (02:42:ac:14:01:03, vNIC hvep1)",
            "│           └── compartment 3: container db (hn10f3-db)",
            "├── switch ov1 (Overlay, ho-1234)",
            "│   ├── adapter vo-4097 (VXLAN 4097, VTEP 198.51.100.2)",
            "│   └── network ov1 (overlay, 10.0.9.0/24)",
            '└── compartment 4: container odd "name" (hn10f3-x)',
        ]
    )


def test_dot_has_each_compartment_once_with_an_edge_per_endpoint() -> None:
    dot = topo.render_dot(graph())
    assert dot.startswith("digraph hostnet {") and dot.rstrip().endswith("}")
    assert dot.count('"compartment:c-db" [') == 1
    assert '"endpoint:ep1" -> "compartment:c-db";' in dot
    assert '"endpoint:ep2" -> "compartment:c-db";' in dot
    assert 'label="compartment 4: container odd \\"name\\"\\nhn10f3-x"' in dot
    assert '"switch:hx-eca22506" -> "adapter:eth2";' in dot


@pytest.mark.skipif(
    shutil.which("dot") is None, reason="needs Graphviz (scripts/test.sh installs it)"
)
def test_dot_parses() -> None:
    res = subprocess.run(
        ["dot", "-Tsvg"], input=topo.render_dot(graph()), capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert "<svg" in res.stdout and "container db" in res.stdout
    assert topo.to_svg(topo.render_dot(graph())).count("<svg") == 1


def test_svg_without_graphviz_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)
    with pytest.raises(topo.HostnetError, match="Graphviz") as exc:
        topo.to_svg("digraph {}")
    assert "graphviz package" in exc.value.remedy


def test_empty_host() -> None:
    assert topo.render_tree(topo.build([], [], [])) == "host (compartment 1)"
