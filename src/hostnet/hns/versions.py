"""hcsshim's HNS version gates as data, its feature computation, and the version hostnet reports.

hcsshim (``hcn/hcnglobals.go``) gates each feature on a list of version ranges and
(``hcn/hcnsupport.go``) turns the version ``GET /globals/version`` answers into the set of
features a client will use. The ranges are *not* all open-ended: DSR and /32 endpoint
prefixes are off in 10.0-10.1 / 10.0-10.3, L4Proxy is off at the start of every major from
10 to 13. So hostnet cannot pick a number by hand; it reports the highest version at which
hcsshim would switch on only features hostnet implements (``reported_version``), and lists
every feature it implements, by hcsshim's name, beside it (``HostnetFeatures``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_INT32 = 2**31 - 1  # Go's math.MaxInt32, hcsshim's "no upper bound"


@dataclass(frozen=True, order=True)
class Version:
    """An HNS version, ``{"Major": .., "Minor": ..}`` on the wire."""

    major: int
    minor: int

    def __str__(self) -> str:
        minor = "*" if self.minor == MAX_INT32 else str(self.minor)
        return f"{self.major}.{minor}"

    def to_json(self) -> dict[str, int]:
        return {"Major": self.major, "Minor": self.minor}


@dataclass(frozen=True)
class VersionRange:
    """hcsshim's VersionRange: both ends included."""

    low: Version
    high: Version = Version(MAX_INT32, MAX_INT32)

    @property
    def bounded(self) -> bool:
        return self.high.major != MAX_INT32

    def __str__(self) -> str:
        return f"{self.low}+" if not self.bounded else f"{self.low}-{self.high}"


@dataclass(frozen=True)
class Gate:
    """One feature of hcsshim's SupportedFeatures and the ranges that switch it on."""

    feature: str  # its JSON name in SupportedFeatures, nested ones dotted (ACL.AclRuleId)
    variable: str  # the hcsshim variable holding its ranges (hcnglobals.go)
    title: str  # the name hcsshim's XSupported() error uses ("platform does not support ...")
    ranges: tuple[VersionRange, ...]

    @property
    def versions(self) -> str:
        """Its ranges for a person: ``9.3-9.*, 10.2+``."""
        return ", ".join(str(r) for r in self.ranges)


def _from(major: int, minor: int) -> tuple[VersionRange, ...]:
    return (VersionRange(Version(major, minor)),)


def _within(*pairs: tuple[int, int]) -> tuple[VersionRange, ...]:
    """Ranges ``M.m`` to ``M.*`` for each pair, as hcsshim writes the per-major ones."""
    return tuple(VersionRange(Version(a, b), Version(a, MAX_INT32)) for a, b in pairs)


