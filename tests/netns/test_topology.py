"""hostnet topology of a lab host: its networks and containers as a tree, and as a graph
Graphviz' dot parses."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from lab import Lab


def test_tree_dot_and_svg_show_networks_and_containers(lab: Lab) -> None:
    d, _ = lab.host("h1")
    lab.adapter(d.host, "eth1")
    d.cli("network", "create", "--subnet", "172.20.1.0/24", "n1")
    d.cli(
        "network",
        "create",
        "-d",
        "transparent",
        "--subnet",
        "198.51.100.0/24",
        "-o",
        "interface=eth1",
        "ext",
    )
    d.cli("run", "-d", "--net", "n1", "--name", "web", "--", "sleep", "300")
    d.cli("run", "-d", "--net", "n1", "--net", "nat", "--name", "db", "--", "sleep", "300")
    d.cli("network", "connect", "--ip", "198.51.100.77", "ext", "db")

    tree = d.cli("topology").stdout
    lines = tree.splitlines()
    assert lines[0].startswith("host (compartment 1, hostnet instance ")
    for text in (
        "switch n1 (Internal, hn-",
        "network n1 (nat, 172.20.1.0/24)",
        "network nat (nat, 172.16.0.0/16)",
        "switch ext (External, hx-",
        "adapter eth1",
        "network ext (transparent, 198.51.100.0/24)",
        "endpoint eth2 198.51.100.77/24",
        ": container web (",
    ):
        assert text in tree, tree
    assert tree.count(": container db (") == 3  # under each of its three endpoints
    # the tree's nesting: an endpoint under its network, its compartment under it
    i = next(n for n, ln in enumerate(lines) if "network ext" in ln)
    assert "endpoint eth2 198.51.100.77/24" in lines[i + 1]
    assert "container db" in lines[i + 2]
    assert lines[i + 2].index("compartment") > lines[i + 1].index("endpoint")

    dot = d.cli("topology", "--format", "dot").stdout
    assert dot.count(": container db\\n") == 1  # one node, an edge from each endpoint
    if shutil.which("dot") is None:
        pytest.skip("needs Graphviz (scripts/test.sh installs it)")
    res = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    for name in ("container web", "container db", "network n1", "network ext", "adapter eth1"):
        assert name in res.stdout
    svg = d.cli("topology", "--format", "svg").stdout
    assert svg.lstrip().startswith("<?xml") and "container web" in svg
