"""The JSON of HNS v1 objects, as hcsshim's ``internal/hns`` marshals and decodes them.

HNSNetwork, HNSEndpoint, PolicyList, the v1 namespace, attach/detach and stats bodies,
and the envelope every v1 answer comes in (``{"Success", "Error", "Output"}``). v1
policies are flat (``{"Type": "NAT", "InternalPort": ..}``) and kept raw here; the
policy registry parses them. The Go JSON rules are in ``gojson``.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from hostnet.hns.gojson import U8, U16, U32, U64, GoModel, canon
from hostnet.hns.schema import NETWORK_TYPES


def _ip_or_empty(value: str) -> str:
    """Go's net.IP text form: an address or nothing (UnmarshalText refuses the rest)."""
    if value:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"invalid IP address {value!r}") from None
    return value


IPText = Annotated[str, AfterValidator(_ip_or_empty)]


class HNSSubnet(GoModel):
    """A v1 subnet; a client refuses AddressPrefix without GatewayAddress."""

    raw = frozenset({"policies"})
    address_prefix: str = Field(default="", alias="AddressPrefix")
    gateway_address: str = Field(default="", alias="GatewayAddress")
    policies: list[Any] | None = Field(default=None, alias="Policies")


class HNSMacPool(GoModel):
    """A v1 MAC range."""

    start_mac_address: str = Field(default="", alias="StartMacAddress")
    end_mac_address: str = Field(default="", alias="EndMacAddress")


class HNSNetwork(GoModel):
    """hns.HNSNetwork; every field omitempty. ManagementIP is filled in by HNS."""

    raw = frozenset({"policies"})
    id: str = Field(default="", alias="ID")
    name: str = Field(default="", alias="Name")
    # v1 has no enum: clients compare with EqualFold; known ones are answered as hcsshim spells
    type: Annotated[str, canon(NETWORK_TYPES)] = Field(default="", alias="Type")
    network_adapter_name: str = Field(default="", alias="NetworkAdapterName")
    source_mac: str = Field(default="", alias="SourceMac")
    policies: list[Any] | None = Field(default=None, alias="Policies")
    mac_pools: list[HNSMacPool] = Field(default_factory=list, alias="MacPools")
    subnets: list[HNSSubnet] = Field(default_factory=list, alias="Subnets")
    dns_suffix: str = Field(default="", alias="DNSSuffix")
    dns_server_list: str = Field(default="", alias="DNSServerList")  # one comma-separated string
    dns_server_compartment: U32 = Field(default=0, alias="DNSServerCompartment")
    management_ip: str = Field(default="", alias="ManagementIP")
    automatic_dns: bool = Field(default=False, alias="AutomaticDNS")


class HNSNamespaceResource(GoModel):
    """``{"Type": "Endpoint", "Data": {"Id": ...}}`` (no omitempty)."""

    always = frozenset({"type", "data"})
    raw = frozenset({"data"})
    type: str = Field(default="", alias="Type")
    data: Any = Field(default=None, alias="Data")


class HNSNamespace(GoModel):
    """The v1 namespace (``/namespaces/``); ``ID`` is always written."""

    always = frozenset({"id"})
    id: str = Field(default="", alias="ID")
    is_default: bool = Field(default=False, alias="IsDefault")
    resource_list: list[HNSNamespaceResource] = Field(default_factory=list, alias="ResourceList")
    compartment_id: U32 = Field(default=0, alias="CompartmentId")


ENDPOINT_STATES = (
    "Uninitialized",
    "Created",
    "Attached",
    "AttachedSharing",
    "Detached",
    "Degraded",
    "Destroyed",
)


