"""HCN v2 and HNS v1 JSON: hcsshim's golden payloads round-trip, any key case parses,
wrong types and unknown fields are refused naming the field."""

from __future__ import annotations

import copy

import pytest

from hostnet.errors import InvalidRequest
from hostnet.hns import schema as s
from hostnet.hns import schema_v1 as s1
from hostnet.hns.gojson import parse

POOL = {"Ranges": [{"StartMacAddress": "00-15-5D-52-C0-00", "EndMacAddress": "00-15-5D-52-CF-FF"}]}
SUBNET = {
    "IpAddressPrefix": "192.168.100.0/24",
    "Routes": [{"NextHop": "192.168.100.1", "DestinationPrefix": "0.0.0.0/0"}],
}
V2 = {"Major": 2, "Minor": 0}
EMPTY = {"Dns": {}, "Health": {"Extra": {}}}

# as hcsshim's hcnutils_test.go builders marshal them (struct fields always written)
NAT_NETWORK = {
    "Name": "GoTestNat",
    "Type": "NAT",
    "MacPool": POOL,
    "Dns": {},
    "Ipams": [{"Type": "Static", "Subnets": [SUBNET]}],
    "Health": {"Extra": {}},
    "SchemaVersion": V2,
}
NAT_NO_IPAMS = {k: v for k, v in NAT_NETWORK.items() if k != "Ipams"}
OVERLAY_NETWORK = {
    **NAT_NETWORK,
    "Name": "GoTestOverlay",
    "Type": "Overlay",
    "Ipams": [
        {
            "Type": "Static",
            "Subnets": [
                {**SUBNET, "Policies": [{"Type": "VSID", "Settings": {"IsolationId": 5000}}]}
            ],
        }
    ],
    "Flags": 8,
}
ENDPOINT = {"Name": "GoTestNatEndpoint", **EMPTY, "SchemaVersion": V2}
ENDPOINT_WITH_PORT = {
    "Name": "GoTestNatEndpoint",
    "Policies": [
        {
            "Type": "PortMapping",
            "Settings": {"Protocol": 17, "InternalPort": 45678, "ExternalPort": 56789},
        }
    ],
    **EMPTY,
    "SchemaVersion": V2,
}
NAMESPACE = {"NamespaceId": 5, "Type": "HostDefault", "SchemaVersion": V2}
ROUTE = {
    "HostComputeEndpoints": ["5f0b1190-63be-4e0c-b974-bd0f55675a42"],
    "Setting": [{"DestinationPrefix": "169.254.169.254/24", "NextHop": "127.10.0.34"}],
    "SchemaVersion": V2,
}
ADD_ENDPOINT = {"ResourceType": "Endpoint", "RequestType": "Add", "Settings": {"EndpointId": "x"}}
ADD_POLICY = {
    "ResourceType": "Policy",
    "RequestType": "Add",
    "Settings": {"Policies": [{"Type": "HostRoute", "Settings": {}}]},
}
QUERY = {"SchemaVersion": V2, "Filter": '{"Name":"GoTestNat"}'}

GOLDEN = [
    (s.HostComputeNetwork, NAT_NETWORK),
    (s.HostComputeNetwork, NAT_NO_IPAMS),
    (s.HostComputeNetwork, OVERLAY_NETWORK),
    (s.HostComputeEndpoint, ENDPOINT),
    (s.HostComputeEndpoint, ENDPOINT_WITH_PORT),
    (s.HostComputeNamespace, NAMESPACE),
    (s.HostComputeRoute, ROUTE),
    (s.ModifyNamespaceSettingRequest, ADD_ENDPOINT),
    (s.ModifyNetworkSettingRequest, ADD_POLICY),
    (s.ModifyEndpointSettingRequest, {**ADD_POLICY, "RequestType": "Update"}),
    (s.HostComputeQuery, QUERY),
    (s.HostComputeQuery, {"SchemaVersion": V2}),
    # hnsv1_test.go
    (
        s1.HNSNetwork,
        {
            "Name": "GoTestNat",
            "Type": "NAT",
            "Subnets": [{"AddressPrefix": "192.168.100.0/24", "GatewayAddress": "192.168.100.1"}],
        },
    ),
    (s1.HNSEndpoint, {"Name": "GoTestNatEndpoint", "VirtualNetwork": "abc"}),
    (s1.EndpointAttachDetachRequest, {"SystemType": "Host", "CompartmentId": 1}),
    (s1.EndpointAttachDetachRequest, {"SystemType": "Host"}),
    (s1.PolicyList, {"References": ["/endpoints/abc"], "Policies": [{"Type": "ELB"}]}),
    (s1.HNSNamespace, {"ID": ""}),
    (s1.HNSResponse, {"Success": True, "Error": "", "Output": {"Major": 7, "Minor": 2}}),
]


