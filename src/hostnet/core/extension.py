"""``hostnet switch extension NAME``: the seed's Get-VMSwitchExtension for the VFP extension.

On Windows, VFP is the switch extension that does NAT, encapsulation, MAC rewrite and
policy. Here those are kernel pieces (nft tables, chains and sets, VXLAN devices, eBPF
programs, qdiscs): the view lists the pieces that serve one switch and whether each is in
the kernel now, with Get-VMSwitchExtension's summary fields (Enabled: hostnet serves the
switch; Running: every piece is there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import hostnet
from hostnet.errors import NotFound
from hostnet.kernel import datapath as dp

if TYPE_CHECKING:
    from hostnet.core.service import HostNetworkingService
    from hostnet.model import Network

NAME = "Microsoft Azure VFP Switch Extension"
VENDOR = "hostnet (the Linux kernel datapath)"


def find_network(svc: HostNetworkingService, name: str) -> Network | None:
    """By the switch name ``switch ls`` shows (networkname, else the network's name), its
    kernel bridge, or the network's name or id."""
    for net in svc.nets.values():
        if name in (net.options.get("networkname", net.name), net.switch):
            return net
    try:
        return svc.network(name)
    except NotFound:
        return None


def switch_extension(svc: HostNetworkingService, name: str) -> dict[str, Any]:
    snap = dp.Snapshot.read(svc.host)
    net = find_network(svc, name)
    if net is None:
        bridge = snap.links.get(name)
        if bridge is None or bridge["kind"] != "bridge":
            raise NotFound(
                f"no switch named {name!r}",
                "name one that 'hostnet switch ls' shows (its Switch or Kernel column)",
            )
        ports = [ln["name"] for ln in snap.links.values() if ln["master"] == bridge["index"]]
        return render_unmanaged(name, ports)
    pieces = svc.driver_of(net).datapath(net, svc.endpoints_on(net))
    return render(net, pieces, [snap.has(p) for p in pieces])


def _summary(switch: str, kernel: str, enabled: bool, running: bool) -> dict[str, Any]:
    return {
        "Name": NAME,
        "Vendor": VENDOR,
        "Version": hostnet.__version__,
        "ExtensionType": "Forwarding",
        "SwitchName": switch,
        "Kernel": kernel,
        "Enabled": enabled,
        "Running": running,
    }


def render(net: Network, pieces: list[dp.Piece], present: list[bool]) -> dict[str, Any]:
    """The view of a hostnet network's switch, given which pieces are present."""
    rows = [
        {"Kind": p.kind, "Name": p.name, "Role": p.role, "Present": ok}
        for p, ok in zip(pieces, present, strict=True)
    ]
    return {
        **_summary(net.options.get("networkname", net.name), net.switch, True, all(present)),
        "SwitchId": net.id,
        "Network": net.name,
        "Driver": net.driver,
        "Missing": [r["Name"] for r in rows if not r["Present"]],
        "Pieces": rows,
    }


def render_unmanaged(bridge: str, ports: list[str]) -> dict[str, Any]:
    """A bridge no hostnet network uses: no hostnet datapath serves it."""
    rows = [{"Kind": "link", "Name": bridge, "Role": "the switch (not hostnet's)", "Present": True}]
    rows += [
        {"Kind": "port", "Name": p, "Role": "a port (not hostnet's)", "Present": True}
        for p in sorted(ports)
    ]
    return {
        **_summary(bridge, bridge, False, False),
        "SwitchId": "",
        "Network": "",
        "Driver": "",
        "Note": f"{bridge} is not managed by hostnet: no hostnet network uses it "
        f"(use it with 'hostnet network create -d transparent -o switch={bridge} NAME')",
        "Missing": [],
        "Pieces": rows,
    }
