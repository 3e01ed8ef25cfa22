"""The object model: networks, endpoints, containers (compartments), port mappings.

Shapes follow HNS (HostComputeNetwork / HostComputeEndpoint / HostComputeNamespace);
the REST and CLI adapters render Docker-shaped views from them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from hostnet.core.acl import AclRule
from hostnet.core.policies import OutboundNatPolicy, RoutePolicy
from hostnet.errors import InvalidRequest

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


def parse_mac(text: str) -> str:
    """A unicast MAC address (aa:bb:cc:dd:ee:ff, or with '-' as Windows writes it), lower case."""
    mac = text.strip().lower().replace("-", ":")
    octets = mac.split(":")
    if len(octets) != 6 or not all(
        len(o) == 2 and all(ch in "0123456789abcdef" for ch in o) for o in octets
    ):
        raise InvalidRequest(
            f"{text!r} is not a MAC address", "give six hex octets, e.g. 02:42:ac:10:00:64"
        )
    if int(octets[0], 16) & 1 or mac == "00:00:00:00:00:00":
        raise InvalidRequest(
            f"{text!r} is a multicast or empty MAC address: no adapter can have it",
            "give a unicast address (the first octet even), e.g. 02:42:ac:10:00:64",
        )
    return mac


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
EXAMPLE = {4: "172.16.1.0/24", 6: "fd12:3456:789a:1::/64"}


def parse_subnet(text: str, family: int | None = 4) -> IPNetwork:
    """A subnet in CIDR form: IPv4 (``family`` 4), IPv6 (6) or either (None)."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidRequest(
            f"malformed subnet {text!r}: {exc}",
            "give a prefix in CIDR form with no host bits set, e.g. "
            f"{EXAMPLE[family or 4]}" + ("" if family else f" or {EXAMPLE[6]}"),
        ) from None
    if family == 4 and net.version == 6:
        raise InvalidRequest(
            f"subnet {text} is IPv6 where an IPv4 subnet is wanted", f"give e.g. {EXAMPLE[4]}"
        )
    if family == 6 and net.version == 4:
        raise InvalidRequest(
            f"subnet {text} is IPv4 where an IPv6 subnet is wanted", f"give e.g. {EXAMPLE[6]}"
        )
    smallest = 30 if net.version == 4 else 126
    if net.prefixlen > smallest:
        raise InvalidRequest(
            f"subnet {text} is too small",
            f"use a prefix of /{smallest} or larger so there is room for a gateway and endpoints",
        )
    return net


def parse_ip(text: str, what: str = "address", family: int | None = 4) -> IPAddress:
    """An address: IPv4 (``family`` 4), IPv6 (6) or either (None)."""
    example = {4: "172.16.1.10", 6: "fd12:3456:789a:1::10", None: "172.16.1.10 or fd12::10"}
    try:
        addr = ipaddress.ip_address(text.strip("[]") if family != 4 else text)
    except (ValueError, AttributeError):
        raise InvalidRequest(
            f"malformed {what} {text!r}", f"give an address such as {example[family]}"
        ) from None
    if family is not None and addr.version != family:
        raise InvalidRequest(
            f"{what} {text} is IPv{addr.version} where an IPv{family} address is wanted",
            f"give an address such as {example[family]}",
        )
    return addr


VETH_PREFIX = "hv"  # every vNIC's host end: hv + 10 characters of its endpoint's id
BRIDGE_PREFIX = "hn-"  # every switch (bridge) hostnet makes
HOST_VNIC_PREFIX = "hh"  # a host vNIC (an endpoint in the daemon's own namespace): hh + id
#: ``Endpoint.container_id`` of an endpoint attached to the host's default compartment
#: (HCN's HostDefault namespace): it is the host's vNIC on its network
HOST_COMPARTMENT = "host:default"  # no container id has a colon


def switch_mac(network_id: str, salt: str = "") -> str:
    """A switch's own MAC (its gateway's, on a nat network), fixed from its network's id:
    a Linux bridge left to itself takes its lowest port's MAC, or none once the last port
    goes, so the gateway's MAC would change under the containers. Locally administered
    and 06:..., never an endpoint's 02:42:... ``salt``: what tells apart the switches of
    one network on several hosts (an overlay's VTEP) or daemons."""
    digest = hashlib.sha256(f"{salt}/{network_id}".encode()).digest()
    return "06:" + ":".join(f"{b:02x}" for b in digest[:5])


def mac_for(ip: IPAddress) -> str:
    """A locally administered MAC derived from the address, as Docker does (02:42:..); an
    IPv6-only endpoint's from the last four bytes of its address."""
    b = ip.packed[-4:]
    return "02:42:" + ":".join(f"{x:02x}" for x in b)


class PortMapping(BaseModel):
    """One host port forwarded to one container port (an HNS PortMapping policy)."""

    protocol: Protocol = "tcp"
    # "" = every address of the host, both families; "0.0.0.0" every IPv4 address, "::"
    # every IPv6 address; else that one address
    host_ip: str = ""
    host_port: int
    container_port: int

    def key(self) -> tuple[str, str, int]:
        return (self.host_ip, self.protocol, self.host_port)

    @property
    def any_address(self) -> bool:
        return self.host_ip in ANY_HOST_IPS

    @property
    def family(self) -> int:
        """4 or 6 when bound to one family; 0 for both."""
        return host_ip_family(self.host_ip)

    def conflicts_with(self, other: PortMapping) -> bool:
        if self.protocol != other.protocol or self.host_port != other.host_port:
            return False
        return host_ips_clash(self.host_ip, other.host_ip)


ANY_HOST_IPS = ("", "0.0.0.0", "::")