class HNSEndpoint(GoModel):
    """hns.HNSEndpoint; every field omitempty. State is a number (ENDPOINT_STATES)."""

    raw = frozenset({"policies"})
    id: str = Field(default="", alias="ID")
    name: str = Field(default="", alias="Name")
    virtual_network: str = Field(default="", alias="VirtualNetwork")
    virtual_network_name: str = Field(default="", alias="VirtualNetworkName")
    policies: list[Any] | None = Field(default=None, alias="Policies")
    mac_address: str = Field(default="", alias="MacAddress")
    ip_address: IPText = Field(default="", alias="IPAddress")
    ipv6_address: IPText = Field(default="", alias="IPv6Address")
    dns_suffix: str = Field(default="", alias="DNSSuffix")
    dns_server_list: str = Field(default="", alias="DNSServerList")
    dns_domain: str = Field(default="", alias="DNSDomain")
    gateway_address: str = Field(default="", alias="GatewayAddress")
    gateway_address_v6: str = Field(default="", alias="GatewayAddressV6")
    enable_internal_dns: bool = Field(default=False, alias="EnableInternalDNS")
    disable_icc: bool = Field(default=False, alias="DisableICC")
    prefix_length: U8 = Field(default=0, alias="PrefixLength")
    ipv6_prefix_length: U8 = Field(default=0, alias="IPv6PrefixLength")
    is_remote_endpoint: bool = Field(default=False, alias="IsRemoteEndpoint")
    enable_low_metric: bool = Field(default=False, alias="EnableLowMetric")
    namespace: HNSNamespace | None = Field(
        default=None, alias="Namespace"
    )  # a pointer: nil left out
    encap_overhead: U16 = Field(default=0, alias="EncapOverhead")
    shared_containers: list[str] = Field(default_factory=list, alias="SharedContainers")
    state: Annotated[int, Field(ge=0, le=6)] = Field(default=0, alias="State")


class PolicyList(GoModel):
    """hns.PolicyList: References are ``"/endpoints/<id>"`` strings, Policies raw v1."""

    raw = frozenset({"policies"})
    id: str = Field(default="", alias="ID")
    references: list[str] = Field(default_factory=list, alias="References")
    policies: list[Any] | None = Field(default=None, alias="Policies")


class EndpointAttachDetachRequest(GoModel):
    """``POST /endpoints/{id}/attach|detach``; SystemType always written."""

    always = frozenset({"system_type"})
    container_id: str = Field(default="", alias="ContainerId")
    system_type: Annotated[str, canon(("Container", "VirtualMachine", "Host"))] = Field(
        "", alias="SystemType"
    )
    compartment_id: U16 = Field(default=0, alias="CompartmentId")
    virtual_nic_name: str = Field(default="", alias="VirtualNicName")


class EndpointStats(GoModel):
    """``GET /endpointstats/{id}``: every key always written."""

    always = frozenset(
        {
            "bytes_received",
            "bytes_sent",
            "dropped_packets_incoming",
            "dropped_packets_outgoing",
            "endpoint_id",
            "instance_id",
            "packets_received",
            "packets_sent",
        }
    )
    bytes_received: U64 = Field(default=0, alias="BytesReceived")
    bytes_sent: U64 = Field(default=0, alias="BytesSent")
    dropped_packets_incoming: U64 = Field(default=0, alias="DroppedPacketsIncoming")
    dropped_packets_outgoing: U64 = Field(default=0, alias="DroppedPacketsOutgoing")
    endpoint_id: str = Field(default="", alias="EndpointId")
    instance_id: str = Field(default="", alias="InstanceId")
    packets_received: U64 = Field(default=0, alias="PacketsReceived")
    packets_sent: U64 = Field(default=0, alias="PacketsSent")


class HNSResponse(GoModel):
    """The v1 envelope: no tags, so all three keys are always written (Output raw)."""

    always = frozenset({"success", "error", "output"})
    raw = frozenset({"output"})
    success: bool = Field(default=False, alias="Success")
    error: str = Field(default="", alias="Error")
    output: Any = Field(default=None, alias="Output")

    @classmethod
    def ok(cls, output: Any = None) -> dict[str, Any]:
        """A success answer around ``output`` (already JSON data)."""
        return {"Success": True, "Error": "", "Output": output}

    @classmethod
    def failed(cls, error: str) -> dict[str, Any]:
        """A failure answer; ``error`` says what, why and what to do."""
        return {"Success": False, "Error": error, "Output": None}
