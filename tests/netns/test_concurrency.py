"""Requests do not wait behind a slow one: a DHCP lease wait (up to 15 s) leaves the daemon
free for other attaches, ls and inspect."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from helpers import ask, serve

from lab import Lab, eventually

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src"))
from hostnet.client import Client  # noqa: E402


def test_a_dhcp_lease_wait_blocks_no_other_request(lab: Lab) -> None:
    d, host_ip = lab.host()
    client, _ = lab.node("client")
    # no DHCP server on the segment: the attach waits out its 15 s for a lease
    d.cli("network", "create", "-d", "transparent", "-o", "interface=eth0", "nodhcp")
    result: dict[str, Any] = {}

    def slow() -> None:
        t0 = time.monotonic()
        result["res"] = d.cli("run", "--net", "nodhcp", "--", "true", check=False, timeout=60)
        result["s"] = time.monotonic() - t0

    waiting = threading.Thread(target=slow)
    waiting.start()
    api = Client(d.socket, timeout=10)

    def on_nodhcp() -> None:  # the slow request has its compartment and waits for a lease
        assert any("nodhcp" in c["Networks"] for c in api.get("/containers"))

    eventually(on_nodhcp, timeout=10)
    worst = 0.0
    for path in ("/networks", "/containers", "/networks/nat", "/networks/nodhcp"):
        t0 = time.monotonic()
        api.get(path)
        worst = max(worst, time.monotonic() - t0)
    t0 = time.monotonic()
    web = serve(d, "nat", "web", 80, False, "-p", "8080:80")
    attach_s = time.monotonic() - t0
    assert waiting.is_alive(), "the DHCP attach finished early: the test proves nothing"
    assert ask(client, host_ip, 8080) == "web"
    assert worst < 0.05, f"ls/inspect took {worst * 1000:.0f} ms behind a DHCP wait"
    assert attach_s < 5, f"a nat attach took {attach_s:.1f} s behind a DHCP wait"
    waiting.join(60)
    res = result["res"]
    assert res.returncode != 0 and "no DHCP lease" in res.stderr, res.stderr
    assert result["s"] >= 14, "the lease wait was cut short"
    names = [c["Name"] for c in d.json("ps", "--format", "json")]
    assert names == [web["name"]], names
    d.cli("rm", "web")
    d.cli("network", "rm", "nodhcp")
