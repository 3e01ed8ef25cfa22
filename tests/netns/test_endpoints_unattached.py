"""Endpoints in HCN's order, shown with packets: made unattached (its address held, no
kernel objects), attached to a container (it pings its gateway), detached (no ping, the
address still held), attached to the host (the daemon's namespace reaches a container
through it), kept across kill -9, deleted (the address is free)."""

from __future__ import annotations

import json
import signal

import pytest
from helpers import ping, serve

from hostnet.client import Client
from hostnet.errors import HostnetError
from lab import Lab, in_ns


def links(ns: str) -> list[str]:
    return [x["ifname"] for x in json.loads(in_ns(ns, "ip", "-j", "link", "show").stdout)]


def test_an_endpoint_made_unattached_then_attached_detached_and_deleted(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "172.16.1.0/24", "front")
    d.cli("network", "create", "--subnet", "172.16.2.0/24", "back")
    api = Client(d.socket, timeout=30)
    box = serve(d, "front", "box")
    ep = api.post("/endpoints", {"network": "back", "name": "late", "ip": "172.16.2.50"})
    assert ep["State"] == "unattached" and ep["IPAddress"] == "172.16.2.50"
    assert ep["HostIfName"] not in links(d.host)  # nothing in the kernel yet
    inspect = d.json("network", "inspect", "back")[0]
    assert inspect["Containers"] == {} and inspect["Endpoints"][ep["Id"]]["Name"] == "late"

    attached = api.post(f"/endpoints/{ep['Id']}/attach", {"namespace": "box"})
    assert attached["State"] == "attached" and attached["Namespace"] == "box"
    assert attached["IfName"] == "eth1" and "eth1" in links(box["netns"])
    assert ping(box["netns"], "172.16.2.1")  # its gateway, through the new vNIC
    assert ping(d.host, "172.16.2.50")  # and its address answers
    ps = {c["Name"]: c for c in d.json("ps", "--format", "json")}
    assert "back" in ps["box"]["Networks"]

    detached = api.post(f"/endpoints/{ep['Id']}/detach")
    assert detached["State"] == "unattached" and "eth1" not in links(box["netns"])
    assert not ping(d.host, "172.16.2.50")  # nothing answers at its address now
    with pytest.raises(HostnetError) as taken:  # the address is still the endpoint's
        api.post(
            "/containers", {"name": "thief", "networks": [{"network": "back", "ip": "172.16.2.50"}]}
        )
    assert taken.value.status == 409

    d.stop(signal.SIGKILL)  # unattached across kill -9 and a restart
    d.start()
    api = Client(d.socket, timeout=30)
    again = api.get(f"/endpoints/{ep['Id']}")
    assert again["State"] == "unattached" and again["IPAddress"] == "172.16.2.50"
    with pytest.raises(HostnetError) as taken:
        api.post("/endpoints", {"network": "back", "ip": "172.16.2.50"})
    assert taken.value.status == 409

    target = serve(d, "back", "target")
    host = api.post(f"/endpoints/{ep['Id']}/attach", {"namespace": "host"})
    assert host["Namespace"] == "host" and host["IfName"] in links(d.host)
    addrs = json.loads(in_ns(d.host, "ip", "-j", "addr", "show", "dev", host["IfName"]).stdout)
    assert "172.16.2.50" in [a["local"] for a in addrs[0]["addr_info"]]
    # the daemon's namespace reaches a container on the network through its vNIC
    assert (
        in_ns(
            d.host, "ping", "-c", "1", "-W", "2", "-I", host["IfName"], target["ip"], check=False
        ).returncode
        == 0
    )
    api.post(f"/endpoints/{ep['Id']}/detach")
    assert host["IfName"] not in links(d.host)

    assert api.delete(f"/endpoints/{ep['Id']}") == {"errors": []}
    with pytest.raises(HostnetError) as gone:
        api.get(f"/endpoints/{ep['Id']}")
    assert gone.value.status == 404
    d.cli(
        "run",
        "-d",
        "--net",
        "back",
        "--ip",
        "172.16.2.50",
        "--name",
        "heir",
        "--",
        "sleep",
        "infinity",
    )
    heir = d.json("network", "inspect", "back")[0]["Containers"]
    assert "172.16.2.50/24" in [c["IPv4Address"] for c in heir.values()]


def test_bad_endpoint_requests_are_clear_4xx_and_change_nothing(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "172.16.3.0/24", "n3")
    api = Client(d.socket, timeout=30)
    d.cli("network", "create", "--subnet", "172.16.4.0/24", "n4")
    serve(d, "n4", "box")
    ep = api.post("/endpoints", {"network": "n3", "ip": "172.16.3.9"})
    before = (api.get("/endpoints"), links(d.host))
    bad = [
        ("POST", "/endpoints", {"network": "nope"}, 404),
        ("POST", "/endpoints", {"network": "n3", "ip": "10.99.0.1"}, 400),
        ("POST", "/endpoints", {"network": "n3", "ip": "172.16.3.9"}, 409),
        ("POST", "/endpoints", {"network": "n3", "bogus": 1}, 400),
        ("POST", f"/endpoints/{ep['Id']}/attach", {"namespace": "no-such"}, 404),
        ("POST", f"/endpoints/{ep['Id']}/detach", {}, 409),
        ("POST", "/endpoints/nope/attach", {"namespace": "box"}, 404),
        ("DELETE", "/endpoints/nope", None, 404),
    ]
    for method, path, body, status in bad:
        with pytest.raises(HostnetError) as refused:
            api.request(method, path, body)
        assert refused.value.status == status, (method, path, body)
    api.post(f"/endpoints/{ep['Id']}/attach", {"namespace": "box"})
    with pytest.raises(HostnetError) as twice:
        api.post(f"/endpoints/{ep['Id']}/attach", {"namespace": "box"})
    assert twice.value.status == 409
    api.post(f"/endpoints/{ep['Id']}/detach")
    assert (api.get("/endpoints"), links(d.host)) == before
