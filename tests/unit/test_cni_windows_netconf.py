"""The Windows CNI netconf (win-bridge, win-overlay) as hostnet's own (hostnet/cni/windows.py)."""

from __future__ import annotations

import copy
import json
from typing import Any, cast

import pytest

from hostnet.cni import adapter as cni
from hostnet.cni import windows as cni_windows
from hostnet.errors import InvalidRequest
from hostnet.hns.policies import PolicyRefused
from hostnet.model import Network


def ep(value: dict[str, Any]) -> dict[str, Any]:
    return {"name": "EndpointPolicy", "value": value}


# plugins/main/windows/win-bridge/sample-v2.conf: the flannel delegate, with the outer name
WIN_BRIDGE_V2: dict[str, Any] = {
    "name": "cbr0",
    "apiVersion": 2,
    "type": "win-bridge",
    "dns": {"nameservers": ["11.0.0.10"], "search": ["svc.cluster.local"]},
    "policies": [
        ep(
            {
                "Type": "OutBoundNAT",
                "Settings": {"Exceptions": ["192.168.0.0/16", "11.0.0.0/8", "10.137.196.0/23"]},
            }
        ),
        ep(
            {"Type": "SDNRoute", "Settings": {"DestinationPrefix": "11.0.0.0/8", "NeedEncap": True}}
        ),
        ep(
            {
                "Type": "SDNRoute",
                "Settings": {"DestinationPrefix": "10.137.198.27/32", "NeedEncap": True},
            }
        ),
    ],
    "loopbackDSR": True,
}
# win-bridge/sample-v1.conf: the same in the flat v1 shapes
WIN_BRIDGE_V1: dict[str, Any] = {
    "name": "cbr0",
    "type": "win-bridge",
    "dns": {"nameservers": ["11.0.0.10"], "search": ["svc.cluster.local"]},
    "policies": [
        ep(
            {
                "Type": "OutBoundNAT",
                "ExceptionList": ["192.168.0.0/16", "11.0.0.0/8", "10.137.196.0/23"],
            }
        ),
        ep({"Type": "ROUTE", "DestinationPrefix": "11.0.0.0/8", "NeedEncap": True}),
        ep({"Type": "ROUTE", "DestinationPrefix": "10.137.198.27/32", "NeedEncap": True}),
    ],
    "loopbackDSR": True,
}
# win-overlay/sample-v2.conf
WIN_OVERLAY_V2: dict[str, Any] = {
    "cniVersion": "0.2.0",
    "name": "OVNKubernetesHybridOverlayNetwork",
    "type": "win-overlay",
    "ipam": {"type": "host-local", "subnet": "10.132.0.0/24"},
    "apiVersion": 2,
    "capabilities": {"portMappings": True, "dns": True},
    "policies": [
        ep({"Type": "OutBoundNAT", "Settings": {"Exceptions": ["172.30.0.0/16"]}}),
        ep(
            {
                "Type": "SDNRoute",
                "Settings": {"DestinationPrefix": "172.30.0.0/16", "NeedEncap": True},
            }
        ),
        ep({"Type": "ProviderAddress", "Settings": {"ProviderAddress": "10.0.133.170"}}),
    ],
}

EXCEPTIONS = ["192.168.0.0/16", "11.0.0.0/8", "10.137.196.0/23"]


class FakeDriver:
    def __init__(self, publishes_ports: bool = True, rewrites_macs: bool = False) -> None:
        self.publishes_ports, self.rewrites_macs = publishes_ports, rewrites_macs


def net(driver: str = "nat", subnet: str = "10.132.0.0/24", **kw: Any) -> Network:
    gw = subnet.rsplit(".", 1)[0] + ".1" if subnet else ""
    return Network(id="n1", name="cbr0", driver=driver, subnet=subnet, gateway=gw, **kw)


def hostnet_conf(conf: dict[str, Any], n: Network | None = None, **drv: bool) -> dict[str, Any]:
    n = n or net()
    return cni_windows.netconf(n, cast(Any, FakeDriver(**drv)), cni_windows.parse(conf))


