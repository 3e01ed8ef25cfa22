"""Endpoints in HCN's order against a fake kernel (no root): made unattached (claims
recorded, nothing in the kernel), attached to a container or the host, detached (still
recorded), deleted; a failing kernel step in attach leaves it unattached and the kernel
as it was; bad input changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_kernel import FakeKernel

from hostnet.core import reset
from hostnet.core.reconcile import reconcile
from hostnet.core.service import HostNetworkingService
from hostnet.errors import Conflict, InvalidRequest, KernelError, NotFound
from hostnet.model import HOST_COMPARTMENT
from hostnet.store import open_store


def service(state: str, k: FakeKernel) -> HostNetworkingService:
    s = HostNetworkingService(open_store(f"{state}/hostnet.db"), "t1", state, kernel=k)
    k.spaces.setdefault(s.host_netns, {})  # the daemon's own namespace, by its path
    return s


@pytest.fixture
def svc(tmp_path: object) -> Iterator[HostNetworkingService]:
    s = service(str(tmp_path), FakeKernel())
    s.create_network("n1", "nat", "10.9.0.0/24")
    s.create_network("n2", "nat", "10.8.0.0/24")
    yield s
    s.store.close()


def fake(svc: HostNetworkingService) -> FakeKernel:
    assert isinstance(svc.kernel, FakeKernel)
    return svc.kernel


def steps(k: FakeKernel) -> list[object]:
    return [c[0] for c in k.calls]


def kernel_state(k: FakeKernel) -> tuple[object, ...]:
    return (sorted(k.links), {n: sorted(v) for n, v in k.spaces.items()}, len(k.nft_scripts))


def test_create_records_claims_and_touches_no_kernel(svc: HostNetworkingService) -> None:
    k = fake(svc)
    k.calls.clear()
    ep = svc.create_endpoint("n1", "web-ep", ip="10.9.0.7", port_specs=["8080:80"])
    assert k.calls == []  # no kernel object for an unattached endpoint
    assert not ep.attached and ep.standalone and ep.name == "web-ep" and ep.ifname == ""
    assert ep.id in svc.index.unattached and ep.id not in svc.eps
    (stored,) = svc.store.endpoints()
    assert stored.container_id == "" and stored.standalone and stored.ports[0].host_port == 8080
    with pytest.raises(Conflict):  # the address is held: nobody else gets it
        svc.create_container("other", [{"network": "n1", "ip": "10.9.0.7"}])
    with pytest.raises(Conflict):  # and so is the host port
        svc.create_container("other", [{"network": "n1"}], ["8080:80"])
    auto = svc.create_endpoint("n1")
    assert auto.ip == "10.9.0.8"  # round robin: after the last address given


def test_claims_survive_a_restart(tmp_path: object) -> None:
    state = str(tmp_path)
    s = service(state, FakeKernel())
    s.create_network("n1", "nat", "10.9.0.0/24")
    ep = s.create_endpoint("n1", "kept", ip="10.9.0.9")
    s.store.close()
    again = service(state, FakeKernel())  # as after kill -9: the index rebuilt from the store
    assert again.endpoint(ep.id).name == "kept" and not again.endpoint(ep.id).attached
    with pytest.raises(Conflict):
        again.create_endpoint("n1", ip="10.9.0.9")
    again.store.close()


def test_attach_to_a_container_realizes_its_vnic(svc: HostNetworkingService) -> None:
    k = fake(svc)
    c = svc.create_container("web", [{"network": "n1"}])
    ep = svc.create_endpoint("n2", "second", ip="10.8.0.5")
    k.calls.clear()
    attached = svc.attach_endpoint(ep.id, "web")
    assert attached.container_id == c.id and attached.ifname == "eth1"
    inside = next(x for x in k.calls if x[0] == "configure_inside")
    assert inside == ("configure_inside", c.netns, "eth1", "10.8.0.5", None)  # no 2nd route
    assert ep.host_ifname in k.links and "eth1" in k.spaces[c.netns]
    assert [e.id for e in svc.endpoints_of(c)][-1] == ep.id
    assert next(e for e in svc.store.endpoints() if e.id == ep.id).container_id == c.id


def test_a_failed_attach_leaves_it_unattached_and_the_kernel_as_before(
    svc: HostNetworkingService,
) -> None:
    k = fake(svc)
    svc.create_container("web", [{"network": "n2"}])
    ep = svc.create_endpoint("n1", ip="10.9.0.50", port_specs=["9090:90"])
    before = kernel_state(k)
    k.calls.clear()
    k.fail = {"configure_inside"}
    with pytest.raises(KernelError):
        svc.attach_endpoint(ep.id, "web")
    assert steps(k).index("create_veth") < steps(k).index("delete_link")  # undone, in reverse
    k.fail = set()
    assert sorted(k.links) == before[0] and {n: sorted(v) for n, v in k.spaces.items()} == before[1]
    left = svc.endpoint(ep.id)
    assert not left.attached and ep.id in svc.index.unattached
    stored = next(e for e in svc.store.endpoints() if e.id == ep.id)
    assert stored.container_id == "" and stored.ports[0].host_port == 9090  # claims kept
    assert svc.attach_endpoint(ep.id, "web").ifname == "eth1"  # and it attaches now


def test_detach_keeps_it_recorded_and_its_address_held(svc: HostNetworkingService) -> None:
    k = fake(svc)
    c = svc.create_container("web", [{"network": "n1"}])
    ep = svc.create_endpoint("n2", ip="10.8.0.5")
    svc.attach_endpoint(ep.id, c.id)
    k.calls.clear()
    left = svc.detach_endpoint(ep.id)
    assert "delete_link" in steps(k) and ep.host_ifname not in k.links
    assert (
        not left.attached
        and left.ifname == ""
        and svc.endpoints_of(c)[0].network_id != ep.network_id
    )
    with pytest.raises(Conflict):
        svc.create_container("other", [{"network": "n2", "ip": "10.8.0.5"}])
    k.calls.clear()
    with pytest.raises(Conflict):  # detach of an unattached endpoint
        svc.detach_endpoint(ep.id)
    assert k.calls == []


def test_removing_its_container_leaves_it_unattached(svc: HostNetworkingService) -> None:
    svc.create_container("web", [{"network": "n2"}])
    ep = svc.create_endpoint("n1", ip="10.9.0.40")
    svc.attach_endpoint(ep.id, "web")
    svc.remove_container("web")
    assert not svc.endpoint(ep.id).attached and ep.id in svc.index.unattached


def test_attach_to_the_host_is_a_vnic_in_the_daemons_namespace(
    svc: HostNetworkingService,
) -> None:
    k = fake(svc)
    ep = svc.create_endpoint("n1", "mgmt", ip="10.9.0.30")
    k.calls.clear()
    on_host = svc.attach_endpoint(ep.id, "host")
    assert on_host.container_id == HOST_COMPARTMENT and on_host.ifname.startswith("hh")
    assert ("create_veth", ep.host_ifname, on_host.ifname, svc.host_netns) in k.calls
    inside = next(x for x in k.calls if x[0] == "configure_inside")
    assert inside == ("configure_inside", svc.host_netns, on_host.ifname, "10.9.0.30", None)
    other = svc.create_endpoint("n1")
    with pytest.raises(Conflict):  # one host vNIC per network
        svc.attach_endpoint(other.id, "host")
    del k.links[ep.host_ifname]  # gone behind hostnet's back: reconcile plugs it again
    k.calls.clear()
    report = reconcile(svc)
    assert ep.host_ifname in k.links and "host/" + on_host.ifname in report["repaired_endpoints"]
    inside = next(x for x in k.calls if x[0] == "configure_inside")
    assert inside[-1] is None  # never the host's default route
    svc.detach_endpoint(ep.id)
    assert ep.host_ifname not in k.links and not svc.endpoint(ep.id).attached


def test_delete_frees_the_address_and_ports(svc: HostNetworkingService) -> None:
    k = fake(svc)
    svc.create_container("web", [{"network": "n2"}])
    ep = svc.create_endpoint("n1", ip="10.9.0.60", port_specs=["7070:70"])
    svc.attach_endpoint(ep.id, "web")
    assert svc.delete_endpoint(ep.id) == []
    assert ep.host_ifname not in k.links and ep.id not in [e.id for e in svc.store.endpoints()]
    with pytest.raises(NotFound):
        svc.endpoint(ep.id)
    svc.create_container("other", [{"network": "n1", "ip": "10.9.0.60"}], ["7070:70"])


def test_bad_input_is_refused_and_changes_nothing(svc: HostNetworkingService) -> None:
    k = fake(svc)
    svc.create_container("web", [{"network": "n2"}])
    ep = svc.create_endpoint("n1", ip="10.9.0.20")
    svc.attach_endpoint(ep.id, "web")
    free = svc.create_endpoint("n1")
    k.calls.clear()
    eps_before = sorted(e.model_dump_json() for e in svc.store.endpoints())
    bad = [
        (NotFound, lambda: svc.create_endpoint("nope")),
        (InvalidRequest, lambda: svc.create_endpoint("n1", ip="10.99.0.5")),
        (Conflict, lambda: svc.create_endpoint("n1", ip="10.9.0.20")),
        (InvalidRequest, lambda: svc.create_endpoint("n1", mac="zz:zz")),
        (Conflict, lambda: svc.attach_endpoint(ep.id, "web")),  # attached twice
        (NotFound, lambda: svc.attach_endpoint(free.id, "no-such-container")),
        (Conflict, lambda: svc.attach_endpoint(free.id, "web")),  # web is on n1 already
        (NotFound, lambda: svc.attach_endpoint("f" * 64, "web")),
        (Conflict, lambda: svc.detach_endpoint(free.id)),
        (Conflict, lambda: svc.delete_endpoint(svc.endpoints_of(svc.container("web"))[0].id)),
    ]
    for err, call in bad:
        with pytest.raises(err):
            call()
    assert (
        k.calls == [] and sorted(e.model_dump_json() for e in svc.store.endpoints()) == eps_before
    )


def test_networks_count_unattached_endpoints_and_reset_removes_them(
    svc: HostNetworkingService,
) -> None:
    ep = svc.create_endpoint("n1", "lonely")
    with pytest.raises(Conflict, match="lonely"):
        svc.remove_network("n1")
    assert "n1" not in svc.prune()
    host = svc.create_endpoint("n1", "mgmt")
    svc.attach_endpoint(host.id, "host")
    report = reset.reset(svc)
    assert report["Errors"] == [] and svc.store.endpoints() == []
    assert not svc.index.unattached and not svc.eps and ep.host_ifname not in fake(svc).links
