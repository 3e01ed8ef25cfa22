"""ACL cost: new-TCP-connection rate into a container with 1 and with 1,000 port-ACL rules.

One lab host runs hostnetd; a container on the default ``nat`` network runs a TCP server on
port 80 (a python accept loop that closes every connection). The lab host namespace itself is
the client: a python loop opens a TCP connection to the container's address, then closes it
(SO_LINGER 0: an RST, so no TIME_WAIT piles up on the client), for a fixed time; the rate is
connections per second. The rules are inbound blocks on TCP local ports 10000 up that the test
traffic (port 80) never matches, so every packet into the container walks all of them before
the default inbound allow (the rules live in hostnet's netdev egress chain on the host end of
the container's veth). The rule set is replaced (PUT /containers/NAME/acl, one nftables
transaction) between rounds: 1 rule, 100 rules (for the shape) and 1,000 rules in turn, order
reversed every other round.
Before the rounds a matching rule (block TCP port 80) is checked to really block.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from common import Lab, emit, in_ns, machine, ms_since, ratio, require_root, summary
from hostnet.client import Client

SERVER = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80))
s.listen(4096)
while True:
    try:
        c, _ = s.accept()
    except OSError:
        continue
    c.close()
"""

# connect + close (RST) in a loop for a fixed time; prints {"n", "errors", "seconds"}
RATE = """
import json, socket, struct, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
linger = struct.pack("ii", 1, 0)
n = errors = 0
t0 = time.perf_counter()
end = t0 + seconds
while time.perf_counter() < end:
    s = socket.socket()
    s.settimeout(2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    try:
        s.connect((host, port))
        n += 1
    except OSError:
        errors += 1
    s.close()
print(json.dumps({"n": n, "errors": errors, "seconds": time.perf_counter() - t0}))
"""

# a few connects with a short timeout; prints how many succeeded and what the others raised
PROBE = """
import json, socket, sys
host, port, n, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
ok, errs = 0, []
for _ in range(n):
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        ok += 1
    except OSError as exc:
        errs.append(type(exc).__name__)
    s.close()
print(json.dumps({"ok": ok, "failed": len(errs), "errors": sorted(set(errs))}))
"""

FIRST_PORT = 10000


def rules(n: int) -> list[str]:
    """n inbound block rules the test traffic (TCP port 80) never matches."""
    return [f"action=block;dir=in;proto=tcp;lport={FIRST_PORT + i}" for i in range(n)]


def put_acl(c: Client, name: str, specs: list[str]) -> float:
    """Replace the container's rule set; milliseconds the PUT took."""
    t0 = time.perf_counter()
    c.request("PUT", f"/containers/{name}/acl", {"rules": specs})
    return ms_since(t0)


def rate(ns: str, ip: str, seconds: float) -> dict[str, Any]:
    res = in_ns(ns, "python3", "-c", RATE, ip, "80", str(seconds), timeout=seconds + 60)
    r: dict[str, Any] = json.loads(res.stdout)
    r["per_s"] = round(r["n"] / r["seconds"], 1)
    return r


def probe(ns: str, ip: str, n: int = 3, timeout: float = 1.0) -> dict[str, Any]:
    res = in_ns(ns, "python3", "-c", PROBE, ip, "80", str(n), str(timeout), timeout=60)
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def kernel_rules(host_ns: str) -> dict[str, int]:
    """Rules per chain of hostnet's netdev ACL table, counted from nft's JSON."""
    res = in_ns(host_ns, "nft", "-j", "list", "table", "netdev", "hostnet_acl", check=False)
    if res.returncode != 0:
        return {}
    counts: dict[str, int] = {}
    for obj in json.loads(res.stdout).get("nftables", []):
        if "rule" in obj:
            chain = obj["rule"]["chain"]
            counts[chain] = counts.get(chain, 0) + 1
    return counts


def conntrack_count(ns: str) -> int:
    """Connection-tracking entries in the lab host namespace (-1 when unreadable)."""
    res = in_ns(ns, "cat", "/proc/sys/net/netfilter/nf_conntrack_count", check=False)
    return int(res.stdout) if res.returncode == 0 and res.stdout.strip().isdigit() else -1


def conntrack_max() -> int:
    try:
        with open("/proc/sys/net/netfilter/nf_conntrack_max") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return -1


