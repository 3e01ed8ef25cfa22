"""Address management: subnet choice and address allocation (pure, no I/O)."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Container, Iterable
from collections.abc import Set as AbstractSet

from hostnet.errors import Conflict, InvalidRequest

IPv4Net = ipaddress.IPv4Network
IPv4 = ipaddress.IPv4Address
IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
IP = ipaddress.IPv4Address | ipaddress.IPv6Address


class Taken:
    """Addresses that are not free, from several sets, without copying any of them (a
    network's set holds every address it handed out: 1,000s)."""

    def __init__(self, *sets: AbstractSet[IP]) -> None:
        self.sets = sets

    def __contains__(self, ip: object) -> bool:
        return any(ip in s for s in self.sets)


DEFAULT_SCOPE = ipaddress.IPv4Network("172.16.0.0/12")


def overlapping(subnet: IPNet, others: Iterable[IPNet]) -> IPNet | None:
    for other in others:
        if subnet.version == other.version and subnet.overlaps(other):  # type: ignore[arg-type,unused-ignore]
            return other
    return None


def first_free_subnet(
    prefixlen: int,
    used: Iterable[IPNet],
    scope: IPv4Net = DEFAULT_SCOPE,
    start: IPv4Net | None = None,
) -> IPv4Net | None:
    """The first /prefixlen inside scope (from start on) that overlaps nothing in used."""
    used = list(used)
    for cand in scope.subnets(new_prefix=prefixlen):
        if start is not None and int(cand.network_address) < int(start.network_address):
            continue
        if overlapping(cand, used) is None:
            return cand
    return None


def unique_local_subnet(used: Iterable[IPNet]) -> ipaddress.IPv6Network:
    """A unique local /64 (RFC 4193: fd00::/8, a random 40-bit global id, subnet 0), as
    Docker 27 picks for --ipv6 without a subnet; never one the host or a network uses."""
    taken = [u for u in used if u.version == 6]
    for _ in range(64):
        cand = ipaddress.IPv6Network((b"\xfd" + secrets.token_bytes(5) + bytes(10), 64))
        if overlapping(cand, taken) is None:
            return cand
    raise Conflict("no free unique local /64 found", "give --subnet with an IPv6 prefix")


def _reserved(subnet: IPNet, ip: IP) -> bool:
    """Not for hosts: the network address (IPv6: subnet-router anycast); IPv4 broadcast."""
    if ip == subnet.network_address:
        return True
    return subnet.version == 4 and ip == subnet.broadcast_address


def default_gateway(subnet: IPNet) -> IP:
    return subnet.network_address + 1


def check_gateway(subnet: IPNet, gateway: IP) -> None:
    if gateway.version != subnet.version:
        raise InvalidRequest(
            f"gateway {gateway} is IPv{gateway.version} but subnet {subnet} is IPv{subnet.version}",
            f"give each subnet's gateway in its own family, e.g. {default_gateway(subnet)}",
        )
    if gateway not in subnet:
        raise InvalidRequest(
            f"gateway {gateway} is outside subnet {subnet}",
            f"give a gateway inside {subnet}, e.g. {default_gateway(subnet)}",
        )
    if _reserved(subnet, gateway):
        raise InvalidRequest(
            f"gateway {gateway} is the network or broadcast address of {subnet}",
            f"give a host address, e.g. {default_gateway(subnet)}",
        )


def check_range(subnet: IPNet, ip_range: IPNet, gateway: IP) -> None:
    """--ip-range: a prefix inside the subnet with room for at least one address."""
    if ip_range.version != subnet.version or not ip_range.subnet_of(subnet):  # type: ignore[arg-type]
        raise InvalidRequest(
            f"--ip-range {ip_range} is not inside subnet {subnet}",
            f"give a prefix of {subnet}, e.g. {next(subnet.subnets(prefixlen_diff=1))}",
        )
    room = [a for a in _first(ip_range, 3) if not _reserved(subnet, a) and a != gateway]
    if not room:
        raise InvalidRequest(
            f"--ip-range {ip_range} leaves no address to hand out", "give a larger range"
        )


def _first(net: IPNet, n: int) -> list[IP]:
    base = int(net.network_address)
    return [ipaddress.ip_address(base + i) for i in range(min(n, net.num_addresses))]


def check_static(
    subnet: IPNet, gateway: IP, ip: IP, used: Container[IP], exclude: Iterable[IPNet] = ()
) -> None:
    flag = "--ip" if subnet.version == 4 else "--ip6"
    if ip.version != subnet.version or ip not in subnet:
        raise InvalidRequest(
            f"address {ip} is outside subnet {subnet}",
            f"choose an address inside {subnet}, or leave {flag} out to get one",
        )
    if _reserved(subnet, ip) or ip == gateway:
        raise InvalidRequest(
            f"address {ip} is the network, broadcast or gateway address of {subnet}",
            "choose a host address that is not the gateway",
        )
    for carved in exclude:
        if ip in carved:
            raise InvalidRequest(
                f"address {ip} lies in {carved}, which belongs to another network",
                f"choose an address of {subnet} outside {carved}",
            )
    if ip in used:
        raise Conflict(
            f"address {ip} is already in use on {subnet} (by an endpoint, or reserved with "
            "--aux-address)",
            f"choose another address, or leave {flag} out to get a free one",
        )


SCAN_LIMIT = 1 << 20  # addresses looked at before a (huge IPv6) range counts as full


def allocate(
    subnet: IPNet,
    gateway: IP,
    used: Container[IP],
    after: IP | None = None,
    exclude: Iterable[IPNet] = (),
    within: IPNet | None = None,
) -> IP:
    """The next free host address after ``after`` (wrapping), so freed addresses rest a
    while; from ``within`` (--ip-range) when given."""
    pool = within or subnet
    first = max(int(pool.network_address), int(subnet.network_address) + 1)
    last = int(pool.broadcast_address)
    if subnet.version == 4:
        last = min(last, int(subnet.broadcast_address) - 1)
    size = last - first + 1
    start = first if after is None or after not in pool else int(after) + 1
    holes = [(int(x.network_address), int(x.broadcast_address)) for x in exclude]
    i = 0
    while i < min(size, SCAN_LIMIT):
        n = first + ((start - first + i) % size)
        hole = next((h for h in holes if h[0] <= n <= h[1]), None)
        if hole is not None:
            i += hole[1] - n + 1  # skip the whole carved prefix
            continue
        cand = ipaddress.ip_address(n) if subnet.version == 6 else IPv4(n)
        if cand != gateway and cand not in used:
            return cand
        i += 1
    where = f"--ip-range {within} of {subnet}" if within else str(subnet)
    raise Conflict(
        f"no free address left in {where}",
        "remove unused containers or create a network with a larger subnet or range",
    )
