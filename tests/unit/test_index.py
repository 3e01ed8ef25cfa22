"""The index and endpoint/network planning: pure, no root, no store."""

from __future__ import annotations

import ipaddress

import pytest
from fake_kernel import FakeKernel

from hostnet.core import planning
from hostnet.core.index import Index
from hostnet.drivers.nat import NatDriver
from hostnet.errors import Conflict, InvalidRequest, NotFound
from hostnet.model import Container, Endpoint, Network, PortMapping


def net(name: str, subnet: str, nid: str = "", carvable: bool = False) -> Network:
    s = ipaddress.IPv4Network(subnet)
    return Network(
        id=nid or (name * 8)[:16],
        name=name,
        driver="nat",
        subnet=subnet,
        gateway=str(s.network_address + 1),
        switch="hn-" + name,
        carvable=carvable,
    )


def ep(eid: str, n: Network, c: Container, ip: str, ports: tuple[int, ...] = ()) -> Endpoint:
    return Endpoint(
        id=eid,
        network_id=n.id,
        container_id=c.id,
        ip=ip,
        prefix_len=24,
        gateway=n.gateway,
        mac="02:42:00:00:00:01",
        ifname="eth0",
        host_ifname="hv" + eid[:10],
        ports=[
            PortMapping(protocol="tcp", host_ip="", host_port=p, container_port=80, container_ip=ip)
            for p in ports
        ],
    )


def Nat() -> NatDriver:  # noqa: N802 - reads as the driver it is
    return NatDriver(FakeKernel(), "hostnet:t")


def test_remember_and_forget_keep_every_lookup_in_step() -> None:
    n = net("n1", "10.1.0.0/24")
    c = Container(id="c" * 64, name="web", compartment_id=2, netns="x")
    ix = Index([n], [c])
    e = ep("e" * 32, n, c, "10.1.0.2", (8080,))
    ix.remember(e)
    assert ix.endpoints_of(c) == [e] and ix.endpoints_on(n) == [e]
    assert ipaddress.IPv4Address("10.1.0.2") in ix.addresses_used(n)
    assert ix.port_index.taken(e.ports[0])
    ix.forget(e)
    assert ix.endpoints_of(c) == [] and ix.endpoints_on(n) == [] and not ix.addresses_used(n)
    assert not ix.port_index.taken(e.ports[0])
    assert ix.eps_of == {} and ix.eps_on == {}  # no empty buckets left behind


def test_lookups_by_name_id_and_prefix_and_renames() -> None:
    n = net("n1", "10.1.0.0/24", nid="abcdef0123456789")
    c = Container(id="1234" + "0" * 60, name="web", compartment_id=2, netns="x")
    ix = Index([n], [c])
    assert ix.network("n1") is n and ix.network(n.id) is n and ix.network("abcd") is n
    assert ix.container("web") is c and ix.container("1234") is c
    with pytest.raises(NotFound, match="no network named 'abc'"):
        ix.network("abc")  # a prefix shorter than 4 is not a reference
    c2 = c.model_copy(update={"name": "web2"})
    ix.add_container(c2)  # a changed copy replaces it, under its new name only
    assert ix.container_named("web") is None and ix.container("web2") is c2
    ix.drop_container(c.id)
    assert ix.container_named("web2") is None and not ix.containers


def test_plan_endpoint_takes_the_next_free_address_and_refuses_a_taken_port() -> None:
    n = net("n1", "10.1.0.0/24")
    c = Container(id="c" * 64, name="web", compartment_id=2, netns="x")
    ix = Index([n], [c])
    ix.remember(ep("e" * 32, n, c, "10.1.0.2", (8080,)))
    p = planning.plan_endpoint(ix, Nat(), n, c, "eth1", "", ["8081:80"])
    assert p.ip == "10.1.0.3" and [m.host_port for m in p.ports] == [8081]
    p = planning.plan_endpoint(ix, Nat(), n, c, "eth1", "", [], after="10.1.0.9")
    assert p.ip == "10.1.0.10"  # round robin from the last one given, as Docker does
    with pytest.raises(Conflict):
        planning.plan_endpoint(ix, Nat(), n, c, "eth1", "", ["8080:80"])
    with pytest.raises(Conflict):
        planning.plan_endpoint(ix, Nat(), n, c, "eth1", "10.1.0.2", [])
    other = {ipaddress.IPv4Address("10.1.0.3")}  # another host's claim
    assert planning.plan_endpoint(ix, Nat(), n, c, "eth1", "", [], also_used=other).ip == "10.1.0.4"


def _plan(
    ix: Index, name: str, subnet: str = "", gateway: str = "", host: planning.Prefixes = list
) -> Network:
    addresses = planning.AddressPlan(
        subnets=[subnet] if subnet else [], gateways=[gateway] if gateway else []
    )
    return planning.plan_network(ix, lambda n: Nat(), Nat(), host, name, addresses, {}, [])


def test_plan_network_refuses_overlaps_but_carves_out_of_a_carvable_one() -> None:
    big = net("nat", "172.16.0.0/16", carvable=True)
    ix = Index([big])
    sub = _plan(ix, "n2", "172.16.5.0/24")
    assert sub.subnet == "172.16.5.0/24" and sub.gateway == "172.16.5.1"
    ix.add_network(sub)
    with pytest.raises(Conflict, match="overlaps network 'n2'"):
        _plan(ix, "n3", "172.16.5.0/25")
    with pytest.raises(Conflict, match="host's own address"):
        _plan(ix, "n4", "10.7.1.0/24", host=lambda: [ipaddress.IPv4Network("10.7.0.0/16")])
    with pytest.raises(InvalidRequest, match="--gateway needs --subnet"):
        _plan(ix, "n5", "", "10.0.0.1")
    with pytest.raises(Conflict, match="already exists"):
        _plan(ix, "n2")
