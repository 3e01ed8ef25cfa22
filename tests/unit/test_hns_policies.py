"""The policy registry: every Type hcsshim defines is parsed or refused by name."""

from __future__ import annotations

import pytest

from hostnet.errors import InvalidRequest
from hostnet.hns import policies as p
from hostnet.hns import policy_settings as ps
from hostnet.hns.versions import GATE

# hcn/hcnpolicy.go, as written there
ENDPOINT_TYPES = [
    "PortMapping", "ACL", "QOS", "L2Driver", "OutBoundNAT", "SDNRoute", "L4Proxy",
    "L4WFPPROXY", "PortName", "EncapOverhead", "Iov", "ProviderAddress",
    "InterfaceConstraint", "TierAcl",
]  # fmt: skip
NETWORK_TYPES = [
    "SourceMacAddress", "NetAdapterName", "VSwitchExtension", "DrMacAddress", "AutomaticDNS",
    "InterfaceConstraint", "ProviderAddress", "RemoteSubnetRoute", "VxlanPort", "HostRoute",
    "SetPolicy", "L4Proxy", "LayerConstraint", "NetworkACL",
]  # fmt: skip
SUBNET_TYPES = ["VLAN", "VSID"]
# internal/hns/hnspolicy.go
V1_TYPES = [
    "NAT", "ACL", "PA", "VLAN", "VSID", "VNET", "L2Driver", "Isolation", "QOS", "OutBoundNAT",
    "ELB", "ROUTE", "PROXY",
]  # fmt: skip
ALL = [
    *(("endpoint", t) for t in ENDPOINT_TYPES),
    *(("network", t) for t in NETWORK_TYPES),
    *(("subnet", t) for t in SUBNET_TYPES),
    *(("v1", t) for t in V1_TYPES),
]

ACL_IN = {
    "Protocols": "6",
    "Action": "Allow",
    "Direction": "In",
    "LocalAddresses": "192.168.100.0/24,10.0.0.21",
    "RemoteAddresses": "192.168.100.0/24,10.0.0.21",
    "LocalPorts": "80,8080",
    "RemotePorts": "80,8080",
    "RuleType": "Switch",
    "Priority": 200,
}
# a valid Settings for each implemented Type (hcsshim's tests, the CNI samples, flannel)
SAMPLES = {
    ("endpoint", "PortMapping"): {"Protocol": 17, "InternalPort": 45678, "ExternalPort": 56789},
    ("endpoint", "ACL"): ACL_IN,
    ("endpoint", "QOS"): {"MaximumOutgoingBandwidthInBytes": 2500000},
    ("endpoint", "L2Driver"): {},
    ("endpoint", "OutBoundNAT"): {"Exceptions": ["192.168.0.0/16", "11.0.0.0/8"]},
    ("endpoint", "SDNRoute"): {"DestinationPrefix": "10.9.0.0/16", "NextHop": "172.16.0.9"},
    ("network", "NetAdapterName"): {"NetworkAdapterName": "eth1"},
    ("network", "AutomaticDNS"): {"Enable": True},
    ("network", "InterfaceConstraint"): {"InterfaceAlias": "eth1"},
    ("network", "NetworkACL"): ACL_IN,
    ("subnet", "VLAN"): {"IsolationId": 7},
    ("subnet", "VSID"): {"IsolationId": 5000},
    ("v1", "NAT"): {"Protocol": "tcp", "InternalPort": 80, "ExternalPort": 8080},
    ("v1", "ACL"): {
        "Id": "r1",
        "Protocol": 6,
        "LocalPort": 80,
        "Action": "Block",
        "Direction": "In",
    },
    ("v1", "VLAN"): {"VLAN": 7},
    ("v1", "VSID"): {"VSID": 4096},
    ("v1", "L2Driver"): {},
    ("v1", "QOS"): {"MaximumOutgoingBandwidthInBytes": 1000},
    ("v1", "OutBoundNAT"): {"ExceptionList": ["10.0.0.0/8"], "VIP": "198.51.100.9"},
    ("v1", "ROUTE"): {"DestinationPrefix": "10.9.0.0/16", "NextHop": "172.16.0.9"},
}


