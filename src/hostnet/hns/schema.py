"""The JSON of HCN (v2) objects, as hcsshim's ``hcn`` package marshals and decodes them.

Networks, endpoints, namespaces, routes, their nested types, the Modify*SettingRequest
bodies and HostComputeQuery. Field names and casing are hcsshim's; the Go JSON rules
(case-insensitive keys in, omitempty out, unknown keys refused) are in ``gojson``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field

from hostnet.errors import InvalidRequest
from hostnet.hns.gojson import U8, U16, U32, GoModel, canon

# ---- shared v2 types (hcn.go, hcnglobals.go, hcnnetwork.go) ----


class SchemaVersion(GoModel):
    """``{"Major", "Minor"}``; 2.0 on every HCN object."""

    always = frozenset({"major", "minor"})
    major: int = Field(default=0, alias="Major")
    minor: int = Field(default=0, alias="Minor")


V2 = {"Major": 2, "Minor": 0}


def _v2() -> SchemaVersion:
    return SchemaVersion.model_validate(V2)


class ExtraParams(GoModel):
    """Health.Extra: filled in by HNS."""

    raw = frozenset({"resources", "shared_containers"})
    resources: Any = Field(default=None, alias="Resources")
    shared_containers: Any = Field(default=None, alias="SharedContainers")
    layered_on: str = Field(default="", alias="LayeredOn")
    switch_guid: str = Field(default="", alias="SwitchGuid")
    utility_vm: str = Field(default="", alias="UtilityVM")
    virtual_machine: str = Field(default="", alias="VirtualMachine")


class Health(GoModel):
    """Health of a network or endpoint (always written: ``{"Extra": {}}``)."""

    raw = frozenset({"data"})
    data: Any = Field(default=None, alias="Data")
    extra: ExtraParams = Field(default_factory=ExtraParams, alias="Extra")


class Route(GoModel):
    """A subnet's or endpoint's route."""

    next_hop: str = Field(default="", alias="NextHop")
    destination_prefix: str = Field(default="", alias="DestinationPrefix")
    metric: U16 = Field(default=0, alias="Metric")


class Subnet(GoModel):
    """A subnet of an Ipam; its policies are raw SubnetPolicy JSON."""

    raw = frozenset({"policies"})
    ip_address_prefix: str = Field(default="", alias="IpAddressPrefix")
    policies: list[Any] | None = Field(default=None, alias="Policies")
    routes: list[Route] = Field(default_factory=list, alias="Routes")
    flags: U32 = Field(default=0, alias="Flags")  # 1: DoNotReserveGatewayAddress


class Ipam(GoModel):
    """``{"Type": "Static"|"DHCP", "Subnets": [...]}``."""

    type: Annotated[Literal["", "Static", "DHCP"], canon(("Static", "DHCP"))] = Field(
        "", alias="Type"
    )
    subnets: list[Subnet] = Field(default_factory=list, alias="Subnets")


class MacRange(GoModel):
    """One MAC range, ``00-15-5D-52-C0-00`` form."""

    start_mac_address: str = Field(default="", alias="StartMacAddress")
    end_mac_address: str = Field(default="", alias="EndMacAddress")


class MacPool(GoModel):
    """A network's MAC pool."""

    ranges: list[MacRange] = Field(default_factory=list, alias="Ranges")


class Dns(GoModel):
    """DNS of a network or endpoint."""

    domain: str = Field(default="", alias="Domain")
    search: list[str] = Field(default_factory=list, alias="Search")
    server_list: list[str] = Field(default_factory=list, alias="ServerList")
    options: list[str] = Field(default_factory=list, alias="Options")


class Policy(GoModel):
    """An Endpoint-, Network- or SubnetPolicy: ``{"Type", "Settings"}``, Settings raw."""

    always = frozenset({"type"})
    raw = frozenset({"settings"})
    type: str = Field(default="", alias="Type")
    settings: Any = Field(default=None, alias="Settings")


RequestType = Annotated[
    Literal["", "Add", "Remove", "Update", "Refresh"],
    canon(("Add", "Remove", "Update", "Refresh")),
]
NETWORK_TYPES = ("NAT", "Transparent", "L2Bridge", "L2Tunnel", "ICS", "Private", "Overlay")


# ---- HCN v2 objects ----


class HostComputeNetwork(GoModel):
    """hcn.HostComputeNetwork. Flags: 8 EnableNonPersistent, 1024 DisableHostPort, 8192 Iov."""

    id: str = Field(default="", alias="ID")
    name: str = Field(default="", alias="Name")
    type: Annotated[
        Literal["", "NAT", "Transparent", "L2Bridge", "L2Tunnel", "ICS", "Private", "Overlay"],
        canon(NETWORK_TYPES),
    ] = Field(default="", alias="Type")
    policies: list[Policy] = Field(default_factory=list, alias="Policies")
    mac_pool: MacPool = Field(default_factory=MacPool, alias="MacPool")
    dns: Dns = Field(default_factory=Dns, alias="Dns")
    ipams: list[Ipam] = Field(default_factory=list, alias="Ipams")
    flags: U32 = Field(default=0, alias="Flags")
    health: Health = Field(default_factory=Health, alias="Health")
    schema_version: SchemaVersion = Field(default_factory=_v2, alias="SchemaVersion")


class IpConfig(GoModel):
    """An endpoint's address."""

    ip_address: str = Field(default="", alias="IpAddress")
    prefix_length: U8 = Field(default=0, alias="PrefixLength")


