"""Metrics as Prometheus sees them: a real Prometheus (Debian's) in the lab scrapes
hostnetd every second, and its HTTP API shows the series move after attaches, lookups
(a local name, a forwarded NXDOMAIN) and a packet an ACL rule blocks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers import ask, serve
from test_dns import dig, upstream

from lab import Lab, in_ns

PORT = 9464
QUERY = (  # run inside the Prometheus namespace: the test's own namespace has no lab route
    "import json, sys, urllib.parse, urllib.request\n"
    "url = sys.argv[1] + '/api/v1/query?' + urllib.parse.urlencode({'query': sys.argv[2]})\n"
    "print(urllib.request.urlopen(url, timeout=5).read().decode())\n"
)


class Prometheus:
    """Debian's prometheus in a lab node, scraping one target every second."""

    def __init__(self, lab: Lab, target: str) -> None:
        self.ns, ip = lab.node("prom")
        self.url = f"http://{ip}:9090"
        home = os.path.join(lab.tmp, "prometheus")
        os.makedirs(home)
        config = os.path.join(home, "prometheus.yml")
        with open(config, "w") as fh:
            fh.write(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: hostnetd\n"
                f"    static_configs:\n      - targets: ['{target}']\n"
            )
        self.log = os.path.join(home, "prometheus.log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    "nsenter",
                    f"--net=/run/netns/{self.ns}",
                    "prometheus",
                    f"--config.file={config}",
                    f"--storage.tsdb.path={home}/data",
                    f"--web.listen-address={ip}:9090",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        lab.procs.append(self.proc)  # a safety net: stop() ends it by its pid first

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector ([] while Prometheus is not up yet)."""
        res = in_ns(self.ns, sys.executable, "-c", QUERY, self.url, expr, check=False)
        if res.returncode != 0:
            return []
        out = json.loads(res.stdout)
        assert out["status"] == "success", out
        return list(out["data"]["result"])

    def value(self, expr: str) -> float | None:
        """The one sample's value, None when the expression selects nothing."""
        vec = self.query(expr)
        assert len(vec) <= 1, vec
        return float(vec[0]["value"][1]) if vec else None

    def wait(
        self, expr: str, ok: Callable[[float | None], bool], timeout: float = 20
    ) -> float | None:
        deadline = time.monotonic() + timeout
        while True:
            v = self.value(expr)
            if ok(v):
                return v
            if time.monotonic() > deadline:
                with open(self.log, errors="replace") as fh:
                    tail = fh.read()[-1500:]
                raise AssertionError(f"{expr} is {v} after {timeout} s; prometheus: {tail}")
            time.sleep(0.5)


@pytest.fixture
def prom(lab: Lab) -> Iterator[tuple[Prometheus, Any]]:
    if shutil.which("prometheus") is None:
        pytest.skip("needs Debian's prometheus (scripts/test.sh installs it)")
    d, ip = lab.host()
    d.stop()  # the address is known now: again, serving metrics on it
    d.start("--metrics", f"{ip}:{PORT}")
    p = Prometheus(lab, f"{ip}:{PORT}")
    try:
        p.wait('up{job="hostnetd"}', lambda v: v == 1, timeout=60)
        yield p, d
    finally:
        p.stop()


def test_prometheus_sees_attaches_lookups_and_acl_drops_move(
    lab: Lab, prom: tuple[Prometheus, Any]
) -> None:
    p, d = prom
    attaches = 'hostnet_attach_seconds_count{driver="nat"}'
    assert p.value(attaches) == 0  # every driver's series is there from the start
    # attaches: two containers on a network whose names the embedded resolver answers,
    # its other questions going to an upstream in the lab that says NXDOMAIN under .test
    dns_ip, _ = upstream(lab)
    d.cli("network", "create", "--subnet", "172.20.7.0/24", "-o", f"dnsservers={dns_ip}", "n1")
    a = serve(d, "n1", "a")
    b = serve(d, "n1", "b")
    p.wait(attaches, lambda v: v == 2)
    assert p.value('hostnet_endpoints{network="n1",driver="nat"}') is not None
    p.wait('hostnet_endpoints{network="n1",driver="nat"}', lambda v: v == 2)

    # lookups, by source and rcode: a local name, a forwarded NXDOMAIN, a forwarded answer
    local = 'hostnet_dns_queries_total{source="local",rcode="NOERROR"}'
    nxdomain = 'hostnet_dns_queries_total{source="forwarded",rcode="NXDOMAIN"}'
    latency = f'hostnet_dns_upstream_seconds_count{{upstream="{dns_ip}"}}'
    local0, nx0 = p.value(local), p.value(nxdomain)
    assert local0 is not None and nx0 == 0
    assert dig(b["netns"], "a") == ("NOERROR", [a["ip"]])
    assert dig(b["netns"], "nothing.test") == ("NXDOMAIN", [])
    assert dig(b["netns"], "www.ext.test") == ("NOERROR", ["192.0.2.55"])
    p.wait(local, lambda v: v is not None and v >= local0 + 1)
    p.wait(nxdomain, lambda v: v == 1)
    p.wait(latency, lambda v: v == 2)  # the two forwarded questions' round trips
    assert p.value('hostnet_dns_queries_total{source="forwarded",rcode="NOERROR"}') == 1

    # a packet blocked by an ACL rule: the drop counter of that endpoint goes up
    web = serve(d, "nat", "web", 80, False, "--acl", "action=block;dir=in;proto=tcp;lport=80")
    drops = 'hostnet_acl_dropped_packets_total{network="nat",container="web"}'
    p.wait(drops, lambda v: v == 0)
    assert p.value('hostnet_acl_dropped_packets_total{container="a"}') is None  # no rules
    assert ask(d.host, web["ip"], 80, timeout=1) == ""  # blocked
    p.wait(drops, lambda v: v is not None and v >= 1)
    p.wait(attaches, lambda v: v == 3)

    # a removed endpoint's series goes with it (Prometheus marks it stale), and so does
    # its counter in the kernel
    d.cli("rm", "web")
    p.wait(drops, lambda v: v is None)
    listed = in_ns(d.host, "nft", "list", "counters", "table", "netdev", "hostnet_acl", check=False)
    counters = listed.stdout
    assert "drops_" not in counters, counters
    p.wait('hostnet_detach_seconds_count{driver="nat"}', lambda v: v is not None and v >= 1)
    runs = p.value("hostnet_reconcile_runs_total")
    assert runs is not None and runs >= 1  # the one at start
    d.cli("system", "reconcile")
    p.wait("hostnet_reconcile_runs_total", lambda v: v is not None and v >= runs + 1)
