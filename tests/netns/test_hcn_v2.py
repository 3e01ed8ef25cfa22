"""The HCN (v2) face (/hcn), shown with packets: a NAT network from hcsshim's golden payload,
an endpoint made unattached and added to a Host namespace (it pings its gateway), endpoints
enumerated by VirtualNetwork, an ACL added by Modify dropping what it names and its removal
letting it through, a PortMapping answering another lab host, a HostDefault endpoint (the
daemon's namespace reaches the container), kill -9 keeping it all, and delete leaving nothing.
Bad payloads are clear 4xx that change nothing."""

from __future__ import annotations

import json
import signal
import urllib.parse
from typing import Any

import pytest
from helpers import ask, ping, wait_listening

from hostnet.client import Client
from hostnet.errors import HostnetError
from lab import Lab, in_ns

V2 = {"Major": 2, "Minor": 0}
GOLDEN_NAT = {  # hcsshim hcn/hcnutils_test.go: HcnCreateTestNATNetwork
    "Type": "NAT",
    "Name": "GoTestNat",
    "MacPool": {
        "Ranges": [{"StartMacAddress": "00-15-5D-52-C0-00", "EndMacAddress": "00-15-5D-52-CF-FF"}]
    },
    "Ipams": [
        {
            "Type": "Static",
            "Subnets": [
                {
                    "IpAddressPrefix": "192.168.100.0/24",
                    "Routes": [{"NextHop": "192.168.100.1", "DestinationPrefix": "0.0.0.0/0"}],
                }
            ],
        }
    ],
    "SchemaVersion": V2,
}


def links(ns: str) -> list[str]:
    return [x["ifname"] for x in json.loads(in_ns(ns, "ip", "-j", "link", "show").stdout)]


def query(**flt: str) -> str:
    q = {"SchemaVersion": V2, "Filter": json.dumps(flt)}
    return "?query=" + urllib.parse.quote(json.dumps(q))


def netns_of(d: Any, nsid: str) -> str:
    ps = {c["Id"]: c for c in d.json("ps", "-a", "--format", "json")}
    return str(ps[nsid]["NetnsPath"])


def acl(action: str, remote: str) -> dict[str, Any]:
    settings = {"Protocols": "6", "Action": action, "Direction": "In", "LocalPorts": "80"}
    return {"Type": "ACL", "Settings": {**settings, "RemoteAddresses": remote, "Priority": 100}}


def policy_req(rt: str, *policies: dict[str, Any]) -> dict[str, Any]:
    return {"ResourceType": "Policy", "RequestType": rt, "Settings": {"Policies": list(policies)}}


