"""The store contract (store/base.py), run against every backend."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostnet.errors import Conflict
from hostnet.model import Container, Endpoint, Network, PortMapping, new_id
from hostnet.store import Store, open_store


@pytest.fixture(scope="module")
def etcd_member() -> Iterator[str]:
    """One real etcd (Debian's etcd-server) in a lab namespace; needs root."""
    if os.geteuid() != 0 or shutil.which("etcd") is None:
        pytest.skip("needs root and etcd (scripts/test.sh installs etcd-server)")
    from lab import Lab, start_etcd, wait_etcd

    lab = Lab()
    try:
        ns, ip = lab.node("etcd")
        start_etcd(lab, {"m1": (ns, ip)})
        wait_etcd(ns, ip)
        yield ns
    finally:
        lab.close()


@pytest.fixture(params=["sqlite", "etcd"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = open_store(str(tmp_path / "hostnet.db"))
    else:
        from hostnet.kernel import netns
        from hostnet.store.etcd import EtcdStore
        from hostnet.store.etcdv3 import Etcd

        ns = request.getfixturevalue("etcd_member")
        from lab import SEGMENT

        etcd = Etcd(
            [f"http://{SEGMENT}.2:2379"], socket_factory=lambda: netns.entered(f"/run/netns/{ns}")
        )
        s = EtcdStore(etcd, "h1", root=f"/t{uuid.uuid4().hex[:8]}/")
    yield s
    s.close()


def net(name: str = "n1") -> Network:
    return Network(
        id=new_id(), name=name, driver="nat", subnet="172.16.1.0/24", gateway="172.16.1.1"
    )


def ep(network_id: str, ip: str, ports: list[PortMapping] | None = None) -> Endpoint:
    eid = new_id()
    return Endpoint(
        id=eid,
        network_id=network_id,
        container_id="c",
        ip=ip,
        prefix_len=24,
        gateway="172.16.1.1",
        mac="02:42:00:00:00:01",
        ifname="eth0",
        host_ifname="hv" + eid[:10],
        ports=ports or [],
    )


def pm(port: int, ip: str = "") -> PortMapping:
    return PortMapping(host_ip=ip, host_port=port, container_port=80)


def test_network_name_is_compare_and_set(store: Store) -> None:
    store.create_network(net("a"))
    with pytest.raises(Conflict, match="already exists"):
        store.create_network(net("a"))
    assert [n.name for n in store.networks()] == ["a"]


def test_address_claim_is_exclusive_and_failed_claim_writes_nothing(store: Store) -> None:
    n = net()
    store.create_network(n)
    store.create_endpoint(ep(n.id, "172.16.1.2"))
    with pytest.raises(Conflict, match="172.16.1.2"):
        store.create_endpoint(ep(n.id, "172.16.1.2", [pm(8080)]))
    assert len(store.endpoints()) == 1
    store.create_endpoint(ep(n.id, "172.16.1.3", [pm(8080)]))  # the port was not claimed


def test_port_claim_is_exclusive_across_any_and_specific_addresses(store: Store) -> None:
    n = net()
    store.create_network(n)
    store.create_endpoint(ep(n.id, "172.16.1.2", [pm(8080, "10.1.1.1")]))
    with pytest.raises(Conflict, match="8080"):
        store.create_endpoint(ep(n.id, "172.16.1.3", [pm(8080)]))
    assert len(store.endpoints()) == 1
    store.create_endpoint(ep(n.id, "172.16.1.3", [pm(8080, "10.1.1.2")]))


def test_delete_releases_and_is_idempotent(store: Store) -> None:
    n = net()
    store.create_network(n)
    e = ep(n.id, "172.16.1.2", [pm(8080)])
    store.create_endpoint(e)
    store.delete_endpoint(e.id)
    store.delete_endpoint(e.id)
    store.create_endpoint(ep(n.id, "172.16.1.2", [pm(8080)]))
    store.delete_network("no-such-id")
    store.delete_container("no-such-id")


def test_add_and_remove_ports(store: Store) -> None:
    n = net()
    store.create_network(n)
    e = ep(n.id, "172.16.1.2")
    store.create_endpoint(e)
    e2 = e.model_copy(update={"ports": [pm(9000)]})
    store.add_ports(e2, [pm(9000)])
    with pytest.raises(Conflict):
        store.add_ports(e2.model_copy(update={"ports": [pm(9000), pm(9000)]}), [pm(9000)])
    assert store.endpoints()[0].ports == [pm(9000)]
    store.remove_ports(e, [pm(9000)])
    assert store.endpoints()[0].ports == []
    store.add_ports(e2, [pm(9000)])


def test_container_name_is_compare_and_set(store: Store) -> None:
    c = Container(id=new_id(), name="web", compartment_id=2, netns="x")
    store.create_container(c)
    with pytest.raises(Conflict):
        store.create_container(Container(id=new_id(), name="web", compartment_id=3, netns="y"))
    store.update_container(c.model_copy(update={"pid": 42}))
    assert store.containers()[0].pid == 42


def test_meta(store: Store) -> None:
    assert store.get_meta("k") is None
    store.set_meta("k", "1")
    store.set_meta("k", "2")
    assert store.get_meta("k") == "2"


def test_unknown_store_scheme_is_a_clear_error() -> None:
    from hostnet.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="unknown store 'redis'.*etcd"):
        open_store("redis://x")


def test_etcd_claims_are_exclusive_across_hosts(request: pytest.FixtureRequest) -> None:
    """Three hosts (stores with their own etcd clients) race for the same addresses."""
    import threading

    from hostnet.kernel import netns
    from hostnet.store.etcd import EtcdStore
    from hostnet.store.etcdv3 import Etcd
    from lab import SEGMENT

    ns = request.getfixturevalue("etcd_member")
    root = f"/t{uuid.uuid4().hex[:8]}/"
    stores = [
        EtcdStore(
            Etcd(
                [f"http://{SEGMENT}.2:2379"],
                socket_factory=lambda: netns.entered(f"/run/netns/{ns}"),
            ),
            f"h{i}",
            root=root,
        )
        for i in range(3)
    ]
    n = net().model_copy(update={"driver": "overlay"})
    stores[0].create_network(n)
    assert [x.name for x in stores[2].networks()] == ["n1"]  # global: every host sees it
    won: list[tuple[int, str]] = []

    def race(i: int) -> None:
        for k in range(2, 12):
            e = ep(n.id, f"172.16.1.{k}").model_copy(
                update={"vtep": f"10.0.0.{i}", "host": f"h{i}"}
            )
            try:
                stores[i].create_endpoint(e)
                won.append((i, e.ip))
            except Conflict:
                pass

    threads = [threading.Thread(target=race, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ips = [ip for _, ip in won]
    assert sorted(ips) == sorted({f"172.16.1.{k}" for k in range(2, 12)})  # each once
    every, _ = stores[1].cluster_endpoints()
    assert sorted(e.ip for e in every) == sorted(ips)
    assert {e.host for e in stores[0].endpoints()} <= {"h0"}


def test_both_addresses_of_a_dual_stack_endpoint_are_claimed(store: Store) -> None:
    n = net()
    store.create_network(n)
    a = ep(n.id, "172.16.1.2").model_copy(update={"ip6": "fd12::2", "prefix_len6": 64})
    store.create_endpoint(a)
    b = ep(n.id, "172.16.1.3").model_copy(update={"ip6": "fd12::2", "prefix_len6": 64})
    with pytest.raises(Conflict, match="fd12::2") as err:
        store.create_endpoint(b)
    assert err.value.details.get("address") == "fd12::2"
    assert len(store.endpoints()) == 1
    store.delete_endpoint(a.id)
    store.create_endpoint(b)  # both of a's claims went with it
    assert [e.ip6 for e in store.endpoints()] == ["fd12::2"]


def test_port_claims_per_family(store: Store) -> None:
    n = net()
    store.create_network(n)
    store.create_endpoint(ep(n.id, "172.16.1.2", [pm(8080, "0.0.0.0")]))
    store.create_endpoint(ep(n.id, "172.16.1.3", [pm(8080, "::")]))  # the other family
    for clash in ("", "10.1.1.1", "2001:db8::5"):
        with pytest.raises(Conflict, match="8080"):
            store.create_endpoint(ep(n.id, "172.16.1.4", [pm(8080, clash)]))
    assert len(store.endpoints()) == 2


def test_stores_describe_themselves(tmp_path: object) -> None:
    from hostnet.store.etcd import EtcdStore
    from hostnet.store.etcdv3 import Etcd
    from hostnet.store.sqlite import SqliteStore

    s = SqliteStore(f"{tmp_path}/h.db")
    assert s.describe() == {"Kind": "sqlite", "Location": f"{tmp_path}/h.db"}
    s.close()
    e = EtcdStore(Etcd(["https://10.0.0.1:2379", "https://10.0.0.2:2379"]), "h1")
    assert e.describe() == {
        "Kind": "etcd",
        "Location": "10.0.0.1:2379,10.0.0.2:2379",
        "Url": "etcds://10.0.0.1:2379,10.0.0.2:2379",
        "Host": "h1",
    }
    assert e.shared and e.remote and not s.shared


def test_an_unattached_endpoint_keeps_its_claims_through_attach_and_detach(store: Store) -> None:
    n = net()
    store.create_network(n)
    e = ep(n.id, "172.16.1.2", [pm(8080)]).model_copy(
        update={"container_id": "", "ifname": "", "standalone": True, "name": "late"}
    )
    store.create_endpoint(e)
    (got,) = store.endpoints()
    assert not got.attached and got.standalone and got.name == "late" and got.ports == [pm(8080)]
    store.update_endpoint(e.model_copy(update={"container_id": "c", "ifname": "eth1"}))
    store.update_endpoint(e)  # attached, then detached again: its claims never moved
    with pytest.raises(Conflict):
        store.create_endpoint(ep(n.id, "172.16.1.2"))
    with pytest.raises(Conflict):
        store.create_endpoint(ep(n.id, "172.16.1.3", [pm(8080)]))
    store.delete_endpoint(e.id)
    store.create_endpoint(ep(n.id, "172.16.1.2", [pm(8080)]))
