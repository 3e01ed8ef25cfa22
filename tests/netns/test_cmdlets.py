"""Each of the seed's 25 cmdlets run against a lab daemon, as a user types it after the
word ``hostnet``, and its effect checked: objects made or removed, ``-Name`` filters
showing only what they match, parameters such as ``-Force`` doing what they say, and
refusals that are clean (no traceback, the parameter named) and change nothing."""

from __future__ import annotations

import os
import re
import time
from typing import Any

import pytest
from helpers import ask, wait_listening

from lab import SEGMENT, Daemon, Lab, eventually, in_ns

pytestmark = pytest.mark.root

SERVE = ["socat", "TCP-LISTEN:80,reuseaddr,fork", "SYSTEM:read line; echo app"]
GRACE = 10.0  # Stop-Container's grace period without -Force (the CLI's default)
VFP = "Microsoft Azure VFP Switch Extension"


def state(d: Daemon) -> Any:
    """Everything a refused cmdlet must leave as it was."""
    return [
        d.json(*view, "--format", "json")
        for view in (("network", "ls"), ("ps", "-a"), ("nat", "ls"), ("switch", "ls"))
    ]


def refused(d: Daemon, *argv: str, said: str) -> str:
    before = state(d)
    res = d.cli(*argv, check=False)
    assert res.returncode != 0, f"{argv} was not refused: {res.stdout}"
    assert said in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert state(d) == before, f"{argv} changed something"
    return res.stderr


def table(out: str) -> list[dict[str, str]]:
    """A table of hostnet's (upper-case one-word headers) as rows, cut at the headers."""
    lines = out.splitlines()
    if not lines:
        return []
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    ends = [*starts[1:], None]
    keys = lines[0].split()
    return [
        {k: ln[s:e].strip() for k, s, e in zip(keys, starts, ends, strict=True)} for ln in lines[1:]
    ]


def names(d: Daemon, *argv: str, key: str = "NAME") -> list[str]:
    return sorted(r[key] for r in table(d.cli(*argv).stdout))


def container(d: Daemon, name: str) -> dict[str, Any]:
    return next(c for c in d.json("ps", "-a", "--format", "json") if c["Name"] == name)