def test_hcn_objects_in_hcn_order_with_packets(lab: Lab) -> None:
    d, host_ip = lab.host("h")
    client, client_ip = lab.node("client")
    api = Client(d.socket, timeout=30)

    net = api.post("/hcn/networks", GOLDEN_NAT)
    nid = net["ID"]
    assert net["Type"] == "NAT" and net["Name"] == "GoTestNat" and len(nid) == 36
    assert net["Ipams"][0]["Subnets"][0]["IpAddressPrefix"] == "192.168.100.0/24"
    assert net["MacPool"] == GOLDEN_NAT["MacPool"]
    listed = {n["Name"]: n for n in d.json("network", "ls", "--format", "json")}
    assert nid in json.dumps(listed["GoTestNat"])  # the same object, its GUID its id

    ep = api.post(
        "/hcn/endpoints",
        {"Name": "GoTestNatEndpoint", "HostComputeNetwork": nid, "SchemaVersion": V2},
    )
    eid, ip = ep["ID"], ep["IpConfigurations"][0]["IpAddress"]
    assert "HostComputeNamespace" not in ep and ep["Routes"][0]["NextHop"] == "192.168.100.1"
    assert ep["MacAddress"].startswith("00-15-5D-52-C")  # from the network's pool

    ns = api.post("/hcn/namespaces", {"Type": "Host", "SchemaVersion": V2})
    nsid = ns["ID"]
    assert ns["Type"] == "Host" and ns.get("Resources") is None and ns["NamespaceId"] > 1
    netns = netns_of(d, nsid)  # hostnet ps -a shows it
    assert any(r["Container"] == nsid for r in d.json("compartment", "ls", "--format", "json"))

    added = api.post(
        f"/hcn/namespaces/{nsid}/modify",
        {"ResourceType": "Endpoint", "RequestType": "Add", "Settings": {"EndpointId": eid}},
    )
    assert added["Resources"] == [{"Type": "Endpoint", "Data": {"ID": eid}}]
    assert api.get(f"/hcn/endpoints/{eid}")["HostComputeNamespace"] == nsid
    assert ping(netns, "192.168.100.1")  # its gateway, from inside

    other = api.post("/hcn/endpoints", {"HostComputeNetwork": nid})
    on_net = api.get("/hcn/endpoints" + query(VirtualNetwork=nid))
    assert {e["ID"] for e in on_net} == {eid, other["ID"]}
    assert (
        api.get("/hcn/endpoints" + query(VirtualNetwork="5f0b1190-63be-4e0c-b974-bd0f55675a42"))
        == []
    )
    assert [n["ID"] for n in api.get("/hcn/networks" + query(Name="GoTestNat"))] == [nid]

    # a server in the namespace, published on the host by a PortMapping policy (live)
    lab.spawn(
        netns.rsplit("/", 1)[1],
        "socat",
        "-T5",
        "TCP-LISTEN:80,reuseaddr,fork",
        "SYSTEM:read line; echo hcn",
    )
    wait_listening(netns, 80)
    pm = {
        "Type": "PortMapping",
        "Settings": {"Protocol": 6, "InternalPort": 80, "ExternalPort": 8080},
    }
    api.post(f"/hcn/endpoints/{eid}/modify", policy_req("Add", pm))
    assert ask(client, host_ip, 8080) == "hcn"  # from another lab host

    api.post(f"/hcn/endpoints/{eid}/modify", policy_req("Add", acl("Block", client_ip)))
    shown = api.get(f"/hcn/endpoints/{eid}")["Policies"]
    assert {p["Type"] for p in shown} == {"PortMapping", "ACL"}
    assert ask(client, host_ip, 8080, timeout=1) == ""  # the ACL drops it
    api.post(f"/hcn/endpoints/{eid}/modify", policy_req("Remove", acl("Block", client_ip)))
    assert ask(client, host_ip, 8080) == "hcn"  # removed: through again

    # HostDefault: the host's own compartment; an endpoint added to it is the host's vNIC
    hd = api.post("/hcn/namespaces", {"Type": "HostDefault", "NamespaceId": 5, "SchemaVersion": V2})
    assert hd["Type"] == "HostDefault" and hd["NamespaceId"] == 1
    api.post(
        f"/hcn/namespaces/{hd['ID']}/modify",
        {"ResourceType": "Endpoint", "RequestType": "Add", "Settings": {"EndpointId": other["ID"]}},
    )
    assert api.get(f"/hcn/endpoints/{other['ID']}")["HostComputeNamespace"] == hd["ID"]
    vnic = next(x for x in links(d.host) if x.startswith("hh"))
    res = in_ns(d.host, "ping", "-c", "1", "-W", "2", "-I", vnic, ip, check=False)
    assert res.returncode == 0  # the daemon's namespace reaches the container

    d.stop(signal.SIGKILL)  # kill -9 and restart: the same objects
    d.start()
    api = Client(d.socket, timeout=30)
    assert api.get(f"/hcn/networks/{nid}")["Name"] == "GoTestNat"
    assert api.get(f"/hcn/endpoints/{eid}")["HostComputeNamespace"] == nsid
    assert {n["ID"] for n in api.get("/hcn/namespaces")} >= {nsid, hd["ID"]}
    assert ask(client, host_ip, 8080) == "hcn"

    # delete everything: nothing left
    for ns_id, e in ((nsid, eid), (hd["ID"], other["ID"])):
        api.post(
            f"/hcn/namespaces/{ns_id}/modify",
            {"ResourceType": "Endpoint", "RequestType": "Remove", "Settings": {"EndpointId": e}},
        )
        api.delete(f"/hcn/endpoints/{e}")
    api.delete(f"/hcn/namespaces/{nsid}")
    api.delete(f"/hcn/networks/{nid}")
    assert api.get("/hcn/endpoints") == []
    assert [n["Type"] for n in api.get("/hcn/namespaces")] == ["HostDefault"]
    assert "GoTestNat" not in d.cli("network", "ls").stdout
    left = [x for x in links(d.host) if x.startswith(("hv", "hh"))]
    assert left == [] and netns.rsplit("/", 1)[1] not in in_ns(d.host, "ip", "netns").stdout
    with pytest.raises(HostnetError) as gone:
        api.get(f"/hcn/namespaces/{nsid}")
    assert gone.value.status == 404 and "not found" in gone.value.message


