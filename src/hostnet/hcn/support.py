"""hcsshim's feature checks (``hcnglobals.go``, ``hcnsupport.go``) against hostnetd.

``get_globals`` is ``GET /hns/globals/version``; the features are computed from that
version exactly as hcsshim computes them (``hostnet.hns.versions``), so a client learns
what an hcsshim client would. hostnetd also lists every feature it implements by name
(``hostnet_features``), including those above the version it reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from hostnet.errors import HostnetError
from hostnet.hcn.transport import FeatureNotSupportedError, HcnClient, pick
from hostnet.hns import versions
from hostnet.hns.versions import Version


@dataclass(frozen=True)
class AclFeatures:
    """SupportedFeatures.Acl (HNS 7.2+)."""

    acl_address_lists: bool = False
    acl_host_rule_priority: bool = False
    acl_port_ranges: bool = False
    acl_rule_id: bool = False


@dataclass(frozen=True)
class ApiSupport:
    """SupportedFeatures.Api: V1 always, V2 from 9.2."""

    v1: bool = False
    v2: bool = False


#: SupportedFeatures' flat fields, by hcsshim's JSON name
FLAT = {
    "RemoteSubnet": "remote_subnet",
    "HostRoute": "host_route",
    "DSR": "dsr",
    "Slash32EndpointPrefixes": "slash32_endpoint_prefixes",
    "AclSupportForProtocol252": "acl_support_for_protocol_252",
    "SessionAffinity": "session_affinity",
    "IPv6DualStack": "ipv6_dual_stack",
    "SetPolicy": "set_policy",
    "VxlanPort": "vxlan_port",
    "L4Proxy": "l4_proxy",
    "L4WfpProxy": "l4_wfp_proxy",
    "TierAcl": "tier_acl",
    "NetworkACL": "network_acl",
    "NestedIpSet": "nested_ip_set",
    "DisableHostPort": "disable_host_port",
    "ModifyLoadbalancer": "modify_loadbalancer",
    "Accelnet": "accelnet",
}


@dataclass(frozen=True)
class SupportedFeatures:
    """hcn.SupportedFeatures: what an hcsshim client switches on for the daemon's version."""

    acl: AclFeatures = field(default_factory=AclFeatures)
    api: ApiSupport = field(default_factory=ApiSupport)
    remote_subnet: bool = False
    host_route: bool = False
    dsr: bool = False
    slash32_endpoint_prefixes: bool = False
    acl_support_for_protocol_252: bool = False
    session_affinity: bool = False
    ipv6_dual_stack: bool = False
    set_policy: bool = False
    vxlan_port: bool = False
    l4_proxy: bool = False
    l4_wfp_proxy: bool = False
    tier_acl: bool = False
    network_acl: bool = False
    nested_ip_set: bool = False
    disable_host_port: bool = False
    modify_loadbalancer: bool = False
    accelnet: bool = False

    @classmethod
    def for_version(cls, v: Version) -> SupportedFeatures:
        on = versions.supported_features(v)
        acl = AclFeatures(
            "ACL.AclAddressLists" in on,
            "ACL.AclHostRulePriority" in on,
            "ACL.AclPortRanges" in on,
            "ACL.AclRuleId" in on,
        )
        api = ApiSupport("API.V1" in on, "API.V2" in on)
        flat = {attr: name in on for name, attr in FLAT.items()}
        return cls(acl=acl, api=api, **flat)

    def names(self) -> frozenset[str]:
        """The features on, by hcsshim's JSON names (``API.V2``, ``DSR``, ...)."""
        out = {f"ACL.{a}" for a, f in zip(_ACL, fields(AclFeatures), strict=True)
               if getattr(self.acl, f.name)}  # fmt: skip
        out |= {n for n, on in (("API.V1", self.api.v1), ("API.V2", self.api.v2)) if on}
        out |= {name for name, attr in FLAT.items() if getattr(self, attr)}
        return frozenset(out)


