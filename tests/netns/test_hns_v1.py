"""HNS v1 under /hns, as hcsshim's internal/hns calls it, shown with packets: hcsshim's own
golden NAT network and endpoint made through /hns are the objects `hostnet network inspect`
shows; the endpoint attached to a container started with `hostnet create` + `start` pings
its gateway, its NAT (PortMapping) policy answers another lab host, its endpointstats
grow with the traffic, and after detach nothing answers. Bad payloads are Success false
with a clear Error, and change nothing."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from helpers import ask, ping, wait_listening

from hostnet.client import Client, UnixConnection
from hostnet.hns.versions import globals_version_answer
from lab import Lab

GUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
# hcsshim's hnsv1_test.go / hcnv1schema_test.go payloads (notes §2.11)
NAT_NETWORK = {
    "Type": "NAT",
    "Name": "GoTestNat",
    "Subnets": [{"AddressPrefix": "192.168.100.0/24", "GatewayAddress": "192.168.100.1"}],
}


def hns(sock: str, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    """One v1 call as hnsCall makes it: the JSON string, or "" without a body."""
    conn = UnixConnection(sock, 30)
    try:
        raw = b"" if body is None else json.dumps(body).encode()
        conn.request(method, "/hns" + path, body=raw)
        res = conn.getresponse()
        return res.status, json.loads(res.read())
    finally:
        conn.close()


def output(sock: str, method: str, path: str, body: Any = None) -> Any:
    status, doc = hns(sock, method, path, body)
    assert status == 200 and doc["Success"] is True and doc["Error"] == "", doc
    return doc["Output"]


def test_hcsshim_v1_calls_make_a_working_endpoint(lab: Lab) -> None:
    d, host_ip = lab.host("h")
    client_ns, _ = lab.node("client")
    sock, api = d.socket, Client(d.socket, timeout=30)
    assert output(sock, "GET", "/globals/version") == globals_version_answer()
    d.cli("network", "create", "--subnet", "172.16.7.0/24", "clinet")

    net = output(sock, "POST", "/networks/", NAT_NETWORK)
    assert GUID.match(net["ID"]) and net["Type"] == "NAT" and net["Name"] == "GoTestNat"
    assert net["Subnets"] == NAT_NETWORK["Subnets"] and net["ManagementIP"] == "192.168.100.1"
    assert d.json("network", "inspect", "GoTestNat")[0]["Id"] == net["ID"]  # one object
    listed = {n["Name"]: n for n in output(sock, "GET", "/networks/")}
    cli_id = d.json("network", "inspect", "clinet")[0]["Id"]
    assert listed["clinet"]["ID"] == cli_id and listed["GoTestNat"] == net  # made elsewhere
    assert output(sock, "GET", f"/networks/{net['ID'].lower()}") == net  # any case

    ep = output(
        sock,
        "POST",
        "/endpoints/",
        {
            "Name": "GoTestNatEndpoint",
            "VirtualNetwork": net["ID"],
            "Policies": [
                {"Type": "NAT", "Protocol": "TCP", "InternalPort": 80, "ExternalPort": 8080}
            ],
        },
    )
    assert GUID.match(ep["ID"]) and ep["VirtualNetworkName"] == "GoTestNat"
    assert ep["IPAddress"].startswith("192.168.100.") and ep["PrefixLength"] == 24
    assert ep["GatewayAddress"] == "192.168.100.1" and ep["State"] == 1
    assert re.match(r"^([0-9A-F]{2}-){5}[0-9A-F]{2}$", ep["MacAddress"])
    assert ep["Policies"] == [
        {"Type": "NAT", "Protocol": "TCP", "InternalPort": 80, "ExternalPort": 8080}
    ]
    inspect = d.json("network", "inspect", "GoTestNat")[0]
    assert inspect["Endpoints"][ep["ID"]]["Name"] == "GoTestNatEndpoint"

    d.cli("create", "--name", "box", "--", "socat", "TCP6-LISTEN:80,reuseaddr,fork,ipv6only=0",
          "SYSTEM:echo box")  # fmt: skip
    d.cli("start", "box")
    box = api.get("/containers/box")
    netns = box["NetnsPath"]
    attach = {"ContainerId": box["Id"], "SystemType": "Container"}
    attached = output(sock, "POST", f"/endpoints/{ep['ID']}/attach", attach)
    assert attached["State"] == 2 and attached["SharedContainers"] == [box["Id"]]
    assert ping(netns, "192.168.100.1")  # its gateway, from inside the compartment
    wait_listening(netns, 80)
    assert ask(client_ns, host_ip, 8080) == "box"  # the NAT policy, from another lab host

    before = output(sock, "GET", f"/endpointstats/{ep['ID']}")
    assert before["EndpointId"] == ep["ID"] and before["InstanceId"] == box["Id"]
    assert ping(netns, "192.168.100.1", count=3)
    after = output(sock, "GET", f"/endpointstats/{ep['ID']}")
    for key in ("PacketsSent", "PacketsReceived", "BytesSent", "BytesReceived"):
        assert after[key] >= before[key] + 3, (key, before, after)

    twice = hns(sock, "POST", f"/endpoints/{ep['ID']}/attach", attach)
    assert twice[0] == 409 and twice[1]["Success"] is False
    assert "already attached to the switch" in twice[1]["Error"]

    detached = output(sock, "POST", f"/endpoints/{ep['ID']}/detach", attach)
    assert detached["State"] == 1 and "SharedContainers" not in detached
    assert not ping(netns, "192.168.100.1")
    assert ask(client_ns, host_ip, 8080, timeout=1) == ""

    output(sock, "DELETE", f"/endpoints/{ep['ID']}")
    assert [e for e in output(sock, "GET", "/endpoints/") if e["ID"] == ep["ID"]] == []
    output(sock, "DELETE", f"/networks/{net['ID']}")
    assert "GoTestNat" not in [n["Name"] for n in d.json("network", "ls", "--format", "json")]


def test_host_attach_and_policy_lists(lab: Lab) -> None:
    d, _ = lab.host("h")
    sock = d.socket
    net = output(sock, "POST", "/networks/", NAT_NETWORK)
    ep = output(sock, "POST", "/endpoints/", {"Name": "hostep", "VirtualNetwork": net["ID"]})
    host = {"SystemType": "Host", "CompartmentId": 1}  # flannel's HostAttach(1)
    assert output(sock, "POST", f"/endpoints/{ep['ID']}/attach", host)["State"] == 2
    status, again = hns(sock, "POST", f"/endpoints/{ep['ID']}/attach", host)
    assert status == 409 and "This endpoint is already attached to the switch." in again["Error"]
    assert output(sock, "GET", f"/endpointstats/{ep['ID']}")["InstanceId"] == ""
    output(sock, "POST", f"/endpoints/{ep['ID']}/detach", {"SystemType": "Host"})
    assert output(sock, "GET", "/policylists/") == []  # kube-proxy's probe
    status, elb = hns(
        sock,
        "POST",
        "/policylists/",
        {
            "References": [f"/endpoints/{ep['ID']}"],
            "Policies": [{"Type": "ELB", "ExternalPort": 80}],
        },
    )
    assert status == 400 and "ELB" in elb["Error"] and "issue (23)" in elb["Error"]


def test_bad_payloads_are_refused_and_change_nothing(lab: Lab) -> None:
    d, _ = lab.host("h")
    sock, api = d.socket, Client(d.socket, timeout=30)
    net = output(sock, "POST", "/networks/", NAT_NETWORK)
    ep = output(sock, "POST", "/endpoints/", {"Name": "e1", "VirtualNetwork": net["ID"]})
    d.cli("create", "--name", "box", "--", "sleep", "infinity")
    d.cli("start", "box")
    output(
        sock,
        "POST",
        f"/endpoints/{ep['ID']}/attach",
        {"ContainerId": "box", "SystemType": "Container"},
    )
    spare = output(sock, "POST", "/endpoints/", {"Name": "e2", "VirtualNetwork": net["ID"]})
    state = lambda: [api.get(p) for p in ("/networks", "/containers", "/endpoints")]  # noqa: E731
    before = state()
    missing = str(uuid.uuid4()).upper()
    subnet = [{"AddressPrefix": "10.77.0.0/24", "GatewayAddress": "10.77.0.1"}]
    bad: list[tuple[str, str, Any, int, str]] = [
        ("POST", "/networks/", {**NAT_NETWORK, "Name": "n2", "Type": "Ethernet"}, 400, "Type 'Ethernet'"),
        ("POST", "/networks/", {"Type": "NAT", "Name": 5}, 400, "Name: must be a string"),
        ("POST", "/networks/", {"Type": "NAT", "Name": "n3", "Subnets": [{"AddressPrefix": "10.78.0.0/24"}]}, 400, "no GatewayAddress"),
        ("POST", "/networks/", {"Type": "NAT", "Name": "n4", "Subnets": subnet, "MacPools": [{"StartMacAddress": "00-15-5D-52-C0-00"}]}, 400, "MacPools"),
        ("POST", "/networks/", {"Type": "NAT", "Name": "n5", "Subnets": subnet, "Colour": "red"}, 400, "unknown field"),
        ("POST", "/networks/", NAT_NETWORK, 409, "already exists"),
        ("POST", "/endpoints/", {"Name": "x", "VirtualNetwork": missing}, 404, "Element not found."),
        ("POST", "/endpoints/", {"Name": "x", "VirtualNetworkName": "nope"}, 404, "no network named"),
        ("POST", "/endpoints/", {"Name": "x", "VirtualNetwork": net["ID"], "Policies": [{"Type": "Bogus"}]}, 400, "unknown v1 policy Type 'Bogus'"),
        ("POST", "/endpoints/", {"Name": "x", "VirtualNetwork": net["ID"], "Policies": [{"Type": "PA", "PA": "1.2.3.4"}]}, 400, "'PA' is not supported"),
        ("POST", "/endpoints/", {"Name": "x", "VirtualNetwork": net["ID"], "PrefixLength": "24"}, 400, "PrefixLength: must be a whole number"),
        ("POST", "/endpoints/", {"Name": "x", "VirtualNetwork": net["ID"], "IPAddress": "10.1.1.1"}, 400, ""),
        ("POST", f"/endpoints/{ep['ID']}/attach", {"ContainerId": "box", "SystemType": "Container"}, 409, "already attached"),
        ("POST", f"/endpoints/{spare['ID']}/attach", {"ContainerId": "ghost", "SystemType": "Container"}, 404, "ghost"),
        ("POST", f"/endpoints/{spare['ID']}/attach", {"SystemType": "VirtualMachine", "VirtualNicName": "n"}, 400, "VirtualMachine"),
        ("POST", f"/endpoints/{spare['ID']}/detach", {"SystemType": "Host"}, 409, "not attached"),
        ("POST", f"/endpoints/{missing}/attach", {"SystemType": "Host"}, 404, "Element not found."),
        ("GET", f"/endpoints/{missing}", None, 404, "Element not found."),
        ("PUT", "/networks/", None, 405, "not an HNS v1 call"),
        ("GET", "/accelnet/", None, 404, "Element not found."),
        ("DELETE", f"/networks/{missing}", None, 404, "Element not found."),
        ("POST", "/policylists/", {"Policies": [{"Type": "ROUTE", "DestinationPrefix": "10.0.0.0/8"}]}, 400, "issue 23"),
    ]  # fmt: skip
    for method, path, body, status, says in bad:
        got, doc = hns(sock, method, path, body)
        assert (got, doc["Success"]) == (status, False), (method, path, body, doc)
        assert says in doc["Error"] and "Traceback" not in doc["Error"], (path, doc["Error"])
    assert state() == before