def test_bad_hcn_payloads_are_clear_4xx_and_change_nothing(lab: Lab) -> None:
    d, _ = lab.host("h")
    api = Client(d.socket, timeout=30)
    nid = api.post("/hcn/networks", GOLDEN_NAT)["ID"]
    eid = api.post("/hcn/endpoints", {"HostComputeNetwork": nid})["ID"]
    nsid = api.post("/hcn/namespaces", {"Type": "Host"})["ID"]
    add = {"ResourceType": "Endpoint", "RequestType": "Add", "Settings": {"EndpointId": eid}}
    api.post(f"/hcn/namespaces/{nsid}/modify", add)
    missing = "5f0b1190-63be-4e0c-b974-bd0f55675a42"

    def state() -> Any:
        kinds = ("networks", "endpoints", "namespaces", "routes")
        return [api.get(f"/hcn/{k}") for k in kinds], links(d.host), d.cli("ps", "-a").stdout

    before = state()
    bad = [
        (
            "POST",
            "/hcn/endpoints",
            {"HostComputeNetwork": nid, "Policies": [{"Type": "Nope"}]},
            400,
            "Nope",
        ),
        ("POST", "/hcn/endpoints", {"HostComputeNetwork": nid, "Name": 5}, 400, "Name"),
        ("POST", "/hcn/endpoints", {"HostComputeNetwork": missing}, 404, "not found"),
        ("POST", "/hcn/networks", {**GOLDEN_NAT, "Name": "x", "Type": "ICS"}, 400, "ICS"),
        ("POST", "/hcn/namespaces", {"Type": "Guest"}, 400, "Guest"),
        ("POST", f"/hcn/namespaces/{missing}/modify", add, 404, "not found"),
        ("POST", f"/hcn/namespaces/{nsid}/modify", add, 409, "attached already"),
        (
            "POST",
            f"/hcn/endpoints/{eid}/modify",
            policy_req("Add", {"Type": "QOS", "Settings": {"MaximumOutgoingBandwidthInBytes": 9}}),
            400,
            "QOS",
        ),
        (
            "POST",
            f"/hcn/networks/{nid}/modify",
            policy_req("Add", {"Type": "HostRoute", "Settings": {}}),
            400,
            "HostRoute",
        ),
        ("POST", f"/hcn/endpoints/{eid}/modify", {"ResourceType": "Port"}, 400, "Port"),
        ("GET", "/hcn/endpoints" + query(Bogus="x"), None, 400, "Bogus"),
        ("GET", "/hcn/widgets", None, 404, "widgets"),
    ]
    for method, path, body, status, named in bad:
        with pytest.raises(HostnetError) as refused:
            api.request(method, path, body)
        err = refused.value
        assert err.status == status, (method, path, body, err.status, err.message)
        assert named in err.message and err.remedy, (path, err.message)
    assert state() == before
