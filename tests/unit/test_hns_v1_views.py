"""The v1 translation: hcsshim's golden HNSNetwork/HNSEndpoint bodies become the service's
create arguments (or a refusal naming the field); hostnet's objects render as hcsshim's
structs marshal them, whichever face made them."""

from __future__ import annotations

import pytest

from hostnet.core import acl
from hostnet.errors import InvalidRequest
from hostnet.hns import v1_views as v
from hostnet.hns.gojson import parse
from hostnet.hns.schema_v1 import HNSEndpoint, HNSNetwork
from hostnet.model import Endpoint, Network, PortMapping

GOLDEN = {
    "Type": "NAT",
    "Name": "GoTestNat",
    "Subnets": [{"AddressPrefix": "192.168.100.0/24", "GatewayAddress": "192.168.100.1"}],
}
NET = Network(
    id="0F0E0D0C-0B0A-4908-8706-050403020100",
    name="GoTestNat",
    driver="nat",
    subnet="192.168.100.0/24",
    gateway="192.168.100.1",
)


def test_the_golden_network_becomes_a_nat_create_with_a_guid() -> None:
    req = v.network_request(parse(HNSNetwork, {k.lower(): x for k, x in GOLDEN.items()}))
    assert (req.name, req.driver) == ("GoTestNat", "nat")
    assert (req.subnets, req.gateways) == (["192.168.100.0/24"], ["192.168.100.1"])
    assert len(req.nid) == 36 and req.nid == req.nid.upper()
    given = v.network_request(
        parse(HNSNetwork, {**GOLDEN, "ID": "5f0b1190-63be-4e0c-b974-bd0f55675a42"})
    )
    assert given.nid == "5F0B1190-63BE-4E0C-B974-BD0F55675A42"


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"Type": "ICS"}, "Type 'ICS' is not supported"),
        ({"MacPools": [{"StartMacAddress": "00-15-5D-52-C0-00"}]}, "MacPools"),
        ({"ManagementIP": "10.0.0.1"}, "ManagementIP"),
        ({"ID": "not-a-guid"}, "is not a GUID"),
        ({"Subnets": [{"AddressPrefix": "10.0.0.0/24"}]}, "no GatewayAddress"),
        (
            {"Policies": [{"Type": "NAT", "InternalPort": 80, "ExternalPort": 80}]},
            "belongs on an endpoint",
        ),
    ],
)
def test_network_bodies_hostnet_cannot_honour_are_refused_by_name(extra: dict, says: str) -> None:
    with pytest.raises(InvalidRequest, match=says):
        v.network_request(parse(HNSNetwork, {**GOLDEN, **extra}))


def test_subnet_vlan_policy_is_the_vlanid_option() -> None:
    body = {
        **GOLDEN,
        "Type": "L2Bridge",
        "NetworkAdapterName": "eth1",
        "DNSServerList": "10.0.0.10",
    }
    body["Subnets"] = [{**GOLDEN["Subnets"][0], "Policies": [{"Type": "VLAN", "VLAN": 7}]}]
    req = v.network_request(parse(HNSNetwork, body))
    assert req.driver == "l2bridge"
    assert req.options == {"interface": "eth1", "dnsservers": "10.0.0.10", "vlanid": "7"}


def test_endpoint_policies_map_onto_ports_acls_and_hns_policies() -> None:
    body = {
        "Name": "GoTestNatEndpoint",
        "VirtualNetwork": NET.id,
        "MacAddress": "00-15-5D-0A-B7-C6",
        "Policies": [
            {"Type": "NAT", "Protocol": "udp", "InternalPort": 53, "ExternalPort": 5353},
            {"Type": "ACL", "Action": "Block", "Direction": "In", "Protocol": 6, "LocalPort": 22},
            {"Type": "OutBoundNAT", "ExceptionList": ["10.0.0.0/8"]},
            {"Type": "ROUTE", "DestinationPrefix": "10.9.0.0/16", "NextHop": "192.168.100.9"},
        ],
    }
    req = v.endpoint_request(parse(HNSEndpoint, body), NET)
    assert req.port_specs == ["5353:53/udp"] and req.mac == "00:15:5d:0a:b7:c6"
    assert [r.Action for r in req.acl] == ["Block"] and req.acl[0].LocalPorts == ["22"]
    assert [p["Type"] for p in req.policies] == ["OutBoundNAT", "SDNRoute"]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"GatewayAddress": "192.168.100.254"}, "is not network 'GoTestNat'"),
        ({"PrefixLength": 16}, "PrefixLength 16"),
        ({"IsRemoteEndpoint": True}, "IsRemoteEndpoint"),
        ({"State": 2}, "read-only"),
        ({"Policies": [{"Type": "QOS", "MaximumOutgoingBandwidthInBytes": 1000}]}, "QOS"),
        ({"Policies": [{"Type": "VLAN", "VLAN": 3}]}, "belongs on a network"),
        ({"VirtualNetworkName": "other"}, "VirtualNetworkName says"),
        ({"DNSServerList": "8.8.8.8"}, "differs from network"),
    ],
)
def test_endpoint_bodies_hostnet_cannot_honour_are_refused(extra: dict, says: str) -> None:
    with pytest.raises(InvalidRequest, match=says):
        v.endpoint_request(parse(HNSEndpoint, {"VirtualNetwork": NET.id, **extra}), NET)


def test_views_marshal_as_hcsshim_does() -> None:
    assert v.network_view(NET, "192.168.100.1") == {
        "ID": NET.id,
        "Name": "GoTestNat",
        "Type": "NAT",
        "Subnets": [{"AddressPrefix": "192.168.100.0/24", "GatewayAddress": "192.168.100.1"}],
        "ManagementIP": "192.168.100.1",
        "AutomaticDNS": True,
    }
    ep = Endpoint(
        id="abcdef0123",
        network_id=NET.id,
        ip="192.168.100.2",
        prefix_len=24,
        gateway="192.168.100.1",
        mac="02:42:c0:a8:64:02",
        ifname="",
        host_ifname="hvabcdef0123",
        ports=[PortMapping(host_port=8080, container_port=80)],
        acl=[acl.parse_rule("Action=Allow;Direction=Out;Priority=200")],
        standalone=True,
        name="e",
    )
    view = v.endpoint_view(ep, NET, "")
    assert view["MacAddress"] == "02-42-C0-A8-64-02" and view["State"] == 1
    assert view["Policies"][0] == {
        "Type": "NAT",
        "Protocol": "TCP",
        "InternalPort": 80,
        "ExternalPort": 8080,
    }
    assert view["Policies"][1]["Type"] == "ACL" and view["Policies"][1]["Priority"] == 200
    assert "SharedContainers" not in view and view["VirtualNetworkName"] == "GoTestNat"
    assert parse(HNSEndpoint, view).to_json() == view  # what hostnet answers, hcsshim reads back


def test_ids_are_looked_up_in_any_case() -> None:
    assert v.id_candidates("5f0b1190-aa") == ("5f0b1190-aa", "5F0B1190-AA")
    g = v.new_guid()
    assert g == g.upper() and len(g) == 36
