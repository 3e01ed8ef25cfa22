"""The cluster store: intent in etcd, shared by every host's hostnetd.

Layout (under ``/hostnet/``): each host's own objects live under ``host/<host>/``
(its local networks, containers, endpoints, host ports, meta); overlay networks
(``net/``), their endpoints (``oep/<network>/``, the cluster's endpoint registry
that every host watches) and address claims (``addr/<network>/<ip>``) are global; each
daemon's identity is ``live/<host>`` (on its lease) and ``member/<host>`` (kept until the
host is removed, so a member whose lease ran out is still listed).
Every write that claims something is one etcd transaction guarded by a compare
(create_revision == 0 for a new claim, mod_revision for a read-modify-write), so
the contract of store/base.py holds across hosts, not only across threads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
from collections.abc import Iterator
from typing import Any

from hostnet.drivers import registry
from hostnet.errors import Conflict, HostnetError
from hostnet.model import Container, Endpoint, Network, PortMapping, host_ips_clash
from hostnet.store.base import ClusterChange, ClusterStore, Store
from hostnet.store.etcdv3 import (
    KV,
    Etcd,
    cmp_absent,
    cmp_mod,
    cmp_value,
    op_delete,
    op_put,
)

log = logging.getLogger("hostnet")
ROOT = "/hostnet/"
IDENTITY_TTL_S = 10  # a daemon's identity outlives it by at most this
GLOBAL_DRIVERS = registry.global_names()  # their networks are the cluster's (net/)
RETRIES = 20


__all__ = ["ClusterChange", "EtcdStore"]


class EtcdStore(Store):
    remote = True  # every write is a round trip: the service lets other requests run meanwhile
    shared = True

    def __init__(self, etcd: Etcd, host: str, root: str = ROOT) -> None:
        self.etcd = etcd
        self.host = host
        self.root = root
        self.h = f"{root}host/{host}/"
        self._keys: dict[str, str] = {}  # endpoint id -> its key (this host's endpoints)
        self._meta: dict[str, str | None] = {}  # only this host writes its meta
        self._meta_read = False
        # meta written since the last transaction: it rides along with the next one (a
        # container's compartment counter commits with the container itself), one write less
        self._pending: dict[str, str] = {}

    def cluster(self) -> ClusterStore:
        return self

    def contact(self) -> tuple[str, int]:
        u = self.etcd.members[0]
        return u.hostname or "127.0.0.1", u.port or 2379

    def use_tls(self, ctx: ssl.SSLContext) -> None:
        self.etcd.ssl = ctx

    def describe(self) -> dict[str, str]:
        members = ",".join(u.netloc for u in self.etcd.members)
        tls = any(u.scheme == "https" for u in self.etcd.members)
        url = f"{'etcds' if tls else 'etcd'}://{members}"
        return {"Kind": "etcd", "Location": members, "Url": url, "Host": self.host}

    def errors(self) -> dict[str, int]:
        failures = dict(self.etcd.failures)
        return {k: failures.get(k, 0) for k in ("unavailable", "refused", "watch")}

    # -- networks -------------------------------------------------------------
    def _net_keys(self, net: Network) -> tuple[str, str]:
        if net.driver in GLOBAL_DRIVERS:
            return f"{self.root}net/{net.id}", f"{self.root}netname/{net.name}"
        return f"{self.h}net/{net.id}", f"{self.h}netname/{net.name}"

    def networks(self) -> list[Network]:
        local, _ = self.etcd.get_prefix(f"{self.h}net/")
        shared, _ = self.etcd.get_prefix(f"{self.root}net/")
        return [Network.model_validate_json(kv.value) for kv in [*local, *shared]]

    def create_network(self, net: Network) -> None:
        key, name = self._net_keys(net)
        # a name is unique among this host's networks and the cluster's overlays
        names = {f"{self.h}netname/{net.name}", f"{self.root}netname/{net.name}"}
        ok = self.etcd.txn(
            [cmp_absent(n) for n in sorted(names)],
            [op_put(key, net.model_dump_json()), op_put(name, net.id)],
        )
        if not ok:
            raise Conflict(f"a network named {net.name!r} already exists", "choose another name")

    def update_network(self, net: Network) -> None:
        self.etcd.put(self._net_keys(net)[0], net.model_dump_json())

    def _delete_named(self, doc_key: str, names: str, obj_id: str) -> None:
        """Delete a document and its name claim (``names`` + its name), if the claim is its."""
        kv = self.etcd.get(doc_key)
        if kv is not None:
            name_key = names + json.loads(kv.value)["name"]
            self.etcd.txn(
                [cmp_value(name_key, obj_id)],
                [op_delete(kv.key), op_delete(name_key)],
                [op_delete(kv.key)],
            )

    def delete_network(self, net_id: str) -> None:
        for base in (self.h, self.root):
            self._delete_named(f"{base}net/{net_id}", f"{base}netname/", net_id)

    # -- containers -------------------------------------------------------------
    def containers(self) -> list[Container]:
        kvs, _ = self.etcd.get_prefix(f"{self.h}ctr/")
        return [Container.model_validate_json(kv.value) for kv in kvs]

    def create_container(self, c: Container) -> None:
        name = f"{self.h}ctrname/{c.name}"
        meta = dict(self._pending)
        ok = self.etcd.txn(
            [cmp_absent(name)],
            [op_put(f"{self.h}ctr/{c.id}", c.model_dump_json()), op_put(name, c.id)]
            + self._meta_ops(meta),
        )
        if ok:
            self._committed(meta)
        if not ok:
            raise Conflict(
                f"a container named {c.name!r} already exists",
                "choose another name, or remove it with 'hostnet rm'",
            )

    def update_container(self, c: Container) -> None:
        self.etcd.put(f"{self.h}ctr/{c.id}", c.model_dump_json())

    def delete_container(self, c_id: str) -> None:
        self._delete_named(f"{self.h}ctr/{c_id}", f"{self.h}ctrname/", c_id)

    # -- endpoints ----------------------------------------------------------------
    def _ep_key(self, ep: Endpoint) -> str:
        if ep.vtep:  # an overlay endpoint: in the cluster's registry
            return f"{self.root}oep/{ep.network_id}/{ep.id}"
        return f"{self.h}ep/{ep.id}"

    @staticmethod
    def _doc(ep: Endpoint) -> str:
        return ep.model_dump_json(exclude={"ports"})

    def endpoints(self) -> list[Endpoint]:
        local, _ = self.etcd.get_prefix(f"{self.h}ep/")
        shared, _ = self.etcd.get_prefix(f"{self.root}oep/")
        eps = [Endpoint.model_validate_json(kv.value) for kv in local]
        eps += [
            e
            for e in (Endpoint.model_validate_json(kv.value) for kv in shared)
            if e.host == self.host
        ]
        ports, _ = self.etcd.get_prefix(f"{self.h}epport/")
        by_ep: dict[str, list[PortMapping]] = {}
        for kv in ports:
            ep_id, rest = kv.key[len(f"{self.h}epport/") :].split("/", 1)
            by_ep.setdefault(ep_id, []).append(PortMapping.model_validate_json(kv.value))
        for e in eps:
            e.ports = sorted(by_ep.get(e.id, []), key=lambda p: (p.protocol, p.host_port))
            self._keys[e.id] = self._ep_key(e)
        return eps

    def cluster_endpoints(self) -> tuple[list[Endpoint], int]:
        """Every overlay endpoint of the cluster, and the revision to watch from."""
        kvs, rev = self.etcd.get_prefix(f"{self.root}oep/")
        return [Endpoint.model_validate_json(kv.value) for kv in kvs], rev

    # -- cluster-wide records: the overlay networks, their registry, VNIs, hosts ---------
    def shared_networks(self) -> tuple[list[Network], int]:
        """The cluster's overlay networks, and the revision they were read at."""
        kvs, rev = self.etcd.get_prefix(f"{self.root}net/")
        return [Network.model_validate_json(kv.value) for kv in kvs], rev

    def claim_vni(self, net_id: str, vni: int) -> bool:
        """Claim a VXLAN id for a network cluster-wide; False: another network holds it."""
        key = f"{self.root}vni/{vni}"
        return bool(self.etcd.txn([cmp_absent(key)], [op_put(key, net_id)]))

    def release_vni(self, vni: str) -> None:
        self.etcd.txn([], [op_delete(f"{self.root}vni/{vni}")])

    def forget_endpoint(self, ep: Endpoint) -> None:
        """An endpoint of a host gone for good out of the registry, with its address claim."""
        ops = [op_delete(f"{self.root}oep/{ep.network_id}/{ep.id}")]
        ops += [op_delete(f"{self.root}addr/{ep.network_id}/{ip}") for ip in (ep.ip, ep.ip6) if ip]
        self.etcd.txn([], ops)

    def forget_host(self, host: str) -> None:
        """Every key a host gone for good kept for itself, and its membership."""
        self.etcd.delete(f"{self.root}host/{host}/", prefix=True)
        self.etcd.delete(f"{self.root}member/{host}")

    def members(self) -> dict[str, tuple[dict[str, str], bool]]:
        """Every daemon that joined the cluster: what its identity said (address, hostname)
        and whether it holds its lease now. A live key without a member key (a daemon of
        an older hostnet) counts as a member too."""
        kept, _ = self.etcd.get_prefix(f"{self.root}member/")
        live, _ = self.etcd.get_prefix(f"{self.root}live/")
        out: dict[str, tuple[dict[str, str], bool]] = {}
        for kvs, alive in ((kept, False), (live, True)):
            for kv in kvs:
                with contextlib.suppress(ValueError):
                    out[kv.key.rsplit("/", 1)[1]] = (json.loads(kv.value), alive)
        return out

    def wipe(self) -> None:
        """This host's keys and its identity; the cluster's networks and others' stay."""
        self._pending.clear()
        self.forget_host(self.host)
        self.etcd.delete(f"{self.root}live/{self.host}")

    # -- this daemon's identity ---------------------------------------------------
    def claim_identity(self, holder: dict[str, str], ttl: int = IDENTITY_TTL_S) -> int:
        """Hold this host's id while the daemon lives (a key on a lease it keeps alive);
        refuse when another live daemon holds it. The same machine and state directory
        (a restart after kill -9, before the old lease ran out) take it over."""
        key, value = f"{self.root}live/{self.host}", json.dumps(holder, sort_keys=True)
        member = op_put(f"{self.root}member/{self.host}", value)  # no lease: outlives it
        lease = self.etcd.grant(ttl)
        if self.etcd.txn([cmp_absent(key)], [op_put(key, value, lease), member]):
            return lease
        held = self.etcd.get(key)
        other = json.loads(held.value) if held is not None else {}
        same = all(other.get(k) == holder.get(k) for k in ("boot_id", "state_dir"))
        if held is None or same:
            self.etcd.txn([], [op_put(key, value, lease), member])
            return lease
        self.etcd.revoke(lease)
        raise Conflict(
            f"host id {self.host!r} is held by another live hostnetd: at "
            f"{other.get('address', '?')} on host {other.get('hostname', '?')!r}, state "
            f"{other.get('state_dir', '?')} (a cloned machine, or a copied state directory)",
            "give this daemon its own identity: remove its state directory's host-id file "
            "(a new one is made at start) or start it with --host-id NAME",
        )

    def keep_identity(self, lease: int, holder: dict[str, str]) -> int:
        """Renew the lease; after a cut that let it expire, claim the id again."""
        if self.etcd.keepalive(lease):
            return lease
        log.warning("cluster identity %s expired (store unreachable); claiming it again", self.host)
        return self.claim_identity(holder)

    def watch_changes(self, start_rev: int) -> Iterator[list[ClusterChange]]:
        """The cluster's changes from ``start_rev`` on, a batch at a time: overlay networks
        and registry endpoints (other keys are skipped)."""
        for batch in self.etcd.watch(self.root, start_rev):
            yield [c for c in (self._change(kind, kv) for kind, kv in batch) if c is not None]

    def _change(self, kind: str, kv: KV) -> ClusterChange | None:
        rel, gone = kv.key[len(self.root) :], kind == "DELETE"
        if rel.startswith("net/"):
            net = None if gone else Network.model_validate_json(kv.value)
            return ClusterChange("network", rel[len("net/") :], net)
        if rel.startswith("oep/"):
            ep = None if gone else Endpoint.model_validate_json(kv.value)
            return ClusterChange("endpoint", rel.rsplit("/", 1)[1], ep)
        return None

    def _port_key(self, pm: PortMapping) -> str:
        return f"{self.h}port/{pm.protocol}/{pm.host_port}"

    def _epport_key(self, ep_id: str, pm: PortMapping) -> str:
        return f"{self.h}epport/{ep_id}/{pm.protocol}|{pm.host_ip}|{pm.host_port}"

    def _claims(
        self, ep_id: str, ports: list[PortMapping]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Compares and puts that claim ``ports`` for ``ep_id`` (read now, checked at commit)."""
        compare: list[dict[str, Any]] = []
        puts: list[dict[str, Any]] = []
        held: dict[str, tuple[KV | None, dict[str, Any]]] = {}
        for pm in ports:
            key = self._port_key(pm)
            if key not in held:
                kv = self.etcd.get(key)
                held[key] = (kv, json.loads(kv.value) if kv else {})
            _, owners = held[key]
            if any(host_ips_clash(pm.host_ip, h) for h in owners):
                raise Conflict(
                    f"host port {pm.host_port}/{pm.protocol} is already mapped",
                    "choose another host port (see 'hostnet nat ls')",
                )
            owners[pm.host_ip] = ep_id
            puts.append(op_put(self._epport_key(ep_id, pm), pm.model_dump_json()))
        for key, (kv, owners) in held.items():
            compare.append(cmp_mod(key, kv.mod_revision) if kv else cmp_absent(key))
            puts.append(op_put(key, json.dumps(owners, sort_keys=True)))
        return compare, puts

    def create_endpoint(self, ep: Endpoint) -> None:
        for _ in range(RETRIES):
            compare, puts = self._claims(ep.id, ep.ports)
            for ip in (ep.ip, ep.ip6):  # each address the endpoint has, claimed cluster-wide
                if not ip:
                    continue
                addr = f"{self.root}addr/{ep.network_id}/{ip}"
                if self.etcd.get(addr) is not None:
                    raise Conflict(
                        f"address {ip} is already in use", "choose another address", address=ip
                    )
                compare.append(cmp_absent(addr))
                puts.append(op_put(addr, ep.id))
            puts.append(op_put(self._ep_key(ep), self._doc(ep)))
            meta = dict(self._pending)
            if self.etcd.txn(compare, puts + self._meta_ops(meta)):
                self._keys[ep.id] = self._ep_key(ep)
                self._committed(meta)
                return
        raise Conflict(f"endpoint {ep.id[:12]}: its claims kept changing under it", "try again")

    def update_endpoint(self, ep: Endpoint) -> None:
        self.etcd.put(self._ep_key(ep), self._doc(ep))

    def add_ports(self, ep: Endpoint, added: list[PortMapping]) -> None:
        for _ in range(RETRIES):
            compare, puts = self._claims(ep.id, added)
            if self.etcd.txn(compare, puts):
                return
        raise Conflict("host ports kept changing; not claimed", "try again")

    def _release(self, ep_id: str, ports: list[PortMapping]) -> None:
        for _ in range(RETRIES):
            compare: list[dict[str, Any]] = []
            ops: list[dict[str, Any]] = []
            for key in sorted({self._port_key(p) for p in ports}):
                kv = self.etcd.get(key)
                if kv is None:
                    continue
                owners = json.loads(kv.value)
                for p in ports:
                    if self._port_key(p) == key and owners.get(p.host_ip) == ep_id:
                        del owners[p.host_ip]
                compare.append(cmp_mod(key, kv.mod_revision))
                ops.append(op_put(key, json.dumps(owners)) if owners else op_delete(key))
            ops += [op_delete(self._epport_key(ep_id, p)) for p in ports]
            if self.etcd.txn(compare, ops):
                return

    def remove_ports(self, ep: Endpoint, removed: list[PortMapping]) -> None:
        self._release(ep.id, removed)

    def delete_endpoint(self, ep_id: str) -> None:
        known = self._keys.pop(ep_id, None)
        kv = self.etcd.get(known or f"{self.h}ep/{ep_id}")
        if kv is None and known is None:
            shared, _ = self.etcd.get_prefix(f"{self.root}oep/")
            kv = next((k for k in shared if k.key.endswith(f"/{ep_id}")), None)
        if kv is None:
            return
        ep = Endpoint.model_validate_json(kv.value)
        ports, _ = self.etcd.get_prefix(f"{self.h}epport/{ep_id}/")  # its host-port claims
        if ports:
            self._release(ep_id, [PortMapping.model_validate_json(p.value) for p in ports])
        # one transaction: the endpoint, and its address claims if they are still its own
        claims = [f"{self.root}addr/{ep.network_id}/{ip}" for ip in (ep.ip, ep.ip6) if ip]
        ok = self.etcd.txn(
            [cmp_value(a, ep_id) for a in claims],
            [op_delete(kv.key), *(op_delete(a) for a in claims)],
            [op_delete(kv.key)],
        )
        if not ok and len(claims) > 1:  # one of them moved on (rare): each on its own
            for a in claims:
                self.etcd.txn([cmp_value(a, ep_id)], [op_delete(a)])

    # -- meta -----------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """Only this host writes its meta: all of it is read once (one range, the first
        time), then answered from memory, so no request waits for the store to read it."""
        if not self._meta_read:
            kvs, _ = self.etcd.get_prefix(f"{self.h}meta/")
            for kv in kvs:
                self._meta.setdefault(kv.key[len(f"{self.h}meta/") :], kv.value)
            self._meta_read = True
        return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        """Kept here and written with the next transaction (or at close): meta holds
        counters and hints, and the one that matters commits with what it numbers."""
        self._meta[key] = value
        self._pending[key] = value

    def _meta_ops(self, meta: dict[str, str]) -> list[dict[str, Any]]:
        return [op_put(f"{self.h}meta/{k}", v) for k, v in sorted(meta.items())]

    def _committed(self, meta: dict[str, str]) -> None:
        """``meta`` (a copy of the pending meta, taken before a transaction: writes run
        concurrently) is stored; what changed since stays pending."""
        for k, v in meta.items():
            if self._pending.get(k) == v:
                self._pending.pop(k, None)

    def close(self) -> None:
        if self._pending:
            with contextlib.suppress(HostnetError):
                self.etcd.txn([], self._meta_ops(dict(self._pending)))
            self._pending.clear()
