"""The driver registry: the faces' name tables come from it, and the service takes fake
drivers registered under new names (against the fake kernel, no root)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from fake_kernel import FakeKernel

from hostnet.cli import cmdlets as powershell_cmdlets
from hostnet.core import firewall
from hostnet.core.service import HostNetworkingService
from hostnet.docker import binding as docker_binding
from hostnet.docker import plugin as docker_plugin
from hostnet.drivers import registry, vnic
from hostnet.drivers.base import Driver
from hostnet.drivers.registry import BUILTIN, DriverContext, DriverInfo, Drivers
from hostnet.kernel.handles import NftHandle
from hostnet.model import Container, Endpoint, Network, PortMapping
from hostnet.store import etcd, open_store


class FakeDriver(Driver):
    """A driver of a kind hostnet does not have: a bridge, vNICs, a host-wide table."""

    name = "fake"
    options: ClassVar[dict[str, tuple[str, str]]] = {"colour": ("str", "what it is called")}
    rendered: ClassVar[list[list[Any]]] = []

    def ensure_network(self, net: Network) -> None:
        self.host.ensure_bridge(net.switch, 1500, self.owner, "02:00:00:00:00:01")

    def remove_network(self, net: Network) -> None:
        self.host.delete_link(net.switch)

    def attach(self, net: Network, ep: Endpoint, c: Container, default_route: bool) -> None:
        vnic.plug(
            self.kernel,
            net,
            ep,
            c,
            default_route=default_route,
            mtu=1500,
            owner=self.owner,
            isolated=False,
        )
        self.apply_acl(ep, net)

    def detach(self, net: Network, ep: Endpoint, c: Container) -> None:
        self.remove_acl(ep, net)

    def add_ports(self, ep: Endpoint, added: list[PortMapping]) -> None:
        raise NotImplementedError

    def remove_ports(self, ep: Endpoint, removed: list[PortMapping]) -> None:
        raise NotImplementedError

    def endpoint_present(self, net: Network, ep: Endpoint) -> bool:
        return vnic.present(self.rt, net, ep)

    def switch_view(self, net: Network) -> dict[str, Any]:
        return {"Type": "Fake", "Adapter": "", "Kernel": net.switch}

    def firewall_tables(self) -> list[firewall.Table]:
        return [*super().firewall_tables(), firewall.Table("fake", 50, self._render)]

    def firewall_pieces(self, table: str, net: Network, eps: list[Endpoint]) -> list[Any]:
        if table == "fake":
            return [(net.name, e.ip) for e in eps]
        return super().firewall_pieces(table, net, eps)

    def _render(self, nft: NftHandle, pieces: list[Any]) -> None:
        self.rendered.append(pieces)


FAKE = DriverInfo("fake", FakeDriver.build, ("hostnet-fake",), "Fake", ("Fake",))


@pytest.fixture
def svc(tmp_path: object) -> Iterator[HostNetworkingService]:
    state = str(tmp_path)
    FakeDriver.rendered.clear()
    s = HostNetworkingService(
        open_store(f"{state}/hostnet.db"),
        "t1",
        state,
        kernel=FakeKernel(),
        registry=[*BUILTIN, FAKE],
    )
    yield s
    s.store.close()


def test_a_fake_driver_makes_a_network_and_an_endpoint(svc: HostNetworkingService) -> None:
    k = svc.kernel
    assert isinstance(k, FakeKernel)
    net = svc.create_network("f1", "fake", "10.7.0.0/24", options={"colour": "blue"})
    assert svc.drivers.info("fake").docker == ("hostnet-fake",)
    assert net.switch in k.links and net.options == {"colour": "blue"}
    c = svc.create_container("web", [{"network": "f1"}])
    (ep,) = svc.endpoints_of(c)
    assert ep.ip == "10.7.0.2" and svc.drivers["fake"].endpoint_present(net, ep)
    inside = next(x for x in k.calls if x[0] == "configure_inside")
    assert inside == ("configure_inside", c.netns, "eth0", "10.7.0.2", "10.7.0.1")
    # a whole sync (start, reconcile) asks the driver for its pieces; its table renders them
    assert FakeDriver.rendered == [[]]  # when the network was made
    svc.firewall.sync()
    assert FakeDriver.rendered[-1] == [("f1", "10.7.0.2")]
    svc.remove_container("web")
    svc.firewall.sync()
    assert not svc.eps and FakeDriver.rendered[-1] == []


def test_an_unknown_option_of_the_fake_driver_is_refused(svc: HostNetworkingService) -> None:
    with pytest.raises(Exception, match="option 'size' is not supported by the fake driver"):
        svc.create_network("f1", "fake", "10.7.0.0/24", options={"size": "9"})


def test_a_service_without_a_cluster_scoped_driver_is_in_no_cluster(tmp_path: object) -> None:
    state = str(tmp_path)
    s = HostNetworkingService(
        open_store(f"{state}/hostnet.db"), "t1", state, kernel=FakeKernel(), registry=[FAKE]
    )
    assert list(s.drivers) == ["fake"] and s.drivers.cluster_driver() is None
    assert s.cluster.vtep == "" and not s.cluster.clustered()
    s.store.close()


def test_the_store_of_one_host_answers_not_clustered(tmp_path: object) -> None:
    store = open_store(f"{tmp_path}/hostnet.db")
    assert store.cluster() is None
    store.close()


def test_scope_comes_from_the_registry(svc: HostNetworkingService) -> None:
    assert svc.drivers.cluster_driver() is svc.drivers["overlay"]
    assert [d for d in svc.drivers if svc.drivers[d].cluster_scoped] == ["overlay"]
    assert svc.drivers.with_capability("publishes_ports") == [svc.drivers["nat"]]


def test_the_faces_name_tables_come_from_the_registry() -> None:
    assert docker_plugin.DRIVER_NAMES == {
        "nat": "nat",
        "transparent": "transparent",
        "l2bridge": "l2bridge",
        "l2tunnel": "l2tunnel",
        "hostnet-overlay": "overlay",
    }
    assert docker_plugin.SOCKET_NAMES[-1] == docker_plugin.IPAM_NAME
    assert set(docker_plugin.DRIVER_NAMES) == docker_binding.HOSTNET_DRIVERS
    assert registry.docker_name("overlay") == "hostnet-overlay"
    assert registry.from_docker("hostnet-overlay") == "overlay"
    assert registry.docker_name("nat") == registry.from_docker("nat") == "nat"
    assert powershell_cmdlets.MODES["l2bridge"] == "l2bridge"
    assert set(powershell_cmdlets.MODES.values()) == {i.name for i in BUILTIN}
    assert registry.hns_types()["L2Tunnel"] == "l2tunnel"
    assert etcd.GLOBAL_DRIVERS == ("overlay",)


def test_a_driver_is_registered_once_under_its_own_name() -> None:
    ctx = DriverContext(FakeKernel(), "hostnet:t")
    with pytest.raises(ValueError, match="registered twice"):
        Drivers.build(ctx, [FAKE, FAKE])
    with pytest.raises(ValueError, match="registered as 'other'"):
        Drivers.build(ctx, [DriverInfo("other", FakeDriver.build)])
    with pytest.raises(ValueError, match="unknown needs"):
        DriverInfo("x", FakeDriver.build, needs=frozenset({"gpu"}))
