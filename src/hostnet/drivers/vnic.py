"""A compartment's vNIC on a switch: the veth pair every driver plugs the same way."""

from __future__ import annotations

import contextlib
import errno

from hostnet.core import acl, firewall
from hostnet.errors import Conflict, HostnetError, KernelError
from hostnet.kernel import datapath as dp
from hostnet.kernel import tc
from hostnet.kernel.handles import Kernel, Links, NftHandle
from hostnet.kernel.rtnl import IFF_UP
from hostnet.model import VETH_PREFIX, Container, Endpoint, Network

BRIDGE_PORTS_MAX = 1023  # BR_MAX_PORTS - 1: the kernel answers EXFULL past it


def plug(
    kernel: Kernel,
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
    rt = kernel.rt
    bridge = rt.link(net.switch)
    if bridge is None:
        raise KernelError(
            f"switch {net.switch} of network {net.name} is missing",
            "run 'hostnet system reconcile'",
        )
    try:
        try:
            created = _create_or_reuse(kernel, ep, c, bridge["index"], mtu)
        except KernelError as exc:
            if exc.details.get("errno") != errno.EXFULL:
                raise
            kernel.flush_cuts()  # ports of vNICs removed a moment ago may be held still
            created = _create_or_reuse(kernel, ep, c, bridge["index"], mtu)
    except KernelError as exc:
        if exc.details.get("errno") == errno.EXFULL:
            raise Conflict(
                f"network {net.name!r} is full: its switch {net.switch} has {BRIDGE_PORTS_MAX} "
                "ports, the most a Linux bridge takes",
                "create another network for more containers (hostnet network create ...)",
            ) from None
        raise
    if created:
        no_ipv6(kernel, ep.host_ifname)
    rt.set_bridge_port(ep.host_ifname, owner, hairpin=True, isolated=isolated)
    if not ep.runtime_moves_peer:
        # a DHCP endpoint comes up without an IPv4 address (its client configures it); a
        # SLAAC one takes its IPv6 address from the router advertisements
        routed = default_route and not net.internal  # an internal network: no way out
        with kernel.inside(c.netns) as inside:
            inside.configure_inside(
                ep.ifname,
                "" if ep.dhcp else ep.ip,
                ep.prefix_len,
                ep.gateway if routed and ep.gateway and not ep.dhcp else None,
                "" if ep.slaac else ep.ip6,
                ep.prefix_len6,
                ep.gateway6 if routed and ep.gateway6 and not ep.slaac else None,
                autoconf=ep.slaac,
            )
    return created


def no_ipv6(kernel: Kernel, ifname: str) -> None:
    """No IPv6 on a switch port (it forwards frames and needs no address, route or
    multicast route of its own), set before it first goes up. Each IPv6-enabled device
    adds a route to the daemon namespace's IPv6 table, and the kernel walks that whole
    table on every link state change: at 5,000 vNICs that was most of an attach."""
    with contextlib.suppress(KernelError):  # a kernel without IPv6: nothing to turn off
        kernel.sysctl(f"net/ipv6/conf/{ifname}/disable_ipv6", "1")


def _create_or_reuse(kernel: Kernel, ep: Endpoint, c: Container, master: int, mtu: int) -> bool:
    """Create the pair (one request on the attach path); if the host end exists already
    (reconcile), put it back on the switch and up. True when created now."""
    rt = kernel.rt
    try:
        if ep.runtime_moves_peer:
            # Docker moves the peer into the sandbox itself (Join) and configures it there.
            rt.create_veth(ep.host_ifname, ep.ifname, None, ep.mac, master, mtu)
            rt.without_ipv6_linklocal(ep.ifname)
        else:
            with kernel.compartment_fd(c.netns) as fd:
                rt.create_veth(ep.host_ifname, ep.ifname, fd, ep.mac, master, mtu)
        return True
    except KernelError as exc:
        if exc.details.get("errno") != errno.EEXIST:
            raise
        info = rt.link(ep.host_ifname)
        if info is None:  # the peer's name is taken: inside the compartment (or here)
            if _peer_name_taken(kernel, ep, c):
                raise _name_in_use(ep, c) from None
            raise
    if info["master"] != master or not info["flags"] & IFF_UP:
        rt.set_master_up(ep.host_ifname, master)
    return False


def _peer_name_taken(kernel: Kernel, ep: Endpoint, c: Container) -> bool:
    """A link named like the vNIC's compartment end is where that end would be made."""
    if ep.runtime_moves_peer:
        return kernel.rt.link(ep.ifname) is not None
    with contextlib.suppress(KernelError, OSError), kernel.inside(c.netns) as inside:
        return inside.link(ep.ifname) is not None
    return False


def _name_in_use(ep: Endpoint, c: Container) -> Conflict:
    """Another interface of that name (the runtime's own, lo, or another container's
    attachment in the same namespace): the kernel refuses a second one."""
    where = "the daemon's namespace" if ep.runtime_moves_peer else f"network namespace {c.netns}"
    return Conflict(
        f"an interface named {ep.ifname} exists already in {where}, so the vNIC cannot take "
        "that name",
        "use another interface name (CNI_IFNAME), or remove the interface that has it first "
        "(another container's attachment there: DEL that one)",
    )


def add_routes(kernel: Kernel, ep: Endpoint, c: Container) -> None:
    """The endpoint's SDNRoute policies, as routes inside its compartment."""
    if not ep.routes or ep.runtime_moves_peer:
        return
    with kernel.inside(c.netns) as inside:
        info = inside.link(ep.ifname)
        if info is None:
            raise KernelError(f"{ep.ifname} is missing inside the compartment")
        for r in ep.routes:
            inside.add_route(r.destination, r.next_hop, info["index"])


def limit(kernel: Kernel, ep: Endpoint, c: Container) -> None:
    """Towards the container: shape the host end; from it: shape its own vNIC."""
    bw = ep.bandwidth
    if bw.get("ingressRate"):
        tc.limit_egress(kernel.host, ep.host_ifname, bw["ingressRate"], bw.get("ingressBurst", 0))
    if bw.get("egressRate"):
        with kernel.netlink_inside(c.netns) as inside:
            tc.limit_egress(inside, ep.ifname, bw["egressRate"], bw.get("egressBurst", 0))


def present(rt: Links, net: Network, ep: Endpoint) -> bool:
    """The host end exists, is up and sits on the network's switch."""
    info, bridge = rt.link(ep.host_ifname), rt.link(net.switch)
    return (
        info is not None
        and bridge is not None
        and bool(info["flags"] & IFF_UP)
        and info["master"] == bridge["index"]
    )


def pieces(net: Network, ep: Endpoint, allow_all: bool) -> list[dp.Piece]:
    """The datapath pieces of one vNIC in the daemon's namespace: its port on the switch,
    its ACL chains (or the default table's care), its rate limit towards the container."""
    out = [dp.port(ep.host_ifname, net.switch, f"vNIC of endpoint {ep.id[:12]} ({ep.ifname})")]
    if has_own_acl(ep, net, allow_all):
        key = ep.id[:12]
        out += [
            dp.nft_chain("netdev", acl.TABLE, f"in_{key}", "ACL: the endpoint's inbound rules"),
            dp.nft_chain("netdev", acl.TABLE, f"out_{key}", "ACL: the endpoint's outbound rules"),
            dp.nft_element(
                "bridge", acl.DEFAULT_TABLE, "ruled", ep.host_ifname, "ACL: out of the default"
            ),
        ]
    if ep.bandwidth.get("ingressRate"):
        out.append(dp.qdisc(ep.host_ifname, "tbf", "QoS: the rate limit towards the container"))
    return out


def has_own_acl(ep: Endpoint, net: Network, allow_all: bool) -> bool:
    """Rules of its own or of its network (or allow-all after them): chains of its own;
    else the default table covers the endpoint and nftables has nothing of it."""
    return bool(net.acl or ep.acl) or allow_all


def apply_acl(nft: NftHandle, ep: Endpoint, net: Network, allow_all: bool, also: str = "") -> None:
    """Replace the endpoint's ACL chains (the network's and its own rules by priority, then
    the defaults, or allow-all as overlay endpoints on Windows) in one transaction, together
    with ``also`` (more nft commands)."""
    if not has_own_acl(ep, net, allow_all):
        if also:
            nft.run(also)
        return
    rules = [*net.acl, *ep.acl]
    nft.run(
        acl.render_endpoint(ep.host_ifname, ep.id[:12], rules, allow_all)
        + acl.render_ruled(ep.host_ifname, True)
        + also
    )


def remove_acl(
    nft: NftHandle, ep: Endpoint, net: Network | None = None, allow_all: bool = False
) -> None:
    """Remove the endpoint's own chains (all it may have when ``net`` is None)."""
    if net is not None and not has_own_acl(ep, net, allow_all):
        return
    key = ep.id[:12]
    try:
        nft.run(acl.render_remove(key))
    except HostnetError:  # the chains went with their device already: the counter stays
        with contextlib.suppress(HostnetError):
            nft.run(acl.render_remove_counter(key))
    with contextlib.suppress(HostnetError):
        nft.run(acl.render_ruled(ep.host_ifname, False))


def sync_default_acl(nft: NftHandle, ruled: list[str]) -> None:
    """The vNICs' inbound default: every vNIC port but those with rules of their own."""
    nft.run(acl.render_default_table(VETH_PREFIX, ruled))


ACL_TABLE = firewall.Table(firewall.ACL, 20, sync_default_acl)
