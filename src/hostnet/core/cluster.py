"""The cluster: overlay networks and the endpoints other hosts own, as this host sees them.

A collaborator of the service. With an etcd store, every host sees the cluster's overlay
networks and its endpoint registry; ``resync`` reads them whole (at start and after a lost
watch), ``apply`` takes the watch's changes one at a time, and ``sync_tunnels`` programs
exactly one FDB entry and one proxy-ARP neighbour per remote endpoint on each overlay
network's VXLAN device. Cluster-wide records (VNIs, the registry, address claims, host
removal) are the store's (``Store.cluster``, a ``ClusterStore``); this class never writes a
store key itself. The cluster's networks are the cluster-scoped driver's (the registry
names it); with no such driver or no cluster store, this host is in no cluster.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hostnet.core import ipam
from hostnet.core.index import Index
from hostnet.drivers.overlay import FIRST_VNI, vxlan_of
from hostnet.errors import Conflict, HostnetError, InvalidRequest
from hostnet.model import Endpoint, IPAddress, Network, mac_for
from hostnet.store.base import ClusterChange, ClusterStore

if TYPE_CHECKING:
    from hostnet.drivers.base import Driver
    from hostnet.kernel.handles import HostLinks
    from hostnet.store import Store

log = logging.getLogger("hostnet")
Tunnel = tuple[str, str, str]  # mac, ip, vtep
NameChange = tuple[Endpoint, bool]  # a remote endpoint whose names come (True) or go


class Cluster:
    def __init__(
        self,
        store: Store,
        index: Index,
        host: HostLinks,
        driver: Driver | None,
        scoped: Callable[[Network], bool],
    ) -> None:
        """``driver``: the cluster-scoped driver (its networks are the cluster's), if any."""
        self.store, self.index, self.host, self.driver = store, index, host, driver
        self.scoped = scoped  # is this a cluster-wide network (its driver says)
        self.host_id = ""  # set by the daemon from the store
        self.remote: dict[str, Endpoint] = {}  # every overlay endpoint (this host's too)
        self.ips: dict[str, set[IPAddress]] = {}  # network id -> claimed (both families)
        self.per_host: dict[str, int] = {}  # host -> its overlay endpoints (for node ls)
        self.vteps: dict[str, str] = {}  # host -> the VTEP its endpoints name
        self._tunnels: dict[str, set[Tunnel]] = {}

    @property
    def vtep(self) -> str:
        """This host's underlay address (the cluster-scoped driver's), or ""."""
        return self.driver.vtep if self.driver is not None else ""

    @vtep.setter
    def vtep(self, address: str) -> None:
        if self.driver is not None:
            self.driver.vtep = address

    def clustered(self) -> bool:
        return self.store.cluster() is not None and bool(self.vtep)

    def _shared(self) -> ClusterStore:
        shared = self.store.cluster()
        if shared is None or not self.vtep:
            raise InvalidRequest(
                "overlay networks need a cluster store",
                "start hostnetd with --store etcd://m1:2379,... (see README, Overlay)",
            )
        return shared

    def _driver(self) -> Driver:
        if self.driver is None:
            raise InvalidRequest(
                "no cluster-scoped driver is registered", "register the overlay driver"
            )
        return self.driver

    # -- VNIs -------------------------------------------------------------------
    def claim_vni(self, net: Network) -> None:
        """Claim the network's VNI cluster-wide (the given one, or the first free)."""
        st = self._shared()
        wanted = net.options.get("vxlanid")
        candidates = [int(wanted)] if wanted else range(FIRST_VNI, FIRST_VNI + 100000)
        for vni in candidates:
            if st.claim_vni(net.id, vni):
                net.options["vxlanid"] = str(vni)
                return
            if wanted:
                raise Conflict(
                    f"VXLAN id {vni} is already used by another overlay network",
                    "give another -o com.docker.network.driver.overlay.vxlanid_list, or none",
                )
        raise Conflict("no free VXLAN id left", "remove unused overlay networks")

    def release_vni(self, net: Network) -> None:
        shared = self.store.cluster()
        if shared is not None and net.options.get("vxlanid"):
            shared.release_vni(net.options["vxlanid"])

    # -- the registry -----------------------------------------------------------------
    def users(self, net: Network) -> list[Endpoint]:
        return [e for e in self.remote.values() if e.network_id == net.id]

    def used(self, net: Network) -> set[IPAddress]:
        return self.ips.get(net.id, set())

    def readdress(self, net: Network, ep: Endpoint, taken: str) -> None:
        """Another host claimed ``ep``'s automatic address ``taken`` first: remember it as
        taken and give ``ep`` the next free one of that family (its claim is then tried
        again)."""
        addr = ipaddress.ip_address(taken)
        self.ips.setdefault(net.id, set()).add(addr)
        used = ipam.Taken(self.ips[net.id], self.index.addresses_used(net))
        v4 = addr.version == 4
        subnet = net.ipv4_network() if v4 else net.ipv6_network()
        gateway = ipaddress.ip_address(net.gateway if v4 else net.gateway6)
        rng = net.ip_range if v4 else net.ip_range6
        within = ipaddress.ip_network(rng) if rng else None
        carved = self.index.carved(net) if v4 else []
        new = ipam.allocate(subnet, gateway, used, addr, carved, within=within)
        if v4:
            ep.ip, ep.mac = str(new), mac_for(new)
        else:
            ep.ip6 = str(new)
            if not ep.ip:
                ep.mac = mac_for(new)

    def learn(self, ep: Endpoint) -> None:
        old = self.remote.get(ep.id)
        if old is not None:
            self.unlearn(old.id)
        self.remote[ep.id] = ep
        self.per_host[ep.host] = self.per_host.get(ep.host, 0) + 1
        self.vteps[ep.host] = ep.vtep
        used = self.ips.setdefault(ep.network_id, set())
        used.update(ipaddress.ip_address(a) for a in (ep.ip, ep.ip6) if a)

    def unlearn(self, ep_id: str) -> None:
        ep = self.remote.pop(ep_id, None)
        if ep is not None:
            left = self.per_host.get(ep.host, 0) - 1
            if left > 0:
                self.per_host[ep.host] = left
            else:
                self.per_host.pop(ep.host, None)
            used = self.ips.get(ep.network_id, set())
            for a in (ep.ip, ep.ip6):
                if a:
                    used.discard(ipaddress.ip_address(a))

    def others(self) -> list[Endpoint]:
        """Endpoints of other hosts (their names are in this host's DNS too)."""
        return [e for e in self.remote.values() if e.id not in self.index.eps]

    # -- following the store -----------------------------------------------------------
    def resync(self) -> int:
        """Read the cluster's overlay networks and endpoints whole; return the revision."""
        st = self._shared()
        nets, rev = st.shared_networks()
        shared = {n.id: n for n in nets}
        for n in shared.values():
            self._network_seen(n)
        gone = [i for i, n in self.index.nets.items() if self.scoped(n) and i not in shared]
        for nid in gone:
            self._network_gone(nid)
        eps, _ = st.cluster_endpoints()
        self.remote, self.ips, self.per_host, self.vteps = {}, {}, {}, {}
        for e in eps:
            self.learn(e)
        self._tunnels = {}  # re-read from the kernel: a restart or a lost watch
        self.sync_tunnels()
        return max(rev, 0)

    def apply(self, changes: list[ClusterChange]) -> list[NameChange]:
        """Apply a watch batch: an endpoint change is one forwarding entry (no rescan); a
        network change re-syncs the networks' forwarding. Returns the names that changed."""
        nets_changed, names = False, []
        for ch in changes:
            if ch.kind == "network":
                if isinstance(ch.doc, Network):
                    self._network_seen(ch.doc)
                else:
                    self._network_gone(ch.id)
                nets_changed = True
                continue
            old = self.remote.get(ch.id)
            if old is not None:
                names += self._remote_changed(old, present=False)
                self.unlearn(old.id)
            if isinstance(ch.doc, Endpoint):
                self.learn(ch.doc)
                names += self._remote_changed(ch.doc, present=True)
        if nets_changed:
            self.sync_tunnels()
        return names

    def _remote_changed(self, ep: Endpoint, present: bool) -> list[NameChange]:
        """Another host's endpoint came or went: its forwarding entry, and its names."""
        if ep.host == self.host_id or ep.id in self.index.eps:
            return []  # our own, echoed by the watch: attach and detach did the work
        self._forward(ep, present)
        return [(ep, present)]

    def _forward(self, ep: Endpoint, present: bool) -> None:
        """One FDB and proxy-ARP entry on the network's VXLAN device (no rescan)."""
        n = self.index.nets.get(ep.network_id)
        if n is None or not ep.vtep:
            return
        have = self._tunnels.get(ep.network_id)
        if have is None:  # not known from the kernel (start, an error): sync from the registry
            self.sync_tunnels()
            return
        for entry in tunnel_entries(ep):  # one per address family it has
            try:
                self.host.tunnel_entry(vxlan_of(n), *entry, present=present)
            except HostnetError as exc:
                log.error("overlay %s forwarding: %s", n.name, exc)
                self._tunnels.pop(n.id, None)  # re-read at the next sync
                return
            (have.add if present else have.discard)(entry)

    def _network_seen(self, n: Network) -> None:
        if not self.scoped(n):
            return
        known = self.index.nets.get(n.id)
        self.index.add_network(n)
        if known is None:
            try:
                self._driver().ensure_network(n)
                log.info("overlay network %s (VNI %s) joined", n.name, n.options.get("vxlanid"))
            except HostnetError as exc:
                log.error("overlay network %s: %s", n.name, exc)

    def _network_gone(self, nid: str) -> None:
        n = self.index.nets.get(nid)
        if n is None or not self.scoped(n):
            return
        if self.index.eps_on.get(nid):
            log.error("overlay network %s removed elsewhere while in use here", n.name)
            return
        try:
            self._driver().remove_network(n)
        except HostnetError as exc:
            log.error("removing overlay network %s: %s", n.name, exc)
        self.index.drop_network(nid)
        self._tunnels.pop(nid, None)
        log.info("overlay network %s left", n.name)

    def sync_tunnels(self) -> None:
        """Program exactly the remote endpoints of every overlay network (delta only)."""
        for n in [n for n in self.index.nets.values() if self.scoped(n)]:
            want = {
                t
                for e in self.remote.values()
                if e.network_id == n.id and e.host != self.host_id and e.vtep
                for t in tunnel_entries(e)
            }
            dev = vxlan_of(n)
            have = self._tunnels.get(n.id)
            if have is None:
                have = self.host.tunnel_entries(dev)
            try:
                for t in sorted(want - have):
                    self.host.tunnel_entry(dev, t[0], t[1], t[2], present=True)
                for t in sorted(have - want):
                    self.host.tunnel_entry(dev, t[0], t[1], t[2], present=False)
            except HostnetError as exc:
                log.error("overlay %s forwarding: %s", n.name, exc)
                self._tunnels.pop(n.id, None)  # re-read next time
                continue
            self._tunnels[n.id] = want

    # -- hosts --------------------------------------------------------------------------
    def members(self) -> dict[str, tuple[dict[str, str], bool]]:
        """Every member the store knows (ClusterStore.members): one read, per member."""
        if not self.clustered():
            raise InvalidRequest(
                "this hostnetd is in no cluster (its store is not etcd)",
                "start hostnetd with --store etcd://m1:2379,... (see README, Overlay)",
            )
        return self._shared().members()

    def hosts(self, members: dict[str, tuple[dict[str, str], bool]]) -> list[dict[str, Any]]:
        """``node ls``: every member (``members``, read from the store), with or without
        overlay endpoints, and hosts only the registry names; its VTEP, whether it holds
        its lease, and its endpoint count (kept as the registry changes: no scan)."""
        rows = []
        for host in sorted({*members, *self.per_host, self.host_id}):
            said, alive = members.get(host, ({}, False))
            if host == self.host_id:
                said = {**said, "address": self.vtep}
            rows.append(
                {
                    "Host": host,
                    "Hostname": said.get("hostname", ""),
                    "VTEP": said.get("address") or self.vteps.get(host, ""),
                    "State": "alive" if alive else "lease lost",
                    "Endpoints": self.per_host.get(host, 0),
                }
            )
        return rows

    def forget_host(self, host: str) -> int:
        """A host gone for good: its overlay endpoints, claims and keys leave the cluster."""
        st = self._shared()
        if host == self.host_id:
            raise InvalidRequest("a host cannot remove itself", "run this on another host")
        gone = [e for e in self.remote.values() if e.host == host]
        for e in gone:
            st.forget_endpoint(e)
        st.forget_host(host)
        return len(gone)


def tunnel_entries(ep: Endpoint) -> list[tuple[str, str, str]]:
    """(MAC, address, VTEP) of a remote endpoint: its forwarding entry and a proxy
    neighbour for each address (ARP for IPv4, neighbour discovery for IPv6)."""
    return [(ep.mac, ip, ep.vtep) for ip in (ep.ip, ep.ip6) if ip]
