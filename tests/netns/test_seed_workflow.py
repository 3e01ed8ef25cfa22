"""The first seed document's workflow, its PowerShell lines as written: a container created
STOPPED, its adapter given a static IP and a mapping, then started; ipconfig; a client
fetching through the mapping. A daemon restart between the steps changes nothing."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest
from helpers import ask, wait_listening

from lab import Daemon, Lab, eventually, in_ns

pytestmark = pytest.mark.root

SERVE = ["socat", "TCP-LISTEN:80,reuseaddr,fork", "SYSTEM:read line; echo DemoNAT"]


def ps(d: Daemon, *args: str) -> Any:
    return d.json(*args, "--format", "json") if args[0] != "cmdlet" else None


def state(d: Daemon) -> Any:
    """What must survive a restart: containers with their state and adapters, mappings."""
    cs = d.json("ps", "-a", "--format", "json")
    keep = ("Name", "State", "Pid", "CompartmentId", "Adapters", "Networks", "Image", "Command")
    return [{k: c[k] for k in keep} for c in cs], d.json("nat", "ls", "--format", "json")


def restarted(d: Daemon) -> None:
    before = state(d)
    d.stop()
    d.start("-b", "none")
    assert state(d) == before


def test_the_seeds_commands_as_written(lab: Lab) -> None:
    d, host_ip = lab.host("h", "-b", "none")
    client, _ = lab.node("client")
    cmd = d.cli
    out = cmd(
        "New-ContainerNetwork", "-Name", "nat", "-Mode", "NAT", "-SubnetPrefix", "172.16.0.0/12"
    ).stdout
    assert out.strip() == d.json("network", "inspect", "nat")[0]["Id"]
    cmd(
        "New-Container",
        "-Name",
        "DemoNAT",
        "-ContainerImageName",
        "WindowsServerCore",
        "-NetworkName",
        "nat",
    )
    restarted(d)
    table = cmd("Get-ContainerNetworkAdapter", "-ContainerName", "DemoNAT").stdout.splitlines()
    assert table[0].split() == ["ContainerName", "Name", "Network", "Id", "Static", "MacAddress",
                                "Static", "IPAddress", "Maximum", "Bandwidth"]  # fmt: skip
    net_id = d.json("network", "inspect", "nat")[0]["Id"]
    assert table[2].split() == ["DemoNAT", "Network", "Adapter", net_id, "0"], table
    (c,) = d.json("ps", "-a", "--format", "json")
    assert c["State"] == "created" and c["Image"] == "WindowsServerCore"
    assert not in_ns(d.host, "ip", "netns").stdout.strip() or c["Netns"] not in in_ns(
        d.host, "ls", "/run/netns").stdout  # fmt: skip
    assert d.json("ps", "--format", "json") == []  # not running

    # stopped: its adapter takes a static IP and a mapping, nothing realized yet
    cmd(
        "Set-ContainerNetworkAdapter",
        "-ContainerName",
        "DemoNAT",
        "-StaticIPAddress",
        "172.16.0.100",
    )
    restarted(d)
    cmd("Add-ContainerNetworkAdapterStaticMapping", "-ContainerName", "DemoNAT", "-AdapterName",
        "Network Adapter", "-ExternalPort", "8082", "-InternalPort", "80", "-Protocol", "TCP")  # fmt: skip
    restarted(d)
    rows = d.json("adapter", "ls", "DemoNAT", "--format", "json")
    assert rows[0]["StaticIPAddress"] == "172.16.0.100" and rows[0]["Mappings"] == ["8082:80/tcp"]
    assert rows[0]["IPAddress"] == ""

    cmd("Start-Container", "DemoNAT")
    restarted(d)
    (c,) = d.json("ps", "--format", "json")
    assert c["State"] == "running" and c["Networks"]["nat"]["IPAddress"] == "172.16.0.100"
    ipconfig = cmd("Invoke-Command", "-ContainerName", "DemoNAT", "{ipconfig}").stdout
    assert "Windows IP Configuration" in ipconfig
    assert "Ethernet adapter vEthernet (Network Adapter):" in ipconfig
    assert "   IPv4 Address. . . . . . . . . . . : 172.16.0.100\n" in ipconfig, ipconfig
    assert "   Subnet Mask . . . . . . . . . . . : 255.240.0.0\n" in ipconfig
    assert "   Default Gateway . . . . . . . . . : 172.16.0.1\n" in ipconfig
    cmd("exec", "-d", "DemoNAT", *SERVE)
    wait_listening(c["NetnsPath"], 80)
    assert ask(client, host_ip, 8082) == "DemoNAT"

    # stop keeps the compartment, its address and its mapping; start runs it again
    cmd("Stop-Container", "DemoNAT")
    (c,) = d.json("ps", "-a", "--format", "json")
    assert c["State"] == "stopped" and c["Pid"] == 0
    assert "172.16.0.100" in cmd("ipconfig", "DemoNAT").stdout
    assert ask(client, host_ip, 8082, timeout=1) == ""  # nothing listens
    restarted(d)
    cmd("Start-Container", "DemoNAT")
    cmd("exec", "-d", "DemoNAT", *SERVE)
    wait_listening(c["NetnsPath"], 80)
    assert ask(client, host_ip, 8082) == "DemoNAT"
    assert d.json("ps", "--format", "json")[0]["Networks"]["nat"]["IPAddress"] == "172.16.0.100"

    # the management views of the second document
    assert "DemoNAT" in cmd("Get-NetCompartment").stdout
    assert "8082" in cmd("Get-NetNat").stdout
    assert "nat" in cmd("get-vmswitch").stdout  # any case
    vfp = cmd("Get-VMSwitchExtension", "-VMSwitchName", "nat", "-Name",
              "Microsoft Azure VFP Switch Extension").stdout  # fmt: skip
    assert "Microsoft Azure VFP Switch Extension" in vfp and "True" in vfp, vfp
    res = cmd("Get-VMNetworkAdapter", "-VMName", "ContainerHostVM", check=False)
    assert res.returncode == 2 and "hypervisor" in res.stderr and "Traceback" not in res.stderr
    res = cmd(
        "Set-ContainerNetworkAdapter", "-ContainerName", "DemoNAT", "-Bogus", "1", check=False
    )
    assert res.returncode == 2 and "has no parameter -Bogus" in res.stderr

    # a process that ends on its own leaves the container stopped, not removed
    cmd("rm", "DemoNAT")
    assert d.json("ps", "-a", "--format", "json") == []
    assert json.loads(cmd("nat", "ls", "--format", "json").stdout)[1:] == []


def slowed(d: Daemon) -> None:
    """The daemon frozen for a moment, as a loaded machine may hold it: the old version of
    this test (its app ran `sleep 1`) failed here, as its sleep ended meanwhile. No verdict
    waits on this pause; it only makes a slow machine's timing happen every time."""
    assert d.proc is not None
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(1.2)
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)