def test_network_switch_and_host_cmdlets(lab: Lab) -> None:
    d, _ = lab.host("h", "-b", "none")
    cmd = d.cli
    lab.adapter(d.host, "eth1")
    in_ns(d.host, "ip", "link", "set", "eth1", "alias", "Ethernet")

    out = cmd("New-ContainerNetwork", "-Name", "nat", "-Mode", "NAT", "-SubnetPrefix",
              "172.16.0.0/24", "-GatewayAddress", "172.16.0.254", "-DNSServers",
              "192.0.2.53,192.0.2.54", "-DNSSuffix", "abc.com").stdout  # fmt: skip
    (net,) = d.json("network", "inspect", "nat")
    assert out.strip() == net["Id"]
    assert net["IPAM"]["Config"] == [{"Subnet": "172.16.0.0/24", "Gateway": "172.16.0.254"}]
    assert net["Options"]["dnsservers"] == "192.0.2.53,192.0.2.54"
    assert net["Options"]["dnssuffix"] == "abc.com"
    cmd("new-containernetwork", "natted", "-subnetprefix", "172.17.0.0/24")  # positional, any case
    cmd("New-ContainerNetwork", "-Name", "MyTransparentNet", "-Mode", "Transparent",
        "-NetworkAdapterName", "Ethernet", "-SubnetPrefix", f"{SEGMENT}.0/24",
        "-GatewayAddress", f"{SEGMENT}.1")  # fmt: skip
    (tnet,) = d.json("network", "inspect", "MyTransparentNet")
    assert tnet["Driver"] == "transparent" and tnet["Options"]["interface"] == "eth1"
    assert d.json("network", "inspect", "natted")[0]["Driver"] == "nat"

    # Get-ContainerNetwork -Name: wildcards, any case; an unmatched literal is an error
    assert names(d, "Get-ContainerNetwork") == ["MyTransparentNet", "nat", "natted"]
    assert names(d, "Get-ContainerNetwork", "-Name", "nat*") == ["nat", "natted"]
    assert names(d, "Get-ContainerNetwork", "-Name", "NAT") == ["nat"]
    assert names(d, "Get-ContainerNetwork", "-Name", "my*,natted") == ["MyTransparentNet", "natted"]
    assert names(d, "Get-ContainerNetwork", "-Name", "zz*") == []
    refused(d, "Get-ContainerNetwork", "-Name", "nope", said="no network named 'nope'")

    # Get-VMSwitch -Name likewise; the transparent switch carries the adapter
    assert names(d, "Get-VMSwitch", key="SWITCH") == ["MyTransparentNet", "nat", "natted"]
    (row,) = table(cmd("Get-VMSwitch", "-Name", "my*").stdout)
    assert row["SWITCH"] == "MyTransparentNet" and row["ADAPTER"] == "eth1"
    assert names(d, "Get-VMSwitch", "-Name", "nat", key="SWITCH") == ["nat"]
    assert names(d, "Get-VMSwitch", "-Name", "zz*", key="SWITCH") == []
    refused(d, "Get-VMSwitch", "-Name", "nope", said="no switch named 'nope'")
    refused(d, "Get-VMSwitch", "-SwitchType", "Internal", said="no parameter -SwitchType")

    # Get-VMSwitchExtension: the one extension, by its name or a pattern that matches it
    for name in (VFP, "*vfp*"):
        out = cmd("Get-VMSwitchExtension", "-VMSwitchName", "nat", "-Name", name).stdout
        assert VFP in out and "SwitchName: nat" in out, out
    assert cmd("Get-VMSwitchExtension", "-VMSwitchName", "nat", "-Name", "Other*").stdout == ""
    refused(d, "Get-VMSwitchExtension", "-VMSwitchName", "nat", "-Name", "Other",
            said="one extension")  # fmt: skip
    refused(d, "Get-VMSwitchExtension", "-VMSwitchName", "nope", said="nope")

    # Get-NetAdapter lists the namespace it runs in: the lab host's adapters
    def adapters(*argv: str) -> list[str]:
        res = in_ns(d.host, "hostnet", "Get-NetAdapter", *argv, check=False)
        assert res.returncode == 0, res.stderr
        return sorted(r["Name"] for r in table(res.stdout))

    every = adapters()
    assert {"eth0", "eth1"} <= set(every) and "lo" not in every
    assert adapters("-Name", "Ethernet") == ["eth1"]  # the seed's name: an alias here
    assert adapters("-Name", "ETH*") == ["eth0", "eth1"]
    assert adapters("-Name", "zz*") == []
    res = in_ns(d.host, "hostnet", "Get-NetAdapter", "-Name", "nope", check=False)
    assert res.returncode == 1 and "no network adapter named 'nope'" in res.stderr

    # the host's views, with no container yet
    assert table(cmd("Get-NetCompartment").stdout) == table(cmd("compartment", "ls").stdout)
    assert cmd("Get-NetNat").stdout == cmd("nat", "ls").stdout
    assert cmd("Get-NetNatStaticMapping").stdout == cmd("nat", "ls").stdout
    refused(d, "Get-NetNat", "-Name", "nat", said="takes no parameters")
    refused(d, "Get-NetCompartment", "-CompartmentId", "1", said="takes no parameters")

    # Remove-ContainerNetwork: a list, never a pattern
    refused(d, "Remove-ContainerNetwork", "-Name", "nat*", said="not a wildcard pattern")
    refused(d, "Remove-ContainerNetwork", "-Name", "nope", said="nope")
    cmd("Remove-ContainerNetwork", "-Name", "natted,MyTransparentNet")
    assert names(d, "Get-ContainerNetwork") == ["nat"]
    assert names(d, "Get-VMSwitch", key="SWITCH") == ["nat"]
    cmd("Remove-ContainerNetwork", "nat")
    assert d.json("network", "ls", "--format", "json") == []


