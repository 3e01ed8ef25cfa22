"""The embedded resolver speaks DNS correctly and cannot be spoofed cheaply: answers are
read with dnspython (an independent implementation), from inside compartments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest
from helpers import serve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab import Daemon, Lab, eventually, in_ns

HERE = os.path.dirname(__file__)
EMBEDDED = "127.0.0.11"

# Inside a compartment: hex queries on stdin, hex answers (or "-" for none in 1 s) out.
ASKER = """
import socket, sys
for line in sys.stdin:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.settimeout(1.0)
    udp.sendto(bytes.fromhex(line.strip()), ("127.0.0.11", 53))
    try:
        print(udp.recv(65535).hex(), flush=True)
    except OSError:
        print("-", flush=True)
    udp.close()
"""


class Asker:
    def __init__(self, netns: str) -> None:
        self.proc = subprocess.Popen(
            ["nsenter", f"--net={netns}", sys.executable, "-u", "-c", ASKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, wire: bytes) -> bytes | None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(wire.hex() + "\n")
        self.proc.stdin.flush()
        out = self.proc.stdout.readline().strip()
        return None if out == "-" else bytes.fromhex(out)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(5)


def upstream(lab: Lab) -> tuple[str, str]:
    """The test DNS server (dns_upstream.py) on the segment: its address and query log."""
    ns, ip = lab.node("dns", 253)
    log = os.path.join(lab.tmp, "dns-queries.jsonl")
    open(log, "w").close()  # noqa: SIM115
    lab.spawn(ns, sys.executable, os.path.join(HERE, "dns_upstream.py"), ip, log)

    def answers() -> None:
        r = in_ns(ns, "dig", f"@{ip}", "+short", "+time=1", "+tries=1", "up.ext.test", check=False)
        assert r.stdout.strip() == "198.18.1.1", r.stdout

    eventually(answers)
    return ip, log


def queries(log: str) -> list[dict[str, Any]]:
    with open(log) as fh:
        return [json.loads(ln) for ln in fh if ln.strip()]


def setup(lab: Lab, *opts: str) -> tuple[Daemon, str, str, dict[str, Any]]:
    ip, log = upstream(lab)
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "172.20.9.0/24", "-o", f"dnsservers={ip}", *opts, "n1")
    web = serve(d, "n1", "web")
    return d, ip, log, web


def test_forwarded_queries_each_take_a_fresh_port_and_id(lab: Lab) -> None:
    d, _, log, web = setup(lab)
    asker = Asker(web["netns"])
    try:
        for i in range(40):
            q = dns.message.make_query(f"q{i}.ext.test", "A", id=4242)  # the same id each time
            r = dns.message.from_wire(asker.ask(q.to_wire()) or b"")
            assert r.id == 4242 and r.answer[0][0].address == "198.18.1.1"
    finally:
        asker.close()
    seen = [x for x in queries(log) if x["name"].startswith("q")]
    assert len(seen) == 40
    ports, ids = {x["port"] for x in seen}, {x["id"] for x in seen}
    assert len(ports) >= 38, f"source ports reused: {len(ports)} distinct of 40"
    assert len(ids) >= 38 and 4242 not in ids, f"ids: {len(ids)} distinct of 40"


def test_large_answers_are_cut_over_udp_and_whole_over_tcp(lab: Lab) -> None:
    d, _, log, web = setup(lab)
    ns = web["netns"]
    asker = Asker(ns)
    try:
        plain = dns.message.make_query("many.ext.test", "A", use_edns=False)
        r = dns.message.from_wire(asker.ask(plain.to_wire()) or b"")
        assert r.flags & dns.flags.TC and not r.answer  # 60 records do not fit 512 bytes
    finally:
        asker.close()
    tcp = in_ns(ns, "dig", f"@{EMBEDDED}", "+tcp", "+short", "many.ext.test").stdout.split()
    assert len(tcp) == 60, tcp
    assert any(x["name"] == "many.ext.test." and x["proto"] == "tcp" for x in queries(log))
    # glibc (its resolv.conf is the one hostnet run gives): UDP, TC, then TCP
    glibc = d.cli("run", "--net", "n1", "--", "getent", "ahostsv4", "many.ext.test").stdout
    glibc = glibc.split("\n")
    assert len({ln.split()[0] for ln in glibc if ln.strip()}) == 60, glibc


def test_opcodes_responses_edns_versions_classes_and_dotted_labels(lab: Lab) -> None:
    d, _, _, web = setup(lab, "-o", "dnssuffix=corp")
    asker = Asker(web["netns"])
    try:
        notify = dns.message.make_query("web", "SOA")
        notify.set_opcode(dns.opcode.NOTIFY)
        r = dns.message.from_wire(asker.ask(notify.to_wire()) or b"")
        assert r.rcode() == dns.rcode.NOTIMP and r.opcode() == dns.opcode.NOTIFY
        response = dns.message.make_response(dns.message.make_query("web", "A"))
        assert asker.ask(response.to_wire()) is None  # QR set: dropped, never answered
        v1 = dns.message.make_query("web", "A", use_edns=1)
        r = dns.message.from_wire(asker.ask(v1.to_wire()) or b"")
        assert r.rcode() == dns.rcode.BADVERS and not r.answer
        chaos = dns.message.make_query("web", "A", rdclass=dns.rdataclass.CH)
        r = dns.message.from_wire(asker.ask(chaos.to_wire()) or b"")
        assert not r.answer, r  # not a local name in class CH (the upstream refuses it)
        local = dns.message.from_wire(
            asker.ask(dns.message.make_query("web.corp", "A").to_wire()) or b""
        )
        assert [a.address for a in local.answer[0]] == [web["ip"]]
        dotted = dns.name.Name([b"web.corp", b""])  # one label holding a dot
        r = dns.message.from_wire(asker.ask(dns.message.make_query(dotted, "A").to_wire()) or b"")
        assert not r.answer, r
    finally:
        asker.close()


def test_a_dead_upstream_costs_one_timeout_not_one_per_try(lab: Lab) -> None:
    d, _ = lab.host()
    dead = "198.51.100.77"  # on the lab segment, held by no one: queries to it are lost
    d.cli(
        "network", "create", "--subnet", "172.20.10.0/24",
        "-o", f"dnsservers={dead}", "-o", "dnssuffix=corp.test", "n1",
    )  # fmt: skip
    web = serve(d, "n1", "web")
    t0 = time.monotonic()  # end to end: hostnet run, glibc with the search list, retries
    res = d.cli("run", "--net", "n1", "--", "getent", "hosts", "nothing.invalid", check=False)
    took = time.monotonic() - t0
    assert res.returncode != 0
    assert took < 2.5, f"a lookup with a dead upstream took {took:.1f} s"
    t0 = time.monotonic()
    assert web["ip"] in d.cli("run", "--net", "n1", "--", "getent", "hosts", "web").stdout
    assert time.monotonic() - t0 < 1.0, "local names must keep answering at once"


def test_forwarded_answers_are_cached_within_their_ttl(lab: Lab) -> None:
    d, _, log, web = setup(lab)
    asker = Asker(web["netns"])
    try:
        ttls = []
        for _ in range(5):
            r = dns.message.from_wire(
                asker.ask(dns.message.make_query("cached.ext.test", "A").to_wire()) or b""
            )
            ttls.append(r.answer[0].ttl)
            time.sleep(0.6)
        for i in range(3):
            r = dns.message.from_wire(
                asker.ask(dns.message.make_query("nx.ext.test", "A").to_wire()) or b""
            )
            assert r.rcode() == dns.rcode.NXDOMAIN
            if i:  # from the cache: kept for min(SOA TTL 300, MINIMUM 30) at most
                assert r.authority[0].ttl <= 30, r.authority[0].ttl
    finally:
        asker.close()
    names = [x["name"] for x in queries(log)]
    assert names.count("cached.ext.test.") == 1, names
    assert names.count("nx.ext.test.") == 1, names  # negative answers too (RFC 2308)
    assert ttls[0] == 60 and ttls[-1] < ttls[0] and all(t > 0 for t in ttls), ttls


labels = st.lists(st.binary(min_size=1, max_size=12), min_size=0, max_size=4)


@pytest.mark.parametrize("_", [0])
def test_generated_queries_get_answers_a_dns_library_reads(lab: Lab, _: int) -> None:
    d, _ip, _log, web = setup(lab)
    asker = Asker(web["netns"])

    @settings(
        max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        labels,
        st.sampled_from([1, 2, 5, 12, 16, 28, 33, 255, 65280]),
        st.sampled_from([1, 3, 255]),
        st.integers(0, 65535),
        st.booleans(),
    )
    def one(name: list[bytes], qtype: int, qclass: int, qid: int, edns: bool) -> None:
        q = dns.message.make_query(
            dns.name.Name([*name, b""]), qtype, rdclass=qclass, use_edns=0 if edns else False
        )
        q.id = qid
        out = asker.ask(q.to_wire())
        assert out is not None, f"no answer to {q}"
        r = dns.message.from_wire(out)
        assert r.id == qid and r.flags & dns.flags.QR
        assert r.question == q.question

    try:
        one()
    finally:
        asker.close()
    assert d.proc is not None and d.proc.poll() is None
