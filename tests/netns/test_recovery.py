"""Persistence and recovery: restart, kill -9, objects deleted behind hostnet's back."""

from __future__ import annotations

import json
import os
import signal

import pytest
from helpers import ask, ping, serve

from lab import Daemon, Lab, eventually, in_ns


def kernel_state(d: Daemon) -> dict[str, object]:
    links = json.loads(in_ns(d.host, "ip", "-j", "link", "show").stdout)
    return {
        "links": sorted(x["ifname"] for x in links if x["ifname"].startswith(("hn-", "hv"))),
        "compartments": sorted(
            n for n in os.listdir("/run/netns") if n.startswith(d.instance_prefix())
        ),
        "nft": in_ns(d.host, "nft", "list", "table", "ip", "hostnet", check=False).stdout,
    }


def setup_world(lab: Lab) -> tuple[Daemon, str, str, dict[str, str]]:
    d, host_ip = lab.host()
    client, _ = lab.node("client")
    d.cli("network", "create", "--subnet", "172.16.1.0/24", "CustomNat1")
    web = serve(d, "CustomNat1", "web", 80, False, "-p", "8082:80")
    serve(d, "CustomNat1", "db")
    return d, host_ip, client, web


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["restart", "kill-9"])
def test_state_survives_daemon_restart_and_containers_keep_connectivity(lab: Lab, sig: int) -> None:
    d, host_ip, client, web = setup_world(lab)
    before = kernel_state(d)
    nets_before = d.json("network", "ls", "--format", "json")
    d.stop(sig)
    # containers keep talking while the daemon is down
    assert ask(client, host_ip, 8082) == "web"
    d.start()
    assert kernel_state(d) == before
    assert d.json("network", "ls", "--format", "json") == nets_before
    assert ask(client, host_ip, 8082) == "web"
    # no address is handed out twice after the restart
    new = serve(d, "CustomNat1", "late")
    used = [
        c["IPv4Address"]
        for c in d.json("network", "inspect", "CustomNat1")[0]["Containers"].values()
    ]
    assert len(used) == len(set(used)) == 3 and new["ip"] != web["ip"]
    # and the restarted daemon still removes what it made before
    d.cli("rm", "web", "db", "late")
    assert kernel_state(d)["compartments"] == []


def test_reconcile_recreates_deleted_bridge_veth_and_flushed_ruleset(lab: Lab) -> None:
    d, host_ip, client, web = setup_world(lab)
    db = next(c for c in d.json("ps", "--format", "json") if c["Name"] == "db")
    before = kernel_state(d)
    bridge = d.json("network", "inspect", "CustomNat1")[0]["Switch"]
    in_ns(d.host, "ip", "link", "del", bridge)
    in_ns(d.host, "ip", "link", "del", db["Networks"]["CustomNat1"]["HostIfName"])
    in_ns(d.host, "nft", "flush", "ruleset")
    assert ask(client, host_ip, 8082, timeout=1) == ""
    report = json.loads(d.cli("system", "reconcile").stdout)
    assert sorted(report["repaired_endpoints"]) == ["db/eth0", "web/eth0"]
    assert report["errors"] == []
    assert kernel_state(d) == before
    assert ask(client, host_ip, 8082) == "web"
    assert ask(db["NetnsPath"], web["ip"], 80) == "web"
    assert ping(db["NetnsPath"], "172.16.1.1")


def test_reconcile_at_start_removes_what_no_intent_names(lab: Lab) -> None:
    d, host_ip, client, web = setup_world(lab)
    d.stop(signal.SIGKILL)
    # things named like hostnet's own, but that no intent names
    stray_ns = d.instance_prefix() + "deadbeef0000"
    owner = f"hostnet:{d.instance_prefix()[2:-1]}"
    in_ns(d.host, "ip", "link", "add", "hn-stray", "type", "bridge")
    in_ns(d.host, "ip", "link", "set", "hn-stray", "alias", owner)
    in_ns(d.host, "ip", "link", "add", "hvstray0001", "type", "veth", "peer", "name", "stray-peer")
    in_ns(d.host, "ip", "link", "set", "hvstray0001", "alias", owner)
    os.system(f"ip netns add {stray_ns}")
    # and things that are not hostnet's: never touched
    in_ns(d.host, "ip", "link", "add", "mybr0", "type", "bridge")
    in_ns(d.host, "ip", "link", "add", "myveth0", "type", "veth", "peer", "name", "hvnotmine")
    in_ns(d.host, "ip", "link", "add", "hn-alsonotmine", "type", "bridge")
    in_ns(d.host, "nft", "add", "table", "inet", "mine")
    d.start()
    links = in_ns(d.host, "ip", "-o", "link", "show").stdout
    assert "hn-stray" not in links and "hvstray0001" not in links
    assert "stray-peer" not in links  # it went with its hostnet end
    # foreign objects stay, even one whose peer happens to look like ours
    assert "mybr0" in links and "myveth0" in links and "hn-alsonotmine" in links
    assert not os.path.exists(f"/run/netns/{stray_ns}")
    assert "table inet mine" in in_ns(d.host, "nft", "list", "tables").stdout
    assert ask(client, host_ip, 8082) == "web"


