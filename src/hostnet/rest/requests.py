"""Every request body, as a typed model: parsed and checked before anything runs.

A body that is not UTF-8, not JSON, nested too deep, too large, of the wrong shape, or
names a field the API does not have is refused with 400 and a message naming the field,
what was wrong and what to send. The REST API's OpenAPI document is generated from the
models here (``openapi.py``); the Docker plugin protocol's bodies are here too.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from hostnet.errors import InvalidRequest

MAX_BODY = 1 << 20  # bytes
MAX_DEPTH = 32  # of nested arrays and objects
Short = Annotated[str, StringConstraints(max_length=255)]
Text = Annotated[str, StringConstraints(max_length=4096)]
Texts = Annotated[list[Text], Field(max_length=1024)]
Shorts = Annotated[list[Short], Field(max_length=256)]


def _scalar(v: Any) -> str | int | float | bool:
    if isinstance(v, str) and len(v) <= 4096 or isinstance(v, int | float | bool):
        return v
    raise PydanticCustomError(
        "option", "must be a string (at most 4096 characters), a number or true/false"
    )


def _policy(v: Any) -> dict[str, Any] | str:
    if isinstance(v, dict) or isinstance(v, str) and len(v) <= 4096:
        return v
    raise PydanticCustomError("policy", "must be an HNS policy object (or its JSON text)")


OptionValue = Annotated[Any, AfterValidator(_scalar)]
Options = Annotated[dict[Short, OptionValue], Field(max_length=256)]
Policies = Annotated[list[Annotated[Any, AfterValidator(_policy)]], Field(max_length=64)]


class Body(BaseModel):
    """Strict: a number is not a string, an unknown field is an error naming it."""

    model_config = ConfigDict(extra="forbid", strict=True)


# -- REST ------------------------------------------------------------------------
class NetworkCreate(Body):
    name: Short = Field(description="the network's name")
    driver: Short = Field("nat", description="nat, transparent, l2bridge, l2tunnel or overlay")
    subnet: Short = Field(
        "", description="a prefix (either family); the first free IPv4 /24 when left out"
    )
    gateway: Short = ""
    subnets: Annotated[list[Short], Field(max_length=2)] = Field(
        default_factory=list, description="more prefixes: at most one IPv4 and one IPv6 in all"
    )
    gateways: Annotated[list[Short], Field(max_length=2)] = Field(
        default_factory=list, description="each subnet's gateway, matched by family"
    )
    ip_ranges: Annotated[list[Short], Field(max_length=2)] = Field(
        default_factory=list, description="allocate from these sub-prefixes (--ip-range)"
    )
    aux_addresses: Annotated[dict[Short, Short], Field(max_length=256)] = Field(
        default_factory=dict, description="NAME: address never handed out (--aux-address)"
    )
    ipv6: bool = Field(False, description="IPv6 too (a unique local /64 without an IPv6 subnet)")
    ipv4: bool = Field(True, description="false: IPv6 only")
    internal: bool = Field(False, description="no way out: no NAT, no mapped ports")
    options: Options = Field(default_factory=dict, description="driver options (-o)")
    acl: Texts = Field(default_factory=list, description="the network's ACL rules")

    def option_strings(self) -> dict[str, str]:
        return {k: _option_text(v) for k, v in self.options.items()}


class NetworkAttach(Body):
    network: Short
    ip: Short = ""
    ip6: Short = ""
    aliases: Shorts = Field(default_factory=list)


class ContainerCreate(Body):
    name: Short = ""
    networks: Annotated[list[NetworkAttach], Field(max_length=64)] = Field(default_factory=list)
    ports: Texts = Field(default_factory=list, description="-p values, as docker run takes")
    acl: Texts = Field(default_factory=list)
    max_bandwidth: Short = ""
    policies: Policies = Field(default_factory=list, description="HNS endpoint policies")


class EndpointCreate(Body):
    """An endpoint made on a network with no namespace (HCN's order); attached later."""

    network: Short
    name: Short = ""
    ip: Short = ""
    ip6: Short = ""
    mac: Short = ""
    ports: Texts = Field(default_factory=list, description="-p values: host ports it claims")
    policies: Policies = Field(default_factory=list, description="HNS endpoint policies")


class EndpointAttach(Body):
    namespace: Short = Field(description="a container's name or id, or \"host\" (the host's own)")


class Connect(Body):
    container: Short
    ip: Short = ""
    ip6: Short = ""
    aliases: Shorts = Field(default_factory=list)
    max_bandwidth: Short = ""
    policies: Policies = Field(default_factory=list)


class Disconnect(Body):
    container: Short


class Process(Body):
    pid: Annotated[int, Field(gt=0, le=1 << 22)]


class Ports(Body):
    ports: Texts


class AdapterSpec(Body):
    """A network adapter of a container made by ``hostnet create`` (see lifecycle.py)."""

    network: Short = Field("", description="the network it connects to ('' : none)")
    name: Short = Field("", description="default 'Network Adapter' (then 'Network Adapter 2', ...)")
    static_ip: Short = ""
    static_mac: Short = ""
    max_bandwidth: Short = Field("", description="bytes/s, k/m/g = 1000s")
    mappings: Shorts = Field(default_factory=list, description="static mappings, as -p takes them")


class LifecycleCreate(Body):
    name: Short = ""
    adapters: Annotated[list[AdapterSpec], Field(max_length=64)] = Field(default_factory=list)
    command: Texts = Field(default_factory=list, description="default: an idle process")
    image: Short = Field("", description="recorded, never pulled")


class Stop(Body):
    grace: Annotated[float, Field(ge=0, le=300)] = 10.0


class AdapterChange(Body):
    """What to change on an adapter; a field left out stays, an empty value clears it."""

    network: Short | None = None
    static_ip: Short | None = None
    static_mac: Short | None = None
    max_bandwidth: Short | None = None
    mappings: Shorts | None = None


class Mapping(Body):
    mapping: Short = Field(description="HOSTPORT:CONTAINERPORT[/tcp|/udp], as -p takes it")


class Reset(Body):
    confirm: bool = Field(description="true: yes, remove everything this daemon made")


class AclSet(Body):
    rules: Texts
    network: Short = ""


# -- Docker's plugin protocol (Docker sends more than hostnet reads: extra is ignored) --
class Plugin(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


DockerOptions = Annotated[dict[Short, Any], Field(max_length=256)]


class IpData(Plugin):
    AddressSpace: Short = ""
    Pool: Short = ""
    Gateway: Short = ""
    AuxAddresses: DockerOptions = Field(default_factory=dict)


class CreateNetwork(Plugin):
    NetworkID: Short
    Options: DockerOptions = Field(default_factory=dict)
    IPv4Data: Annotated[list[IpData], Field(max_length=16)] | None = None
    IPv6Data: Annotated[list[IpData], Field(max_length=16)] | None = None


class NetworkRef(Plugin):
    NetworkID: Short


class DockerInterface(Plugin):
    Address: Short = ""
    AddressIPv6: Short = ""
    MacAddress: Short = ""


class CreateEndpoint(Plugin):
    NetworkID: Short
    EndpointID: Short
    Interface: DockerInterface | None = None
    Options: DockerOptions = Field(default_factory=dict)


class EndpointRef(Plugin):
    NetworkID: Short = ""
    EndpointID: Short


class Join(EndpointRef):
    SandboxKey: Text = ""
    Options: DockerOptions = Field(default_factory=dict)


class Program(EndpointRef):
    Options: DockerOptions = Field(default_factory=dict)


class Anything(Plugin):
    """Calls whose body hostnet does not read (Activate, capabilities, Leave, Discover*)."""


class RequestPool(Plugin):
    AddressSpace: Short = ""
    Pool: Short = ""
    SubPool: Short = ""
    Options: DockerOptions | None = None
    V6: bool = False


class PoolRef(Plugin):
    PoolID: Short


class RequestAddress(PoolRef):
    Address: Short = ""
    Options: DockerOptions | None = None


class ReleaseAddress(PoolRef):
    Address: Short = ""


class PortMap(Plugin):
    """One entry of com.docker.network.portmap (Docker's numbers are JSON numbers)."""

    Proto: Annotated[int, Field(ge=0, le=255)] = 6
    IP: Short = ""
    Port: Annotated[int, Field(ge=0, le=65535)] = 0
    HostIP: Short = ""
    HostPort: Annotated[int, Field(ge=0, le=65535)] = 0
    HostPortEnd: Annotated[int, Field(ge=0, le=65535)] = 0


class _PortMaps(Plugin):
    portmap: Annotated[list[PortMap], Field(max_length=4096)]


def portmap(value: Any) -> list[dict[str, Any]]:
    """Docker's com.docker.network.portmap option, checked."""
    return [p.model_dump() for p in validated(_PortMaps, {"portmap": value}).portmap]


def strings(value: dict[str, Any], what: str) -> dict[str, str]:
    """Options Docker passes as strings; a nested object or list is an error naming it."""
    out = {}
    for k, v in value.items():
        if not isinstance(v, str | int | float | bool):
            raise InvalidRequest(
                f"{what}[{k!r}] must be a string, not {type(v).__name__}",
                "give options as key=value strings",
            )
        out[k] = _option_text(v)
    return out


# -- parsing -----------------------------------------------------------------------
M = TypeVar("M", bound=BaseModel)


def _option_text(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _depth(data: Any, limit: int) -> int:
    """How deep ``data`` nests, without recursing (stops counting past ``limit``)."""
    deepest, todo = 0, [(data, 1)]
    while todo:
        item, d = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            todo += [(x, d + 1) for x in (item.values() if isinstance(item, dict) else item)]
    return deepest


def load(raw: bytes) -> dict[str, Any]:
    """A body's JSON object ({} when empty), or InvalidRequest saying what is wrong."""
    if len(raw) > MAX_BODY:
        raise InvalidRequest(
            f"request body is {len(raw)} bytes; at most {MAX_BODY} are read",
            "send a smaller request",
        )
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"request body is not UTF-8 (byte {exc.start} is {raw[exc.start]:#04x})",
            "send JSON encoded as UTF-8",
        ) from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise InvalidRequest(
            f"request body nests deeper than {MAX_DEPTH} levels", "send a flatter document"
        ) from None
    except ValueError as exc:
        raise InvalidRequest(f"request body is not JSON: {exc}", "send a JSON object") from None
    if not isinstance(data, dict):
        raise InvalidRequest(
            f"request body must be a JSON object, not {type(data).__name__}",
            "send an object with the fields the API describes (GET /openapi.json)",
        )
    if _depth(data, MAX_DEPTH) > MAX_DEPTH:
        raise InvalidRequest(
            f"request body nests deeper than {MAX_DEPTH} levels", "send a flatter document"
        )
    return data


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validated(model: type[M], data: dict[str, Any]) -> M:
    """``data`` as ``model``, or InvalidRequest naming each wrong field (the first three)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors()[:3]:
            where = _where(tuple(e["loc"]))
            if e["type"] == "extra_forbidden":
                problems.append(f"field {where!r} is not one hostnet takes")
            elif e["type"] == "missing":
                problems.append(f"field {where!r} is required")
            else:
                problems.append(f"field {where!r}: {e['msg'].lower()} (got {_shown(e['input'])})")
        more = len(exc.errors()) - 3
        text = "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
        fields = ", ".join(model.model_fields)
        doc = (
            "Docker's remote driver protocol" if issubclass(model, Plugin) else "GET /openapi.json"
        )
        raise InvalidRequest(
            f"bad {model.__name__} request: {text}",
            f"send a JSON object with the fields {fields} (see {doc})",
        ) from None


def parse(model: type[M], raw: bytes) -> M:
    return validated(model, load(raw))