def main() -> None:
    require_root()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument(
        "--mid", type=int, default=100, help="a third rule count, for the shape (0: none)"
    )
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ACL_ROUNDS", "7")))
    ap.add_argument("--seconds", type=float, default=2.0, help="length of one rate run")
    args = ap.parse_args()

    started = machine()
    sets = {"1": rules(1), "n": rules(args.rules)}
    if args.mid:
        sets["mid"] = rules(args.mid)
    many, one = sets["n"], sets["1"]
    with Lab("a") as lab:
        daemon, _ = lab.host("hn")
        host = daemon.host
        c = daemon.client()
        view = c.post("/containers", {"name": "srv", "networks": [{"network": "nat"}]})
        ip = next(iter(view["Networks"].values()))["IPAddress"]
        lab.spawn(view["NetnsPath"], "python3", "-c", SERVER)
        time.sleep(0.3)

        # sanity: the server answers, a matching rule blocks, the baseline set lets through
        check: dict[str, Any] = {"no_rules": probe(host, ip)}
        put_acl(c, "srv", ["action=block;dir=in;proto=tcp;lport=80"])
        check["block_lport_80"] = probe(host, ip)
        put_acl(c, "srv", one)
        check["one_nonmatching_rule"] = probe(host, ip)
        blocked_ok = (
            check["no_rules"]["ok"] > 0
            and check["block_lport_80"]["ok"] == 0
            and check["one_nonmatching_rule"]["failed"] == 0
        )
        if not blocked_ok:
            raise RuntimeError(f"ACL sanity check failed: {check}")

        rate(host, ip, 1.0)  # warm-up
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in sets}
        put_ms: dict[str, list[float]] = {k: [] for k in sets}
        chains_n: dict[str, int] = {}
        conntrack_max_seen = 0
        keys = [k for k in ("1", "mid", "n") if k in sets]
        for rnd in range(args.rounds):
            order = keys if rnd % 2 == 0 else keys[::-1]
            for k in order:
                put_ms[k].append(put_acl(c, "srv", sets[k]))
                if k == "n" and not chains_n:
                    chains_n = kernel_rules(host)
                time.sleep(0.3)
                runs[k].append(rate(host, ip, args.seconds))
                conntrack_max_seen = max(conntrack_max_seen, conntrack_count(host))
            print(f"round {rnd + 1}: " + ", ".join(f"{k} {runs[k][-1]['per_s']}/s" for k in order))
        put_acl(c, "srv", one)
        chains_1 = kernel_rules(host)
        check["one_rule_at_end"] = probe(host, ip)
        errors = [ln for ln in daemon.log().splitlines() if "ERROR" in ln or "Traceback" in ln]
        rss = daemon.rss_kib()
        leftovers = lab.close()

    per_s = {k: [r["per_s"] for r in v] for k, v in runs.items()}
    med1, medn = statistics.median(per_s["1"]), statistics.median(per_s["n"])
    mid = (
        {
            "rules": args.mid,
            "conn_per_s": summary(per_s["mid"], 1),
            "ratio_over_1": ratio(statistics.median(per_s["mid"]), med1),
            "put_ms": summary(put_ms["mid"], 1),
        }
        if args.mid
        else None
    )
    # extra time per connection that the rules cost, per rule (from the medians)
    per_rule_ns = (1e9 / medn - 1e9 / med1) / max(args.rules - 1, 1) if medn and med1 else None
    paired = [n / o for n, o in zip(per_s["n"], per_s["1"], strict=True) if o]
    result = {
        "machine": started,
        "rules": args.rules,
        "rounds": args.rounds,
        "seconds_per_run": args.seconds,
        "target_ratio": 0.9,
        "container_ip": ip,
        "rule_spec_example": many[-1],
        "conn_per_s_1_rule": summary(per_s["1"], 1),
        "conn_per_s_n_rules": summary(per_s["n"], 1),
        "conn_per_s_all": per_s,
        "connect_errors": {k: sum(r["errors"] for r in v) for k, v in runs.items()},
        "ratio_n_over_1": ratio(medn, med1),
        "mid": mid,
        "extra_ns_per_connection_per_rule": round(per_rule_ns, 1) if per_rule_ns else None,
        "conntrack_count_max_seen": conntrack_max_seen,
        "paired_ratio_median": round(statistics.median(paired), 3) if paired else None,
        "put_ms_1_rule": summary(put_ms["1"], 1),
        "put_ms_n_rules": summary(put_ms["n"], 1),
        "put_ms_all": {k: [round(x, 1) for x in v] for k, v in put_ms.items()},
        "conntrack_max": conntrack_max(),
        "kernel_rules_per_chain_n": chains_n,
        "kernel_rules_per_chain_1": chains_1,
        "sanity": check,
        "hostnetd_rss_kib_end": rss,
        "hostnetd_log_errors": errors[:5],
        "leftovers": leftovers,
    }
    emit("aclcost", result)


if __name__ == "__main__":
    main()
