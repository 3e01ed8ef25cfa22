"""Address management: subnet choice and address allocation (pure, no I/O)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from hostnet.errors import Conflict, InvalidRequest

IPv4Net = ipaddress.IPv4Network
IPv4 = ipaddress.IPv4Address

DEFAULT_SCOPE = ipaddress.IPv4Network("172.16.0.0/12")


def overlapping(subnet: IPv4Net, others: Iterable[IPv4Net]) -> IPv4Net | None:
    for other in others:
        if subnet.overlaps(other):
            return other
    return None


def first_free_subnet(
    prefixlen: int,
    used: Iterable[IPv4Net],
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


def default_gateway(subnet: IPv4Net) -> IPv4:
    return subnet.network_address + 1


def check_gateway(subnet: IPv4Net, gateway: IPv4) -> None:
    if gateway not in subnet:
        raise InvalidRequest(
            f"gateway {gateway} is outside subnet {subnet}",
            f"give a gateway inside {subnet}, e.g. {default_gateway(subnet)}",
        )
    if gateway in (subnet.network_address, subnet.broadcast_address):
        raise InvalidRequest(
            f"gateway {gateway} is the network or broadcast address of {subnet}",
            f"give a host address, e.g. {default_gateway(subnet)}",
        )


def check_static(
    subnet: IPv4Net, gateway: IPv4, ip: IPv4, used: set[IPv4], exclude: Iterable[IPv4Net] = ()
) -> None:
    if ip not in subnet:
        raise InvalidRequest(
            f"address {ip} is outside subnet {subnet}",
            f"choose an address inside {subnet}, or leave --ip out to get one",
        )
    if ip in (subnet.network_address, subnet.broadcast_address, gateway):
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
            f"address {ip} is already in use on {subnet}",
            "choose another address, or leave --ip out to get a free one",
        )


def allocate(
    subnet: IPv4Net,
    gateway: IPv4,
    used: set[IPv4],
    after: IPv4 | None = None,
    exclude: Iterable[IPv4Net] = (),
) -> IPv4:
    """The next free host address after ``after`` (wrapping), so freed addresses rest a while."""
    first = int(subnet.network_address) + 1
    last = int(subnet.broadcast_address) - 1
    size = last - first + 1
    start = first if after is None or after not in subnet else int(after) + 1
    holes = [(int(x.network_address), int(x.broadcast_address)) for x in exclude]
    i = 0
    while i < size:
        n = first + ((start - first + i) % size)
        hole = next((h for h in holes if h[0] <= n <= h[1]), None)
        if hole is not None:
            i += hole[1] - n + 1  # skip the whole carved prefix
            continue
        cand = IPv4(n)
        if cand != gateway and cand not in used:
            return cand
        i += 1
    raise Conflict(
        f"no free address left in {subnet}",
        "remove unused containers or create a network with a larger subnet",
    )
