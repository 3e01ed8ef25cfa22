"""The service's orchestration against a fake kernel (no root): attach, hot add, detach,
and rollback in reverse when a step fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_kernel import FakeKernel

from hostnet.core.planning import AddressPlan
from hostnet.core.service import HostNetworkingService
from hostnet.errors import Conflict, KernelError
from hostnet.model import PortMapping
from hostnet.store import open_store


@pytest.fixture
def svc(tmp_path: object) -> Iterator[HostNetworkingService]:
    state = str(tmp_path)
    s = HostNetworkingService(
        open_store(f"{state}/hostnet.db"),
        "t1",
        state,
        kernel=FakeKernel(),
    )
    s.create_network("n1", "nat", "10.9.0.0/24")
    yield s
    s.store.close()


def fake(svc: HostNetworkingService) -> FakeKernel:
    assert isinstance(svc.kernel, FakeKernel)
    return svc.kernel


def names(calls: list[tuple[object, ...]]) -> list[object]:
    return [c[0] for c in calls]


def test_attach_realizes_in_order_and_records_intent(svc: HostNetworkingService) -> None:
    k = fake(svc)
    k.calls.clear()
    c = svc.create_container("web", [{"network": "n1"}], ["8080:80"])
    steps = names(k.calls)
    order = ["create_compartment", "create_veth", "set_bridge_port", "configure_inside", "nft"]
    assert [s for s in steps if s in order] == order, steps
    inside = next(x for x in k.calls if x[0] == "configure_inside")
    assert inside == ("configure_inside", c.netns, "eth0", "10.9.0.2", "10.9.0.1")
    assert "add element" in k.nft_scripts[-1] and "8080" in k.nft_scripts[-1]
    (ep,) = svc.store.endpoints()
    assert ep.ip == "10.9.0.2" and [p.host_port for p in ep.ports] == [8080]
    # the default ACL needs no nftables work of its own: the one script was the mapping
    assert steps.count("nft") == 1


def test_hot_add_gives_no_second_default_route(svc: HostNetworkingService) -> None:
    k = fake(svc)
    svc.create_network("n2", "nat", "10.8.0.0/24")
    svc.create_container("web", [{"network": "n1"}])
    k.calls.clear()
    ep = svc.connect("n2", "web")
    assert ep.ifname == "eth1"
    inside = next(x for x in k.calls if x[0] == "configure_inside")
    assert inside[2:] == ("eth1", "10.8.0.2", None)


def test_a_failed_step_undoes_in_reverse_and_frees_address_and_port(
    svc: HostNetworkingService,
) -> None:
    k = fake(svc)
    k.calls.clear()
    k.fail = {"configure_inside"}
    with pytest.raises(KernelError):
        svc.create_container("web", [{"network": "n1"}], ["8080:80"])
    steps = names(k.calls)
    assert steps.index("create_compartment") < steps.index("create_veth")
    assert steps[-1] == "remove_compartment", steps  # the last undo is the first step's
    assert not svc.containers and not svc.eps and svc.store.containers() == []
    assert svc.store.endpoints() == [] and not k.spaces and "hv" not in "".join(k.links)
    k.fail = set()
    svc.create_container("web", [{"network": "n1"}], ["8080:80"])  # the same address and port
    (ep,) = svc.store.endpoints()
    assert ep.ip == "10.9.0.2" and ep.ports[0].host_port == 8080


def test_a_taken_port_changes_nothing(svc: HostNetworkingService) -> None:
    k = fake(svc)
    svc.create_container("a", [{"network": "n1"}], ["8080:80"])
    k.calls.clear()
    with pytest.raises(Conflict):
        svc.create_container("b", [{"network": "n1"}], ["8080:80"])
    assert k.calls == [] and [c.name for c in svc.containers.values()] == ["a"]
    b = svc.create_container("b", [{"network": "n1"}], ["8081:80"])
    assert svc.endpoints_of(b)[0].ip == "10.9.0.3"


def test_detach_of_a_runtime_compartment_cuts_its_vnic(svc: HostNetworkingService) -> None:
    k = fake(svc)
    k.spaces["/run/netns/cni-1"] = {}  # made by the runtime, as CNI ADD expects
    c, ep = svc.attach_external("c" * 64, "/run/netns/cni-1", "eth0", "n1", port_specs=["9000:80"])
    assert ep.host_ifname in k.links
    k.calls.clear()
    assert svc.detach_external(c.id, "eth0") == []
    steps = names(k.calls)
    assert steps == ["nft", "delete_link"], k.calls  # unmap the port, then cut the vNIC
    assert "delete element" in k.nft_scripts[-1]
    assert ep.host_ifname not in k.links and "/run/netns/cni-1" in k.spaces  # runtime's own
    assert svc.store.endpoints() == [] and svc.store.containers() == []
    assert svc.detach_external(c.id, "eth0") == []  # DEL again: already gone is success


def test_an_attach_whose_container_went_meanwhile_undoes_its_vnic(
    svc: HostNetworkingService,
) -> None:
    """A CNI DEL for the same container lands while the ADD plugs its vNIC (the kernel
    work runs without the service lock): the ADD is refused and takes its vNIC back."""
    k = fake(svc)
    k.spaces["/run/netns/cni-2"] = {}
    cid = "d" * 64
    k.hooks["create_veth"] = lambda: svc.detach_external(cid, "eth0")  # before it exists
    with pytest.raises(Conflict, match="removed during the attach"):
        svc.attach_external(cid, "/run/netns/cni-2", "eth0", "n1", port_specs=["9100:80"])
    assert not [n for n in k.links if n.startswith("hv")], k.links
    assert svc.store.endpoints() == [] and svc.store.containers() == [] and not svc.eps
    svc.attach_external(cid, "/run/netns/cni-2", "eth0", "n1", port_specs=["9100:80"])


def _interleave(svc: HostNetworkingService, during: object) -> None:
    """Make the store remote (writes let the lock go) and run ``during`` (another request)
    in the middle of the next container write, as a concurrent request would."""
    store = svc.store
    store.remote = True  # type: ignore[misc]
    write = store.create_container
    pending = [during]

    def create_container(c: object) -> None:
        if pending:
            pending.pop()()  # type: ignore[operator]
        write(c)  # type: ignore[arg-type]

    store.create_container = create_container  # type: ignore[method-assign]


def test_a_request_running_during_a_store_write_plans_around_what_it_holds(
    svc: HostNetworkingService,
) -> None:
    seen: dict[str, object] = {}

    def meanwhile() -> None:
        seen["b"] = svc.create_container("b", [{"network": "n1"}])
        with pytest.raises(Conflict, match="8080"):
            svc.create_container("c", [{"network": "n1"}], ["8080:80"])

    _interleave(svc, meanwhile)
    svc.create_container("a", [{"network": "n1"}], ["8080:80"])
    eps = {svc.containers[e.container_id].name: e for e in svc.store.endpoints()}
    assert set(eps) == {"a", "b"}
    assert eps["a"].ip != eps["b"].ip, eps
    assert [p.host_port for p in eps["a"].ports] == [8080]
    assert not svc.index.held


def test_a_container_removed_during_its_store_write_is_not_left_behind(
    svc: HostNetworkingService,
) -> None:
    _interleave(svc, lambda: svc.remove_container("a"))
    with pytest.raises(Conflict, match="removed while it was being created"):
        svc.create_container("a", [{"network": "n1"}], ["8080:80"])
    assert svc.store.containers() == [] and svc.store.endpoints() == []
    assert not svc.index.held and not svc.index.port_index.taken(
        PortMapping(protocol="tcp", host_ip="", host_port=8080, container_port=80)
    )
    again = svc.create_container("a", [{"network": "n1"}], ["8080:80"])
    assert [e.ip for e in svc.endpoints_of(again)] == ["10.9.0.2"]


def test_a_dual_stack_attach_configures_both_families_and_a_failure_frees_both(
    svc: HostNetworkingService,
) -> None:
    k = fake(svc)
    svc.create_network("ds", "nat", "10.7.0.0/24", addresses=AddressPlan(subnets=["fd12::/64"]))
    assert ("sysctl", "net/ipv6/conf/all/forwarding", "1") in k.calls
    k.calls.clear()
    c = svc.create_container("a", [{"network": "ds"}], ["8080:80"])
    inside = next(x for x in k.calls if x[0] == "configure_inside")
    assert inside[3:] == ("10.7.0.2", "10.7.0.1", "fd12::2", "fd12::1"), inside
    script = k.nft_scripts[-1]
    assert "add element ip hostnet pm_any { tcp . 8080 : 10.7.0.2 . 80 }" in script
    assert "add element ip6 hostnet pm_any { tcp . 8080 : fd12::2 . 80 }" in script
    (ep,) = svc.endpoints_of(c)
    assert (ep.ip, ep.ip6) == ("10.7.0.2", "fd12::2")
    k.fail = {"configure_inside"}
    with pytest.raises(KernelError):
        svc.create_container("b", [{"network": "ds", "ip6": "fd12::9"}])
    k.fail = set()
    used = {str(a) for a in svc.index.addresses_used(svc.network("ds"))}
    assert used == {"10.7.0.2", "fd12::2"}, used  # b's two addresses went back
    b = svc.create_container("b", [{"network": "ds", "ip6": "fd12::9"}])
    assert [e.ip6 for e in svc.endpoints_of(b)] == ["fd12::9"]


def test_reset_removes_containers_then_networks_then_tables(svc: HostNetworkingService) -> None:
    from hostnet.core import reset

    k = fake(svc)
    svc.create_network("n2", "nat", "10.8.0.0/24")
    svc.create_container("a", [{"network": "n1"}, {"network": "n2"}], ["8080:80"])
    svc.create_container("b", [{"network": "n2"}])
    plan = reset.plan(svc)
    assert plan["Containers"] == ["a", "b"] and plan["Networks"] == ["n1", "n2"]
    assert plan["Endpoints"] == 3 and plan["KeptInCluster"] == []
    k.calls.clear()
    report = reset.reset(svc)
    assert report["Errors"] == []
    steps = names(k.calls)
    # every vNIC and compartment goes before any switch
    last_container_step = max(i for i, s in enumerate(steps) if s == "remove_compartment")
    first_switch_step = min(
        i
        for i, c in enumerate(k.calls)
        if c[0] == "host_delete_link" and str(c[1]).startswith("hn-")
    )
    assert last_container_step < first_switch_step, steps
    assert k.spaces == {} and not [n for n in k.links if n.startswith(("hn-", "hv"))]
    assert report["Tables"] and "delete table" in k.nft_scripts[-1]
    assert svc.nets == {} and svc.containers == {} and svc.eps == {}
    assert svc.store.networks() == [] and svc.store.endpoints() == []
    assert svc.store.get_meta("next_compartment") is None


def test_created_stopped_nothing_realized_until_start(svc: HostNetworkingService) -> None:
    from hostnet.core import lifecycle

    k = fake(svc)
    k.calls.clear()
    c = lifecycle.create(svc, "demo", [{"network": "n1"}], image="WindowsServerCore")
    assert c.state == "created" and k.calls == [] and svc.endpoints_of(c) == []
    lifecycle.set_adapter(svc, "demo", "", {"static_ip": "10.9.0.100"})
    lifecycle.add_mapping(svc, "demo", "Network Adapter", "8082:80/tcp")
    assert k.calls == [], "a change before the first start is intent only"
    # as Docker: a created container reserves nothing; the second start finds it taken
    lifecycle.create(svc, "other", [{"network": "n1", "static_ip": "10.9.0.100"}])
    lifecycle.start(svc, "demo")
    with pytest.raises(Conflict):
        lifecycle.start(svc, "other")
    assert svc.container("other").state == "created" and k.spaces.keys() == {
        svc.container("demo").netns
    }
    order = ["create_compartment", "create_veth", "configure_inside", "nft"]
    assert [s for s in names(k.calls) if s in order][:4] == order, names(k.calls)
    (ep,) = svc.endpoints_of(svc.container("demo"))
    assert ep.ip == "10.9.0.100" and [p.host_port for p in ep.ports] == [8082]
    assert svc.container("demo").state == "stopped"  # realized; no process registered yet
    # stopped after a start: a change is applied at once; the automatic address stays
    k.calls.clear()
    how = lifecycle.set_adapter(svc, "demo", "", {"static_mac": "02:42:0a:09:00:64"})[1]
    assert how == "applied" and "create_veth" in names(k.calls)
    (ep,) = svc.endpoints_of(svc.container("demo"))
    assert ep.mac == "02:42:0a:09:00:64" and ep.ip == "10.9.0.100" and ep.ifname == "eth0"
    # a mapping alone changes on the endpoint, the vNIC stays
    k.calls.clear()
    lifecycle.remove_mapping(svc, "demo", "", "8082:80")
    assert (
        "create_veth" not in names(k.calls)
        and svc.endpoints_of(svc.container("demo"))[0].ports == []
    )
    # a failed change leaves the adapter as it was
    with pytest.raises(KernelError):
        k.fail.add("create_veth")
        lifecycle.set_adapter(svc, "demo", "", {"static_ip": "10.9.0.101"})
    k.fail.clear()
    assert lifecycle.adapter_of(svc.container("demo")).static_ip == "10.9.0.100"
    assert svc.store.containers()[0].adapters[0].static_ip == "10.9.0.100"
