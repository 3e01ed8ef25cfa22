"""The store contract (store/base.py), run against every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hostnet.errors import Conflict
from hostnet.model import Container, Endpoint, Network, PortMapping, new_id
from hostnet.store import Store, open_store


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = open_store(str(tmp_path / "hostnet.db"))
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

    with pytest.raises(InvalidRequest, match="unknown store 'redis'"):
        open_store("redis://x")
