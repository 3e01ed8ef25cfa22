"""A compartment's vNIC on a switch: the veth pair every driver plugs the same way."""

from __future__ import annotations

import contextlib
import os

from hostnet import acl
from hostnet.errors import HostnetError, KernelError
from hostnet.kernel import netns, tc
from hostnet.kernel.links import Netlink
from hostnet.kernel.nft import Nft
from hostnet.kernel.rtnl import IFF_UP, Rtnl
from hostnet.model import Container, Endpoint, Network


def plug(
    rt: Rtnl,
    net: Network,
    ep: Endpoint,
    c: Container,
    *,
    default_route: bool,
    mtu: int,
    owner: str,
    isolated: bool,
) -> bool:
    """Ensure the veth pair exists, sits on the switch and is configured inside.

    Returns True when the pair was created now (False when it was there already).
    """
    bridge = rt.link(net.switch)
    if bridge is None:
        raise KernelError(
            f"switch {net.switch} of network {net.name} is missing",
            "run 'hostnet system reconcile'",
        )
    info = rt.link(ep.host_ifname)
    if info is None and ep.runtime_moves_peer:
        # Docker moves the peer into the sandbox itself (Join) and configures it there.
        rt.create_veth(ep.host_ifname, ep.ifname, None, ep.mac, bridge["index"], mtu)
    elif info is None:
        fd = os.open(netns.path_of(c.netns), os.O_RDONLY)
        try:
            rt.create_veth(ep.host_ifname, ep.ifname, fd, ep.mac, bridge["index"], mtu)
        finally:
            os.close(fd)
    elif info["master"] != bridge["index"] or not info["flags"] & IFF_UP:
        rt.set_master_up(ep.host_ifname, bridge["index"])
    rt.set_bridge_port(ep.host_ifname, owner, hairpin=True, isolated=isolated)
    if not ep.runtime_moves_peer:
        with Rtnl(c.netns) as inside:
            if ep.dhcp:  # up, unaddressed: the DHCP client configures it
                inside.set_up("lo")
                inside.set_up(ep.ifname)
            else:
                inside.configure_inside(
                    ep.ifname, ep.ip, ep.prefix_len, ep.gateway if default_route else None
                )
    return info is None


def add_routes(ep: Endpoint, c: Container) -> None:
    """The endpoint's SDNRoute policies, as routes inside its compartment."""
    if not ep.routes or ep.runtime_moves_peer:
        return
    with Rtnl(c.netns) as inside:
        info = inside.link(ep.ifname)
        if info is None:
            raise KernelError(f"{ep.ifname} is missing inside the compartment")
        for r in ep.routes:
            inside.add_route(r.destination, r.next_hop, info["index"])


def limit(host: Netlink, ep: Endpoint, c: Container) -> None:
    """Towards the container: shape the host end; from it: shape its own vNIC."""
    bw = ep.bandwidth
    if bw.get("ingressRate"):
        tc.limit_egress(host, ep.host_ifname, bw["ingressRate"], bw.get("ingressBurst", 0))
    if bw.get("egressRate"):
        with Netlink(c.netns) as inside:
            tc.limit_egress(inside, ep.ifname, bw["egressRate"], bw.get("egressBurst", 0))


def present(rt: Rtnl, net: Network, ep: Endpoint) -> bool:
    """The host end exists, is up and sits on the network's switch."""
    info, bridge = rt.link(ep.host_ifname), rt.link(net.switch)
    return (
        info is not None
        and bridge is not None
        and bool(info["flags"] & IFF_UP)
        and info["master"] == bridge["index"]
    )


def apply_acl(nft: Nft, ep: Endpoint, net: Network, also: str = "") -> None:
    """Replace the endpoint's ACL chains (the network's and its own rules by priority, then
    the defaults) in one transaction, together with ``also`` (more nft commands)."""
    # overlay endpoints get allow-all after their rules, as on Windows
    rules = [*net.acl, *ep.acl]
    allow_all = net.driver == "overlay"
    nft.run(acl.render_endpoint(ep.host_ifname, ep.id[:12], rules, allow_all) + also)


def remove_acl(nft: Nft, ep: Endpoint) -> None:
    with contextlib.suppress(HostnetError):  # gone with its device already
        nft.run(acl.render_remove(ep.id[:12]))