_ACL = _from(7, 2)  # HNSVersion1803
GATES: tuple[Gate, ...] = (
    Gate("ACL.AclAddressLists", "HNSVersion1803", "ACL address lists", _ACL),
    Gate("ACL.AclHostRulePriority", "HNSVersion1803", "ACL host rule priority", _ACL),
    Gate("ACL.AclPortRanges", "HNSVersion1803", "ACL port ranges", _ACL),
    Gate("ACL.AclRuleId", "HNSVersion1803", "ACL rule id", _ACL),
    Gate("API.V2", "V2ApiSupport", "V2 Api/Schema", _from(9, 2)),
    Gate("RemoteSubnet", "RemoteSubnetVersion", "Remote Subnet", _from(9, 2)),
    Gate("HostRoute", "HostRouteVersion", "Host Route", _from(9, 2)),
    Gate(
        "DSR",
        "DSRVersion",
        "Direct Server Return (DSR)",
        _within((9, 3)) + _from(10, 2),
    ),
    Gate(
        "Slash32EndpointPrefixes",
        "Slash32EndpointPrefixesVersion",
        "Slash 32 Endpoint prefixes",
        _within((9, 3)) + _from(10, 4),
    ),
    Gate(
        "AclSupportForProtocol252",
        "AclSupportForProtocol252Version",
        "HNS ACL Policies to support protocol 252 for VXLAN",
        _from(11, 0),  # the comment in hcnglobals.go says 9.3-10.0, 10.4+; the data says 11.0+
    ),
    Gate("SessionAffinity", "SessionAffinityVersion", "Session Affinity", _from(12, 0)),
    Gate("IPv6DualStack", "IPv6DualStackVersion", "IPv6 DualStack", _from(11, 10)),
    Gate("SetPolicy", "SetPolicyVersion", "SetPolicy", _from(13, 0)),
    Gate("VxlanPort", "VxlanPortVersion", "VXLAN port configuration", _from(10, 3)),
    Gate(
        "L4Proxy",
        "L4ProxyPolicyVersion",
        "L4ProxyPolicy",
        _within((9, 5), (10, 5), (11, 11), (12, 1)) + _from(13, 1),
    ),
    Gate("L4WfpProxy", "L4WfpProxyPolicyVersion", "L4WfpProxyPolicy", _from(13, 2)),
    Gate("TierAcl", "TierAclPolicyVersion", "TierAcl", _from(14, 0)),
    Gate("NetworkACL", "NetworkACLPolicyVersion", "NetworkACL", _from(15, 0)),
    Gate("NestedIpSet", "NestedIpSetVersion", "NestedIpSet", _from(15, 0)),
    Gate("DisableHostPort", "DisableHostPortVersion", "DisableHostPort", _from(15, 1)),
    Gate("ModifyLoadbalancer", "ModifyLoadbalancerVersion", "ModifyLoadbalancer", _from(15, 4)),
    Gate("Accelnet", "AccelnetVersion", "Accelnet", _from(15, 4)),
)
GATE = {g.feature: g for g in GATES}
UNGATED = ("API.V1",)  # hcsshim sets it true whatever the version ("HNSCall is still available")
FEATURES = (*UNGATED, *GATE)

#: What hostnet does today, by hcsshim's name. Conservative: a feature is here only when a
#: client that relies on it gets that behaviour end to end. Everything else is left out.
IMPLEMENTED: frozenset[str] = frozenset(
    {
        # the v1 calls (/hns/networks/, /hns/endpoints/, attach, policylists, globals)
        "API.V1",
        # ACL rules take comma lists of prefixes, addresses and A-B ranges (acl._addresses)
        "ACL.AclAddressLists",
        # rules run in Priority order, lower first (acl.render_endpoint sorts by Priority)
        "ACL.AclHostRulePriority",
        # LocalPorts/RemotePorts take "80,8000-8100" (acl._ports)
        "ACL.AclPortRanges",
        # a v1 ACL's Id is accepted and kept with the policy as given (policies.AclV1);
        # an id only names a rule, it changes no packet
        "ACL.AclRuleId",
        # networks and endpoints carry an IPv4 and an IPv6 subnet/address at once
        # (Network.subnet6, Endpoint.ip6, two IpConfigurations)
        "IPv6DualStack",
        # rules every endpoint of a network gets before its own (Network.acl)
        "NetworkACL",
        # Not here, and why:
        #   API.V2 (9.2): served, but hcsshim's V2 gate also switches on RemoteSubnet and
        #     HostRoute at 9.2, which overlay networks do not do yet (the rule);
        #   RemoteSubnet, HostRoute: overlay routing by policy is not implemented;
        #   DSR, SessionAffinity, ModifyLoadbalancer: load balancers (issue 23);
        #   Slash32EndpointPrefixes: subnets smaller than /30 are refused (model.parse_subnet);
        #   AclSupportForProtocol252: protocol 252 has no VXLAN meaning in hostnet's ACLs;
        #   SetPolicy, NestedIpSet: IP sets (a later issue);
        #   VxlanPort: the overlay's VXLAN port is fixed at 4789;
        #   L4Proxy, L4WfpProxy, TierAcl, DisableHostPort, Accelnet: no counterpart yet.
    }
)


