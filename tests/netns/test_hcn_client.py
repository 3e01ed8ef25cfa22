"""``hostnet.hcn`` (hcsshim's hcn verbs in Python) and the HNS helper cmdlets, against a lab
daemon: a network, endpoint and namespace made through the module, the endpoint attached
(it pings its gateway from the namespace) and detached, enumerations by network, hcsshim's
NotFound errors, the feature checks agreeing with /hns/globals/version; then each of
Get-/New-/Remove-HnsNetwork, -HnsEndpoint, Get-HnsNamespace, Get-HnsPolicyList and
Attach-HnsHostEndpoint typed after ``hostnet``, its effect and its JSON checked."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import ping

from hostnet import hcn
from hostnet.client import Client
from hostnet.errors import InvalidRequest, NotFound
from hostnet.hns.versions import Version
from lab import Daemon, Lab, in_ns

pytestmark = pytest.mark.root

MISSING = "5f0b1190-63be-4e0c-b974-bd0f55675a42"  # hcsshim's not-found GUID
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
    "SchemaVersion": {"Major": 2, "Minor": 0},
}
ACL_IN = {  # hcsshim's endpoint ACL test (ApplyPolicy Update), one rule
    "Type": "ACL",
    "Settings": {
        "Protocols": "6",
        "Action": "Allow",
        "Direction": "In",
        "RemoteAddresses": "192.168.100.0/24",
        "LocalPorts": "80",
        "Priority": 200,
    },
}


def netns_of(d: Daemon, nsid: str) -> str:
    return str({c["Id"]: c for c in d.json("ps", "-a", "--format", "json")}[nsid]["NetnsPath"])


def test_hcn_module_in_hcn_order(lab: Lab) -> None:
    d, _ = lab.host("h")
    c = hcn.HcnClient(d.socket, timeout=30)

    # features: hcsshim's computation over the version the daemon reports
    raw = Client(d.socket).get("/hns/globals/version")["Output"]
    g = hcn.get_globals(c)
    assert g.version == Version(raw["Major"], raw["Minor"])
    features = hcn.get_supported_features(c)
    assert features == hcn.SupportedFeatures.for_version(g.version)
    assert features.names() <= hcn.hostnet_features(c) == set(raw["HostnetFeatures"])
    assert features.api.v1 and features.ipv6_dual_stack == ("IPv6DualStack" in features.names())
    if features.api.v2:
        hcn.v2_api_supported(c)
    else:
        with pytest.raises(hcn.FeatureNotSupportedError, match="V2 Api/Schema"):
            hcn.v2_api_supported(c)
    with pytest.raises(hcn.FeatureNotSupportedError, match="Direct Server Return"):
        hcn.dsr_supported(c)  # load balancers are issue 23

    net = hcn.HostComputeNetwork.model_validate(GOLDEN_NAT).create(c)
    assert net.type == "NAT" and len(net.id) == 36
    assert hcn.get_network_by_name("GoTestNat", c).id == net.id
    assert hcn.get_network_by_id(net.id.upper(), c).name == "GoTestNat"

    ep = net.create_endpoint(
        hcn.HostComputeEndpoint.model_validate({"Name": "GoTestNatEndpoint"}), c
    )
    assert ep.host_compute_network == net.id and not ep.host_compute_namespace
    assert ep.ip_configurations[0].ip_address.startswith("192.168.100.")
    ns = hcn.new_namespace("Host").create(c)
    assert ns.type == "Host" and ns.namespace_id > 1

    ep.namespace_attach(ns.id, c)
    assert hcn.get_namespace_endpoint_ids(ns.id, c) == [ep.id]
    assert hcn.get_endpoint_by_id(ep.id, c).host_compute_namespace == ns.id
    netns = netns_of(d, ns.id)
    assert ping(netns, "192.168.100.1")

    other = net.create_endpoint(hcn.HostComputeEndpoint(), c)
    assert {e.id for e in hcn.list_endpoints_of_network(net.id, c)} == {ep.id, other.id}
    assert hcn.list_endpoints_of_network(MISSING, c) == []
    assert {ep.id, other.id} <= {e.id for e in hcn.list_endpoints(c)}

    ep.apply_policy("Update", hcn.PolicyEndpointRequest.model_validate({"Policies": [ACL_IN]}), c)
    assert [p.type for p in hcn.get_endpoint_by_name("GoTestNatEndpoint", c).policies] == ["ACL"]

    # hcsshim's not-found errors, exactly, and the daemon's own 404 told apart
    for call, cls, text in (
        (lambda: hcn.get_network_by_name("Not found name", c), hcn.NetworkNotFoundError,
         'Network name "Not found name" not found'),
        (lambda: hcn.get_network_by_id(MISSING, c), hcn.NetworkNotFoundError,
         f'Network ID "{MISSING}" not found'),
        (lambda: hcn.get_endpoint_by_id(MISSING, c), hcn.EndpointNotFoundError,
         f'Endpoint ID "{MISSING}" not found'),
        (lambda: hcn.get_endpoint_by_name("nope", c), hcn.EndpointNotFoundError,
         'Endpoint name "nope" not found'),
        (lambda: hcn.get_namespace_by_id(MISSING, c), hcn.NamespaceNotFoundError,
         f'Namespace ID "{MISSING}" not found'),
        (lambda: hcn.get_route_by_id(MISSING, c), hcn.RouteNotFoundError,
         f'SDN Route "{MISSING}" not found'),
    ):  # fmt: skip
        with pytest.raises(cls) as exc:
            call()
        assert str(exc.value) == text and hcn.is_not_found_error(exc.value)
        assert not hcn.is_element_not_found_error(exc.value)
    with pytest.raises(NotFound) as gone:
        hcn.HostComputeEndpoint.model_validate({"ID": MISSING}).delete(c)
    assert hcn.is_element_not_found_error(gone.value) and hcn.error_code(gone.value) == 0x490
    with pytest.raises(InvalidRequest, match="invalid endpoint ID"):
        hcn.HostComputeEndpoint.model_validate({"ID": "not a guid"}).delete(c)
    with pytest.raises(InvalidRequest, match="HostComputeNamespace is read only"):
        hcn.HostComputeEndpoint.model_validate(
            {"HostComputeNetwork": net.id, "HostComputeNamespace": ns.id}
        ).create(c)

    ep.namespace_detach(ns.id, c)
    assert hcn.get_namespace_endpoint_ids(ns.id, c) == []
    assert not ping(netns, "192.168.100.1")

    hcn.set_default_client(d.socket)  # the module-level client, pointed at this daemon
    try:
        assert [n.id for n in hcn.list_networks() if n.name == "GoTestNat"] == [net.id]
        for obj in (ep, other, ns, net):
            obj.delete()
        assert all(n.name != "GoTestNat" for n in hcn.list_networks())
        assert ns.id not in {n.id for n in hcn.list_namespaces()}
    finally:
        hcn.set_default_client(None)


def out(d: Daemon, *argv: str) -> Any:
    return json.loads(d.cli(*argv).stdout)


def test_hns_cmdlets(lab: Lab) -> None:
    d, _ = lab.host("h")
    net = out(d, "New-HnsNetwork", "-Type", "NAT", "-Name", "hnsnat",
              "-AddressPrefix", "10.99.0.0/24", "-Gateway", "10.99.0.1",
              "-DNSServer", "10.99.0.53")  # fmt: skip
    nid = net["ID"]
    assert net["Name"] == "hnsnat" and net["Type"] == "NAT"
    assert net["Subnets"][0]["AddressPrefix"] == "10.99.0.0/24"
    assert net["Subnets"][0]["GatewayAddress"] == "10.99.0.1"
    assert "hnsnat" in [n["Name"] for n in d.json("network", "ls", "--format", "json")]

    assert nid in [n["ID"] for n in out(d, "Get-HnsNetwork")]
    assert out(d, "Get-HnsNetwork", "-Id", nid)["Name"] == "hnsnat"
    v2 = out(d, "Get-HnsNetwork", "-Id", nid, "-Version", "2")
    assert v2["Ipams"][0]["Subnets"][0]["IpAddressPrefix"] == "10.99.0.0/24"

    ep = out(d, "New-HnsEndpoint", "-NetworkId", nid, "-Name", "ep1",
             "-IPAddress", "10.99.0.5")  # fmt: skip
    assert ep["IPAddress"] == "10.99.0.5" and ep["VirtualNetwork"].lower() == nid.lower()
    host_ep = out(d, "New-HnsEndpoint", nid, "-Name", "hostep")
    assert [e["Name"] for e in out(d, "Get-HnsEndpoint", "-NetworkId", nid)] == ["ep1", "hostep"]
    assert len(out(d, "Get-HnsEndpoint", "-NetworkName", "hnsnat", "-Version", "2")) == 2
    assert out(d, "Get-HnsEndpoint", "-Id", ep["ID"])["Name"] == "ep1"

    attached = out(d, "Attach-HnsHostEndpoint", "-EndpointID", host_ep["ID"], "-CompartmentID", "1")
    assert attached["State"] == 2
    addrs = in_ns(d.host, "ip", "-j", "addr").stdout
    assert host_ep["IPAddress"] in addrs  # the host's vNIC on the network
    assert ping(d.host, "10.99.0.1")

    namespaces = out(d, "Get-HnsNamespace")
    assert isinstance(namespaces, list)
    assert out(d, "Get-HnsPolicyList") == []

    gone = out(d, "Remove-HnsEndpoint", "-Name", "ep1")
    assert [e["ID"] for e in gone] == [ep["ID"]]
    assert [e["Name"] for e in out(d, "Get-HnsEndpoint")] == ["hostep"]

    for argv, said in (
        (("Remove-HnsNetwork",), "from the pipeline"),
        (("Remove-HnsNetwork", "-Name", "nope"), "no network named 'nope'"),
        (("Get-HnsNetwork", "-Id", MISSING), "Element not found."),
        (("New-HnsNetwork", "-Type", "NAT", "-IPv6"), "no IPv6 field"),
    ):
        res = d.cli(*argv, check=False)
        assert res.returncode != 0 and said in res.stderr and "Traceback" not in res.stderr
    assert nid in [n["ID"] for n in out(d, "Get-HnsNetwork")]

    assert [e["Name"] for e in out(d, "Remove-HnsEndpoint", "-Id", host_ep["ID"])] == ["hostep"]
    assert host_ep["IPAddress"] not in in_ns(d.host, "ip", "-j", "addr").stdout
    assert [n["ID"] for n in out(d, "Remove-HnsNetwork", "-Id", nid)] == [nid]
    assert "hnsnat" not in [n["Name"] for n in out(d, "Get-HnsNetwork")]
    assert out(d, "Get-HnsEndpoint", "-NetworkName", "nat") == []
