"""The cluster half of the service: overlay networks and endpoints other hosts own.

Mixed into HostNetworkingService. With an etcd store, every host sees the cluster's
overlay networks and its endpoint registry; ``cluster_resync`` reads them whole (at
start and after a lost watch), ``cluster_event`` applies the watch's changes, and
``sync_tunnels`` programs exactly one FDB entry and one proxy-ARP neighbour per remote
endpoint on each overlay network's VXLAN device.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING, Any

from hostnet import ipam
from hostnet.drivers.overlay import FIRST_VNI, OverlayDriver, vxlan_of
from hostnet.errors import Conflict, HostnetError, InvalidRequest
from hostnet.model import Endpoint, Network, mac_for
from hostnet.store.etcd import ClusterChange, EtcdStore

if TYPE_CHECKING:
    from hostnet.drivers.base import Driver
    from hostnet.kernel.links import Netlink
    from hostnet.store import Store

log = logging.getLogger("hostnet")
Tunnel = tuple[str, str, str]  # mac, ip, vtep


class ClusterOps:
    store: Store
    nets: dict[str, Network]
    eps: dict[str, Endpoint]
    host: Netlink
    overlay: OverlayDriver
    remote: dict[str, Endpoint]  # every overlay endpoint of the cluster (this host's too)
    cluster_ips: dict[str, set[ipaddress.IPv4Address]]
    _tunnels: dict[str, set[Tunnel]]
    host_id: str

    def _sync_dns(self) -> None:
        raise NotImplementedError  # provided by HostNetworkingService

    def _dns_names(self, ep: Endpoint, present: bool) -> None:
        raise NotImplementedError  # provided by HostNetworkingService

    def carved(self, net: Network) -> list[ipaddress.IPv4Network]:
        raise NotImplementedError  # provided by HostNetworkingService

    def driver(self, name: str) -> Driver:
        raise NotImplementedError  # provided by HostNetworkingService

    def driver_of(self, net: Network) -> Driver:
        raise NotImplementedError  # provided by HostNetworkingService

    def _scoped(self, n: Network) -> bool:
        """A cluster-wide network (the registry and the watch are about these)."""
        return self.driver_of(n).cluster_scoped

    def clustered(self) -> bool:
        return isinstance(self.store, EtcdStore) and bool(self.overlay.vtep)

    def _etcd(self) -> EtcdStore:
        if not isinstance(self.store, EtcdStore) or not self.overlay.vtep:
            raise InvalidRequest(
                "overlay networks need a cluster store",
                "start hostnetd with --store etcd://m1:2379,... (see README, Overlay)",
            )
        return self.store

    # -- VNIs -------------------------------------------------------------------
    def claim_vni(self, net: Network) -> None:
        """Claim the network's VNI cluster-wide (the given one, or the first free)."""
        st = self._etcd()
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
        if isinstance(self.store, EtcdStore) and net.options.get("vxlanid"):
            self.store.release_vni(net.options["vxlanid"])

    # -- the registry -----------------------------------------------------------------
    def cluster_users(self, net: Network) -> list[Endpoint]:
        return [e for e in self.remote.values() if e.network_id == net.id]

    def overlay_used(self, net: Network) -> set[ipaddress.IPv4Address]:
        return self.cluster_ips.get(net.id, set())

    def claim_overlay(self, net: Network, ep: Endpoint, auto: bool) -> None:
        """Write the endpoint and its address claim; an automatic address that another host
        took meanwhile is replaced by the next free one."""
        for _ in range(256):
            try:
                self.store.create_endpoint(ep)
                return
            except Conflict as exc:
                if not auto or "address" not in str(exc):
                    raise
                taken = ipaddress.IPv4Address(ep.ip)
                self.cluster_ips.setdefault(net.id, set()).add(taken)
                used = self.cluster_ips[net.id] | {
                    ipaddress.IPv4Address(e.ip) for e in self.eps.values() if e.network_id == net.id
                }
                addr = ipam.allocate(
                    net.ipv4_network(),
                    ipaddress.IPv4Address(net.gateway),
                    used,
                    taken,
                    self.carved(net),
                )
                ep.ip, ep.mac = str(addr), mac_for(addr)
        raise Conflict(f"no free address found on {net.name!r}", "try again")

    def _learn(self, ep: Endpoint) -> None:
        old = self.remote.get(ep.id)
        if old is not None:
            self._unlearn(old.id)
        self.remote[ep.id] = ep
        if ep.ip:
            self.cluster_ips.setdefault(ep.network_id, set()).add(ipaddress.IPv4Address(ep.ip))

    def _unlearn(self, ep_id: str) -> None:
        ep = self.remote.pop(ep_id, None)
        if ep is not None and ep.ip:
            self.cluster_ips.get(ep.network_id, set()).discard(ipaddress.IPv4Address(ep.ip))

    # -- following the store -----------------------------------------------------------
    def cluster_resync(self) -> int:
        """Read the cluster's overlay networks and endpoints whole; return the revision."""
        st = self._etcd()
        nets, rev = st.shared_networks()
        shared = {n.id: n for n in nets}
        for n in shared.values():
            self._network_seen(n)
        for nid in [i for i, n in self.nets.items() if self._scoped(n) and i not in shared]:
            self._network_gone(nid)
        eps, _ = st.cluster_endpoints()
        self.remote, self.cluster_ips = {}, {}
        for e in eps:
            self._learn(e)
        self._tunnels = {}  # re-read from the kernel: a restart or a lost watch
        self.sync_tunnels()
        self._sync_dns()
        return max(rev, 0)

    def cluster_event(self, changes: list[ClusterChange]) -> None:
        """Apply a watch batch: an endpoint change is one forwarding entry and its names
        (no rescan); a network change re-syncs the networks' forwarding."""
        nets_changed = False
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
                self._remote_changed(old, present=False)
                self._unlearn(old.id)
            if isinstance(ch.doc, Endpoint):
                self._learn(ch.doc)
                self._remote_changed(ch.doc, present=True)
        if nets_changed:
            self.sync_tunnels()

    def _remote_changed(self, ep: Endpoint, present: bool) -> None:
        """Another host's endpoint came or went: its forwarding entry and its names."""
        if ep.host == self.host_id or ep.id in self.eps:
            return  # our own, echoed by the watch: attach and detach did the work
        self._dns_names(ep, present)
        n = self.nets.get(ep.network_id)
        if n is None or not (ep.vtep and ep.ip):
            return
        have = self._tunnels.get(ep.network_id)
        if have is None:  # not known from the kernel (start, an error): sync from the registry
            self.sync_tunnels()
            return
        entry = (ep.mac, ep.ip, ep.vtep)
        try:
            self.host.tunnel_entry(vxlan_of(n), *entry, present=present)
        except HostnetError as exc:
            log.error("overlay %s forwarding: %s", n.name, exc)
            self._tunnels.pop(n.id, None)  # re-read at the next sync
            return
        (have.add if present else have.discard)(entry)

    def _network_seen(self, n: Network) -> None:
        if not self._scoped(n):
            return
        known = self.nets.get(n.id)
        self.nets[n.id] = n
        if known is None:
            try:
                self.overlay.ensure_network(n)
                log.info("overlay network %s (VNI %s) joined", n.name, n.options.get("vxlanid"))
            except HostnetError as exc:
                log.error("overlay network %s: %s", n.name, exc)

    def _network_gone(self, nid: str) -> None:
        n = self.nets.get(nid)
        if n is None or not self._scoped(n):
            return
        if any(e.network_id == nid for e in self.eps.values()):
            log.error("overlay network %s removed elsewhere while in use here", n.name)
            return
        try:
            self.overlay.remove_network(n)
        except HostnetError as exc:
            log.error("removing overlay network %s: %s", n.name, exc)
        self.nets.pop(nid, None)
        self._tunnels.pop(nid, None)
        log.info("overlay network %s left", n.name)

    def sync_tunnels(self) -> None:
        """Program exactly the remote endpoints of every overlay network (delta only)."""
        for n in [n for n in self.nets.values() if self._scoped(n)]:
            want = {
                (e.mac, e.ip, e.vtep)
                for e in self.remote.values()
                if e.network_id == n.id and e.host != self.host_id and e.vtep and e.ip
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
    def cluster_hosts(self) -> list[dict[str, Any]]:
        hosts: dict[str, dict[str, Any]] = {}
        for e in self.remote.values():
            h = hosts.setdefault(e.host, {"Host": e.host, "VTEP": e.vtep, "Endpoints": 0})
            h["Endpoints"] += 1
        hosts.setdefault(
            self.host_id, {"Host": self.host_id, "VTEP": self.overlay.vtep, "Endpoints": 0}
        )
        return sorted(hosts.values(), key=lambda h: h["Host"])

    def forget_host(self, host: str) -> int:
        """A host gone for good: its overlay endpoints, claims and keys leave the cluster."""
        st = self._etcd()
        if host == self.host_id:
            raise InvalidRequest("a host cannot remove itself", "run this on another host")
        gone = [e for e in self.remote.values() if e.host == host]
        for e in gone:
            st.forget_endpoint(e)
        st.forget_host(host)
        return len(gone)
