"""The object model: networks, endpoints, containers (compartments), port mappings.

Shapes follow HNS (HostComputeNetwork / HostComputeEndpoint / HostComputeNamespace);
the REST and CLI adapters render Docker-shaped views from them.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from hostnet.acl import AclRule
from hostnet.errors import InvalidRequest
from hostnet.policies import OutboundNatPolicy, RoutePolicy

Protocol = Literal["tcp", "udp"]
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SHIM_PREFIX = "com.docker.network.windowsshim."


def new_id() -> str:
    """A 64-hex id, as Docker's; the first 12 characters are the short id."""
    return secrets.token_hex(32)


def now() -> float:
    return time.time()


def check_name(kind: str, name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidRequest(
            f"invalid {kind} name {name!r}",
            "use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
        )
    return name


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidRequest(
            f"malformed subnet {text!r}: {exc}",
            "give an IPv4 prefix in CIDR form with no host bits set, e.g. 172.16.1.0/24",
        ) from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise InvalidRequest(f"subnet {text} is IPv6", "hostnet networks are IPv4 for now")
    if net.prefixlen > 30:
        raise InvalidRequest(
            f"subnet {text} is too small",
            "use a prefix of /30 or larger so there is room for a gateway and endpoints",
        )
    return net


def parse_ip(text: str, what: str = "address") -> ipaddress.IPv4Address:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidRequest(
            f"malformed {what} {text!r}", "give a dotted IPv4 address, e.g. 172.16.1.10"
        ) from None
    if not isinstance(addr, ipaddress.IPv4Address):
        raise InvalidRequest(f"{what} {text} is IPv6", "hostnet networks are IPv4 for now")
    return addr


VETH_PREFIX = "hv"  # every vNIC's host end: hv + 10 characters of its endpoint's id


def mac_for(ip: ipaddress.IPv4Address) -> str:
    """A locally administered MAC derived from the address, as Docker does (02:42:..)."""
    b = ip.packed
    return "02:42:" + ":".join(f"{x:02x}" for x in b)


class PortMapping(BaseModel):
    """One host port forwarded to one container port (an HNS PortMapping policy)."""

    protocol: Protocol = "tcp"
    host_ip: str = ""  # "" = every address of the host
    host_port: int
    container_port: int

    def key(self) -> tuple[str, str, int]:
        return (self.host_ip, self.protocol, self.host_port)

    def conflicts_with(self, other: PortMapping) -> bool:
        if self.protocol != other.protocol or self.host_port != other.host_port:
            return False
        return not self.host_ip or not other.host_ip or self.host_ip == other.host_ip


class PortRequest(BaseModel):
    """A parsed ``-p`` value before host ports are chosen."""

    protocol: Protocol = "tcp"
    host_ip: str = ""
    host_start: int
    host_end: int
    container_start: int
    container_end: int


class Network(BaseModel):
    """A HostComputeNetwork: a vSwitch with a subnet, driven by one driver."""

    id: str
    name: str
    driver: str
    subnet: str
    gateway: str
    options: dict[str, str] = Field(default_factory=dict)
    created: float = Field(default_factory=now)
    switch: str = ""  # kernel name of the vSwitch (bridge)
    note: str = ""  # e.g. why the default subnet moved
    # The default network's prefix may be carved: a network created inside it
    # takes that part (a more specific route), and this network's IPAM skips it.
    carvable: bool = False
    # Docker networks bound to this one (by Docker network id); made by Docker if owned.
    docker_ids: list[str] = Field(default_factory=list)
    docker_owned: bool = False
    # NetworkACL: rules every endpoint of the network gets, before its own by priority.
    acl: list[AclRule] = Field(default_factory=list)
    # External switches: the adapter's MAC, MTU, addresses and routes moved onto the switch.
    adapter_state: dict[str, Any] = Field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def ipv4_network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    def flag(self, key: str) -> bool:
        return self.options.get(key, "false") == "true"

    def dns(self) -> dict[str, list[str]]:
        """DNS handed to endpoints (options dnsservers, dnssuffix), in CNI's shape."""
        out: dict[str, list[str]] = {}
        servers = [s.strip() for s in self.options.get("dnsservers", "").split(",") if s.strip()]
        if servers:
            out["nameservers"] = servers
        if self.options.get("dnssuffix"):
            out["search"] = [self.options["dnssuffix"]]
        return out


class Endpoint(BaseModel):
    """A HostComputeEndpoint: one vNIC of a compartment on one network."""

    id: str
    network_id: str
    container_id: str
    ip: str
    prefix_len: int
    gateway: str
    mac: str
    ifname: str  # inside the compartment
    host_ifname: str  # the host end of the veth pair
    ports: list[PortMapping] = Field(default_factory=list)
    created: float = Field(default_factory=now)
    # Docker: the peer is made in the host namespace; Docker moves, renames and configures it.
    runtime_moves_peer: bool = False
    # Rate limits in bits/s and bucket sizes in bits (CNI's bandwidth names):
    # ingressRate/ingressBurst towards the container, egressRate/egressBurst from it.
    bandwidth: dict[str, int] = Field(default_factory=dict)
    # Address from an external DHCP server (transparent without --subnet); DNS from the lease.
    dhcp: bool = False
    dns: dict[str, list[str]] = Field(default_factory=dict)
    # Port ACL rules (HNS ACL policies); the Windows defaults follow them.
    acl: list[AclRule] = Field(default_factory=list)
    # Extra names this endpoint answers to on its network (embedded DNS), as --network-alias.
    aliases: list[str] = Field(default_factory=list)
    # HNS OutBoundNAT and SDNRoute policies of this endpoint
    outbound_nat: OutboundNatPolicy | None = None
    routes: list[RoutePolicy] = Field(default_factory=list)
    # Overlay endpoints: the host that owns it, its VXLAN tunnel endpoint, its DNS name
    host: str = ""
    vtep: str = ""
    dns_name: str = ""


class Container(BaseModel):
    """A HostComputeNamespace: a compartment (network namespace) and what runs in it."""

    id: str
    name: str
    compartment_id: int
    netns: str  # name under /run/netns
    pid: int = 0
    pid_start: int = 0  # /proc/PID/stat start time, guards against pid reuse
    log_path: str = ""
    created: float = Field(default_factory=now)
    # A compartment made by someone else (a CNI runtime, Docker): never removed by hostnet.
    external: bool = False
    # "docker": Docker owns the sandbox (possibly in its own mount namespace) and its lifecycle.
    runtime: str = ""

    @property
    def short_id(self) -> str:
        return self.id[:12]
