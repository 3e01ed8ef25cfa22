"""`hostnet system info` and `system reset`: what the daemon made, and nothing left after."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from helpers import ask, serve

from lab import SEGMENT, Daemon, Lab, eventually, in_ns

pytestmark = pytest.mark.root


def addresses(ns: str, ifname: str) -> set[str]:
    out = json.loads(in_ns(ns, "ip", "-j", "addr", "show", ifname).stdout)[0]
    return {f"{a['local']}/{a['prefixlen']}" for a in out["addr_info"] if a["scope"] == "global"}


def leftovers(d: Daemon) -> dict[str, object]:
    """What hostnet could have left in the lab host: compartments, links, tables, filters,
    DHCP clients."""
    prefix = d.instance_prefix()
    links = json.loads(in_ns(d.host, "ip", "-j", "-d", "link", "show").stdout)
    ours = [
        lk["ifname"]
        for lk in links
        if lk.get("ifalias", "").startswith("hostnet:") or lk["ifname"].startswith("hn")
    ]
    tables = in_ns(d.host, "nft", "list", "tables").stdout.split("\n")
    filters = {
        lk["ifname"]: in_ns(d.host, "tc", "filter", "show", "dev", lk["ifname"], "ingress").stdout
        + in_ns(d.host, "tc", "qdisc", "show", "dev", lk["ifname"])
        .stdout.replace("qdisc noqueue 0: root refcnt 2", "")
        .strip()
        for lk in links
        if lk["ifname"] != "lo"
    }
    dhcp = []  # their pid files and leases are under the daemon's state directory
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode()
            if "udhcpc" in cmd and d.state_dir in cmd:
                dhcp.append(cmd)
        except OSError:
            continue
    return {
        "compartments": [n for n in os.listdir("/run/netns") if n.startswith(prefix)],
        "links": ours,
        "tables": [t for t in tables if "hostnet" in t],
        "tc": {k: v for k, v in filters.items() if v.strip()},
        "dhcp": dhcp,
    }


def test_system_info_names_what_is_in_use(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "172.30.1.0/24", "mine")
    serve(d, "mine", "web", 80, False, "-p", "8080:80")
    info = d.json("system", "info", "--format", "json")
    import hostnet

    assert info["Version"] == info["Client"]["Version"] == hostnet.__version__
    assert info["Store"] == {"Kind": "sqlite", "Location": f"{d.state_dir}/hostnet.db"}
    assert info["Networks"] == 2 and info["Containers"] == 1 and info["Endpoints"] == 1
    assert info["DriversInUse"] == ["nat"]
    assert {"ip hostnet", "ip6 hostnet"} <= set(info["Kernel"]["NftTables"])
    assert info["Kernel"]["Links"]["bridge"] >= 1 and info["Kernel"]["Links"]["veth"] == 1
    assert info["Kernel"]["Release"] == os.uname().release
    table = d.cli("system", "info").stdout
    assert "sqlite" in table and "1 containers" in table and "veth" in table


def test_system_reset_removes_everything_it_made(lab: Lab) -> None:
    router, gw = lab.router()
    lab.spawn(
        router,
        "dnsmasq",
        "--no-daemon",
        "--port=0",
        "--interface=eth0",
        "--bind-interfaces",
        f"--dhcp-range={SEGMENT}.150,{SEGMENT}.199,255.255.255.0,2m",
        f"--dhcp-leasefile={lab.tmp}/leases",
    )
    d, ip = lab.host()
    client, _ = lab.node("client")
    lab.adapter(d.host, "eth1")
    eth0 = addresses(d.host, "eth0")
    # nat: a mapped port, an ACL, a bandwidth limit; transparent with DHCP on eth0; a VLAN
    # (eBPF on the vNIC) on l2bridge over eth1
    d.cli("network", "create", "--subnet", "172.30.2.0/24", "mine")
    serve(d, "mine", "web", 80, False, "-p", "8080:80", "--max-bandwidth", "10m")
    d.cli(
        "run",
        "-d",
        "--net",
        "mine",
        "--name",
        "guarded",
        "--acl",
        "action=block;dir=out;proto=tcp;rport=9",
        "--",
        "sleep",
        "600",
    )
    d.cli("network", "create", "-d", "transparent", "-o", "interface=eth0", "dhcpnet")
    d.cli("run", "-d", "--net", "dhcpnet", "--name", "leased", "--", "sleep", "600")
    d.cli(
        "network",
        "create",
        "-d",
        "l2bridge",
        "--subnet",
        "10.77.0.0/24",
        "-o",
        "interface=eth1",
        "-o",
        "vlanid=7",
        "tagged",
    )
    d.cli("run", "-d", "--net", "tagged", "--name", "vlan", "--", "sleep", "600")
    assert ask(client, ip, 8080) == "web"
    nets = d.json("network", "inspect", "dhcpnet")[0]["Containers"].values()
    leased = next(v["IPv4Address"].split("/")[0] for v in nets)
    made = leftovers(d)
    assert made["compartments"] and made["links"] and made["tables"] and made["dhcp"]
    assert made["tc"], "the bandwidth limit and the VLAN programs are tc objects"

    # no confirmation: nothing changes
    res = subprocess.run(
        ["hostnet", "system", "reset"],
        input="n\n",
        capture_output=True,
        text=True,
        env=d.env,
        timeout=30,
    )
    assert res.returncode != 0 and "4 container(s)" in res.stdout, res.stdout + res.stderr
    assert "mine" in res.stdout and "cancelled: nothing changed" in res.stdout
    assert leftovers(d) == made and len(d.json("ps", "--format", "json")) == 4

    from hostnet.core.procs import processes_in

    running = [p for c in d.json("ps", "--format", "json") for p in processes_in(c["NetnsPath"])]
    assert len(running) >= 4, running
    out = d.cli("system", "reset", "--force").stdout
    assert "removed 4 container(s), 4 network(s)" in out, out
    assert d.proc is not None and d.proc.wait(15) == 0, d.log()[-2000:]
    d.proc = None
    assert leftovers(d) == {"compartments": [], "links": [], "tables": [], "tc": {}, "dhcp": []}
    from hostnet.core.procs import process_start_time

    alive = [p for p in running if process_start_time(p)]
    assert not alive, alive
    assert addresses(d.host, "eth0") == eth0, "the adapter has its address back"
    assert not os.path.exists(d.state_dir)

    # a fresh start is a fresh host: only the default network
    os.makedirs(d.state_dir)
    d.start()
    assert [n["Name"] for n in d.json("network", "ls", "--format", "json")] == ["nat"]
    assert d.json("ps", "--format", "json") == []

    def gone() -> None:
        with open(f"{lab.tmp}/leases") as fh:
            assert leased not in fh.read(), "the DHCP client released its lease"

    eventually(gone)