def test_container_whose_compartment_vanished_is_released(lab: Lab) -> None:
    d, host_ip, client, web = setup_world(lab)
    db = next(c for c in d.json("ps", "--format", "json") if c["Name"] == "db")
    d.stop(signal.SIGKILL)
    os.kill(db["Pid"], signal.SIGKILL)
    os.system(f"ip netns del {db['Netns']}")
    d.start()
    assert [c["Name"] for c in d.json("ps", "--format", "json")] == ["web"]
    containers = d.json("network", "inspect", "CustomNat1")[0]["Containers"]
    assert [c["Name"] for c in containers.values()] == ["web"]

    def veth_gone() -> None:
        host_links = in_ns(d.host, "ip", "-o", "link", "show").stdout
        assert db["Networks"]["CustomNat1"]["HostIfName"] not in host_links

    eventually(veth_gone)
    # its address is free again (after the others, as addresses rest a while)
    again = d.cli(
        "run",
        "--net",
        "CustomNat1",
        "--ip",
        db["Networks"]["CustomNat1"]["IPAddress"],
        "--",
        "true",
    )
    assert again.returncode == 0
    assert ask(client, host_ip, 8082) == "web"


def test_two_daemons_in_their_own_namespaces_do_not_touch_each_other(lab: Lab) -> None:
    d1, ip1 = lab.host("h1")
    d2, ip2 = lab.host("h2")
    client, _ = lab.node("client")
    serve(d1, "nat", "w1", 80, False, "-p", "8082:80")
    serve(d2, "nat", "w2", 80, False, "-p", "8082:80")
    assert d1.instance_prefix() != d2.instance_prefix()
    assert ask(client, ip1, 8082) == "w1" and ask(client, ip2, 8082) == "w2"
    d1.cli("system", "reconcile")
    d2.cli("rm", "w2")
    assert ask(client, ip1, 8082) == "w1"
    assert [c["Name"] for c in d1.json("ps", "--format", "json")] == ["w1"]


def invariants(d: Daemon) -> None:
    """Intent and kernel agree exactly; no address is held twice."""
    ps = d.json("ps", "--format", "json")
    comps = sorted(n for n in os.listdir("/run/netns") if n.startswith(d.instance_prefix()))
    assert comps == sorted(c["Netns"] for c in ps)

    def veths_match() -> None:
        veths = json.loads(in_ns(d.host, "ip", "-j", "link", "show", "type", "veth").stdout)
        host_ends = sorted(v["ifname"] for v in veths if v["ifname"].startswith("hv"))
        assert host_ends == sorted(e["HostIfName"] for c in ps for e in c["Networks"].values())

    eventually(veths_match)
    ips = [e["IPAddress"] for c in ps for e in c["Networks"].values()]
    assert len(ips) == len(set(ips))
    for c in ps:
        for name, e in c["Networks"].items():
            got = in_ns(c["NetnsPath"], "ip", "-4", "-o", "addr", "show", e["IfName"]).stdout
            assert e["IPAddress"] in got, f"{c['Name']} lost its address on {name}"


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.5])
def test_kill_9_during_churn_then_restart_converges(lab: Lab, delay: float) -> None:
    import subprocess
    import time

    d, _ = lab.host()
    serve(d, "nat", "steady")
    runs = [
        subprocess.Popen(
            [
                "hostnet",
                "run",
                "-d",
                "--name",
                f"c{i}",
                "-p",
                f"{9000 + i}:80",
                "--",
                "sleep",
                "300",
            ],
            env=d.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(8)
    ]
    time.sleep(delay)
    d.stop(signal.SIGKILL)
    for p in runs:
        p.wait(30)
    d.start()
    invariants(d)
    assert "steady" in [c["Name"] for c in d.json("ps", "--format", "json")]
    # and it keeps working: a new container gets a fresh address
    serve(d, "nat", "after")
    invariants(d)
    for c in d.json("ps", "--format", "json"):
        d.cli("rm", c["Name"])
    assert d.json("ps", "--format", "json") == []