def without_dsr(conf: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in conf.items() if k != "loopbackDSR"}


def shout(data: Any) -> Any:
    """Every key in another case (Go's decoder matches them without regard to case)."""
    if isinstance(data, dict):
        return {
            (k.upper() if i % 2 else k.lower()): shout(v) for i, (k, v) in enumerate(data.items())
        }
    if isinstance(data, list):
        return [shout(v) for v in data]
    return data


@pytest.mark.parametrize("sample", [WIN_BRIDGE_V2, WIN_BRIDGE_V1], ids=["v2", "v1"])
@pytest.mark.parametrize("case", [lambda c: c, shout], ids=["as-written", "any-case"])
def test_win_bridge_samples_become_hostnet_policies(sample: dict[str, Any], case: Any) -> None:
    conf = case(copy.deepcopy(without_dsr(sample)))
    assert cni_windows.is_windows(conf)
    out = hostnet_conf(conf)
    assert out["policies"] == [
        {"Type": "OutBoundNAT", "Settings": {"Exceptions": EXCEPTIONS}},
        # NeedEncap without NextHop on a nat network: via the host (the gateway)
        {
            "Type": "SDNRoute",
            "Settings": {"DestinationPrefix": "11.0.0.0/8", "NextHop": "10.132.0.1"},
        },
        {
            "Type": "SDNRoute",
            "Settings": {"DestinationPrefix": "10.137.198.27/32", "NextHop": "10.132.0.1"},
        },
    ]
    assert out["dns"] == {"nameservers": ["11.0.0.10"], "search": ["svc.cluster.local"]}
    assert out["acl"] == [] and out["name"] == "cbr0"
    assert not {"apiVersion", "loopbackDSR", "ipMasq"} & set(out)


@pytest.mark.parametrize("sample", [WIN_BRIDGE_V2, WIN_BRIDGE_V1], ids=["v2", "v1"])
def test_loopback_dsr_is_refused_with_its_feature(sample: dict[str, Any]) -> None:
    with pytest.raises(PolicyRefused, match=r"loopbackDSR needs Direct Server Return") as exc:
        cni_windows.parse(shout(sample))
    assert exc.value.feature == "DSR" and "loopbackDSR" in exc.value.remedy
    cni_windows.parse({**sample, "loopbackDSR": False})  # false asks for nothing


def test_win_overlay_sample_refuses_provider_address_by_name() -> None:
    with pytest.raises(PolicyRefused, match=r"policies\[2\]: .*'ProviderAddress'") as exc:
        cni_windows.parse(WIN_OVERLAY_V2)
    assert exc.value.feature == "RemoteSubnet"
    # without it the rest parses; on an overlay network NeedEncap cannot mean "via the host"
    conf = {**WIN_OVERLAY_V2, "policies": WIN_OVERLAY_V2["policies"][:2]}
    assert cni.cni_windows.parse(conf).policies[1][1] == cni_windows.EncapRoute("172.30.0.0/16")
    with pytest.raises(InvalidRequest, match="NeedEncap.*gateway is\\s+not this host"):
        hostnet_conf(conf, net("overlay", gateway6=""), publishes_ports=False)


def test_ip_masq_and_ip_masq_network_become_exceptions_merged_into_one_outbound_nat() -> None:
    conf = {
        "name": "cbr0",
        "type": "hostnet",
        "IPMASQ": True,
        "ipmasqnetwork": "10.244.0.0/16",
        "policies": [ep({"type": "outboundnat", "exceptionlist": ["10.244.0.0/16", "11.0.0.0/8"]})],
    }
    out = hostnet_conf(conf)
    assert out["policies"] == [
        {
            "Type": "OutBoundNAT",
            "Settings": {"Exceptions": ["10.244.0.0/16", "11.0.0.0/8", "10.132.0.0/24"]},
        }
    ]


