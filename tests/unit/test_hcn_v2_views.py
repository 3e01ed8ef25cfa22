"""HCN v2 translation without a kernel: hcsshim's golden payloads into create arguments,
hostnet's objects back into JSON that hcsshim's structs decode, refusals by name."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hostnet.errors import InvalidRequest
from hostnet.hns import v2_views as v
from hostnet.hns.gojson import parse
from hostnet.hns.schema import HostComputeEndpoint, HostComputeNamespace, HostComputeNetwork
from hostnet.model import Endpoint, Network, PortMapping

V2 = {"Major": 2, "Minor": 0}
POOL = {"StartMacAddress": "00-15-5D-52-C0-00", "EndMacAddress": "00-15-5D-52-CF-FF"}
SUBNET = {
    "IpAddressPrefix": "192.168.100.0/24",
    "Routes": [{"NextHop": "192.168.100.1", "DestinationPrefix": "0.0.0.0/0"}],
}
NAT: dict[str, Any] = {
    "Type": "NAT",
    "Name": "GoTestNat",
    "MacPool": {"Ranges": [POOL]},
    "Ipams": [{"Type": "Static", "Subnets": [SUBNET]}],
    "SchemaVersion": V2,
}


def net_plan(body: dict[str, Any]) -> v.NetworkPlan:
    return v.network_plan(parse(HostComputeNetwork, body))


def test_the_golden_nat_network_becomes_a_nat_network_with_its_pool() -> None:
    plan = net_plan(NAT)
    assert (plan.name, plan.driver) == ("GoTestNat", "nat")
    assert plan.addresses.subnets == ["192.168.100.0/24"]
    assert plan.addresses.gateways == ["192.168.100.1"]
    assert plan.mac_pool == [POOL] and len(plan.nid) == 36
    assert net_plan({**NAT, "ID": "5F0B1190-63BE-4E0C-B974-BD0F55675A42"}).nid == (
        "5f0b1190-63be-4e0c-b974-bd0f55675a42"
    )
    no_ipams = net_plan({"Type": "NAT", "Name": "n"})  # HNS picks the prefix itself
    assert no_ipams.addresses.subnets == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"Routes": [{"NextHop": "192.168.100.1", "DestinationPrefix": "1.1.1.1/0"}]}, "1.1.1.1/0"),
        ({"Routes": [{"NextHop": "", "DestinationPrefix": ""}]}, "no gateway"),
        ({"Flags": 1}, "DoNotReserveGatewayAddress"),
        ({"Policies": [{"Type": "Nope", "Settings": {}}]}, "Nope"),
    ],
)
def test_bad_subnets_are_refused_by_name(change: dict[str, Any], named: str) -> None:
    body = copy.deepcopy(NAT)
    body["Ipams"][0]["Subnets"][0].update(change)
    with pytest.raises(InvalidRequest) as refused:
        net_plan(body)
    assert named in refused.value.message


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"Type": "ICS"}, "ICS"),
        ({"Flags": 8}, "Flags"),
        ({"ID": "not-a-guid"}, "invalid network ID"),
        ({"Policies": [{"Type": "HostRoute", "Settings": {}}]}, "HostRoute"),
    ],
)
def test_what_hostnet_cannot_honour_is_refused(change: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        net_plan({**NAT, **change})
    assert named in refused.value.message


def test_network_policies_become_options() -> None:
    plan = net_plan(
        {
            **NAT,
            "Type": "L2Bridge",
            "Policies": [
                {"Type": "NetAdapterName", "Settings": {"NetworkAdapterName": "eth1"}},
                {"Type": "AutomaticDNS", "Settings": {"Enable": False}},
                {
                    "Type": "NetworkACL",
                    "Settings": {
                        "Action": "Block",
                        "Direction": "In",
                        "Protocols": "6",
                        "LocalPorts": "22",
                    },
                },
            ],
        }
    )
    assert plan.driver == "l2bridge"
    assert plan.options == {"interface": "eth1", "discovery": "false"}
    assert plan.acl_specs == ["Action=Block;Direction=In;Protocols=6;LocalPorts=22"]


def test_an_endpoint_with_policies_and_the_read_only_namespace() -> None:
    body = {
        "Name": "GoTestNatEndpoint",
        "HostComputeNetwork": "5F0B1190-63BE-4E0C-B974-BD0F55675A42",
        "Policies": [
            {
                "Type": "PortMapping",
                "Settings": {"Protocol": 17, "InternalPort": 45678, "ExternalPort": 56789},
            },
            {"Type": "ACL", "Settings": {"Action": "Block", "Direction": "In", "Protocols": "6"}},
            {"Type": "QOS", "Settings": {"MaximumOutgoingBandwidthInBytes": 1000}},
        ],
        "SchemaVersion": V2,
    }
    plan = v.endpoint_plan(parse(HostComputeEndpoint, body))
    assert plan.network == "5f0b1190-63be-4e0c-b974-bd0f55675a42"
    assert plan.port_specs == ["56789:45678/udp"] and plan.egress_bytes == 1000
    assert [r.Action for r in plan.acl] == ["Block"]
    with pytest.raises(InvalidRequest) as read_only:
        v.endpoint_plan(parse(HostComputeEndpoint, {**body, "HostComputeNamespace": "x"}))
    assert "read only" in read_only.value.message


def test_macs_come_from_the_pool_by_address() -> None:
    net = Network(
        id="n", name="n", driver="nat", subnet="192.168.100.0/24", gateway="192.168.100.1"
    )
    assert v.mac_from_pool([POOL], net, "192.168.100.2") == "00:15:5d:52:c0:02"
    small = [{"StartMacAddress": "00-15-5D-00-00-00", "EndMacAddress": "00-15-5D-00-00-01"}]
    with pytest.raises(InvalidRequest):
        v.mac_from_pool(small, net, "192.168.100.9")
    assert v.mac_from_pool([], net, "192.168.100.2") == ""


def test_views_decode_as_hcsshim_structs() -> None:
    net = Network(
        id="5f0b1190-63be-4e0c-b974-bd0f55675a42",
        name="GoTestNat",
        driver="nat",
        subnet="192.168.100.0/24",
        gateway="192.168.100.1",
    )
    shown = v.network_view(net, [POOL])
    again = parse(HostComputeNetwork, shown)
    assert again.type == "NAT" and again.ipams[0].subnets[0].routes[0].next_hop == "192.168.100.1"
    assert shown["Health"] == {"Extra": {}} and shown["SchemaVersion"] == V2
    ep = Endpoint(
        id="e",
        network_id=net.id,
        ip="192.168.100.2",
        prefix_len=24,
        gateway="192.168.100.1",
        mac="00:15:5d:52:c0:02",
        ifname="",
        host_ifname="hve",
        ports=[PortMapping(protocol="udp", host_port=56789, container_port=45678)],
    )
    view = v.endpoint_view(ep, "")
    decoded = parse(HostComputeEndpoint, view)
    assert decoded.ip_configurations[0].ip_address == "192.168.100.2"
    assert decoded.mac_address == "00-15-5D-52-C0-02" and "HostComputeNamespace" not in view
    assert view["Policies"][0]["Settings"] == {
        "Protocol": 17,
        "InternalPort": 45678,
        "ExternalPort": 56789,
    }
    ns = v.namespace_view("n1", "Host", 3, ["e"])
    assert parse(HostComputeNamespace, ns).resources[0].data == {"ID": "e"}
