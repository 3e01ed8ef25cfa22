"""Doctor checks of the cluster store: each etcd member answers and is healthy, and its
clock agrees with ours (the HTTP Date of its answer against the local time).

``ask`` talks to the members; the checks are pure functions of its ``Answer``s.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from hostnet.doctor.findings import Finding, error, ok, warning
from hostnet.errors import InvalidRequest

SKEW_LIMIT_S = 2.0  # the Date header has a resolution of one second
TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Answer:
    """One member's answer to GET /version and GET /health (``problem`` when none)."""

    member: str
    problem: str = ""
    version: str = ""
    healthy: bool = False
    skew_s: float = 0.0  # our clock minus the member's


def members(url: str) -> list[str]:
    """etcd://a:2379,b:2379 (etcds:// for TLS) -> ['http://a:2379', 'http://b:2379']."""
    scheme, sep, rest = url.partition("://")
    hosts = [m.strip() for m in rest.strip("/").split(",") if m.strip()]
    if not sep or scheme not in ("etcd", "etcds") or not hosts:
        raise InvalidRequest(
            f"--store {url!r} is not an etcd store URL",
            "give etcd://HOST:PORT[,HOST:PORT...] (etcds:// for TLS), as hostnetd's --store",
        )
    proto = "https" if scheme == "etcds" else "http"
    return [f"{proto}://{h}" for h in hosts]


def ask(member: str, context: ssl.SSLContext | None = None) -> Answer:
    u = urlsplit(member)
    host, port = u.hostname or "", u.port or 2379
    try:
        if u.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=TIMEOUT_S, context=context
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
        sent = time.time()
        conn.request("GET", "/version")
        resp = conn.getresponse()
        body = resp.read()
        back = time.time()
        date = resp.getheader("Date", "")
        conn.request("GET", "/health")
        health = json.loads(conn.getresponse().read() or b"{}")
        conn.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Answer(member, problem=str(exc) or type(exc).__name__)
    skew = 0.0
    if date:
        theirs = email.utils.parsedate_to_datetime(date).timestamp() + 0.5  # mid-second
        skew = (sent + back) / 2 - theirs
    version = ""
    with contextlib.suppress(ValueError, AttributeError):
        version = str(json.loads(body).get("etcdserver", ""))
    return Answer(member, version=version, healthy=str(health.get("health")) == "true", skew_s=skew)


def check_members(answers: list[Answer]) -> list[Finding]:
    out = []
    down = [a for a in answers if a.problem]
    for a in answers:
        if a.problem:
            out.append(
                (error if len(down) == len(answers) else warning)(
                    "store.etcd",
                    f"etcd member {a.member} is not reachable: {a.problem}",
                    "hostnetd keeps its intent there; with every member down attaches "
                    "fail, with some down the others carry on",
                    f"check that etcd runs there and listens on that address "
                    f"(etcdctl --endpoints={a.member} endpoint health), and that TCP "
                    f"{a.member.rsplit(':', 1)[-1]} is open from this host",
                )
            )
        elif not a.healthy:
            out.append(
                error(
                    "store.etcd",
                    f"etcd member {a.member} answers but is not healthy",
                    "an unhealthy member has no quorum or no leader: writes fail",
                    "see etcd's log and 'etcdctl endpoint status --cluster'",
                )
            )
        else:
            out.append(ok("store.etcd", f"etcd member {a.member} is healthy (etcd {a.version})"))
    return out


def check_clock(answers: list[Answer]) -> list[Finding]:
    up = [a for a in answers if not a.problem]
    if not up:
        return []
    worst = max(up, key=lambda a: abs(a.skew_s))
    if abs(worst.skew_s) <= SKEW_LIMIT_S:
        return [ok("store.clock", f"clocks agree with etcd's within {SKEW_LIMIT_S:.0f} s")]
    ahead = "ahead of" if worst.skew_s > 0 else "behind"
    return [
        warning(
            "store.clock",
            f"this host's clock is {abs(worst.skew_s):.0f} s {ahead} etcd member {worst.member}",
            "TLS certificates look not yet valid or expired, and times recorded by one "
            "host make no sense on another",
            "synchronize the clocks of every host and etcd member (NTP: "
            "'timedatectl set-ntp true', chrony or systemd-timesyncd)",
        )
    ]
