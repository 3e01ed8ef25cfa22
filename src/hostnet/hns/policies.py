"""The policy Type registry: every Type hcsshim defines, implemented or refused by name.

v2 policies are ``{"Type", "Settings"}`` on endpoints, networks and subnets
(``hcn/hcnpolicy.go``); v1 policies are flat (``{"Type": "NAT", "InternalPort": ..}``,
``internal/hns/hnspolicy.go``). Each Type is either implemented (a Settings model from
``policy_settings``) or refused with the hcsshim feature and HNS version it belongs to and
why hostnet lacks it. Adding a type is its Settings model and one line in ``REGISTRY``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from hostnet.errors import InvalidRequest
from hostnet.hns import policy_settings as ps
from hostnet.hns.gojson import GoModel, parse
from hostnet.hns.schema import Policy
from hostnet.hns.versions import describe

Kind = Literal["endpoint", "network", "subnet", "v1"]
KINDS: tuple[Kind, ...] = ("endpoint", "network", "subnet", "v1")


class UnknownPolicy(InvalidRequest):
    """A policy Type hcsshim does not define for that place."""


class PolicyRefused(InvalidRequest):
    """A policy Type hcsshim defines and hostnet does not implement (yet)."""

    default_remedy = "leave the policy out"

    def __init__(self, message: str, remedy: str = "", **details: Any) -> None:
        super().__init__(message, remedy, **details)
        self.feature = str(details.get("feature", ""))


@dataclass(frozen=True)
class PolicyType:
    """One policy Type in one place: its Settings model, or why hostnet refuses it."""

    name: str
    kind: Kind
    settings: type[GoModel] | None = None  # None: refused
    feature: str = ""  # the hcsshim feature (versions.GATES) it belongs to, if gated
    why: str = ""  # refused: why hostnet lacks it; implemented: what it maps onto

    @property
    def implemented(self) -> bool:
        return self.settings is not None


def _ok(name: str, kind: Kind, settings: type[GoModel], maps: str, feature: str = "") -> PolicyType:
    return PolicyType(name, kind, settings, feature, maps)


def _no(name: str, kind: Kind, why: str, feature: str = "") -> PolicyType:
    return PolicyType(name, kind, None, feature, why)


_LB = "load balancers are the next issue (23)"
_L4 = "transparent proxying of a network's or endpoint's traffic has no counterpart yet"
_PA = "overlay endpoints and routes by provider address are not implemented"
_VIEW = "hostnet fills it in on an overlay network's view; it is not an input"

REGISTRY_LIST: tuple[PolicyType, ...] = (
    # endpoint policies (EndpointPolicyType)
    _ok("PortMapping", "endpoint", ps.PortMappingSettings, "a published port (-p)"),
    _ok("ACL", "endpoint", ps.AclSettings, "a port ACL rule (--acl)", "ACL.AclPortRanges"),
    _ok("QOS", "endpoint", ps.QosSettings, "an egress cap (--max-bandwidth)"),
    _ok("L2Driver", "endpoint", ps.L2DriverSettings, "MAC rewrite (l2bridge, l2tunnel)"),
    _ok("OutBoundNAT", "endpoint", ps.OutboundNatSettings, "outbound NAT (--policy)"),
    _ok("SDNRoute", "endpoint", ps.SdnRouteSettings, "a route in the compartment (--policy)"),
    _no("L4Proxy", "endpoint", _L4, "L4Proxy"),
    _no("L4WFPPROXY", "endpoint", _L4, "L4WfpProxy"),
    _no("PortName", "endpoint", "hostnet names each vNIC's host end itself (hv + id)"),
    _no("EncapOverhead", "endpoint", "the overlay's MTU is set by the network (-o mtu)"),
    _no("Iov", "endpoint", "SR-IOV offload needs hardware hostnet does not drive"),
    _no("ProviderAddress", "endpoint", _PA, "RemoteSubnet"),
    _no("InterfaceConstraint", "endpoint", "a veth is bound to its network, not to a NIC"),
    _no("TierAcl", "endpoint", "ACL tiers (Pass between tiers) are not implemented", "TierAcl"),
    # network policies (NetworkPolicyType)
    _no("SourceMacAddress", "network", "l2bridge rewrites to the adapter's own MAC"),
    _ok("NetAdapterName", "network", ps.NetAdapterNameSettings, "-o interface=NAME"),
    _no("VSwitchExtension", "network", "Hyper-V switch extensions do not exist on Linux"),
    _no("DrMacAddress", "network", _VIEW, "RemoteSubnet"),
    _ok("AutomaticDNS", "network", ps.AutomaticDnsSettings, "-o discovery=true|false"),
    _ok("InterfaceConstraint", "network", ps.InterfaceConstraintSettings, "-o interface=ALIAS"),
    _no("ProviderAddress", "network", _VIEW, "RemoteSubnet"),
    _no("RemoteSubnetRoute", "network", "routes to remote subnets by policy", "RemoteSubnet"),
    _no("VxlanPort", "network", "the overlay's VXLAN port is fixed at 4789", "VxlanPort"),
    _no("HostRoute", "network", "host to container routing on overlays", "HostRoute"),
    _no("SetPolicy", "network", "IP sets are a later issue", "SetPolicy"),
    _no("L4Proxy", "network", _L4, "L4Proxy"),
    _no("LayerConstraint", "network", "VFP layers do not exist on Linux"),
    _ok("NetworkACL", "network", ps.AclSettings, "network-wide ACL rules", "NetworkACL"),
    # subnet policies (SubnetPolicyType)
    _ok("VLAN", "subnet", ps.VlanSettings, "-o vlanid=N (transparent, l2bridge, l2tunnel)"),
    _ok("VSID", "subnet", ps.VsidSettings, "the overlay's VXLAN id (-o vxlanid=N)"),
    # v1 policies (internal/hns PolicyType), flat
    _ok("NAT", "v1", ps.NatV1Settings, "a published port (-p)"),
    _ok("ACL", "v1", ps.AclV1Settings, "a port ACL rule (--acl)", "ACL.AclRuleId"),
    _no("PA", "v1", _PA, "RemoteSubnet"),
    _ok("VLAN", "v1", ps.VlanV1Settings, "-o vlanid=N"),
    _ok("VSID", "v1", ps.VsidV1Settings, "the overlay's VXLAN id"),
    _no("VNET", "v1", "Hyper-V network virtualization has no counterpart"),
    _ok("L2Driver", "v1", ps.L2DriverSettings, "MAC rewrite (l2bridge, l2tunnel)"),
    _no("Isolation", "v1", "give the VLAN or the VSID policy on its own"),
    _ok("QOS", "v1", ps.QosSettings, "an egress cap"),
    _ok("OutBoundNAT", "v1", ps.OutboundNatV1Settings, "outbound NAT"),
    _no("ELB", "v1", _LB),
    _ok("ROUTE", "v1", ps.SdnRouteSettings, "a route in the compartment"),
    _no("PROXY", "v1", _L4, "L4Proxy"),
)
REGISTRY: dict[tuple[Kind, str], PolicyType] = {(p.kind, p.name): p for p in REGISTRY_LIST}

#: options outside policies that need a feature hostnet lacks (the Windows CNI netconf)
OPTION_FEATURES = {"loopbackDSR": "DSR"}


def lookup(kind: Kind, type_name: str) -> PolicyType:
    """The registry entry, matched exactly or else without regard to case."""
    found = REGISTRY.get((kind, type_name))
    if found is None:
        found = next(
            (p for (k, n), p in REGISTRY.items() if k == kind and n.lower() == type_name.lower()),
            None,
        )
    if found is None:
        known = ", ".join(n for k, n in REGISTRY if k == kind)
        raise UnknownPolicy(
            f"unknown {kind} policy Type {type_name!r}",
            f"hcsshim's {kind} policy Types are: {known}",
            type=type_name,
        )
    return found


def refusal(entry: PolicyType) -> PolicyRefused:
    """The error for a Type hostnet does not implement."""
    belongs = f", part of {describe(entry.feature)}" if entry.feature else ""
    return PolicyRefused(
        f"{entry.kind} policy Type {entry.name!r} is not supported by hostnet{belongs}: "
        f"{entry.why}",
        "leave the policy out; 'GET /hns/globals/version' lists what hostnet implements",
        type=entry.name,
        feature=entry.feature,
    )


def check_policy(kind: Kind, type_name: str, settings: Any) -> GoModel:
    """Parse one policy's Settings (v1: the flat object without Type), or refuse it by name."""
    entry = lookup(kind, type_name)
    if entry.settings is None:
        raise refusal(entry)
    return parse(entry.settings, {} if settings is None else settings, f"{entry.name} policy")


