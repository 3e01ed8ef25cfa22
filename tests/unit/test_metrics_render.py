"""Metrics without root: the --metrics address, the counts, and what a scrape renders
(also at 5,000 endpoints), against a service on the fake kernel."""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import dns.message
import pytest
from fake_kernel import FakeKernel
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from hostnet import daemon
from hostnet.core.metrics import MetricsServer, Snapshot, parse_listen, render
from hostnet.core.service import HostNetworkingService
from hostnet.core.stats import Histogram, Histograms, ServiceStats
from hostnet.dns import names
from hostnet.dns.resolver import FORWARDED, Resolver, _Listener
from hostnet.errors import InvalidRequest, Unavailable
from hostnet.model import Container, Endpoint, Network, PortMapping
from hostnet.store import open_store


@pytest.fixture
def svc(tmp_path: object) -> Iterator[HostNetworkingService]:
    state = str(tmp_path)
    s = HostNetworkingService(
        open_store(f"{state}/hostnet.db"),
        "t1",
        state,
        kernel=FakeKernel(),
    )
    s.create_network("n1", "nat", "10.9.0.0/24")
    yield s
    s.store.close()


class _Fixed(Collector):
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        return render(self.snap)


def scrape(snap: Snapshot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The exposition text of one snapshot, parsed back: (sample name, labels) -> value."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Fixed(snap))
    text = generate_latest(reg).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


# -- the address ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("0.0.0.0:1", ("0.0.0.0", 1)),
        ("[::1]:9464", ("::1", 9464)),
        ("[::]:65535", ("::", 65535)),
        ("[2001:DB8::5]:80", ("2001:db8::5", 80)),
    ],
)
def test_listen_addresses_parse(text: str, want: tuple[str, int]) -> None:
    assert parse_listen(text) == want


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("9464", "is not ADDR:PORT"),
        (":9464", "is not ADDR:PORT"),
        ("localhost:9464", "'localhost' is not an IP address"),
        ("::1:9464", "IPv6 address goes in brackets"),
        ("10.0.0.1:0", "'0' is not a port"),
        ("10.0.0.1:70000", "'70000' is not a port"),
        ("10.0.0.1:http", "'http' is not a port"),
        ("10.0.0.1:", "'' is not a port"),
        ("[::1]9464", "is not ADDR:PORT"),
        ("[10.0.0.1:80", "is not ADDR:PORT"),
        ("[db8::zz]:80", "is not an IP address"),
    ],
)
def test_bad_listen_addresses_say_what_and_what_to_give(text: str, words: str) -> None:
    with pytest.raises(InvalidRequest, match=words) as exc:
        parse_listen(text)
    assert "127.0.0.1:9464" in str(exc.value) or "[" in str(exc.value)