def test_port_mappings_acl_and_qos_in_both_shapes() -> None:
    v2 = {
        "name": "cbr0",
        "type": "hostnet",
        "apiVersion": 2,
        "runtimeConfig": {"PortMappings": [{"HostPort": 8080, "containerPort": 80, "protocol": "6"}]},
        "policies": [
            ep({"Type": "PortMapping", "Settings": {"InternalPort": 53, "ExternalPort": 5353, "Protocol": 17}}),
            ep({"type": "acl", "settings": {"Action": "block", "Direction": "in", "LocalPorts": "81", "Protocols": "6"}}),
            ep({"Type": "QOS", "Settings": {"MaximumOutgoingBandwidthInBytes": 1000000}}),
        ],
    }  # fmt: skip
    out = hostnet_conf(v2)
    assert out["runtimeConfig"]["portMappings"] == [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": ""},
    ]
    assert out["acl"] == ["Action=Block;Direction=In;Protocols=6;LocalPorts=81"]
    assert out["runtimeConfig"]["bandwidth"] == {"egressRate": 8000000, "egressBurst": 800000}
    v1 = {
        "name": "cbr0",
        "type": "hostnet",
        "policies": [
            ep({"Type": "NAT", "InternalPort": 80, "ExternalPort": 8081, "Protocol": "tcp"})
        ],
    }
    assert hostnet_conf(v1)["runtimeConfig"]["portMappings"] == [
        {"hostPort": 8081, "containerPort": 80, "protocol": "tcp"}
    ]


def test_runtime_dns_replaces_the_netconf_dns_when_given() -> None:
    conf = {
        "name": "cbr0",
        "type": "hostnet",
        "apiVersion": 2,
        "DNS": {
            "Nameservers": ["11.0.0.10"],
            "Search": ["a"],
            "Domain": "d",
            "Options": ["ndots:5"],
        },
        "runtimeConfig": {"dns": {"servers": ["10.96.0.10"], "searches": []}},
    }
    assert hostnet_conf(conf)["dns"] == {
        "nameservers": ["10.96.0.10"],
        "search": ["a"],
        "options": ["ndots:5"],
        "domain": "d",
    }


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        (ep({"Type": "Bogus", "Settings": {}}), "unknown endpoint policy Type 'Bogus'"),
        (ep({"Type": "L4Proxy", "Settings": {}}), "'L4Proxy' is not supported by hostnet"),
        ({"name": "NetworkPolicy", "value": {"Type": "ACL"}}, "only EndpointPolicy"),
        (ep({"Type": "OutBoundNAT", "ExceptionList": ["1.0.0.0/8"]}), "v1 shape"),
        (ep({"Type": "SDNRoute", "Settings": {"DestinationPrefix": "1.0.0.0/8", "NextHop": "10.132.0.9", "NeedEncap": True}}), "NeedEncap and a NextHop"),  # noqa: E501
        (ep({"Type": "SDNRoute", "Settings": {"DestinationPrefix": "banana", "NeedEncap": True}}), "is not a prefix"),  # noqa: E501
        ({"Type": "ACL", "Settings": {}}, "{name, value}"),
    ],
)  # fmt: skip
def test_bad_policies_are_refused_by_name(policy: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidRequest, match="policies\\[0\\]") as exc:
        cni_windows.parse(
            {"name": "cbr0", "type": "hostnet", "apiVersion": 2, "policies": [policy]}
        )
    assert words in exc.value.message, exc.value.message
    assert exc.value.cni_code == 7


def test_policies_that_restate_the_network() -> None:
    conf = {"name": "cbr0", "type": "hostnet", "policies": [ep({"Type": "VLAN", "VLAN": 7})]}
    with pytest.raises(InvalidRequest, match="VLAN 7 is not the VLAN of network 'cbr0'"):
        hostnet_conf(conf)
    hostnet_conf(conf, net("l2bridge", options={"vlanid": "7"}))
    l2 = {"name": "cbr0", "type": "hostnet", "policies": [ep({"Type": "L2Driver"})]}
    with pytest.raises(InvalidRequest, match="MAC rewrite"):
        hostnet_conf(l2)
    hostnet_conf(l2, net("l2bridge"), publishes_ports=False, rewrites_macs=True)


