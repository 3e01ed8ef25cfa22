"""overlay: one L2 network across hosts, VXLAN on the wire.

On each host a network is a bridge (``ho-…``, no address: the overlay is pure L2 and
reaches nothing outside; a second endpoint on a nat network does) with a VXLAN device
(``vo-…``) on it. The VXLAN device learns nothing and never floods: the service
programs one FDB entry (MAC -> the owning host's VTEP) and one proxy-ARP neighbour per
remote endpoint from the cluster store's registry, and updates them from its watch.
"""

from __future__ import annotations

from typing import Any, ClassVar

from hostnet.drivers import vnic
from hostnet.drivers.base import Driver
from hostnet.errors import InvalidRequest
from hostnet.kernel import datapath as dp
from hostnet.kernel.handles import Kernel
from hostnet.model import Container, Endpoint, Network, PortMapping, switch_mac

VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
UNDERLAY_MTU = 1500
SWITCH_PREFIX = "ho-"
VXLAN_PREFIX = "vo-"
VNI_OPTION = "com.docker.network.driver.overlay.vxlanid_list"
FIRST_VNI = 4097


def vxlan_of(net: Network) -> str:
    return VXLAN_PREFIX + net.id[:8]


class OverlayDriver(Driver):
    name = "overlay"
    routes_out = False
    acl_allow_all = True
    switch_prefix = SWITCH_PREFIX
    options: ClassVar[dict[str, tuple[str, str]]] = {
        "vxlanid": ("int", "the VXLAN network identifier (allocated cluster-wide if not given)"),
        "mtu": ("int", "MTU of the endpoints (default: the underlay's 1500 minus 50 for VXLAN)"),
        "dnssuffix": ("str", "DNS search suffix handed to endpoints"),
        "dnsservers": ("str", "comma list of DNS servers handed to endpoints"),
        "discovery": ("bool", "embedded DNS: containers resolve each other's names (default true)"),
        "encrypted": ("bool", "IPsec between hosts: not supported"),
    }
    aliases: ClassVar[dict[str, str]] = {
        VNI_OPTION: "vxlanid",
        "com.docker.network.driver.mtu": "mtu",
    }

    def __init__(self, kernel: Kernel, owner: str) -> None:
        super().__init__(kernel, owner)
        self.vtep = ""  # this host's underlay address, set by the daemon

    def normalize_options(self, given: dict[str, str]) -> dict[str, str]:
        out = super().normalize_options(given)
        if out.get("encrypted") == "true":
            raise InvalidRequest(
                "--opt encrypted is not supported: overlay traffic is not encrypted",
                "leave it out; protect the underlay (e.g. a private VLAN) instead",
            )
        out.pop("encrypted", None)
        if "vxlanid" in out:
            vni = int(out["vxlanid"].split(",")[0])
            if not 1 <= vni <= 16777215:
                raise InvalidRequest(
                    f"VXLAN id {vni} is out of range", "give a VNI between 1 and 16777215"
                )
            out["vxlanid"] = str(vni)
        return out

    def mtu(self, net: Network) -> int:
        return int(net.options.get("mtu", UNDERLAY_MTU - VXLAN_OVERHEAD))

    def ensure_network(self, net: Network) -> None:
        if not self.vtep:
            raise InvalidRequest(
                "overlay networks need a cluster store and this host's underlay address",
                "start hostnetd with --store etcd://... and --advertise-addr IP",
            )
        mac = switch_mac(net.id, self.vtep)  # one network, a switch on each host
        idx = self.host.ensure_bridge(net.switch, self.mtu(net), self.owner, mac)
        self.host.ensure_vxlan(
            vxlan_of(net), int(net.options["vxlanid"]), self.vtep, self.mtu(net), idx, self.owner
        )

    def remove_network(self, net: Network) -> None:
        self.host.delete_link(vxlan_of(net))
        self.host.delete_link(net.switch)

    def attach(self, net: Network, ep: Endpoint, c: Container, default_route: bool) -> None:
        # no default route: an overlay reaches only itself (the seeds' rule); a nat
        # endpoint of the same container gives the way out
        vnic.plug(
            self.kernel,
            net,
            ep,
            c,
            default_route=False,
            mtu=self.mtu(net),
            owner=self.owner,
            isolated=False,
        )
        if ep.bandwidth:
            vnic.limit(self.kernel, ep, c)
        self.apply_acl(ep, net)

    def detach(self, net: Network, ep: Endpoint, c: Container) -> None:
        self.remove_acl(ep, net)

    def add_ports(self, ep: Endpoint, added: list[PortMapping]) -> None:
        raise InvalidRequest("the overlay driver publishes no ports", "publish on a nat network")

    def remove_ports(self, ep: Endpoint, removed: list[PortMapping]) -> None:
        raise InvalidRequest("the overlay driver publishes no ports")

    def endpoint_present(self, net: Network, ep: Endpoint) -> bool:
        return vnic.present(self.rt, net, ep)

    def datapath(self, net: Network, eps: list[Endpoint]) -> list[dp.Piece]:
        vx = dp.port(vxlan_of(net), net.switch, "VXLAN device: encapsulation to other hosts")
        out = super().datapath(net, eps)
        out.insert(1, vx)
        return out

    def switch_view(self, net: Network) -> dict[str, Any]:
        return {
            "Type": "Overlay",
            "Adapter": vxlan_of(net),
            "Kernel": net.switch,
            "VNI": int(net.options.get("vxlanid", 0)),
            "VTEP": self.vtep,
        }