_ACL = ("AclAddressLists", "AclHostRulePriority", "AclPortRanges", "AclRuleId")


@dataclass(frozen=True)
class Globals:
    """hcn.Globals: the daemon's version (and hostnet's list of what it implements)."""

    version: Version
    hostnet_features: tuple[str, ...] = ()


def get_globals(client: HcnClient | None = None) -> Globals:
    """``GET /hns/globals/version`` through the HNS envelope."""
    out = pick(client).hns_call("GET", "/globals/version") or {}
    v = Version(int(out.get("Major", 0)), int(out.get("Minor", 0)))
    return Globals(v, tuple(out.get("HostnetFeatures") or ()))


def hostnet_features(client: HcnClient | None = None) -> frozenset[str]:
    """Every feature hostnetd implements, by hcsshim's name (beyond its reported version)."""
    return frozenset(get_globals(client).hostnet_features)


def get_cached_supported_features(client: HcnClient | None = None) -> SupportedFeatures:
    """The features, asked once per client (hcsshim: once per process); raises if unreachable."""
    c = pick(client)
    if c._features is None:
        c._features = SupportedFeatures.for_version(get_globals(c).version)
    features: SupportedFeatures = c._features
    return features


def get_supported_features(client: HcnClient | None = None) -> SupportedFeatures:
    """hcsshim's deprecated GetSupportedFeatures: on any error, every feature off."""
    try:
        return get_cached_supported_features(client)
    except HostnetError:
        return SupportedFeatures()


def _check(feature: str, client: HcnClient | None) -> None:
    if feature not in get_cached_supported_features(client).names():
        raise FeatureNotSupportedError(versions.GATE[feature].title)


def v2_api_supported(client: HcnClient | None = None) -> None:
    """Raises FeatureNotSupportedError unless the daemon's version turns on API V2 (9.2+).
    (hostnetd serves /hcn regardless; it reports 9.2 once every 9.2 feature is implemented.)"""
    _check("API.V2", client)


def remote_subnet_supported(client: HcnClient | None = None) -> None:
    _check("RemoteSubnet", client)


def host_route_supported(client: HcnClient | None = None) -> None:
    _check("HostRoute", client)


def dsr_supported(client: HcnClient | None = None) -> None:
    _check("DSR", client)


def slash32_endpoint_prefixes_supported(client: HcnClient | None = None) -> None:
    _check("Slash32EndpointPrefixes", client)


def acl_support_for_protocol_252_supported(client: HcnClient | None = None) -> None:
    _check("AclSupportForProtocol252", client)


def session_affinity_supported(client: HcnClient | None = None) -> None:
    _check("SessionAffinity", client)


def ipv6_dual_stack_supported(client: HcnClient | None = None) -> None:
    _check("IPv6DualStack", client)


def l4proxy_policy_supported(client: HcnClient | None = None) -> None:
    _check("L4Proxy", client)


def l4_wfp_proxy_policy_supported(client: HcnClient | None = None) -> None:
    _check("L4WfpProxy", client)


def set_policy_supported(client: HcnClient | None = None) -> None:
    _check("SetPolicy", client)


def modify_loadbalancer_supported(client: HcnClient | None = None) -> None:
    _check("ModifyLoadbalancer", client)


def vxlan_port_supported(client: HcnClient | None = None) -> None:
    _check("VxlanPort", client)


def tier_acl_policy_supported(client: HcnClient | None = None) -> None:
    _check("TierAcl", client)


def network_acl_policy_supported(client: HcnClient | None = None) -> None:
    _check("NetworkACL", client)


def nested_ip_set_supported(client: HcnClient | None = None) -> None:
    _check("NestedIpSet", client)


def disable_host_port_supported(client: HcnClient | None = None) -> None:
    _check("DisableHostPort", client)


def accelnet_supported(client: HcnClient | None = None) -> None:
    _check("Accelnet", client)
