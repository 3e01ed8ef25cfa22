"""Parsing of Docker-style ``-p`` values and the choice of host ports."""

from __future__ import annotations

from collections.abc import Iterable

from hostnet.errors import Conflict, InvalidRequest, NotFound
from hostnet.model import PortMapping, PortRequest, host_ips_clash, parse_ip

EPHEMERAL_FIRST = 49153
EPHEMERAL_LAST = 65535
SYNTAX = (
    "[HOSTIP:]HOSTPORT[-END]:CONTAINERPORT[-END][/tcp|/udp] or CONTAINERPORT[/tcp|/udp]; "
    "an IPv6 HOSTIP in brackets, e.g. [::]:8080:80 or [2001:db8::5]:80:80"
)


def _bad(spec: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"bad port mapping {spec!r}: {why}", f"use {SYNTAX}")


def _port_range(spec: str, text: str, what: str) -> tuple[int, int]:
    parts = text.split("-")
    if len(parts) > 2 or not all(p.isdigit() for p in parts):
        raise _bad(spec, f"{what} {text!r} is not a port or a range START-END")
    start, end = int(parts[0]), int(parts[-1])
    for p in (start, end):
        if not 1 <= p <= 65535:
            raise _bad(spec, f"{what} {p} is out of range (1-65535)")
    if end < start:
        raise _bad(spec, f"{what} range {text} ends before it starts")
    return start, end


def _split(spec: str, text: str) -> tuple[str, str, str]:
    """HOSTIP, HOSTPORT, CONTAINERPORT of ``text`` ("" when left out)."""
    if text.startswith("["):  # [IPv6]:HOSTPORT:CONTAINERPORT
        inside, sep, rest = text[1:].partition("]")
        fields = rest[1:].split(":") if rest.startswith(":") else []
        if not sep or len(fields) != 2:
            raise _bad(spec, "an IPv6 host address goes in brackets: [ADDR]:HOSTPORT:PORT")
        return str(parse_ip(inside, "host address", 6)), fields[0], fields[1]
    fields = text.split(":")
    if len(fields) == 1:
        return "", "", fields[0]
    if len(fields) == 2:
        if not fields[0]:
            raise _bad(spec, "empty host port")
        return "", fields[0], fields[1]
    if len(fields) == 3:
        return str(parse_ip(fields[0], "host address")), fields[1], fields[2]
    raise _bad(spec, "too many ':' (an IPv6 host address goes in brackets)")


def parse_port_spec(spec: str) -> PortRequest:
    text, proto = spec, "tcp"
    if "/" in spec:
        text, proto = spec.rsplit("/", 1)
        if proto not in ("tcp", "udp"):
            raise _bad(spec, f"protocol {proto!r} is not tcp or udp")
    host_ip, host_part, container_part = _split(spec, text)  # HOSTIP::PORT: a free host port
    c_start, c_end = _port_range(spec, container_part, "container port")
    if host_part:
        h_start, h_end = _port_range(spec, host_part, "host port")
        if h_end - h_start != c_end - c_start and c_start != c_end:
            raise _bad(spec, "host and container ranges have different lengths")
    else:
        if c_start != c_end:
            raise _bad(spec, "a container port range needs a host port range of the same length")
        h_start, h_end = 0, 0
    return PortRequest(
        protocol=proto,  # type: ignore[arg-type]
        host_ip=host_ip,
        host_start=h_start,
        host_end=h_end,
        container_start=c_start,
        container_end=c_end,
    )


class PortIndex:
    """Host ports in use, keyed by (protocol, port): a lookup costs the same at 10,000 mappings."""

    def __init__(self, mappings: Iterable[PortMapping] = ()) -> None:
        self._by_port: dict[tuple[str, int], list[str]] = {}
        for m in mappings:
            self.add(m)

    def add(self, m: PortMapping) -> None:
        self._by_port.setdefault((m.protocol, m.host_port), []).append(m.host_ip)

    def remove(self, m: PortMapping) -> None:
        ips = self._by_port.get((m.protocol, m.host_port), [])
        if m.host_ip in ips:
            ips.remove(m.host_ip)
        if not ips:
            self._by_port.pop((m.protocol, m.host_port), None)

    def taken(self, m: PortMapping) -> bool:
        ips = self._by_port.get((m.protocol, m.host_port))
        if not ips:
            return False
        return any(host_ips_clash(m.host_ip, ip) for ip in ips)


def resolve(requests: list[PortRequest], taken: PortIndex) -> list[PortMapping]:
    """Turn requests into concrete mappings, refusing host ports already mapped."""
    chosen: list[PortMapping] = []

    def free(cand: PortMapping) -> bool:
        return not taken.taken(cand) and not any(cand.conflicts_with(c) for c in chosen)

    for req in requests:
        if req.host_start == 0 or (
            req.container_start == req.container_end and req.host_end > req.host_start
        ):
            first, last = (
                (EPHEMERAL_FIRST, EPHEMERAL_LAST)
                if req.host_start == 0
                else (req.host_start, req.host_end)
            )
            for port in range(first, last + 1):
                cand = PortMapping(
                    protocol=req.protocol,
                    host_ip=req.host_ip,
                    host_port=port,
                    container_port=req.container_start,
                )
                if free(cand):
                    chosen.append(cand)
                    break
            else:
                raise Conflict(
                    f"no free host port in {first}-{last}/{req.protocol}",
                    "free one of those ports or choose another range",
                )
            continue
        for offset in range(req.host_end - req.host_start + 1):
            cand = PortMapping(
                protocol=req.protocol,
                host_ip=req.host_ip,
                host_port=req.host_start + offset,
                container_port=req.container_start + offset,
            )
            if not free(cand):
                where = cand.host_ip or "all host addresses"
                raise Conflict(
                    f"host port {cand.host_port}/{cand.protocol} on {where} is already mapped",
                    "choose another host port, or remove the container that holds it "
                    "(see 'hostnet nat ls')",
                )
            chosen.append(cand)
    return chosen


def matching(published: list[PortMapping], specs: list[str]) -> list[PortMapping]:
    """The mappings named by ``specs`` written as they were published
    (HOSTIP:HOSTPORT:CPORT/proto); one that is not there is an error naming it."""
    gone: list[PortMapping] = []
    for spec in specs:
        req = parse_port_spec(spec)
        for off in range(req.host_end - req.host_start + 1):
            hit = [
                p
                for p in published
                if p.protocol == req.protocol
                and p.host_ip == req.host_ip
                and p.host_port == req.host_start + off
            ]
            if not hit:
                raise NotFound(
                    f"container has no mapping {spec!r}", "see 'hostnet nat ls' for its mappings"
                )
            gone += hit
    return gone