def host_ip_family(host_ip: str) -> int:
    return 0 if not host_ip else 6 if ":" in host_ip else 4


def host_ips_clash(a: str, b: str) -> bool:
    """Two bindings of one port clash when they share an address: the same one, or one is
    every address of a family the other is in."""
    fa, fb = host_ip_family(a), host_ip_family(b)
    if fa and fb and fa != fb:
        return False
    return a == b or a in ANY_HOST_IPS or b in ANY_HOST_IPS


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
    # kept a Docker network whenever Docker (re)starts (``hostnet docker expose``; the
    # default network is, always)
    docker_expose: bool = False
    # a network Docker made that Docker no longer had when last asked (its data root wiped)
    # but that hostnet endpoints still use, so it was kept
    docker_gone: bool = False
    # NetworkACL: rules every endpoint of the network gets, before its own by priority.
    acl: list[AclRule] = Field(default_factory=list)
    # External switches: the adapter's MAC, MTU, addresses and routes moved onto the switch.
    adapter_state: dict[str, Any] = Field(default_factory=dict)
    # IPv6 ("" = none; an IPv6-only network has no IPv4 ``subnet`` and is not DHCP)
    subnet6: str = ""
    gateway6: str = ""
    # Docker's IPAM options: allocate from a sub-range; addresses never handed out (name ->
    # address, either family); no way out (no NAT, no mapped ports, no route elsewhere)
    ip_range: str = ""
    ip_range6: str = ""
    aux_addresses: dict[str, str] = Field(default_factory=dict)
    internal: bool = False
    # IPv6 wanted: with subnet6, or (an external switch without one) by the physical
    # network's router advertisements (SLAAC)
    enable_ipv6: bool = False
    ipv4: bool = True  # False: an IPv6-only network (no IPv4 subnet, no DHCP)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def dhcp(self) -> bool:
        """IPv4 addresses from an external DHCP server (an external switch without a
        subnet)."""
        return not self.subnet and self.ipv4

    @property
    def slaac(self) -> bool:
        """IPv6 addresses from the physical network's router advertisements (an external
        switch with --ipv6 and no IPv6 subnet)."""
        return self.enable_ipv6 and not self.subnet6

    def ipv4_network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    def ipv6_network(self) -> ipaddress.IPv6Network:
        return ipaddress.IPv6Network(self.subnet6)

    def subnets(self) -> list[IPNetwork]:
        """Its subnets, IPv4 first."""
        out: list[IPNetwork] = []
        if self.subnet:
            out.append(self.ipv4_network())
        if self.subnet6:
            out.append(self.ipv6_network())
        return out

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
    """A HostComputeEndpoint: one vNIC of a compartment on one network, or (made on its
    own, HCN's order) an endpoint not attached to any compartment yet: its address, MAC,
    host ports and policies claimed and recorded, nothing in the kernel."""

    id: str
    network_id: str
    # the compartment it is attached to: a container's id, HOST_COMPARTMENT (the host's
    # own), or "" (unattached: no kernel objects)
    container_id: str = ""
    ip: str
    prefix_len: int
    gateway: str
    mac: str
    ifname: str  # inside the compartment
    host_ifname: str  # the host end of the veth pair
    # its IPv6 address on a network with an IPv6 subnet ("" = none; ``ip`` may then be "")
    ip6: str = ""
    prefix_len6: int = 0
    gateway6: str = ""
    ports: list[PortMapping] = Field(default_factory=list)
    created: float = Field(default_factory=now)
    # Docker: the peer is made in the host namespace; Docker moves, renames and configures it.
    runtime_moves_peer: bool = False
    # Rate limits in bits/s and bucket sizes in bits (CNI's bandwidth names):
    # ingressRate/ingressBurst towards the container, egressRate/egressBurst from it.
    bandwidth: dict[str, int] = Field(default_factory=dict)
    # Address from an external DHCP server (transparent without --subnet); DNS from the lease.
    dhcp: bool = False
    slaac: bool = False  # IPv6 address from router advertisements: ``ip6`` filled at attach
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
    # made on its own (``create_endpoint``): it outlives its attachments, a detach leaves it
    # recorded and unattached, and only a delete releases it; ``name``: its name then
    standalone: bool = False
    name: str = ""

    @property
    def attached(self) -> bool:
        return bool(self.container_id)

    @property
    def on_host(self) -> bool:
        """Attached to the host's default compartment: the host's vNIC on its network."""
        return self.container_id == HOST_COMPARTMENT


class Adapter(BaseModel):
    """A container's network adapter as the seed's cmdlets see it (Get-ContainerNetworkAdapter):
    what is wanted of it. Connected (``network_id``) and the container started, it is an
    endpoint on that network; its settings apply at start, or at once (hot) after."""

    name: str = "Network Adapter"
    network_id: str = ""  # "": not connected to any switch
    static_ip: str = ""
    static_mac: str = ""
    max_bandwidth: int = 0  # bytes/s; 0: no limit
    mappings: list[str] = Field(default_factory=list)  # "8082:80/tcp", as -p takes them


#: a container made by ``hostnet create`` (the seed's New-Container) is in one of these; one
#: made by ``hostnet run``, a CNI runtime or Docker has none ("") and lives with its process
STATES = ("created", "running", "stopped")


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
    # The seed's lifecycle (``hostnet create``): created (intent only, nothing realized),
    # running, stopped (no process; compartment, addresses and mappings stay).
    state: str = ""
    command: list[str] = Field(default_factory=list)
    image: str = ""  # recorded, never pulled (New-Container -ContainerImageName)
    adapters: list[Adapter] = Field(default_factory=list)

    @property
    def short_id(self) -> str:
        return self.id[:12]
