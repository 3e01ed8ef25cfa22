"""Settings models of the policy types hostnet implements, in hcsshim's JSON (v2 and v1).

Each accepts what hostnet can do and refuses the rest by field name; where hostnet
already parses a policy (``hostnet.core.acl``, ``hostnet.core.policies``) the check is theirs, so
one policy means the same whichever face it came through. ``policies`` registers them.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from hostnet.core import acl
from hostnet.core import policies as core
from hostnet.errors import InvalidRequest
from hostnet.hns.gojson import U16, U32, U64, GoModel, canon

Action = Annotated[Literal["Allow", "Block", "Pass"], canon(("Allow", "Block", "Pass"))]
Direction = Annotated[Literal["In", "Out"], canon(("In", "Out"))]
RuleType = Annotated[Literal["", "Host", "Switch"], canon(("Host", "Switch"))]


def _refuse(what: str, remedy: str) -> ValueError:
    return ValueError(f"{what} is not supported by hostnet; {remedy}")


def _ip(value: str) -> str:
    if value:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
    return value


def _core(given: dict[str, Any]) -> Any:
    """hostnet.core.policies' parse, its InvalidRequest turned into a validation error."""
    try:
        return core.parse(given)
    except InvalidRequest as exc:
        raise ValueError(str(exc)) from None


class PortMappingSettings(GoModel):
    """PortMapping: Protocol 6/17, both ports, VIP (a host address), Flags 0 or 2 (IPv6)."""

    protocol: U32 = Field(default=6, alias="Protocol")
    internal_port: U16 = Field(default=0, alias="InternalPort")
    external_port: U16 = Field(default=0, alias="ExternalPort")
    vip: str = Field(default="", alias="VIP")
    flags: U32 = Field(default=0, alias="Flags")

    @field_validator("protocol")
    @classmethod
    def _proto(cls, v: int) -> int:
        if v not in (6, 17):
            raise _refuse(f"Protocol {v}", "hostnet maps TCP (6) and UDP (17) ports")
        return v

    @field_validator("vip")
    @classmethod
    def _vip(cls, v: str) -> str:
        return _ip(v)

    @field_validator("flags")
    @classmethod
    def _flags(cls, v: int) -> int:
        if v & ~2:
            raise _refuse(f"Flags {v} (1 is LocalRoutedVip)", "use 0, or 2 for IPv6")
        return v

    @model_validator(mode="after")
    def _ports(self) -> PortMappingSettings:
        if not self.internal_port or not self.external_port:
            raise ValueError("InternalPort and ExternalPort are both needed (1-65535)")
        return self

    def host_ip(self) -> str:
        """hostnet's PortMapping.host_ip: the VIP, or every IPv6 address with Flags 2."""
        return self.vip or ("::" if self.flags & 2 else "")


class AclSettings(GoModel):
    """ACL (endpoint) and NetworkACL (network): Allow/Block rules, as hostnet.core.acl enforces."""

    always = frozenset({"action", "direction"})
    protocols: str = Field(default="", alias="Protocols")
    action: Action = Field(alias="Action")
    direction: Direction = Field(alias="Direction")
    local_addresses: str = Field(default="", alias="LocalAddresses")
    remote_addresses: str = Field(default="", alias="RemoteAddresses")
    local_ports: str = Field(default="", alias="LocalPorts")
    remote_ports: str = Field(default="", alias="RemotePorts")
    # Host (WFP) and Switch (VFP): hostnet has one enforcement point, the endpoint's port
    rule_type: RuleType = Field(default="", alias="RuleType")
    priority: U16 = Field(default=0, alias="Priority")

    @field_validator("action")
    @classmethod
    def _action(cls, v: str) -> str:
        if v == "Pass":
            raise _refuse("Action Pass", "Pass belongs to TierAcl; use Allow or Block")
        return v

    @model_validator(mode="after")
    def _rule(self) -> AclSettings:
        self.to_rule()
        return self

    def spec(self) -> str:
        """The rule in hostnet.core.acl's KEY=VALUE form (HNS's key names)."""
        parts = {
            "Action": self.action,
            "Direction": self.direction,
            "Protocols": self.protocols,
            "LocalPorts": self.local_ports,
            "RemotePorts": self.remote_ports,
            "LocalAddresses": self.local_addresses,
            "RemoteAddresses": self.remote_addresses,
            "Priority": str(self.priority) if self.priority else "",
        }
        return ";".join(f"{k}={v}" for k, v in parts.items() if v)

    def to_rule(self) -> acl.AclRule:
        try:
            return acl.parse_rule(self.spec())
        except InvalidRequest as exc:
            raise ValueError(exc.message) from None


