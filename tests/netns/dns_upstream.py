"""A DNS server for the resolver tests (run inside a lab namespace), built on dnspython:
it answers over UDP and TCP and writes one JSON line per query it gets to LOG.

  many.ext.test   60 A records (too large for a 512-byte UDP answer)
  nx.ext.test     NXDOMAIN with an SOA (negative TTL 30)
  *.ext.test      one A record, TTL 60
  anything else   REFUSED

usage: dns_upstream.py ADDRESS LOG
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rrset

ADDR, LOG = sys.argv[1], sys.argv[2]
lock = threading.Lock()


def answer(wire: bytes, peer: tuple[str, int], proto: str) -> bytes | None:
    try:
        q = dns.message.from_wire(wire)
    except Exception:  # noqa: BLE001 - a test server: ignore what it cannot read
        return None
    name = q.question[0].name.to_text().lower() if q.question else ""
    with lock, open(LOG, "a") as fh:
        fh.write(json.dumps({"name": name, "port": peer[1], "id": q.id, "proto": proto}) + "\n")
    r = dns.message.make_response(q)
    if name == "many.ext.test.":
        ips = [f"198.18.0.{i}" for i in range(1, 61)]
        r.answer.append(dns.rrset.from_text_list(name, 60, "IN", "A", ips))
    elif name == "nx.ext.test.":
        r.set_rcode(dns.rcode.NXDOMAIN)
        soa = "ns.ext.test. host.ext.test. 1 3600 600 86400 30"
        r.authority.append(dns.rrset.from_text("ext.test.", 300, "IN", "SOA", soa))
    elif name.endswith(".ext.test."):
        r.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "198.18.1.1"))
    else:
        r.set_rcode(dns.rcode.REFUSED)
    limit = 65535 if proto == "tcp" else (q.payload if q.edns >= 0 else 512)
    try:
        return r.to_wire(max_size=limit)
    except dns.exception.TooBig:  # too large for UDP: TC, and the client asks over TCP
        r.answer = []
        r.flags |= dns.flags.TC
        return r.to_wire()


def serve_udp() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ADDR, 53))
    while True:
        data, peer = s.recvfrom(65535)
        out = answer(data, peer, "udp")
        if out is not None:
            s.sendto(out, peer)


def serve_tcp_conn(c: socket.socket, peer: tuple[str, int]) -> None:
    with c:
        while True:
            head = c.recv(2)
            if len(head) < 2:
                return
            (n,) = struct.unpack("!H", head)
            data = b""
            while len(data) < n:
                chunk = c.recv(n - len(data))
                if not chunk:
                    return
                data += chunk
            out = answer(data, peer, "tcp")
            if out is not None:
                c.sendall(struct.pack("!H", len(out)) + out)


def serve_tcp() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ADDR, 53))
    s.listen(16)
    while True:
        c, peer = s.accept()
        threading.Thread(target=serve_tcp_conn, args=(c, peer), daemon=True).start()


threading.Thread(target=serve_tcp, daemon=True).start()
print("ready", flush=True)
serve_udp()
