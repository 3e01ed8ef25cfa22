"""Counts kept where things happen, read by the metrics endpoint (``metrics.py``) at scrape.

Plain ints and floats, no locks and no metrics library: each is written by one thread (the
resolver's loop, or a request holding the service lock), and a scrape copies them (a
list or dict copy is atomic under the GIL). Counting costs an index and an add, whether
or not anyone scrapes.
"""

from __future__ import annotations

import bisect
from typing import Any

# seconds; an attach waiting for a DHCP lease or SLAAC may take 10 s
ATTACH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DNS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Histogram:
    """Observations by bucket (``counts[i]``: those at most ``bounds[i]``, the last one
    above every bound) and their sum; Prometheus's cumulative form is made at scrape."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> tuple[list[tuple[str, int]], float]:
        """``[(le, count at most le), ..., ("+Inf", all)]`` and the sum, as a scrape sees them."""
        counts, total = list(self.counts), self.sum
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), counts, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out, total


class Histograms:
    """One histogram per label value (a driver, an upstream server), at most ``limit`` of
    them: values beyond it are counted under ``"other"``, so a stream of new ones (leases
    naming new DNS servers) cannot grow the series without bound."""

    def __init__(self, bounds: tuple[float, ...], limit: int = 64) -> None:
        self.bounds, self.limit = bounds, limit
        self.by: dict[str, Histogram] = {}

    def observe(self, label: str, value: float) -> None:
        h = self.by.get(label)
        if h is None:
            if len(self.by) >= self.limit:
                label = "other"
            h = self.by.get(label)
            if h is None:
                h = self.by[label] = Histogram(self.bounds)
        h.observe(value)

    def snapshot(self) -> dict[str, Histogram]:
        return dict(self.by)


class ServiceStats:
    """What the service counts: attach and detach times by driver, reconcile's repairs.
    Written under the service lock."""

    def __init__(self) -> None:
        self.attach = Histograms(ATTACH_BUCKETS)
        self.detach = Histograms(ATTACH_BUCKETS)
        self.reconcile_runs = 0
        self.reconcile_errors = 0
        self.repairs: dict[str, int] = {}  # kind -> how many, since start
        self.vanished_releases = 0  # attachments released because their namespace went

    def reconciled(self, report: dict[str, Any]) -> None:
        """Count one reconcile's report (``reconcile.reconcile``'s)."""
        self.reconcile_runs += 1
        self.reconcile_errors += len(report.get("errors", ()))
        for kind, key in REPAIR_KINDS.items():
            n = len(report.get(key, ()))
            if n:
                self.repairs[kind] = self.repairs.get(kind, 0) + n


# the repairs label -> reconcile's report key
REPAIR_KINDS = {
    "container_removed": "removed_containers",
    "endpoint_repaired": "repaired_endpoints",
    "swept": "swept",
}