def check_v2(kind: Kind, policy: Any) -> tuple[str, GoModel]:
    """A v2 ``{"Type", "Settings"}`` object: its canonical Type and parsed Settings."""
    p = parse(Policy, policy, f"{kind} policy")
    entry = lookup(kind, p.type)
    return entry.name, check_policy(kind, entry.name, p.settings)


def check_v1(policy: Any) -> tuple[str, GoModel]:
    """A flat v1 policy: its canonical Type and parsed settings."""
    if not isinstance(policy, dict):
        raise InvalidRequest("a v1 policy must be an object", 'e.g. {"Type": "QOS", ...}')
    fields = {k: v for k, v in policy.items() if str(k).lower() != "type"}
    type_name = next((v for k, v in policy.items() if str(k).lower() == "type"), "")
    if not isinstance(type_name, str) or not type_name:
        raise InvalidRequest("a v1 policy needs a Type (a string)", 'e.g. {"Type": "NAT", ...}')
    entry = lookup("v1", type_name)
    return entry.name, check_policy("v1", entry.name, fields)


def check_option(name: str, value: Any) -> None:
    """Refuse a set option that needs an hcsshim feature hostnet lacks (e.g. loopbackDSR)."""
    feature = OPTION_FEATURES.get(name)
    if feature and value:
        raise PolicyRefused(
            f"{name} needs {describe(feature)}, which hostnet does not implement",
            f"leave {name} out",
            option=name,
            feature=feature,
        )