def test_hostnetd_with_a_bad_metrics_value_exits_2_before_starting(
    capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    state = os.path.join(str(tmp_path), "state")
    with pytest.raises(SystemExit) as exc:
        daemon.main(["--state-dir", state, "--metrics", "localhost:9464"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--metrics" in err and "'localhost' is not an IP address" in err
    assert "Traceback" not in err
    assert not os.path.exists(state)  # nothing started: not even the state dir


def test_an_address_that_cannot_be_bound_is_a_clear_error() -> None:
    with pytest.raises(Unavailable, match=r"cannot serve metrics on 192\.0\.2\.1:9464") as exc:
        MetricsServer(("192.0.2.1", 9464))  # TEST-NET-1: never an address of this machine
    assert "address of this host" in exc.value.remedy


# -- the counts ------------------------------------------------------------------------------
def test_histogram_buckets_are_cumulative_and_end_in_inf() -> None:
    h = Histogram((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 3.0):
        h.observe(v)
    buckets, total = h.cumulative()
    assert buckets == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert total == pytest.approx(3.65)


def test_label_values_beyond_the_limit_fold_into_other() -> None:
    hs = Histograms((1.0,), limit=2)
    for server in ("a", "b", "c", "d", "a"):
        hs.observe(server, 0.5)
    got = {k: h.counts[0] for k, h in hs.snapshot().items()}
    assert got == {"a": 2, "b": 1, "other": 2}


def test_reconcile_reports_count_by_kind() -> None:
    st = ServiceStats()
    st.reconciled(
        {
            "removed_containers": ["a"],
            "repaired_endpoints": ["b/eth0", "c/eth0"],
            "swept": [],
            "errors": ["x"],
        }
    )
    st.reconciled(
        {"removed_containers": [], "repaired_endpoints": [], "swept": ["link hv1"], "errors": []}
    )
    assert st.reconcile_runs == 2 and st.reconcile_errors == 1
    assert st.repairs == {"container_removed": 1, "endpoint_repaired": 2, "swept": 1}


def test_attach_and_detach_are_timed_by_driver_and_endpoints_counted_per_network(
    svc: HostNetworkingService,
) -> None:
    svc.create_network("n2", "nat", "10.8.0.0/24")
    svc.create_container("web", [{"network": "n1"}], ["8080:80", "8443:443"])
    c = svc.create_container("db", [{"network": "n1"}, {"network": "n2"}])
    s = scrape(Snapshot.take(svc, read_acl=False))
    assert value(s, "hostnet_attach_seconds_count", driver="nat") == 3
    assert value(s, "hostnet_attach_seconds_count", driver="l2bridge") == 0  # every driver
    assert value(s, "hostnet_attach_seconds_bucket", driver="nat", le="+Inf") == 3
    assert value(s, "hostnet_endpoints", network="n1", driver="nat") == 2
    assert value(s, "hostnet_endpoints", network="n2", driver="nat") == 1
    assert value(s, "hostnet_port_mappings", network="n1", driver="nat") == 2
    assert value(s, "hostnet_port_mappings", network="n2", driver="nat") == 0
    assert value(s, "hostnet_store_errors_total", kind="sqlite") == 0
    svc.teardown(c)
    svc.remove_network("n2")
    s = scrape(Snapshot.take(svc, read_acl=False))
    assert value(s, "hostnet_detach_seconds_count", driver="nat") == 2
    assert value(s, "hostnet_endpoints", network="n1", driver="nat") == 1
    assert not [k for k in s if dict(k[1]).get("network") == "n2"]  # gone with its network


def test_a_scrape_never_waits_for_the_service_lock(svc: HostNetworkingService) -> None:
    svc.create_container("web", [{"network": "n1"}])
    done: list[Snapshot] = []
    with svc.lock:  # a request holds it (e.g. a long nft batch)
        t = threading.Thread(target=lambda: done.append(Snapshot.take(svc, read_acl=False)))
        t.start()
        t.join(5)
    assert done and len(done[0].eps) == 1


def test_acl_drops_follow_the_endpoints_that_exist(svc: HostNetworkingService) -> None:
    web = svc.create_container("web", [{"network": "n1"}])
    db = svc.create_container("db", [{"network": "n1"}])
    key = {c.name: svc.endpoints_of(c)[0].id[:12] for c in (web, db)}
    snap = Snapshot.take(svc, read_acl=False)
    # web has rules (a counter); db is on the default table (none); one counter is stale
    snap.acl_drops = {f"drops_{key['web']}": (7, 420), "drops_0123456789ab": (1, 1)}
    s = scrape(snap)
    assert value(s, "hostnet_acl_dropped_packets_total", network="n1", container="web") == 7
    assert value(s, "hostnet_acl_dropped_bytes_total", network="n1", container="web") == 420
    acl = [k for k in s if k[0].startswith("hostnet_acl_dropped_packets")]
    assert len(acl) == 1  # neither db (no counter) nor the counter of no endpoint
    svc.teardown(web)
    later = Snapshot.take(svc, read_acl=False)
    later.acl_drops = snap.acl_drops
    assert not [k for k in scrape(later) if k[0].startswith("hostnet_acl_dropped")]


# -- the resolver's counts -------------------------------------------------------------------
def _query(name: str) -> bytes:
    return bytes(dns.message.make_query(name, "A", use_edns=False).to_wire())


def test_resolver_counts_answers_by_source_and_rcode_cache_hits_too(
    svc: HostNetworkingService, tmp_path: object
) -> None:
    c = svc.create_container("web", [{"network": "n1"}])
    empty = os.path.join(str(tmp_path), "resolv.conf")
    open(empty, "w").close()
    r = Resolver(empty)  # no upstreams anywhere: a forwarded question gets SERVFAIL
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # no network: a unix datagram pair
    cli = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        r.publish(names.build(svc.nets, svc.containers, svc.eps.values()))
        srv.bind(os.path.join(str(tmp_path), "srv"))
        cli.bind(os.path.join(str(tmp_path), "cli"))
        srv.setblocking(False)
        lst = _Listener(c.id, srv, srv)
        for name in ("web", "web", "elsewhere.test"):  # the second "web" is a cache hit
            cli.sendto(_query(name), os.path.join(str(tmp_path), "srv"))
        r._on_udp(lst)
        cli.settimeout(2)
        rcodes = [dns.message.from_wire(cli.recv(512)).rcode() for _ in range(3)]
        assert rcodes == [0, 0, 2]
        assert r.answers[0] == 2  # local NOERROR, one of them from the cache
        assert r.answers[FORWARDED + 2] == 1  # forwarded, SERVFAIL
        assert sum(r.answers) == 3
        s = scrape(Snapshot.take(svc, read_acl=False) | _with_dns(r))
        assert value(s, "hostnet_dns_queries_total", source="local", rcode="NOERROR") == 2
        assert value(s, "hostnet_dns_queries_total", source="forwarded", rcode="SERVFAIL") == 1
        assert value(s, "hostnet_dns_queries_total", source="forwarded", rcode="NXDOMAIN") == 0
    finally:
        srv.close()
        cli.close()
        r.stop()


class _with_dns:  # noqa: N801 - reads as a phrase at its one use
    """``snapshot | _with_dns(resolver)``: the snapshot with the resolver's counts."""

    def __init__(self, r: Resolver) -> None:
        self.r = r

    def __ror__(self, snap: Snapshot) -> Snapshot:
        snap.dns_answers = list(self.r.answers)
        snap.dns_latency = self.r.forwarder.latency.snapshot()
        return snap


# -- scale ---------------------------------------------------------------------------------
def _many(n: int) -> Snapshot:
    nets = {
        f"n{i}": Network(
            id=f"n{i}", name=f"net{i}", driver="nat", subnet=f"10.{i}.0.0/16", gateway=f"10.{i}.0.1"
        )
        for i in range(10)
    }
    eps: list[Endpoint] = []
    containers: dict[str, Container] = {}
    for i in range(n):
        cid = f"{i:064x}"
        containers[cid] = Container(id=cid, name=f"c{i}", compartment_id=i + 2, netns=f"hn-{i}")
        eps.append(
            Endpoint(
                id=f"{i + 1:012x}" + "0" * 52,
                network_id=f"n{i % 10}",
                container_id=cid,
                ip=f"10.{i % 10}.{i // 250}.{i % 250 + 2}",
                prefix_len=16,
                gateway=f"10.{i % 10}.0.1",
                mac="02:00:00:00:00:01",
                ifname="eth0",
                host_ifname=f"hv{i}",
                ports=[PortMapping(host_port=10000 + i, container_port=80)],
            )
        )
    snap = Snapshot(nets, eps, containers, ["nat"], {}, {})
    snap.acl_drops = {f"drops_{ep.id[:12]}": (i, i * 60) for i, ep in enumerate(eps)}
    snap.dns_answers = [1] * 32
    return snap


def _render(n: int) -> bytes:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Fixed(_many(n)))
    return generate_latest(reg)


def _steps(n: int) -> int:
    """How many Python lines run (each loop iteration counts: a backward jump is a line
    event) while a scrape of ``n`` endpoints renders: its work, counted, not timed."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Fixed(_many(n)))
    count = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        count += 1
        return tracer

    sys.settrace(tracer)
    try:
        generate_latest(reg)
    finally:
        sys.settrace(None)
    return count


def test_a_scrape_at_5000_endpoints_renders_them_all_with_work_linear_in_their_number() -> None:
    text = _render(5000)
    assert text.count(b"hostnet_acl_dropped_packets_total{") == 5000
    assert b'hostnet_endpoints{driver="nat",network="net3"} 500.0' in text
    # twice the endpoints, twice the work (plus the fixed part): never a pass over all
    # endpoints per endpoint, which would make it four times. The time it takes is
    # the machine's business (bench/), not this test's.
    small, large = _steps(500), _steps(1000)
    assert large <= 2.2 * small, f"500 endpoints: {small} steps; 1,000: {large}"
    assert large >= 1.5 * small, f"the count misses the per-endpoint work: {small}, {large}"
