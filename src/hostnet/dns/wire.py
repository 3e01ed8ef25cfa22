"""DNS messages, as much of RFC 1035 (and EDNS, RFC 6891) as a stub's queries need.

Queries are parsed, answers built; nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT, ANY = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 255
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
BADVERS = 16  # an extended rcode: 1 in the OPT record's upper bits, 0 in the header
QR, AA, TC, RD, RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080
OPCODE = 0x7800
IN = 1
UDP_PLAIN = 512  # what a client without EDNS takes over UDP
LOCAL_TTL = 600  # seconds, as Docker's embedded resolver
EDNS_SIZE = 1232
_HEADER = struct.Struct("!HHHHHH")


class BadQuery(ValueError):
    """Not a query this resolver can read (answered FORMERR)."""


class NotQuery(BadQuery):
    """A response (QR set): dropped without an answer, so that no two resolvers loop."""


class Unsupported(BadQuery):
    """A well-formed message this resolver does not serve: an opcode other than QUERY
    (NOTIMP) or an EDNS version above 0 (BADVERS). ``reply`` is the answer to send."""

    def __init__(self, why: str, reply: bytes) -> None:
        super().__init__(why)
        self.reply = reply


@dataclass(frozen=True)
class Question:
    id: int
    flags: int
    name: str  # lower case, no trailing dot; "" is the root
    qtype: int
    qclass: int
    wire: bytes  # the question section as sent (case kept, for the answer)
    edns: bool  # the query carried an OPT record
    udp_size: int = UDP_PLAIN  # the largest UDP answer the client takes
    plain: bool = True  # no label holds a dot: the name can match a local name

    @property
    def local(self) -> bool:
        """May be answered from local names: class IN (or ANY) and a plain name."""
        return self.plain and self.qclass in (IN, ANY)


def parse_query(data: bytes) -> Question:
    if len(data) < 12:
        raise BadQuery("short header")
    qid, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
    if flags & QR:
        raise NotQuery("a response, not a query")
    if flags & OPCODE:
        head = _HEADER.pack(qid, QR | (flags & (OPCODE | RD)) | NOTIMP, 0, 0, 0, 0)
        raise Unsupported(f"opcode {(flags & OPCODE) >> 11}", head)
    if qd != 1:
        raise BadQuery("not a single-question query")
    labels: list[bytes] = []
    pos = 12
    while True:
        if pos >= len(data):
            raise BadQuery("name runs past the end")
        n = data[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0 or pos + 1 + n > len(data):
            raise BadQuery("compressed or truncated name in the question")
        labels.append(data[pos + 1 : pos + 1 + n])
        pos += 1 + n
    if pos + 4 > len(data):
        raise BadQuery("question has no type")
    qtype, qclass = struct.unpack_from("!HH", data, pos)
    end = pos + 4
    edns, size = False, UDP_PLAIN
    if ar > 0 and an == 0 and ns == 0 and data[end : end + 3] == b"\x00\x00\x29":
        if len(data) < end + 11:
            raise BadQuery("short OPT record")
        edns = True
        size = max(UDP_PLAIN, min(struct.unpack_from("!H", data, end + 3)[0], 65535))
        version = data[end + 6]
        if version > 0:
            q = Question(qid, flags, "", qtype, qclass, data[12:end], True, size)
            raise Unsupported(f"EDNS version {version}", badvers(q))
    plain = all(b"." not in x for x in labels)
    name = ".".join(x.decode("ascii", "replace").lower() for x in labels)
    return Question(qid, flags, name, qtype, qclass, data[12:end], edns, size, plain)


def badvers(q: Question) -> bytes:
    """BADVERS (RFC 6891): header rcode 0, extended rcode 1, our version 0."""
    flags = QR | (q.flags & RD) | RA
    head = _HEADER.pack(q.id, flags, 1, 0, 0, 1)
    opt = b"\x00" + struct.pack("!HHIH", OPT, EDNS_SIZE, BADVERS >> 4 << 24, 0)
    return head + q.wire + opt


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.strip(".").split("."):
        if label:
            raw = label.encode("ascii", "replace")[:63]
            out += bytes([len(raw)]) + raw
    return bytes(out) + b"\x00"


def _rr(rtype: int, rdata: bytes, ttl: int = LOCAL_TTL) -> bytes:
    # the owner is always the question's name: a pointer to offset 12
    return struct.pack("!HHHIH", 0xC00C, rtype, 1, ttl, len(rdata)) + rdata


def _opt() -> bytes:
    return b"\x00" + struct.pack("!HHIH", OPT, EDNS_SIZE, 0, 0)


def response(
    q: Question,
    rcode: int = NOERROR,
    answers: list[bytes] | None = None,
    authoritative: bool = True,
) -> bytes:
    """A reply to ``q``: its question echoed, RD copied, RA set."""
    answers = answers or []
    flags = QR | (q.flags & (RD | 0x7800)) | RA | (AA if authoritative else 0) | rcode
    head = _HEADER.pack(q.id, flags, 1, len(answers), 0, 1 if q.edns else 0)
    return head + q.wire + b"".join(answers) + (_opt() if q.edns else b"")


def a_records(ips: list[str]) -> list[bytes]:
    return [_rr(A, ipaddress.IPv4Address(ip).packed) for ip in ips]


def aaaa_records(ips: list[str]) -> list[bytes]:
    return [_rr(AAAA, ipaddress.IPv6Address(ip).packed) for ip in ips]


def ptr_record(target: str) -> bytes:
    return _rr(PTR, encode_name(target))


REVERSE_ZONES = (".in-addr.arpa", ".ip6.arpa")  # where PTR questions for addresses go


def reverse_name(ip: str) -> str:
    """1.2.3.4 -> 4.3.2.1.in-addr.arpa; fd00::1 -> 1.0.0.0.[...].0.d.f.ip6.arpa (all 32
    nibbles, RFC 3596), lower case as questions are (``ip`` is valid: it comes from IPAM)."""
    return ipaddress.ip_address(ip).reverse_pointer


def with_id(reply: bytes, qid: int) -> bytes:
    return struct.pack("!H", qid) + reply[2:]


def as_recursive(reply: bytes) -> bytes:
    """An upstream's answer as this resolver gives it: RA set (it recurses for its
    clients; glibc takes an empty answer without RA for a referral and moves on)."""
    if len(reply) < 4:
        return reply
    return reply[:3] + bytes([reply[3] | (RA & 0xFF)]) + reply[4:]


def rcode_of(reply: bytes) -> int:
    return reply[3] & 0x0F if len(reply) >= 4 else SERVFAIL


def truncated(reply: bytes, q: Question, limit: int) -> bytes:
    """``reply`` if it fits ``limit`` bytes, else its header with TC set and the question
    (and OPT): the client asks again over TCP (RFC 1035 4.2.1, RFC 7766)."""
    if len(reply) <= limit:
        return reply
    flags = struct.unpack_from("!H", reply, 2)[0] | TC | RA
    head = _HEADER.pack(q.id, flags, 1, 0, 0, 1 if q.edns else 0)
    return head + q.wire + (_opt() if q.edns else b"")


def _skip_name(data: bytes, pos: int) -> int:
    while True:
        if pos >= len(data):
            raise BadQuery("name runs past the end")
        n = data[pos]
        if n & 0xC0 == 0xC0:
            return pos + 2
        if n == 0:
            return pos + 1
        pos += 1 + n


@dataclass(frozen=True)
class Records:
    """Where an answer's TTLs are (to serve it from a cache with what is left of them),
    and how long it may be cached: the smallest TTL of its answers, or for a negative
    answer (NXDOMAIN, or NOERROR without answers) the SOA's TTL capped by its MINIMUM
    (RFC 2308); None when it must not be cached."""

    ttl_offsets: tuple[int, ...]
    cache_for: int | None


def records(reply: bytes) -> Records:
    """Walk an upstream's answer (names may be compressed)."""
    _, flags, qd, an, ns, ar = _HEADER.unpack_from(reply)
    pos = 12
    for _ in range(qd):
        pos = _skip_name(reply, pos) + 4
    offsets, ttls, soa = [], [], None
    for i in range(an + ns + ar):
        pos = _skip_name(reply, pos)
        if pos + 10 > len(reply):
            raise BadQuery("record runs past the end")
        rtype, _cls, ttl, rdlen = struct.unpack_from("!HHIH", reply, pos)
        if rtype != OPT:
            offsets.append(pos + 4)
            if i < an:
                ttls.append(ttl)
            elif i < an + ns and rtype == SOA:
                rd = pos + 10
                after = _skip_name(reply, _skip_name(reply, rd))  # mname, rname
                if after + 20 <= rd + rdlen:
                    soa = min(ttl, struct.unpack_from("!I", reply, after + 16)[0])
        pos += 10 + rdlen
        if pos > len(reply):
            raise BadQuery("record runs past the end")
    rcode = flags & 0x0F
    if flags & TC or rcode not in (NOERROR, NXDOMAIN):
        return Records(tuple(offsets), None)
    if rcode == NOERROR and ttls:
        return Records(tuple(offsets), min(ttls))
    return Records(tuple(offsets), soa)  # negative: the SOA says, or not cached


def with_ttls(reply: bytes, offsets: tuple[int, ...], left: int) -> bytes:
    """The cached answer with every TTL at most ``left`` seconds."""
    out = bytearray(reply)
    for off in offsets:
        (ttl,) = struct.unpack_from("!I", out, off)
        struct.pack_into("!I", out, off, min(ttl, left))
    return bytes(out)
