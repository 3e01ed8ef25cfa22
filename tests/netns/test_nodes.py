"""`hostnet node ls` lists every member of the cluster (issue 21): a daemon that joined the
etcd cluster and has no overlay endpoint is listed (0 endpoints), and a daemon that was
killed stays listed with its lease lost once the lease has run out."""

from __future__ import annotations

import signal
from typing import Any

from helpers import serve
from test_identity import _etcd_and_hosts, _kept_id

from lab import Daemon, Lab, eventually

SUBNET = "10.0.21.0/24"


def node_ls(d: Daemon) -> list[list[str]]:
    """The table's lines, split in words (the header first)."""
    return [line.split() for line in d.cli("node", "ls").stdout.splitlines()]


def by_host(d: Daemon) -> dict[str, dict[str, Any]]:
    return {r["Host"]: r for r in d.json("node", "ls", "--format", "json")}


def test_node_ls_lists_idle_members_and_members_whose_lease_was_lost(lab: Lab) -> None:
    with _etcd_and_hosts(lab, 3) as (_, _, daemons):
        h1, h2, h3 = daemons
        ids = [_kept_id(d) for d in daemons]
        vteps = [d.args[d.args.index("--advertise-addr") + 1] for d in daemons]
        h1.cli("network", "create", "-d", "overlay", "--subnet", SUBNET, "ov")
        serve(h1, "ov", "a")
        # h2 and h3 never had an overlay endpoint: members all the same, seen from any host
        want = sorted([[ids[0], vteps[0], "alive", "1"], [ids[1], vteps[1], "alive", "0"],
                       [ids[2], vteps[2], "alive", "0"]])  # fmt: skip
        for d in daemons:
            eventually(lambda d=d: sorted(node_ls(d)[1:]) == want, 10)
            assert node_ls(d)[0] == ["HOST", "VTEP", "STATE", "ENDPOINTS"]
        rows = by_host(h2)
        assert rows[ids[1]]["Endpoints"] == 0 and rows[ids[1]]["VTEP"] == vteps[1]
        # h3's daemon killed: no clean stop, its lease runs out (10 s) and it stays listed
        h3.stop(signal.SIGKILL)
        assert by_host(h1)[ids[2]]["State"] == "alive"  # the lease still runs
        eventually(lambda: by_host(h1)[ids[2]]["State"] == "lease lost", 25)
        rows = by_host(h2)
        assert set(rows) == set(ids)
        assert rows[ids[2]]["VTEP"] == vteps[2] and rows[ids[2]]["Endpoints"] == 0
        assert rows[ids[0]]["State"] == rows[ids[1]]["State"] == "alive"
        lines = node_ls(h1)
        assert len(lines) == 4 and [ids[2], vteps[2], "lease", "lost", "0"] in lines, lines
        # removed for good: it leaves the list
        h1.cli("node", "rm", ids[2])
        assert set(by_host(h2)) == {ids[0], ids[1]}
