"""DNS messages, as much of RFC 1035 (and EDNS, RFC 6891) as a stub's queries need.

Queries are parsed, answers built; nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT, ANY = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 255
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
QR, AA, TC, RD, RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080
LOCAL_TTL = 600  # seconds, as Docker's embedded resolver
EDNS_SIZE = 1232
_HEADER = struct.Struct("!HHHHHH")


class BadQuery(ValueError):
    """Not a query this resolver can read."""


@dataclass(frozen=True)
class Question:
    id: int
    flags: int
    name: str  # lower case, no trailing dot; "" is the root
    qtype: int
    qclass: int
    wire: bytes  # the question section as sent (case kept, for the answer)
    edns: bool  # the query carried an OPT record


def parse_query(data: bytes) -> Question:
    if len(data) < 12:
        raise BadQuery("short header")
    qid, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
    if flags & QR or qd != 1:
        raise BadQuery("not a single-question query")
    labels: list[str] = []
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
        labels.append(data[pos + 1 : pos + 1 + n].decode("ascii", "replace").lower())
        pos += 1 + n
    if pos + 4 > len(data):
        raise BadQuery("question has no type")
    qtype, qclass = struct.unpack_from("!HH", data, pos)
    end = pos + 4
    edns = ar > 0 and data[end : end + 3] == b"\x00\x00\x29"
    return Question(qid, flags, ".".join(labels), qtype, qclass, data[12:end], edns)


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


def ptr_record(target: str) -> bytes:
    return _rr(PTR, encode_name(target))


def reverse_name(ip: str) -> str:
    """1.2.3.4 -> 4.3.2.1.in-addr.arpa (``ip`` is a valid address: it comes from IPAM)."""
    a, b, c, d = ip.split(".")
    return f"{d}.{c}.{b}.{a}.in-addr.arpa"


def with_id(reply: bytes, qid: int) -> bytes:
    return struct.pack("!H", qid) + reply[2:]


def rcode_of(reply: bytes) -> int:
    return reply[3] & 0x0F if len(reply) >= 4 else SERVFAIL
