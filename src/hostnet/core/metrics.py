"""Prometheus metrics: ``hostnetd --metrics ADDR:PORT`` (off by default).

The server binds when the daemon starts (a taken or foreign address stops it before it
changes anything) and serves from threads of its own. A scrape never takes the service
lock: it copies the index's tables (dict and list copies are atomic under the GIL) and
the plain counts the service, the resolver and the store keep (``stats.py``), dumps the
ACL drop counters in one netlink request (``kernel/nft_counters.py``), and renders. Every
label set is bounded: networks, drivers and endpoints that exist now (a removed
endpoint's series is gone at the next scrape), rcodes, at most 64 upstream servers.
See the README's "Metrics" section for the series.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, ProcessCollector, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from hostnet.core import acl
from hostnet.core.stats import REPAIR_KINDS, Histogram
from hostnet.dns.resolver import FORWARDED
from hostnet.errors import HostnetError, InvalidRequest, Unavailable
from hostnet.kernel import nft_counters
from hostnet.model import Container, Endpoint, Network

if TYPE_CHECKING:
    from hostnet.core.service import HostNetworkingService

log = logging.getLogger("hostnet")
EXAMPLE = "e.g. 127.0.0.1:9464, or [::]:9464 for every address"
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
SOURCES = {"local": 0, "forwarded": FORWARDED}


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` (an IPv4 address, or an IPv6 one in brackets) -> (address, port)."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise InvalidRequest(f"{text!r} is not ADDR:PORT", f"give one, {EXAMPLE}")
    if ":" in host and not text.startswith("["):
        raise InvalidRequest(
            f"{text!r}: an IPv6 address goes in brackets", f"write [{host}]:{port}"
        )
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise InvalidRequest(
            f"{text!r}: {host!r} is not an IP address", f"give an address, {EXAMPLE}"
        ) from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidRequest(f"{text!r}: {port!r} is not a port (1-65535)", f"give one, {EXAMPLE}")
    return str(addr), int(port)


def listen_arg(text: str) -> tuple[str, int]:
    """``parse_listen`` as an argparse type: a bad value is a usage error (exit 2)."""
    try:
        return parse_listen(text)
    except InvalidRequest as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- what one scrape reads -------------------------------------------------------------
@dataclass
class Snapshot:
    """Everything a scrape renders, copied from the live objects."""

    nets: dict[str, Network]
    eps: list[Endpoint]
    containers: dict[str, Container]
    drivers: list[str]
    attach: dict[str, Histogram]
    detach: dict[str, Histogram]
    reconcile_runs: int = 0
    reconcile_errors: int = 0
    repairs: dict[str, int] = field(default_factory=dict)
    vanished_releases: int = 0
    store_errors: dict[str, int] = field(default_factory=dict)
    dns_answers: list[int] | None = None  # the resolver's; None: no resolver
    dns_latency: dict[str, Histogram] = field(default_factory=dict)
    acl_drops: dict[str, tuple[int, int]] | None = None  # counter -> (packets, bytes)

    @classmethod
    def take(cls, svc: HostNetworkingService, read_acl: bool = True) -> Snapshot:
        st, ix, resolver = svc.stats, svc.index, svc.resolver
        snap = cls(
            nets=dict(ix.nets),
            eps=list(ix.eps.values()),
            containers=dict(ix.containers),
            drivers=sorted(svc.drivers),
            attach=st.attach.snapshot(),
            detach=st.detach.snapshot(),
            reconcile_runs=st.reconcile_runs,
            reconcile_errors=st.reconcile_errors,
            repairs=dict(st.repairs),
            vanished_releases=st.vanished_releases,
            store_errors=svc.store.errors(),
        )
        if resolver is not None:
            snap.dns_answers = list(resolver.answers)
            snap.dns_latency = resolver.forwarder.latency.snapshot()
        if read_acl:
            try:
                snap.acl_drops = nft_counters.counters("netdev", acl.TABLE)
            except HostnetError as exc:  # the rest of the scrape still answers
                log.warning("metrics: %s", exc)
        return snap


# -- rendering ---------------------------------------------------------------------------
def _histograms(
    name: str, doc: str, label: str, values: dict[str, Histogram], always: list[str]
) -> HistogramMetricFamily:
    fam = HistogramMetricFamily(name, doc, labels=[label])
    for key in sorted({*always, *values}):
        h = values.get(key)
        if h is None:
            fam.add_metric([key], [("+Inf", 0)], 0.0)
            continue
        buckets, total = h.cumulative()
        fam.add_metric([key], buckets, total)
    return fam


def render(s: Snapshot) -> Iterator[Metric]:
    """The metric families of one snapshot (pure: unit tests feed it their own)."""
    yield _histograms(
        "hostnet_attach_seconds",
        "Time to attach an endpoint (record, realize in the kernel, names), by driver.",
        "driver",
        s.attach,
        s.drivers,
    )
    yield _histograms(
        "hostnet_detach_seconds",
        "Time to detach an endpoint, by driver.",
        "driver",
        s.detach,
        s.drivers,
    )
    yield from _per_network(s)
    if s.dns_answers is not None:
        yield from _dns(s.dns_answers, s.dns_latency)
    if s.acl_drops is not None:
        yield from _acl(s)
    runs = CounterMetricFamily("hostnet_reconcile_runs", "Reconcile passes since start.")
    runs.add_metric([], s.reconcile_runs)
    yield runs
    repairs = CounterMetricFamily(
        "hostnet_reconcile_repairs", "What reconcile repaired, by kind.", labels=["kind"]
    )
    for kind in REPAIR_KINDS:
        repairs.add_metric([kind], s.repairs.get(kind, 0))
    yield repairs
    errors = CounterMetricFamily("hostnet_reconcile_errors", "Errors reconcile carried on past.")
    errors.add_metric([], s.reconcile_errors)
    yield errors
    vanished = CounterMetricFamily(
        "hostnet_vanished_namespace_releases",
        "CNI attachments released because their namespace's path went (no DEL came).",
    )
    vanished.add_metric([], s.vanished_releases)
    yield vanished
    store = CounterMetricFamily(
        "hostnet_store_errors", "Failed calls to the intent store, by kind.", labels=["kind"]
    )
    for kind, n in sorted(s.store_errors.items()):
        store.add_metric([kind], n)
    yield store


def _per_network(s: Snapshot) -> Iterator[Metric]:
    eps = dict.fromkeys(s.nets, 0)
    mappings = dict.fromkeys(s.nets, 0)
    for ep in s.eps:
        if ep.network_id in eps:
            eps[ep.network_id] += 1
            mappings[ep.network_id] += len(ep.ports)
    for name, doc, counts in (
        ("hostnet_endpoints", "Endpoints on this host, by network.", eps),
        ("hostnet_port_mappings", "Published host ports, by network.", mappings),
    ):
        fam = GaugeMetricFamily(name, doc, labels=["network", "driver"])
        for nid, n in counts.items():
            fam.add_metric([s.nets[nid].name, s.nets[nid].driver], n)
        yield fam


def _dns(answers: list[int], latency: dict[str, Histogram]) -> Iterator[Metric]:
    fam = CounterMetricFamily(
        "hostnet_dns_queries",
        "Queries the embedded resolver answered, by where the answer came from (local: "
        "the resolver itself; forwarded: the upstreams) and its rcode.",
        labels=["source", "rcode"],
    )
    for source, base in SOURCES.items():
        for rcode in range(16):
            n = answers[base + rcode]
            if n or rcode in RCODES:
                fam.add_metric([source, RCODES.get(rcode, str(rcode))], n)
    yield fam
    yield _histograms(
        "hostnet_dns_upstream_seconds",
        "Round trip of a forwarded query to the upstream server that answered it.",
        "upstream",
        latency,
        [],
    )


def _acl(s: Snapshot) -> Iterator[Metric]:
    drops = s.acl_drops or {}
    doc = "dropped by the endpoint's ACL rules and the inbound default after them"
    packets = CounterMetricFamily(
        "hostnet_acl_dropped_packets", f"Packets {doc}.", labels=["network", "container"]
    )
    octets = CounterMetricFamily(
        "hostnet_acl_dropped_bytes", f"Bytes {doc}.", labels=["network", "container"]
    )
    for ep in s.eps:
        counted = drops.get(acl.counter_name(ep.id[:12]))
        net, c = s.nets.get(ep.network_id), s.containers.get(ep.container_id)
        if counted is None or net is None or c is None:
            continue  # no chains of its own (the default table), or going
        packets.add_metric([net.name, c.name], counted[0])
        octets.add_metric([net.name, c.name], counted[1])
    yield packets
    yield octets


class ServiceCollector(Collector):
    """The scrape: a snapshot of the service, rendered."""

    def __init__(self, svc: HostNetworkingService) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Metric]:
        return render(Snapshot.take(self.svc))


# -- the server --------------------------------------------------------------------------
class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never holds up the daemon's stop

    def server_bind(self) -> None:
        # HTTPServer's would look the address up (getfqdn): seconds without a resolver
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]
        self.setup_environ()


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """Bound at construction, serving once ``serve`` has the service."""

    def __init__(self, listen: tuple[str, int]) -> None:
        host, port = listen
        self.registry = CollectorRegistry(auto_describe=False)
        cls = _Server6 if ":" in host else _Server
        try:
            self.httpd = make_server(
                host, port, make_wsgi_app(self.registry), cls, handler_class=_Quiet
            )
        except OSError as exc:
            shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise Unavailable(
                f"cannot serve metrics on {shown}: {exc.strerror or exc}",
                "give --metrics an address of this host and a port nothing else uses",
            ) from None
        self._thread: threading.Thread | None = None

    def serve(self, svc: HostNetworkingService) -> None:
        self.registry.register(ServiceCollector(svc))
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, memory, fds
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="hostnet-metrics", daemon=True
        )
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics", *self.httpd.server_address[:2])

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
        self.httpd.server_close()