def test_adapters_hot_and_cold(lab: Lab) -> None:
    d, host_ip = lab.host("h")
    client, _ = lab.node("client")
    d.cli("network", "create", "--subnet", "172.30.5.0/24", "second")
    # a command that lasts until the test ends it: nothing changes while the test looks
    d.cli("create", "--name", "app", "--network", "nat", "--", "sleep", "infinity")
    d.cli("adapter", "add", "--name", "Side", "app")  # no switch yet
    d.cli("adapter", "connect", "--name", "Side", "app", "second")
    d.cli("start", "app")
    (c,) = d.json("ps", "-a", "--format", "json")
    assert set(c["Networks"]) == {"nat", "second"}

    # its command ends (not through hostnet): stopped, kept, addresses kept
    def stopped() -> None:
        assert d.json("ps", "-a", "--format", "json")[0]["State"] == "stopped"

    os.kill(c["Pid"], signal.SIGTERM)
    eventually(stopped, timeout=10)
    addr = d.json("ps", "-a", "--format", "json")[0]["Networks"]["second"]["IPAddress"]
    d.cli("start", "app")
    assert d.json("ps", "-a", "--format", "json")[0]["Networks"]["second"]["IPAddress"] == addr

    # hot while running: a mapping, a new static address, a disconnect
    d.cli("create", "--name", "web", "--network", "nat", "--", *SERVE)
    d.cli("start", "web")
    web = d.json("ps", "--format", "json")
    path = next(x["NetnsPath"] for x in web if x["Name"] == "web")
    wait_listening(path, 80)
    out = d.cli(
        "adapter", "mapping", "add", "--external-port", "8090", "--internal-port", "80", "web"
    ).stdout
    assert "hot" in out
    assert ask(client, host_ip, 8090) == "DemoNAT"
    out = d.cli("adapter", "set", "--static-ip", "172.16.9.9", "web").stdout
    assert "hot" in out
    assert d.json("adapter", "ls", "web", "--format", "json")[0]["IPAddress"] == "172.16.9.9"
    assert ask(client, host_ip, 8090) == "DemoNAT"  # the mapping follows the new address
    d.cli("adapter", "disconnect", "web")
    web = next(x for x in d.json("ps", "-a", "--format", "json") if x["Name"] == "web")
    assert web["Networks"] == {} and web["State"] == "running"
    assert d.json("adapter", "ls", "web", "--format", "json")[0]["NetworkId"] == ""
    assert ask(client, host_ip, 8090, timeout=1) == ""

    # bad input changes nothing
    for args, said in (
        (("adapter", "set", "--static-ip", "10.0.0.1", "app"), "2 adapters"),
        (("adapter", "set", "--name", "Side", "--static-ip", "10.9.9.9", "app"), "10.9.9.9"),
        (("adapter", "set", "--name", "Side", "--static-mac", "01:00:5e:00:00:01", "app"), "multicast"),
        (("create", "--name", "x", "--network", "nope"), "nope"),
        (("start", "nope"), "nope"),
    ):  # fmt: skip
        before = state(d)
        slowed(d)
        res = d.cli(*args, check=False)
        assert res.returncode != 0 and said in res.stderr and "Traceback" not in res.stderr, (
            res.stderr
        )
        assert state(d) == before
    d.cli("rm", "app", "web")
