"""Docker networks and hostnet networks kept in step: pool ids, re-binding by name, the
expose verdict, Docker-made networks Docker lost, and the error texts (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from hostnet.docker import binding as bind
from hostnet.model import Network

OLD_ID, NEW_ID = "a" * 64, "b" * 64
DOCKER_ID = "d" * 64


def net(nid: str = NEW_ID, name: str = "nat", subnet: str = "172.16.0.0/16", **kw: Any) -> Network:
    return Network(id=nid, name=name, driver="nat", subnet=subnet, gateway="172.16.0.1", **kw)


def summary(n: Network) -> dict[str, Any]:
    return {
        "Name": n.name,
        "Id": n.id,
        "Driver": n.driver,
        "Subnet": n.subnet,
        "SubnetIPv6": n.subnet6,
        "DockerIds": n.docker_ids,
    }


def docker_view(name: str = "nat", wanted: str = "nat", **kw: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "Name": name,
        "Id": DOCKER_ID,
        "Driver": "nat",
        "Options": {"hostnet.network": wanted} if wanted else {},
        "IPAM": {
            "Driver": "hostnet-ipam",
            "Options": {"hostnet.network": wanted} if wanted else {},
            "Config": [{"Subnet": "172.16.0.0/16"}],
        },
        "Containers": {},
    }
    view.update(kw)
    return view


def assert_clean(text: str) -> None:
    for bad in ("Error(", "KeyError", "Traceback", '{"', "Exception"):
        assert bad not in text, text


# -- pool ids ---------------------------------------------------------------------------
def test_pool_ids_carry_name_and_subnet_and_parse_back() -> None:
    n = net(subnet6="fd00:1::/64")
    assert bind.pool_id(n, 4) == f"net:{NEW_ID}:nat:172.16.0.0/16"
    assert bind.parse_pool_id(bind.pool_id(n, 6)) == bind.PoolRef(6, NEW_ID, "nat", "fd00:1::/64")
    # the older form, without name: still understood
    assert bind.parse_pool_id(f"net:{OLD_ID}") == bind.PoolRef(4, OLD_ID)
    assert bind.parse_pool_id("pool:172.16.5.0/24") is None


def test_pool_of_a_network_made_again_under_its_name_rebinds() -> None:
    ref = bind.parse_pool_id(f"net:{OLD_ID}:nat:172.16.0.0/16")
    assert ref is not None
    again = net()
    assert bind.network_for_pool({again.id: again}, ref, "p") is again
    # the one with the recorded id wins over the name
    old = net(OLD_ID, name="nat")
    assert bind.network_for_pool({again.id: again, old.id: old}, ref, "p") is old


def test_pool_of_a_network_made_again_with_another_subnet_is_refused() -> None:
    ref = bind.parse_pool_id(f"net:{OLD_ID}:web:172.30.1.0/24")
    assert ref is not None
    again = net(name="web", subnet="172.30.2.0/24")
    with pytest.raises(bind.StaleBinding) as e:
        bind.network_for_pool({again.id: again}, ref, "p")
    text = str(e.value)
    assert "Docker network 'web'" in text and "hostnet network 'web'" in text
    assert "172.30.1.0/24" in text and "172.30.2.0/24" in text
    assert "hostnet docker expose web" in text
    assert_clean(text)


def test_pool_of_a_network_gone_names_it_and_the_remedies() -> None:
    ref = bind.parse_pool_id(f"net:{OLD_ID}:web:172.30.1.0/24")
    assert ref is not None
    with pytest.raises(bind.StaleBinding) as e:
        bind.network_for_pool({}, ref, "p")
    text = str(e.value)
    assert "hostnet network 'web', which hostnet no longer has" in text
    assert "hostnet docker expose web" in text and "docker network rm web" in text
    assert_clean(text)
    with pytest.raises(bind.StaleBinding) as e:  # an old pool id: no name to go by
        bind.network_for_pool({}, bind.PoolRef(4, OLD_ID), f"net:{OLD_ID}")
    assert "hostnet docker expose NET" in str(e.value)
    assert_clean(str(e.value))


# -- re-bind of a Docker network by its options ------------------------------------------
def test_rebind_checks_driver_and_every_family() -> None:
    n = net(subnet6="fd00:1::/64")
    assert bind.check_rebind(n, "nat", "nat", {4: "172.16.0.0/16", 6: "fd00:1::/64"}, "nat") is n
    with pytest.raises(bind.StaleBinding, match="without an IPv6 subnet"):
        bind.check_rebind(n, "nat", "nat", {4: "172.16.0.0/16", 6: ""}, "nat")
    with pytest.raises(bind.StaleBinding, match="the transparent driver"):
        bind.check_rebind(n, "nat", "nat", {4: "172.16.0.0/16"}, "transparent")


def test_unbound_docker_network_errors_name_what_they_can() -> None:
    blind = str(bind.unbound(DOCKER_ID, None))
    assert DOCKER_ID[:12] in blind and "docker network ls --filter id=" in blind
    exposed = str(bind.unbound(DOCKER_ID, docker_view("mynat", "gone")))
    assert "Docker network 'mynat'" in exposed and "hostnet network 'gone'" in exposed
    made = str(bind.unbound(DOCKER_ID, docker_view("dn", "")))
    assert "Docker network 'dn'" in made and "docker network rm dn" in made
    for text in (blind, exposed, made):
        assert_clean(text)


# -- hostnet docker expose NET with a Docker network of that name ------------------------
def test_expose_verdicts() -> None:
    n = net(docker_ids=[DOCKER_ID])
    assert bind.expose_verdict(None, summary(n)).action == "create"
    assert bind.expose_verdict(docker_view(), summary(n)).action == "bound"
    stale = bind.expose_verdict(docker_view(), summary(net()))
    assert stale.action == "recreate" and "no record" in stale.why
    elsewhere = bind.expose_verdict(docker_view(wanted="other"), summary(n))
    assert elsewhere.action == "recreate" and "'other'" in elsewhere.why
    moved = bind.expose_verdict(docker_view(), summary(net(subnet="172.20.0.0/16")))
    assert moved.action == "recreate" and "172.20.0.0/16" in moved.why
    bridge = bind.expose_verdict(docker_view(Driver="bridge", wanted=""), summary(n))
    assert (
        bridge.action == "refuse"
        and "bridge" in bridge.why
        and "docker network rm nat" in (bridge.why)
    )
    plain = bind.expose_verdict(docker_view(wanted=""), summary(n))  # docker network create -d nat
    assert plain.action == "refuse" and "did not expose" in plain.why


def test_in_use_refusal_names_containers_and_what_to_do() -> None:
    text = bind.in_use_refusal("nat", "hostnet has no record of it", ["web", "db"])
    assert "db, web" in text and "docker network disconnect nat" in text
    assert "hostnet docker expose nat" in text


# -- Docker's data root wiped -------------------------------------------------------------
def test_networks_docker_made_and_no_longer_has() -> None:
    made = net("1" * 64, "dn", "172.16.5.0/24", docker_owned=True, docker_ids=["x"], created=10)
    kept = net("2" * 64, "dk", "172.16.6.0/24", docker_owned=True, docker_ids=["y"], created=10)
    fresh = net("3" * 64, "df", "172.16.7.0/24", docker_owned=True, docker_ids=["z"], created=30)
    exposed = net("4" * 64, "nat", docker_ids=["w"], carvable=True, created=10)
    lost = bind.lost_by_docker([made, kept, fresh, exposed], {"y"}, before=20)
    assert lost == [made]  # fresh: made after Docker's list was taken
    assert bind.docker_state(made) == "made by Docker"
    made.docker_gone = True
    assert bind.docker_state(made) == "made by Docker, gone from Docker"
    assert bind.docker_state(exposed, bind.UP) == "exposed"
    assert bind.docker_state(net(name="x")) == "-"


def test_the_docker_column_says_what_is_true_now() -> None:
    """Issue 21: "exposed" only while Docker answers and has a Docker network bound to
    it; otherwise what hostnetd waits for, or that it does not follow Docker at all."""
    default = net(carvable=True)  # the default nat, no Docker network bound yet
    bound = net("4" * 64, "nat", docker_ids=["w"], carvable=True)
    shown = net("5" * 64, "web", "172.16.8.0/24", docker_expose=True, docker_ids=["v"])
    plain = net("6" * 64, "plain", "172.16.9.0/24")
    for n in (default, bound, shown):  # no socket, or nothing answers on it
        assert bind.docker_state(n, bind.WAITING) == "when Docker answers"
    assert bind.docker_state(bound, bind.UP) == bind.docker_state(shown, bind.UP) == "exposed"
    assert bind.docker_state(default, bind.UP) == "not in Docker (see the daemon log)"
    assert bind.docker_state(default, bind.OFF) == "not followed (--docker-host none)"
    assert bind.docker_state(bound, bind.OFF) == "bound, unchecked (--docker-host none)"
    for presence in (bind.OFF, bind.WAITING, bind.UP):
        assert bind.docker_state(plain, presence) == "-"
