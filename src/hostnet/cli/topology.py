"""``hostnet topology``: the host's switches, adapters, networks, endpoints and
compartments, built from the daemon's API (GET /switches, /networks, /containers), drawn
as a text tree or as a Graphviz graph (DOT, or SVG through ``dot``).

``build`` is pure (JSON in, a graph out); a compartment with endpoints on several
networks is one node with an edge from each (the tree repeats it under each endpoint).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from hostnet.errors import HostnetError


@dataclass(frozen=True)
class Node:
    key: str
    kind: str  # host, switch, adapter, network, endpoint, compartment
    title: str
    detail: str = ""

    def line(self) -> str:
        """The node on one line (the tree); DOT puts the detail on a line of its own."""
        return f"{self.title} ({self.detail})" if self.detail else self.title


@dataclass
class Topology:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)  # parent, child; in order
    root: str = "host"

    def add(self, parent: str, node: Node) -> None:
        self.nodes.setdefault(node.key, node)
        if (parent, node.key) not in self.edges:
            self.edges.append((parent, node.key))

    def children(self, key: str) -> list[Node]:
        return [self.nodes[c] for p, c in self.edges if p == key]


def _addresses(*pairs: tuple[str, int | None]) -> str:
    return " ".join(f"{ip}/{n}" if n else ip for ip, n in pairs if ip)


def _network(key: str, n: dict[str, Any]) -> Node:
    parts = [n.get("Driver", "")] + [s for s in (n.get("Subnet"), n.get("SubnetIPv6")) if s]
    if n.get("Internal"):
        parts.append("internal")
    return Node(key, "network", f"network {n['Name']}", ", ".join(p for p in parts if p))


def _switch(s: dict[str, Any]) -> Node:
    extra = [s.get("SwitchType", ""), s.get("Kernel", "")]
    if s.get("VLAN") not in (None, "", "-"):
        extra.append(f"VLAN {s['VLAN']}")
    key = f"switch:{s.get('Kernel') or s['Switch']}"
    return Node(key, "switch", f"switch {s['Switch']}", ", ".join(x for x in extra if x))


def _adapter(name: str, s: dict[str, Any]) -> Node:
    detail = (
        f"VXLAN {s.get('VNI')}, VTEP {s.get('VTEP')}" if s.get("SwitchType") == "Overlay" else ""
    )
    return Node(f"adapter:{name}", "adapter", f"adapter {name}", detail)


def _endpoint(key: str, ep: dict[str, Any]) -> Node:
    addrs = _addresses(
        (ep.get("IPAddress", ""), ep.get("PrefixLength")),
        (ep.get("GlobalIPv6Address", ""), ep.get("GlobalIPv6PrefixLen")),
    )
    title = " ".join(x for x in (f"endpoint {ep.get('IfName', '')}", addrs) if x)
    mac, vnic = ep.get("MacAddress", ""), ep.get("HostIfName", "")
    detail = ", ".join(x for x in (mac, f"vNIC {vnic}" if vnic else "") if x)
    return Node(key, "endpoint", title, detail)


def build(
    switches: list[dict[str, Any]],
    networks: list[dict[str, Any]],
    containers: list[dict[str, Any]],
    instance: str = "",
) -> Topology:
    topo = Topology()
    detail = "compartment 1" + (f", hostnet instance {instance}" if instance else "")
    topo.nodes["host"] = Node("host", "host", "host", detail)
    by_name = {n["Name"]: n for n in networks}
    net_key: dict[str, str] = {}
    for s in switches:
        sw = _switch(s)
        topo.add("host", sw)
        adapter = s.get("Adapter") or "-"
        for a in adapter.split(",") if adapter != "-" else []:
            topo.add(sw.key, _adapter(a, s))
        if s.get("Networks") in (None, "", "-"):
            continue  # a bridge made outside hostnet that no network uses
        n = by_name.get(s.get("Networks", ""), {"Name": s.get("Networks", "?")})
        net_key[n["Name"]] = f"network:{n.get('Id') or n['Name']}"
        topo.add(sw.key, _network(net_key[n["Name"]], n))
    for n in networks:  # a network the switch list missed still shows
        if n["Name"] not in net_key:
            net_key[n["Name"]] = f"network:{n.get('Id') or n['Name']}"
            topo.add("host", _network(net_key[n["Name"]], n))
    for c in containers:
        stopped = "" if c.get("Running", True) else ", stopped"
        comp = Node(
            f"compartment:{c['Id']}",
            "compartment",
            f"compartment {c.get('CompartmentId')}: container {c['Name']}",
            f"{c.get('Netns', '')}{stopped}",
        )
        eps = c.get("Networks") or {}
        if not eps:
            topo.add("host", comp)
        for net_name, ep in eps.items():
            ep_node = _endpoint(f"endpoint:{ep.get('Id') or c['Id'] + net_name}", ep)
            topo.add(net_key.get(net_name, "host"), ep_node)
            topo.add(ep_node.key, comp)
    return topo


def render_tree(topo: Topology) -> str:
    lines = [topo.nodes[topo.root].line()]

    def walk(key: str, prefix: str) -> None:
        kids = topo.children(key)
        for i, child in enumerate(kids):
            last = i == len(kids) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{child.line()}")
            walk(child.key, prefix + ("    " if last else "│   "))

    walk(topo.root, "")
    return "\n".join(lines)


SHAPES = {
    "host": "house",
    "switch": "box",
    "adapter": "cds",
    "network": "ellipse",
    "endpoint": "oval",
    "compartment": "box3d",
}


def _quote(text: str) -> str:
    """A DOT string: backslashes and quotes escaped, newlines as DOT's centred line break."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def render_dot(topo: Topology) -> str:
    lines = [
        "digraph hostnet {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
    ]
    for node in topo.nodes.values():
        style = ', style="rounded,filled", fillcolor="#e8f0fe"' if node.kind == "switch" else ""
        label = _quote(f"{node.title}\n{node.detail}" if node.detail else node.title)
        lines.append(f"  {_quote(node.key)} [label={label}, shape={SHAPES[node.kind]}{style}];")
    for parent, child in topo.edges:
        lines.append(f"  {_quote(parent)} -> {_quote(child)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(dot: str) -> str:
    """The graph drawn by Graphviz' ``dot``."""
    exe = shutil.which("dot")
    if exe is None:
        raise HostnetError(
            "cannot draw SVG: Graphviz' dot is not installed",
            "install Debian's graphviz package (apt-get install graphviz), or use --format dot",
        )
    res = subprocess.run([exe, "-Tsvg"], input=dot, capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise HostnetError(f"dot failed: {res.stderr.strip()[:500]}", "this is a hostnet bug")
    return res.stdout
