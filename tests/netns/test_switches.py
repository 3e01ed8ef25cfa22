"""External switches: adapters named by alias, a bridge made outside hostnet (the seed's
out-of-band vSwitch) used as a network's switch and left as it was, and the switch
extension view (Get-VMSwitchExtension) checked against the kernel."""

from __future__ import annotations

import json
from typing import Any

from helpers import ask, ping, serve

from lab import SEGMENT, Daemon, Lab, in_ns

SUBNET = f"{SEGMENT}.0/24"
OTHER = "203.0.113"  # the second transparent network's subnet (TEST-NET-3)


def master_of(ns: str, ifname: str) -> str:
    return str(
        json.loads(in_ns(ns, "ip", "-j", "link", "show", ifname).stdout)[0].get("master", "")
    )


def transparent(d: Daemon, name: str, *opts: str, check: bool = True) -> Any:
    return d.cli(
        "network",
        "create",
        "-d",
        "transparent",
        "--subnet",
        SUBNET,
        "--gateway",
        f"{SEGMENT}.1",
        *opts,
        name,
        check=check,
    )


def test_adapter_named_by_its_alias(lab: Lab) -> None:
    d, _ = lab.host()
    lab.adapter(d.host, "eth1")
    in_ns(d.host, "ip", "link", "set", "eth1", "alias", "Ethernet")
    wrong = transparent(d, "t", "-o", "interface=Ethernet 9", check=False)
    assert wrong.returncode != 0
    assert "'Ethernet 9' does not exist" in wrong.stderr, wrong.stderr
    assert "eth1 (alias 'Ethernet')" in wrong.stderr and "eth0" in wrong.stderr
    # Docker's spelling, the alias in another case
    transparent(d, "t", "-o", "com.docker.network.windowsshim.interface=ethernet")
    net = d.json("network", "inspect", "t")[0]
    assert net["Options"]["interface"] == "eth1"  # the Linux name is kept
    assert master_of(d.host, "eth1") == net["Switch"]
    row = next(s for s in d.json("switch", "ls", "--format", "json") if s["Networks"] == "t")
    assert row["Adapter"] == "eth1"
    d.cli("network", "rm", "t")
    assert master_of(d.host, "eth1") == ""