def test_options_and_ipam_checked() -> None:
    with pytest.raises(InvalidRequest, match="apiVersion"):
        cni_windows.parse({"name": "x", "apiVersion": "2"})
    with pytest.raises(InvalidRequest, match="endpointMacPrefix"):
        cni_windows.parse({"name": "x", "endpointMacPrefix": "0E-2A"})
    with pytest.raises(InvalidRequest, match="ipMasqNetwork"):
        cni_windows.parse({"name": "x", "ipMasqNetwork": "10.0.0.300/8"})
    other = {
        "name": "cbr0",
        "apiVersion": 2,
        "ipam": {"type": "host-local", "subnet": "10.9.0.0/24"},
    }
    with pytest.raises(
        InvalidRequest, match="ipam subnet 10.9.0.0/24 is not the subnet of network"
    ):
        hostnet_conf(other)
    hostnet_conf({**other, "ipam": {"Subnet": "10.132.0.0/24"}})


def test_results_in_each_versions_shape() -> None:
    current = {
        "cniVersion": "0.2.0",
        "interfaces": [{"name": "hv1"}, {"name": "eth0", "sandbox": "/run/netns/x"}],
        "ips": [
            {"address": "10.132.0.5/24", "gateway": "10.132.0.1", "interface": 1},
            {"address": "fd00::5/64", "gateway": "fd00::1", "interface": 1},
        ],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.132.0.1"}, {"dst": "::/0", "gw": "fd00::1"}],
        "dns": {"nameservers": ["11.0.0.10"]},
    }
    assert cni_windows.in_version(current) == {
        "cniVersion": "0.2.0",
        "ip4": {
            "ip": "10.132.0.5/24",
            "gateway": "10.132.0.1",
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.132.0.1"}],
        },
        "ip6": {
            "ip": "fd00::5/64",
            "gateway": "fd00::1",
            "routes": [{"dst": "::/0", "gw": "fd00::1"}],
        },
        "dns": {"nameservers": ["11.0.0.10"]},
    }
    for version in ("0.3.0", "0.3.1"):
        assert cni._ip_entry(version, 4, "10.0.0.5", 24, "10.0.0.1")["version"] == "4"
    assert "version" not in cni._ip_entry("1.0.0", 4, "10.0.0.5", 24, "10.0.0.1")


def run(command: str, conf: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    env = {"containerID": "c1", "netns": "/run/netns/x", "ifname": "eth0"}
    code, out = cni.handle(cast(Any, None), command, env, json.dumps(conf).encode())
    return code, json.loads(out) if out else {}


def test_old_versions_take_add_and_del_only_and_any_case_keys() -> None:
    conf = {"CNIVersion": "0.3.1", "Name": "cbr0", "Type": "hostnet", "ApiVersion": 2}
    for command in ("CHECK", "GC", "STATUS"):
        code, out = run(command, conf)
        assert code == 1 and out["code"] == 1 and f"does not allow {command}" in out["msg"], out
    assert run("ADD", {**conf, "CNIVersion": "0.1.0"})[1]["code"] == 1
    _, out = run("VERSION", {})
    assert out["supportedVersions"][:3] == ["0.2.0", "0.3.0", "0.3.1"]
    with pytest.raises(InvalidRequest, match="chaining came with CNI 0.3.0"):
        cni.prev_result({"cniVersion": "0.2.0", "prevResult": {}})


def test_the_shims_answer_version_with_the_daemons_list() -> None:
    """VERSION is answered by the shims without the daemon: both must name what it takes."""
    import json as _json
    import os as _os
    import re as _re

    from hostnet.cni import adapter as _cni
    from hostnet.cni import plugin as cni_plugin

    daemon = [*_cni.LEGACY, *_cni.SUPPORTED]
    assert _json.loads(cni_plugin.VERSION)["supportedVersions"] == daemon
    c_src = _os.path.join(_os.path.dirname(__file__), "..", "..", "cni", "hostnet-cni.c")
    with open(c_src) as fh:
        text = fh.read()
    block = text[text.index('"VERSION"') : text.index("return 0;", text.index('"VERSION"'))]
    assert _re.findall(r'\\"(\d+\.\d+\.\d+)\\"', block)[1:] == daemon  # [0]: cniVersion