def test_container_cmdlets(lab: Lab) -> None:
    d, _ = lab.host("h", "-b", "none")
    cmd = d.cli
    cmd("New-ContainerNetwork", "-Name", "nat", "-SubnetPrefix", "172.16.0.0/24")
    cmd("New-ContainerNetwork", "-Name", "back", "-SubnetPrefix", "172.18.0.0/24")
    back_id = d.json("network", "inspect", "back")[0]["Id"]

    cmd("New-Container", "-Name", "web1", "-ContainerImageName", "WindowsServerCore",
        "-NetworkName", "nat")  # fmt: skip
    cmd("New-Container", "web2", "-SwitchName", "back")
    cmd("New-Container", "-Name", "db", "-NetworkName", "nat")
    web1, web2 = container(d, "web1"), container(d, "web2")
    assert web1["State"] == "created" and web1["Image"] == "WindowsServerCore"
    assert [a["network_id"] for a in web2["Adapters"]] == [back_id]
    refused(d, "New-Container", "-Name", "x", "-NetworkName", "nat", "-SwitchName", "back",
            said="not both")  # fmt: skip
    refused(d, "New-Container", "-Name", "x", "-NetworkName", "nope", said="nope")

    # Get-Container -Name: only what matches
    assert names(d, "Get-Container") == ["db", "web1", "web2"]
    assert names(d, "Get-Container", "-Name", "web*") == ["web1", "web2"]
    assert names(d, "Get-Container", "-Name", "DB") == ["db"]
    assert names(d, "Get-Container", "-Name", "web[2-9],db") == ["db", "web2"]
    assert names(d, "Get-Container", "-Name", "zz*") == []
    refused(d, "Get-Container", "-Name", "nope", said="no container named 'nope'")
    refused(d, "Get-Container", "-WhatIf", said="common parameters")

    cmd("Start-Container", "-Name", "web1,web2")
    assert {container(d, n)["State"] for n in ("web1", "web2")} == {"running"}
    refused(d, "Start-Container", "web*", said="not a wildcard pattern")
    refused(d, "Start-Container", "nope", said="nope")

    # Restart-Container: the same compartment, a new process
    before = container(d, "web1")
    cmd("Restart-Container", "web1")
    after = container(d, "web1")
    assert after["State"] == "running" and after["Pid"] != before["Pid"]
    assert after["NetnsPath"] == before["NetnsPath"]

    # Stop-Container -Force: at once, even for a process that ignores SIGTERM (without
    # -Force it would be killed only when the grace period ends)
    pid = int(cmd("Invoke-Command", "-ContainerName", "web2",
                  "{trap '' TERM; sleep infinity >/dev/null 2>&1 & echo $!}").stdout)  # fmt: skip
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(web2["NetnsPath"]).st_ino
    began = time.monotonic()
    cmd("Stop-Container", "web2", "-Force")
    assert time.monotonic() - began < GRACE
    assert container(d, "web2")["State"] == "stopped"
    eventually(lambda: not os.path.exists(f"/proc/{pid}"))
    cmd("Stop-Container", "-Name", "web1", "-TurnOff")
    assert container(d, "web1")["State"] == "stopped"
    cmd("Start-Container", "web1")
    cmd("Stop-Container", "web1")
    assert container(d, "web1")["State"] == "stopped"

    # Remove-Container: a running one only with -Force
    cmd("Start-Container", "web1")
    netns = container(d, "web1")["NetnsPath"]
    said = refused(d, "Remove-Container", "web1", said="web1 is running")
    assert "-Force" in said
    refused(d, "Remove-Container", "-Name", "web*", said="not a wildcard pattern")
    cmd("Remove-Container", "-Name", "web1", "-Force")
    assert names(d, "Get-Container") == ["db", "web2"]
    eventually(lambda: not os.path.exists(netns))
    cmd("Remove-Container", "web2,db")  # stopped and created: no -Force needed
    assert d.json("ps", "-a", "--format", "json") == []

    # Remove-ContainerNetwork -Force takes the endpoints on it too
    cmd("New-Container", "-Name", "app", "-NetworkName", "back")
    cmd("Start-Container", "app")
    refused(d, "Remove-ContainerNetwork", "back", said="in use")
    cmd("Remove-ContainerNetwork", "-Name", "back", "-Force")
    assert names(d, "Get-ContainerNetwork") == ["nat"]
    assert container(d, "app")["Networks"] == {}
    cmd("Remove-Container", "app", "-Force")
    assert d.json("ps", "-a", "--format", "json") == []