class AclV1Settings(AclSettings):
    """The v1 ACL (flat): also Id, one Protocol/LocalPort/RemotePort, ServiceName."""

    id: str = Field(default="", alias="Id")
    protocol: U16 = Field(default=0, alias="Protocol")
    internal_port: U16 = Field(default=0, alias="InternalPort")
    local_port: U16 = Field(default=0, alias="LocalPort")
    remote_port: U16 = Field(default=0, alias="RemotePort")
    service_name: str = Field(default="", alias="ServiceName")

    @field_validator("internal_port")
    @classmethod
    def _internal(cls, v: int) -> int:
        if v:
            raise _refuse("InternalPort in an ACL", "give the port as LocalPorts")
        return v

    @field_validator("service_name")
    @classmethod
    def _service(cls, v: str) -> str:
        if v:
            raise _refuse("ServiceName (a Windows service's WFP filter)", "leave it out")
        return v

    def spec(self) -> str:
        merged = self.model_copy(
            update={
                "protocols": ",".join(filter(None, (self.protocols, str(self.protocol or "")))),
                "local_ports": ",".join(
                    filter(None, (self.local_ports, str(self.local_port or "")))
                ),
                "remote_ports": ",".join(
                    filter(None, (self.remote_ports, str(self.remote_port or "")))
                ),
            }
        )
        return AclSettings.spec(merged)


class QosSettings(GoModel):
    """QOS: an egress cap in bytes/s (always written)."""

    always = frozenset({"maximum_outgoing_bandwidth_in_bytes"})
    maximum_outgoing_bandwidth_in_bytes: U64 = Field(alias="MaximumOutgoingBandwidthInBytes")

    @field_validator("maximum_outgoing_bandwidth_in_bytes")
    @classmethod
    def _positive(cls, v: int) -> int:
        if not v:
            raise ValueError("must be a positive number of bytes/s (leave QOS out for no cap)")
        return v


class L2DriverSettings(GoModel):
    """L2Driver: MAC rewrite, hcsshim defines no settings (l2bridge/l2tunnel networks)."""


class OutboundNatSettings(GoModel):
    """OutBoundNAT (v2): VirtualIP, Exceptions, Destinations, as hostnet.core.policies parses."""

    virtual_ip: str = Field(default="", alias="VirtualIP")
    exceptions: list[str] = Field(default_factory=list, alias="Exceptions")
    destinations: list[str] = Field(default_factory=list, alias="Destinations")
    flags: U32 = Field(default=0, alias="Flags")
    max_port_pool_usage: U16 = Field(default=0, alias="MaxPortPoolUsage")

    @field_validator("flags")
    @classmethod
    def _flags(cls, v: int) -> int:
        if v:
            raise _refuse(f"Flags {v}", "leave Flags out; the prefixes say the family")
        return v

    @field_validator("max_port_pool_usage")
    @classmethod
    def _pool(cls, v: int) -> int:
        if v:
            raise _refuse("MaxPortPoolUsage", "the kernel's NAT has no per-endpoint port pool")
        return v

    @model_validator(mode="after")
    def _core_check(self) -> OutboundNatSettings:
        self.to_policy()
        return self

    def to_policy(self) -> core.OutboundNatPolicy:
        out: core.OutboundNatPolicy = _core(
            {
                "Type": "OutBoundNAT",
                "Settings": {
                    k: v
                    for k, v in (
                        ("VirtualIP", self.virtual_ip),
                        ("Exceptions", self.exceptions),
                        ("Destinations", self.destinations),
                    )
                    if v
                },
            }
        )
        return out


class OutboundNatV1Settings(OutboundNatSettings):
    """The v1 OutBoundNAT: VIP and ExceptionList are the v2 VirtualIP and Exceptions."""

    virtual_ip: str = Field(default="", alias="VIP")
    exceptions: list[str] = Field(default_factory=list, alias="ExceptionList")