def test_registry_is_exactly_hcsshims_types():
    assert {(k, n) for k, n in p.REGISTRY} == set(ALL)


@pytest.mark.parametrize(("kind", "name"), ALL)
def test_every_type_is_parsed_or_refused_by_name(kind, name):
    entry = p.lookup(kind, name)
    if entry.implemented:
        parsed = p.check_policy(kind, name, SAMPLES[(kind, name)])
        assert isinstance(parsed, entry.settings)
        assert parsed.to_json() == SAMPLES[(kind, name)] | parsed.to_json()
    else:
        assert (kind, name) not in SAMPLES
        with pytest.raises(p.PolicyRefused) as err:
            p.check_policy(kind, name, {})
        assert repr(name) in err.value.message and err.value.status == 400
        if entry.feature:
            gate = GATE[entry.feature]
            assert gate.versions in err.value.message and gate.feature in err.value.message
        assert entry.why in err.value.message


@pytest.mark.parametrize(("kind", "name"), [k for k in ALL if k in SAMPLES])
def test_implemented_settings_round_trip(kind, name):
    parsed = p.check_policy(kind, name, SAMPLES[(kind, name)])
    again = p.check_policy(kind, name, parsed.to_json())
    assert again == parsed


def test_refused_types_name_feature_and_version():
    with pytest.raises(p.PolicyRefused, match=r"RemoteSubnetRoute.*RemoteSubnet.*9\.2\+") as err:
        p.check_v2(
            "network",
            {
                "Type": "RemoteSubnetRoute",
                "Settings": {
                    "DestinationPrefix": "192.168.2.0/24",
                    "IsolationId": 5000,
                    "ProviderAddress": "1.1.1.1",
                    "DistributedRouterMacAddress": "00-12-34-56-78-9a",
                },
            },
        )
    assert err.value.feature == "RemoteSubnet"
    with pytest.raises(p.PolicyRefused, match=r"HostRoute.*9\.2"):
        p.check_v2("network", {"Type": "HostRoute", "Settings": {}})
    with pytest.raises(p.PolicyRefused, match=r"L4WFPPROXY.*13\.2"):
        p.check_v2("endpoint", {"Type": "L4WFPPROXY", "Settings": {"InboundProxyPort": "80"}})
    with pytest.raises(p.PolicyRefused, match=r"TierAcl.*14\.0"):
        p.check_v2("endpoint", {"Type": "TierAcl", "Settings": {"Name": "TierIn1"}})
    with pytest.raises(p.PolicyRefused, match=r"loopbackDSR.*DSR.*10\.2\+"):
        p.check_option("loopbackDSR", True)
    p.check_option("loopbackDSR", False)


@pytest.mark.parametrize("kind", p.KINDS)
def test_unknown_type_is_refused_naming_it(kind):
    with pytest.raises(p.UnknownPolicy, match="'Teleport'") as err:
        p.check_policy(kind, "Teleport", {})
    assert err.value.status == 400


def test_type_and_keys_any_case():
    name, parsed = p.check_v2(
        "endpoint",
        {
            "type": "portmapping",
            "settings": {"protocol": 6, "internalport": 80, "EXTERNALPORT": 8080},
        },
    )
    assert name == "PortMapping" and parsed.to_json() == {
        "Protocol": 6,
        "InternalPort": 80,
        "ExternalPort": 8080,
    }
    name, parsed = p.check_v1({"type": "outboundnat", "exceptionlist": ["10.0.0.0/8"]})
    assert name == "OutBoundNAT" and parsed.to_policy().exceptions == ["10.0.0.0/8"]