def _state(ns: str) -> list[Any]:
    """The bridge and its port as ip shows them, without timers and duplicate address
    detection's progress (the kernel's, on the link-local address it gives the bridge)."""

    def strip(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {
                k: strip(v) for k, v in obj.items() if not k.endswith("_timer") and k != "tentative"
            }
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    out = []
    for dev in ("br-oob", "eth1"):
        out.append(strip(json.loads(in_ns(ns, "ip", "-d", "-j", "link", "show", dev).stdout)))
        out.append(strip(json.loads(in_ns(ns, "ip", "-j", "addr", "show", "dev", dev).stdout)))
    return out


def _extension(d: Daemon, name: str) -> dict[str, bool]:
    view = d.json("switch", "extension", name, "--format", "json")
    return {f"{p['Kind']} {p['Name']}": p["Present"] for p in view["Pieces"]} | {
        "Running": view["Running"],
        "Enabled": view["Enabled"],
    }


def test_out_of_band_bridge_is_used_and_left_as_it_was(lab: Lab) -> None:
    lab.router()
    d, _ = lab.host()
    client, client_ip = lab.node("client")
    lab.adapter(d.host, "eth1")
    lab.adapter(d.host, "eth2")
    for cmd in (
        ("ip", "link", "add", "br-oob", "type", "bridge"),
        ("ip", "link", "set", "eth1", "master", "br-oob"),
        ("ip", "addr", "add", "192.0.2.254/24", "dev", "br-oob"),
        ("ip", "link", "set", "br-oob", "up"),
    ):
        in_ns(d.host, *cmd)
    before = _state(d.host)
    row = next(s for s in d.json("switch", "ls", "--format", "json") if s["Switch"] == "br-oob")
    assert row["SwitchType"] == "External (not managed by hostnet)"
    assert row["Adapter"] == "eth1" and row["PortNames"] == ["eth1"]
    assert "EXTERNAL (NOT MANAGED BY HOSTNET)" not in d.cli("switch", "ls").stdout  # readable
    assert "External (not managed by hostnet)" in d.cli("switch", "ls").stdout
    unmanaged = d.json("switch", "extension", "br-oob", "--format", "json")
    assert unmanaged["Enabled"] is False and "-o switch=br-oob" in unmanaged["Note"]
    # without -o switch, the adapter in that bridge is refused, with the three ways out
    refused = transparent(d, "oob", "-o", "interface=eth1", check=False)
    assert refused.returncode != 0
    assert "-o switch=br-oob" in refused.stderr and "nomaster" in refused.stderr
    assert "another adapter" in refused.stderr
    # bad -o switch= values
    for bad, says in (
        ("br-none", "does not exist"),
        ("eth2", "not a bridge"),
    ):
        res = transparent(d, "oob", "-o", f"switch={bad}", check=False)
        assert res.returncode != 0 and says in res.stderr, res.stderr
    transparent(d, "oob", "-o", "switch=br-oob")  # the adapter is the bridge's port
    net = d.json("network", "inspect", "oob")[0]
    assert net["Switch"] == "br-oob" and net["Options"]["interface"] == "eth1"
    assert (
        "already the switch" in transparent(d, "again", "-o", "switch=br-oob", check=False).stderr
    )
    # another adapter binds to another transparent network meanwhile
    d.cli(
        "network", "create", "-d", "transparent", "--subnet", f"{OTHER}.0/24",
        "-o", "interface=eth2", "-o", "vlanid=7", "other",
    )  # fmt: skip
    other_switch = d.json("network", "inspect", "other")[0]["Switch"]
    assert master_of(d.host, "eth2") == other_switch
    own = transparent(d, "again", "-o", f"switch={other_switch}", check=False)
    assert "one hostnet made" in own.stderr, own.stderr
    web = serve(d, "oob", "web", 80, False, "--ip", f"{SEGMENT}.105")
    assert ask(client, f"{SEGMENT}.105", 80) == "web"  # through br-oob and eth1
    assert ping(web["netns"], client_ip)
    assert master_of(d.host, "eth1") == "br-oob"
    d.cli("system", "reconcile")  # neither reconcile nor its sweep touches br-oob
    assert ask(client, f"{SEGMENT}.105", 80) == "web"
    # the extension view: pieces present, one deleted by hand, then put back
    v7 = ("--name", "v7", "--ip", f"{OTHER}.7")
    d.cli("run", "-d", "--net", "other", *v7, "--", "sleep", "infinity")
    ext = _extension(d, "other")
    vnic = next(k.split()[1] for k in ext if k.startswith("bpf ") and "ingress" in k)
    assert ext["Running"] and ext["Enabled"] and all(ext.values()), ext
    assert ext[f"port eth2 {other_switch}"] and ext[f"link {other_switch} bridge"]
    in_ns(d.host, "tc", "filter", "del", "dev", vnic, "ingress")
    in_ns(d.host, "nft", "delete", "table", "bridge", "hostnet_acl_default")
    ext = _extension(d, "other")
    assert not ext["Running"]
    assert not ext[f"bpf {vnic} ingress hn_vlan_push"] and ext[f"bpf {vnic} egress hn_vlan_pop"]
    assert not ext["nft chain bridge hostnet_acl_default into"]
    d.cli("system", "reconcile")
    ext = _extension(d, "other")
    assert ext["Running"] and all(ext.values()), ext
    table = d.cli("switch", "extension", "oob").stdout
    assert "Microsoft Azure VFP Switch Extension" in table and "PRESENT" in table
    d.cli("rm", "web")
    d.cli("rm", "v7")
    d.cli("network", "rm", "oob")
    assert _state(d.host) == before  # the bridge, its port and its address as they were
    assert "br-oob" in {s["Switch"] for s in d.json("switch", "ls", "--format", "json")}
    d.cli("network", "rm", "other")
    assert master_of(d.host, "eth2") == ""
    in_ns(d.host, "ip", "link", "del", "br-oob")