class SdnRouteSettings(GoModel):
    """SDNRoute (v2) and ROUTE (v1): DestinationPrefix via NextHop; NeedEncap refused."""

    destination_prefix: str = Field(default="", alias="DestinationPrefix")
    next_hop: str = Field(default="", alias="NextHop")
    need_encap: bool = Field(default=False, alias="NeedEncap")

    @field_validator("need_encap")
    @classmethod
    def _encap(cls, v: bool) -> bool:
        if v:
            raise _refuse("NeedEncap true", "routes go via NextHop on the endpoint's link")
        return v

    @model_validator(mode="after")
    def _core_check(self) -> SdnRouteSettings:
        self.to_policy()
        return self

    def to_policy(self) -> core.RoutePolicy:
        settings = {"DestinationPrefix": self.destination_prefix, "NextHop": self.next_hop}
        out: core.RoutePolicy = _core(
            {"Type": "SDNRoute", "Settings": {k: v for k, v in settings.items() if v}}
        )
        return out


class NetAdapterNameSettings(GoModel):
    """NetAdapterName: the host adapter (Linux name or alias), the driver's ``interface``."""

    network_adapter_name: str = Field(alias="NetworkAdapterName", min_length=1)


class AutomaticDnsSettings(GoModel):
    """AutomaticDNS: the embedded resolver on or off (the drivers' ``discovery``)."""

    enable: bool = Field(default=False, alias="Enable")


class InterfaceConstraintSettings(GoModel):
    """InterfaceConstraint (network): only InterfaceAlias means something on Linux."""

    interface_guid: str = Field(default="", alias="InterfaceGuid")
    interface_luid: U64 = Field(default=0, alias="InterfaceLuid")
    interface_index: U32 = Field(default=0, alias="InterfaceIndex")
    interface_media_type: U32 = Field(default=0, alias="InterfaceMediaType")
    interface_alias: str = Field(default="", alias="InterfaceAlias")
    interface_description: str = Field(default="", alias="InterfaceDescription")

    @field_validator(
        "interface_guid",
        "interface_luid",
        "interface_index",
        "interface_media_type",
        "interface_description",
    )
    @classmethod
    def _windows_only(cls, v: Any) -> Any:
        if v:
            raise _refuse("this Windows interface key", "name the adapter by InterfaceAlias")
        return v

    @model_validator(mode="after")
    def _alias(self) -> InterfaceConstraintSettings:
        if not self.interface_alias:
            raise ValueError("InterfaceAlias (the adapter's Linux name or alias) is needed")
        return self


class VlanSettings(GoModel):
    """VLAN (subnet policy): IsolationId is the 802.1Q id (the drivers' ``vlanid``)."""

    always = frozenset({"isolation_id"})
    isolation_id: Annotated[int, Field(ge=1, le=4094)] = Field(alias="IsolationId")


class VsidSettings(GoModel):
    """VSID (subnet policy): on an overlay network the VXLAN id (the driver's ``vxlanid``)."""

    always = frozenset({"isolation_id"})
    isolation_id: Annotated[int, Field(ge=1, le=16777215)] = Field(alias="IsolationId")


class NatV1Settings(GoModel):
    """The v1 NAT policy: a port mapping with the protocol as a name."""

    protocol: Annotated[str, canon(("TCP", "UDP"))] = Field(default="TCP", alias="Protocol")
    internal_port: U16 = Field(default=0, alias="InternalPort")
    external_port: U16 = Field(default=0, alias="ExternalPort")
    external_port_reserved: bool = Field(default=False, alias="ExternalPortReserved")

    @field_validator("protocol")
    @classmethod
    def _proto(cls, v: str) -> str:
        if v not in ("TCP", "UDP"):
            raise _refuse(f"Protocol {v!r}", "use TCP or UDP")
        return v

    @field_validator("external_port_reserved")
    @classmethod
    def _reserved(cls, v: bool) -> bool:
        if v:
            raise _refuse("ExternalPortReserved", "leave it out; hostnet reserves the port itself")
        return v

    @model_validator(mode="after")
    def _ports(self) -> NatV1Settings:
        if not self.internal_port or not self.external_port:
            raise ValueError("InternalPort and ExternalPort are both needed (1-65535)")
        return self


class VlanV1Settings(GoModel):
    """The v1 VLAN policy: ``{"Type": "VLAN", "VLAN": n}``."""

    always = frozenset({"vlan"})
    vlan: Annotated[int, Field(ge=1, le=4094)] = Field(alias="VLAN")


class VsidV1Settings(GoModel):
    """The v1 VSID policy: ``{"Type": "VSID", "VSID": n}``."""

    always = frozenset({"vsid"})
    vsid: Annotated[int, Field(ge=1, le=16777215)] = Field(alias="VSID")