@pytest.mark.parametrize(("model", "payload"), GOLDEN)
def test_golden_payloads_round_trip(model, payload):
    assert parse(model, copy.deepcopy(payload)).to_json() == payload


def test_go_omitempty_and_struct_defaults():
    net = s.HostComputeNetwork.model_validate({"Name": "n"})
    assert net.to_json() == {
        "Name": "n",
        "MacPool": {},
        "Dns": {},
        "Health": {"Extra": {}},
        "SchemaVersion": V2,
    }
    assert s1.EndpointStats().to_json()["PacketsSent"] == 0
    assert s1.HNSResponse.model_validate({"Success": False}).to_json() == {
        "Success": False,
        "Error": "",
        "Output": None,
    }


def _recase(data, how):
    if isinstance(data, dict):
        return {how(k): _recase(v, how) for k, v in data.items()}
    if isinstance(data, list):
        return [_recase(x, how) for x in data]
    return data


@pytest.mark.parametrize("how", [str.lower, str.upper, str.swapcase])
@pytest.mark.parametrize(("model", "payload"), GOLDEN[:7])
def test_any_key_case_parses(model, payload, how):
    got = parse(model, _recase(copy.deepcopy(payload), how)).to_json()
    # Settings are raw JSON: kept as sent, so compare the rest
    assert _drop_raw(got) == _drop_raw(payload)


def _drop_raw(data):
    if isinstance(data, dict):
        return {k: _drop_raw(v) for k, v in data.items() if k not in ("Settings", "Policies")}
    if isinstance(data, list):
        return [_drop_raw(x) for x in data]
    return data


def test_exact_match_wins_and_null_sets_nothing():
    net = s.HostComputeNetwork.model_validate({"name": "a", "Name": "b", "NAME": None})
    assert net.name == "b"
    assert s.HostComputeNetwork.model_validate({"Flags": None}).flags == 0


def test_enum_values_any_case_answered_in_hcsshim_spelling():
    assert s.HostComputeNetwork.model_validate({"Type": "l2bridge"}).type == "L2Bridge"
    assert s.ModifyNetworkSettingRequest.model_validate({"RequestType": "remove"}).request_type == (
        "Remove"
    )


@pytest.mark.parametrize(
    ("model", "payload", "field"),
    [
        (s.HostComputeNetwork, {"Flags": "8"}, "Flags"),
        (s.HostComputeNetwork, {"Name": 5}, "Name"),
        (s.HostComputeNetwork, {"Ipams": {"Type": "Static"}}, "Ipams"),
        (s.HostComputeNetwork, {"Ipams": [{"Subnets": [{"Routes": [{"Metric": -1}]}]}]}, "Metric"),
        (s.HostComputeEndpoint, {"IpConfigurations": [{"PrefixLength": 300}]}, "PrefixLength"),
        (s.HostComputeNamespace, {"NamespaceId": 5.0}, "NamespaceId"),
        (s.HostComputeNamespace, {"Type": "Sandbox"}, "Type"),
        (s1.HNSEndpoint, {"IPAddress": "10.0.0.300"}, "IPAddress"),
        (s1.HNSEndpoint, {"IsRemoteEndpoint": 1}, "IsRemoteEndpoint"),
        (s.HostComputeNetwork, {"Colour": "red"}, "Colour"),
    ],
)
def test_bad_fields_are_named(model, payload, field):
    with pytest.raises(InvalidRequest) as err:
        parse(model, payload)
    assert field in err.value.message
    assert err.value.status == 400


def test_unknown_field_says_so():
    with pytest.raises(InvalidRequest, match=r"Ipams\[0\]\.Bogus: unknown field"):
        parse(s.HostComputeNetwork, {"Ipams": [{"Bogus": 1}]})


def test_query_filter():
    assert s.HostComputeQuery.model_validate(QUERY).filter_map() == {"Name": "GoTestNat"}
    assert s.HostComputeQuery().filter_map() == {}
    with pytest.raises(InvalidRequest, match="not JSON"):
        s.HostComputeQuery.model_validate({"Filter": "{"}).filter_map()
    with pytest.raises(InvalidRequest, match="object of strings"):
        s.HostComputeQuery.model_validate({"Filter": '{"ID": 5}'}).filter_map()


def test_policy_settings_stay_raw():
    ep = parse(s.HostComputeEndpoint, ENDPOINT_WITH_PORT)
    assert ep.policies[0].settings == {"Protocol": 17, "InternalPort": 45678, "ExternalPort": 56789}
    body = parse(s.PolicyRequest, ADD_POLICY["Settings"])
    assert body.policies[0].to_json() == {"Type": "HostRoute", "Settings": {}}