def in_range(v: Version, r: VersionRange) -> bool:
    """hcsshim's isFeatureInRange, step by step (the major decides, then the minor at an end)."""
    if v.major < r.low.major or v.major > r.high.major:
        return False
    if v.major == r.low.major and v.minor < r.low.minor:
        return False
    return not (v.major == r.high.major and v.minor > r.high.minor)


def is_supported(v: Version, ranges: tuple[VersionRange, ...]) -> bool:
    """hcsshim's isFeatureSupported: in any of the ranges."""
    return any(in_range(v, r) for r in ranges)


def supported_features(v: Version) -> frozenset[str]:
    """The features an hcn client switches on when HNS says ``v`` (getSupportedFeatures)."""
    return frozenset(UNGATED) | {g.feature for g in GATES if is_supported(v, g.ranges)}


def supported_features_json(v: Version) -> dict[str, Any]:
    """hcsshim's SupportedFeatures as it marshals (``ACL`` and ``API`` nested), for ``v``."""
    on = supported_features(v)
    out: dict[str, Any] = {"ACL": {}, "API": {}}
    for name in FEATURES:
        group, _, leaf = name.rpartition(".")
        (out[group] if group else out)[leaf] = name in on
    return out


def v1_supported_features(v: Version) -> dict[str, dict[str, bool]]:
    """internal/hns GetHNSSupportedFeatures: the four ACL flags, on from 7.2 (a plain compare)."""
    on = (v.major, v.minor) >= (7, 2)
    leaves = ("AclAddressLists", "AclHostRulePriority", "AclPortRanges", "AclRuleId")
    return {"ACL": {leaf: on for leaf in leaves}}


def boundaries() -> list[Version]:
    """Every version at which some feature switches on or off, lowest first, and 0.0.

    Between two neighbours the feature set does not change: a range starts at its low end
    and ends just after its high end, i.e. at the next major's 0 for hcsshim's ``M.*``.
    """
    points = {Version(0, 0)}
    for gate in GATES:
        for r in gate.ranges:
            points.add(r.low)
            if r.bounded:
                points.add(Version(r.high.major + 1, 0))
    return sorted(points)


def claimed_but_missing(v: Version, implemented: frozenset[str] = IMPLEMENTED) -> set[str]:
    """The features a client would use against ``v`` that hostnet does not implement."""
    return set(supported_features(v) - implemented)


def reported_version(implemented: frozenset[str] = IMPLEMENTED) -> Version:
    """The highest boundary version at which every feature hcsshim switches on is implemented.

    Any version up to the next boundary claims the same set; hostnet reports the boundary
    itself (where the last claimed change happened). 0.0 claims only the ungated API.V1.
    """
    fitting = [v for v in boundaries() if not claimed_but_missing(v, implemented)]
    return fitting[-1] if fitting else Version(0, 0)


def globals_version_answer(implemented: frozenset[str] = IMPLEMENTED) -> dict[str, Any]:
    """The ``Output`` of ``GET /globals/version``: the version object itself, not wrapped.

    hcsshim decodes Output straight into ``Version{Major, Minor}`` (hcnglobals.go,
    hnsglobals.go), ignoring other keys, so hostnet's feature list can sit beside them.
    """
    v = reported_version(implemented)
    return {
        **v.to_json(),
        "HostnetFeatures": [f for f in FEATURES if f in implemented],
    }


def describe(feature: str) -> str:
    """A feature for an error message: ``Direct Server Return (DSR) (HNS 9.3-9.*, 10.2+)``."""
    gate = GATE.get(feature)
    if gate is None:
        return feature
    return f"{gate.title} (hcsshim feature {gate.feature}, HNS {gate.versions})"