class HostComputeEndpoint(GoModel):
    """hcn.HostComputeEndpoint. Flags: 1 RemoteEndpoint. HostComputeNamespace is read-only."""

    id: str = Field(default="", alias="ID")
    name: str = Field(default="", alias="Name")
    host_compute_network: str = Field(default="", alias="HostComputeNetwork")
    host_compute_namespace: str = Field(default="", alias="HostComputeNamespace")
    policies: list[Policy] = Field(default_factory=list, alias="Policies")
    ip_configurations: list[IpConfig] = Field(default_factory=list, alias="IpConfigurations")
    dns: Dns = Field(default_factory=Dns, alias="Dns")
    routes: list[Route] = Field(default_factory=list, alias="Routes")
    mac_address: str = Field(default="", alias="MacAddress")
    flags: U32 = Field(default=0, alias="Flags")
    health: Health = Field(default_factory=Health, alias="Health")
    schema_version: SchemaVersion = Field(default_factory=_v2, alias="SchemaVersion")


class NamespaceResource(GoModel):
    """``{"Type": "Container"|"Endpoint", "Data": {"ID": ...}}`` (both always written)."""

    always = frozenset({"type", "data"})
    type: Annotated[Literal["Container", "Endpoint"], canon(("Container", "Endpoint"))] = Field(
        alias="Type"
    )
    data: Any = Field(default=None, alias="Data")


NAMESPACE_TYPES = ("Host", "HostDefault", "Guest", "GuestDefault")


class HostComputeNamespace(GoModel):
    """hcn.HostComputeNamespace; NamespaceId is the compartment id."""

    id: str = Field(default="", alias="ID")
    namespace_id: U32 = Field(default=0, alias="NamespaceId")
    type: Annotated[
        Literal["", "Host", "HostDefault", "Guest", "GuestDefault"], canon(NAMESPACE_TYPES)
    ] = Field(default="", alias="Type")
    resources: list[NamespaceResource] = Field(default_factory=list, alias="Resources")
    schema_version: SchemaVersion = Field(default_factory=_v2, alias="SchemaVersion")


class RouteSetting(GoModel):
    """SDNRoutePolicySetting, the element of a HostComputeRoute's ``Setting``."""

    destination_prefix: str = Field(default="", alias="DestinationPrefix")
    next_hop: str = Field(default="", alias="NextHop")
    need_encap: bool = Field(default=False, alias="NeedEncap")


class HostComputeRoute(GoModel):
    """hcn.HostComputeRoute (note ``Setting``, singular)."""

    id: str = Field(default="", alias="ID")
    host_compute_endpoints: list[str] = Field(default_factory=list, alias="HostComputeEndpoints")
    setting: list[RouteSetting] = Field(default_factory=list, alias="Setting")
    schema_version: SchemaVersion = Field(default_factory=_v2, alias="SchemaVersion")


class HostComputeQuery(GoModel):
    """An enumerate filter; ``Filter`` is a JSON object serialized into a string."""

    always = frozenset({"schema_version"})
    schema_version: SchemaVersion = Field(default_factory=_v2, alias="SchemaVersion")
    flags: U32 = Field(default=0, alias="Flags")  # 1: Detailed
    filter: str = Field(default="", alias="Filter")

    def filter_map(self) -> dict[str, str]:
        """The filter as ``{key: value}`` (e.g. ``{"Name": "GoTestNat"}``); {} for none."""
        if not self.filter:
            return {}
        try:
            given = json.loads(self.filter)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(
                f"HostComputeQuery Filter {self.filter!r} is not JSON ({exc.msg})",
                'give a JSON object in a string, e.g. "{\\"Name\\":\\"GoTestNat\\"}"',
            ) from None
        if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
            raise InvalidRequest(
                f"HostComputeQuery Filter {self.filter!r} is not an object of strings",
                'filter on ID, Name or VirtualNetwork, e.g. "{\\"ID\\":\\"<guid>\\"}"',
            )
        return given


class ModifyNetworkSettingRequest(GoModel):
    """``POST /hcn/networks/{id}/modify``; Settings e.g. ``{"Policies": [...]}``."""

    raw = frozenset({"settings"})
    resource_type: Annotated[
        Literal["", "Policy", "DNS", "Extension"], canon(("Policy", "DNS", "Extension"))
    ] = Field(default="", alias="ResourceType")
    request_type: RequestType = Field(default="", alias="RequestType")
    settings: Any = Field(default=None, alias="Settings")


class ModifyEndpointSettingRequest(GoModel):
    """``POST /hcn/endpoints/{id}/modify``; ResourceType Port (VMs) is refused elsewhere."""

    raw = frozenset({"settings"})
    resource_type: Annotated[Literal["", "Policy", "Port"], canon(("Policy", "Port"))] = Field(
        "", alias="ResourceType"
    )
    request_type: RequestType = Field(default="", alias="RequestType")
    settings: Any = Field(default=None, alias="Settings")


class ModifyNamespaceSettingRequest(GoModel):
    """``POST /hcn/namespaces/{id}/modify``; Settings ``{"EndpointId": ...}`` for Endpoint."""

    raw = frozenset({"settings"})
    resource_type: Annotated[
        Literal["", "Container", "Endpoint"], canon(("Container", "Endpoint"))
    ] = Field(default="", alias="ResourceType")
    request_type: RequestType = Field(default="", alias="RequestType")
    settings: Any = Field(default=None, alias="Settings")


class PolicyRequest(GoModel):
    """PolicyNetworkRequest / PolicyEndpointRequest: the Settings of a Policy modify."""

    policies: list[Policy] = Field(default_factory=list, alias="Policies")


class NamespaceEndpointRequest(GoModel):
    """The Settings of an Endpoint modify on a namespace (``EndpointId``, not ``ID``)."""

    endpoint_id: str = Field(default="", alias="EndpointId")