def test_adapter_and_mapping_cmdlets(lab: Lab) -> None:
    d, host_ip = lab.host("h", "-b", "none")
    client, _ = lab.node("client")
    cmd = d.cli
    cmd("New-ContainerNetwork", "-Name", "nat", "-SubnetPrefix", "172.16.0.0/24")
    cmd("New-ContainerNetwork", "-Name", "side", "-SubnetPrefix", "172.19.0.0/24")
    side_id = d.json("network", "inspect", "side")[0]["Id"]
    cmd("New-Container", "-Name", "app", "-NetworkName", "nat")

    def adapters() -> dict[str, dict[str, Any]]:
        return {a["Name"]: a for a in d.json("adapter", "ls", "app", "--format", "json")}

    out = cmd("Add-ContainerNetworkAdapter", "-ContainerName", "app", "-Name", "Side",
              "-SwitchName", "side", "-StaticIPAddress", "172.19.0.50", "-StaticMacAddress",
              "02:00:00:00:00:32", "-MaximumBandwidth", "10m").stdout  # fmt: skip
    assert "Side" in out
    side = adapters()["Side"]
    assert side["NetworkId"] == side_id and side["StaticIPAddress"] == "172.19.0.50"
    assert side["StaticMacAddress"] == "02:00:00:00:00:32" and side["MaximumBandwidth"]

    # Get-ContainerNetworkAdapter -Name filters the adapters
    def shown(*argv: str) -> list[str]:
        head, _, *rows = cmd(
            "Get-ContainerNetworkAdapter", "-ContainerName", "app", *argv
        ).stdout.splitlines()
        at = head.index(" Name ") + 1  # the seed's layout: its Name column
        return [a for a in ("Network Adapter", "Side") if any(r[at:].startswith(a) for r in rows)]

    assert shown() == ["Network Adapter", "Side"]
    assert shown("-Name", "side") == ["Side"]
    assert shown("-Name", "net*") == ["Network Adapter"]
    assert shown("-Name", "zz*") == []
    refused(d, "Get-ContainerNetworkAdapter", "-ContainerName", "app", "-Name", "nope",
            said="no adapter of app named 'nope'")  # fmt: skip
    refused(d, "Get-ContainerNetworkAdapter", "-ContainerName", "nope", said="nope")

    cmd("Set-ContainerNetworkAdapter", "-ContainerName", "app", "-Name", "Network Adapter",
        "-StaticIPAddress", "172.16.0.100")  # fmt: skip
    assert adapters()["Network Adapter"]["StaticIPAddress"] == "172.16.0.100"
    refused(d, "Set-ContainerNetworkAdapter", "-ContainerName", "app", "-StaticIPAddress",
            "172.16.0.101", said="2 adapters")  # fmt: skip

    for ext, internal, proto in (("8082", "80", "TCP"), ("5353", "53", "UDP")):
        cmd("Add-ContainerNetworkAdapterStaticMapping", "-ContainerName", "app", "-AdapterName",
            "Network Adapter", "-ExternalPort", ext, "-InternalPort", internal, "-Protocol", proto)  # fmt: skip
    assert adapters()["Network Adapter"]["Mappings"] == ["8082:80/tcp", "5353:53/udp"]
    assert cmd("Get-ContainerNetworkAdapterStaticMapping", "-ContainerName", "app").stdout == (
        "Network Adapter: 8082:80/tcp\nNetwork Adapter: 5353:53/udp\n"
    )
    refused(d, "Add-ContainerNetworkAdapterStaticMapping", "-ContainerName", "app",
            "-AdapterName", "Network Adapter", "-ExternalPort", "0", "-InternalPort", "80",
            said="-ExternalPort '0' is not a port")  # fmt: skip

    cmd("Start-Container", "app")
    c = container(d, "app")
    assert c["Networks"]["nat"]["IPAddress"] == "172.16.0.100"
    assert c["Networks"]["side"]["IPAddress"] == "172.19.0.50"
    ipconfig = cmd("Invoke-Command", "-ContainerName", "app", "{ipconfig}").stdout
    assert "Ethernet adapter vEthernet (Side):" in ipconfig
    assert ": 172.19.0.50\n" in ipconfig and ": 172.16.0.100\n" in ipconfig
    assert "app" in cmd("Get-NetCompartment").stdout
    nat = cmd("Get-NetNat").stdout
    assert "8082" in nat and "5353" in nat
    assert cmd("Get-NetNatStaticMapping").stdout == nat
    refused(d, "Invoke-Command", "-ContainerName", "nope", "{ipconfig}", said="nope")

    # the mapping carries traffic until Remove-...StaticMapping takes it away
    cmd("exec", "-d", "app", *SERVE)
    wait_listening(c["NetnsPath"], 80)
    assert ask(client, host_ip, 8082) == "app"
    cmd("Remove-ContainerNetworkAdapterStaticMapping", "-ContainerName", "app", "-AdapterName",
        "Network Adapter", "-ExternalPort", "8082", "-InternalPort", "80", "-Protocol", "TCP")  # fmt: skip
    assert adapters()["Network Adapter"]["Mappings"] == ["5353:53/udp"]
    assert "8082" not in cmd("Get-NetNat").stdout
    assert ask(client, host_ip, 8082, timeout=1) == ""

    # Disconnect keeps the adapter off any switch; Connect puts it on one again
    cmd("Disconnect-ContainerNetworkAdapter", "-ContainerName", "app", "-Name", "Side")
    assert adapters()["Side"]["NetworkId"] == ""
    assert set(container(d, "app")["Networks"]) == {"nat"}
    refused(d, "Connect-ContainerNetworkAdapter", "-ContainerName", "app", "-Name", "Side",
            "-SwitchName", "nope", said="nope")  # fmt: skip
    cmd("Connect-ContainerNetworkAdapter", "-ContainerName", "app", "-SwitchName", "side",
        "-Name", "Side")  # fmt: skip
    assert adapters()["Side"]["NetworkId"] == side_id
    assert set(container(d, "app")["Networks"]) == {"nat", "side"}

    cmd("Remove-ContainerNetworkAdapter", "-ContainerName", "app", "-Name", "Side")
    assert list(adapters()) == ["Network Adapter"]
    assert set(container(d, "app")["Networks"]) == {"nat"}
    refused(d, "Remove-ContainerNetworkAdapter", "-ContainerName", "app", "-Name", "Side",
            said="Side")  # fmt: skip
    cmd("Remove-Container", "app", "-Force")
    assert d.json("ps", "-a", "--format", "json") == []
