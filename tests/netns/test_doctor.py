"""hostnet doctor in a lab host: planted problems are found, each with a remedy, and the
command it prints fixes the problem (traffic flows again, the check turns ok)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from helpers import ping

from hostnet.doctor.probe import fd_limits
from lab import Daemon, Lab, etcd_member, in_ns, wait_etcd


def doctor(d: Daemon, *args: str, socket: str = "") -> tuple[int, dict[str, Any]]:
    """``hostnet doctor --format json`` run inside the lab host's namespace."""
    res = in_ns(
        d.host,
        "hostnet",
        "--socket",
        socket or d.socket,
        "doctor",
        "--format",
        "json",
        *args,
        check=False,
        timeout=60,
    )
    assert res.returncode in (0, 1, 2), res.stderr
    report = json.loads(res.stdout)
    assert report["status"] == ("ok", "warning", "error")[res.returncode]
    return res.returncode, report


def by_check(report: dict[str, Any], check: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["check"] == check]


def level(report: dict[str, Any], check: str) -> str:
    found = by_check(report, check)
    assert found, f"no {check} finding in {report}"
    return max((f["level"] for f in found), key=["ok", "warning", "error"].index)


def container_netns(d: Daemon, name: str) -> str:
    return str(next(c["NetnsPath"] for c in d.json("ps", "--format", "json") if c["Name"] == name))


def test_planted_problems_are_found_and_the_printed_remedies_fix_them(lab: Lab) -> None:
    router, gateway = lab.router()
    d, _ = lab.host("h1")
    lab.adapter(d.host, "eth1")
    d.cli("run", "-d", "--net", "nat", "--name", "c1", "--", "sleep", "300")
    c1 = container_netns(d, "c1")
    assert ping(c1, gateway)
    rc, report = doctor(d)
    for check in ("forwarding.ipv4", "firewall.forward", "adapters", "daemon", "kernel.nftables"):
        assert level(report, check) == "ok", by_check(report, check)

    # what users' hosts have: forwarding turned off by a sysctl file, another firewall's
    # forward chain dropping by default, an adapter in a bridge made out of band
    in_ns(d.host, "sysctl", "-qw", "net.ipv4.ip_forward=0")
    in_ns(
        d.host,
        "nft",
        "add table ip other_fw; "
        "add chain ip other_fw forward { type filter hook forward priority 0; policy drop; }",
    )
    in_ns(d.host, "ip", "link", "add", "br-oob", "type", "bridge")
    in_ns(d.host, "ip", "link", "set", "eth1", "master", "br-oob")
    assert not ping(c1, gateway)

    rc, report = doctor(d)
    assert rc == 2
    planted = {"forwarding.ipv4": "error", "firewall.forward": "error", "adapters": "warning"}
    for check, want in planted.items():
        assert level(report, check) == want, by_check(report, check)
    fw = by_check(report, "firewall.forward")[0]
    assert "ip other_fw chain forward" in fw["what"] and fw["remedy"]
    assert "eth1 is a port of bridge br-oob" in by_check(report, "adapters")[1]["what"]

    for check in planted:
        for f in by_check(report, check):
            if f["level"] != "ok":
                assert f["command"], f
                in_ns(d.host, "sh", "-c", f["command"])

    rc, report = doctor(d)
    for check in planted:
        assert level(report, check) == "ok", by_check(report, check)
    assert level(report, "firewall.br_netfilter") == "ok"
    assert ping(c1, gateway)
    assert "master" not in json.loads(in_ns(d.host, "ip", "-j", "link", "show", "eth1").stdout)[0]
    in_ns(d.host, "nft", "delete table ip other_fw")
    in_ns(d.host, "ip", "link", "del", "br-oob")


def test_descriptor_limit_of_the_running_daemon(lab: Lab) -> None:
    d, _ = lab.host("h1")
    assert d.proc is not None
    pid = d.proc.pid  # nsenter execs hostnetd: the same process
    _, report = doctor(d)
    assert level(report, "limits.nofile") == "ok"
    limits = fd_limits(pid)
    assert limits is not None
    hard = limits[1]
    in_ns(d.host, "prlimit", "--pid", str(pid), f"--nofile=1024:{hard}")

    rc, report = doctor(d)
    assert rc >= 1
    (f,) = by_check(report, "limits.nofile")
    assert f["level"] == "warning" and f"pid {pid}" in f["what"] and "1024" in f["what"]
    assert f["command"] == f"prlimit --pid {pid} --nofile={hard}:{hard}"
    in_ns(d.host, "sh", "-c", f["command"])
    _, report = doctor(d)
    assert level(report, "limits.nofile") == "ok"


def test_without_a_daemon_and_bad_input(lab: Lab) -> None:
    d, _ = lab.host("h1")
    rc, report = doctor(d, socket=f"{lab.tmp}/nothing.sock")
    assert rc >= 1
    (f,) = by_check(report, "daemon")
    assert f["level"] == "warning" and f["what"].startswith("daemon not reachable")
    assert "--socket" in f["remedy"]
    table = in_ns(d.host, "hostnet", "--socket", d.socket, "doctor", check=False)
    assert table.stdout.startswith("LEVEL") and "forwarding.ipv4" in table.stdout
    bad = in_ns(
        d.host, "hostnet", "--socket", d.socket, "doctor", "--store", "10.0.0.1", check=False
    )
    assert bad.returncode == 2 and "not an etcd store URL" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_etcd_members_and_clock(lab: Lab) -> None:
    ns, ip = lab.node("etcd")
    data = f"{lab.tmp}/etcd-e1"
    etcd_member(lab, "e1", ns, ip, f"e1=http://{ip}:2380", data)
    wait_etcd(ns, ip)
    d, _ = lab.host("h1")
    rc, report = doctor(d, "--store", f"etcd://{ip}:2379,{ip}:2479")
    members = by_check(report, "store.etcd")
    assert [m["level"] for m in members] == ["ok", "warning"], members
    assert f"http://{ip}:2379 is healthy" in members[0]["what"]
    assert f"http://{ip}:2479 is not reachable" in members[1]["what"]
    assert level(report, "store.clock") == "ok"
    _, report = doctor(d, "--store", f"etcd://{ip}:2479")
    assert level(report, "store.etcd") == "error" and not by_check(report, "store.clock")


def test_help_states_the_exit_codes() -> None:
    res = subprocess.run(["hostnet", "doctor", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "Exit code 0" in res.stdout