@pytest.mark.parametrize(
    ("kind", "name", "settings", "field"),
    [
        (
            "endpoint",
            "PortMapping",
            {"Protocol": "6", "InternalPort": 1, "ExternalPort": 2},
            "Protocol",
        ),
        (
            "endpoint",
            "PortMapping",
            {"Protocol": 1, "InternalPort": 1, "ExternalPort": 2},
            "Protocol",
        ),
        ("endpoint", "PortMapping", {"InternalPort": 70000, "ExternalPort": 2}, "InternalPort"),
        ("endpoint", "PortMapping", {"InternalPort": 1, "ExternalPort": 2, "Flags": 1}, "Flags"),
        ("endpoint", "ACL", {**ACL_IN, "Priority": "200"}, "Priority"),
        ("endpoint", "ACL", {**ACL_IN, "Action": "Pass"}, "Action"),
        ("endpoint", "ACL", {**ACL_IN, "Protocols": "1"}, "ports need proto=tcp"),
        ("endpoint", "QOS", {"MaximumOutgoingBandwidthInBytes": -5}, "MaximumOutgoing"),
        ("endpoint", "OutBoundNAT", {"Exceptions": "10.0.0.0/8"}, "Exceptions"),
        ("endpoint", "OutBoundNAT", {"MaxPortPoolUsage": 10}, "MaxPortPoolUsage"),
        (
            "endpoint",
            "SDNRoute",
            {"DestinationPrefix": "11.0.0.0/8", "NeedEncap": True},
            "NeedEncap",
        ),
        ("endpoint", "L2Driver", {"Mac": "x"}, "Mac"),
        ("network", "AutomaticDNS", {"Enable": "yes"}, "Enable"),
        ("network", "InterfaceConstraint", {"InterfaceIndex": 3}, "InterfaceIndex"),
        ("network", "NetAdapterName", {}, "NetworkAdapterName"),
        ("subnet", "VLAN", {"IsolationId": 5000}, "IsolationId"),
        ("v1", "NAT", {"Protocol": "sctp", "InternalPort": 1, "ExternalPort": 2}, "Protocol"),
        ("v1", "ACL", {"Action": "Allow", "Direction": "In", "ServiceName": "w"}, "ServiceName"),
    ],
)
def test_bad_settings_name_the_field(kind, name, settings, field):
    with pytest.raises(InvalidRequest) as err:
        p.check_policy(kind, name, settings)
    assert field in err.value.message and name in err.value.message


def test_conversions_to_hostnet_objects():
    acl = ps.AclSettings.model_validate(ACL_IN).to_rule()
    assert acl.Protocols == [6] and acl.LocalPorts == ["80", "8080"] and acl.Priority == 200
    v1 = p.check_policy("v1", "ACL", SAMPLES[("v1", "ACL")])
    assert v1.to_rule().LocalPorts == ["80"] and v1.to_rule().Protocols == [6]
    pm = p.check_policy(
        "endpoint", "PortMapping", {"InternalPort": 80, "ExternalPort": 8080, "Flags": 2}
    )
    assert pm.host_ip() == "::"
    route = p.check_policy("v1", "ROUTE", SAMPLES[("v1", "ROUTE")]).to_policy()
    assert (route.destination, route.next_hop) == ("10.9.0.0/16", "172.16.0.9")


def test_cni_sample_policies():
    # plugins/main/windows/win-overlay/sample-v2.conf
    p.check_v2("endpoint", {"Type": "OutBoundNAT", "Settings": {"Exceptions": ["172.30.0.0/16"]}})
    with pytest.raises(p.PolicyRefused, match="ProviderAddress"):
        p.check_v2(
            "endpoint", {"Type": "ProviderAddress", "Settings": {"ProviderAddress": "10.0.133.170"}}
        )
    with pytest.raises(InvalidRequest, match="NeedEncap"):
        p.check_v2(
            "endpoint",
            {
                "Type": "SDNRoute",
                "Settings": {"DestinationPrefix": "172.30.0.0/16", "NeedEncap": True},
            },
        )
