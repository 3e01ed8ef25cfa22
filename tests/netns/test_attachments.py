"""CNI attachments made, checked and removed again in quick succession, as runtimes do:
an interface name that is taken is a clear refusal that changes nothing, CHECK names the
namespace ADD was given, and the gateway's MAC stays as ports come and go."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from helpers import C_SHIM, cni_shim, snapshot, snapshot_diff

from lab import Daemon, Lab, in_ns, sh


def _need_shim() -> None:
    if not os.path.exists(C_SHIM):
        pytest.skip("hostnet-cni is not installed (scripts/install-cni.sh)")


def _netns(lab: Lab, name: str) -> str:
    ns = f"{lab.prefix}{name}"
    sh("ip", "netns", "add", ns)
    lab.namespaces.append(ns)
    return ns


def _links(ns: str) -> list[dict[str, Any]]:
    return list(json.loads(in_ns(ns, "ip", "-j", "link", "show").stdout))


def _mac(ns: str, ifname: str) -> str:
    (link,) = json.loads(in_ns(ns, "ip", "-j", "link", "show", "dev", ifname).stdout)
    return str(link["address"])


def _switch(d: Daemon, host_end: str) -> str:
    (link,) = json.loads(in_ns(d.host, "ip", "-j", "link", "show", "dev", host_end).stdout)
    return str(link["master"])


def test_add_del_add_of_one_attachment_in_a_tight_loop_succeeds_each_time(lab: Lab) -> None:
    """DEL frees the attachment's names on return: the next ADD of the same container id,
    namespace and interface name at once gets a vNIC, 50 times over; nothing is left."""
    _need_shim()
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "10.164.0.0/24", "loop")
    ns = _netns(lab, "loop")
    cid, path = "c" * 64, f"/run/netns/{ns}"
    for i in range(50):
        code, res = cni_shim(d.socket, "ADD", "loop", cid, path)
        assert code == 0, (i, res)
        code, res = cni_shim(d.socket, "DEL", "loop", cid, path)
        assert code == 0, (i, res)
    assert [x["ifname"] for x in _links(ns) if x["ifname"] != "lo"] == []  # cut ends left
    assert d.json("network", "inspect", "loop")[0]["Containers"] == {}
    d.cli("network", "rm", "loop")


def test_an_interface_name_taken_in_the_namespace_is_a_clear_refusal(lab: Lab) -> None:
    """ADD into a namespace that has an interface of that name already (another container's
    attachment there, or lo) says so and what to do, and changes nothing; once the holder
    is DELeted the same ADD succeeds."""
    _need_shim()
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "10.165.0.0/24", "taken")
    ns = _netns(lab, "taken")
    path = f"/run/netns/{ns}"
    first, second = "1" * 64, "2" * 64
    code, res = cni_shim(d.socket, "ADD", "taken", first, path)
    assert code == 0, res
    before = snapshot(d, ns)
    for cid, ifname in ((second, "eth0"), (second, "lo"), (first, "lo")):
        code, err = cni_shim(d.socket, "ADD", "taken", cid, path, ifname=ifname)
        assert code == 1, err
        assert err["code"] != 5, err  # not an I/O failure: the request collides
        said = f"an interface named {ifname} exists already in network namespace {path}"
        assert said in err["msg"], err
        assert "CNI_IFNAME" in err["details"] and "DEL" in err["details"], err
        after = snapshot(d, ns)
        assert after == before, "\n".join(snapshot_diff(before, after))
    assert cni_shim(d.socket, "DEL", "taken", first, path)[0] == 0
    code, res = cni_shim(d.socket, "ADD", "taken", second, path)
    assert code == 0, res
    assert cni_shim(d.socket, "DEL", "taken", second, path)[0] == 0
    d.cli("network", "rm", "taken")


def test_check_with_another_namespace_than_add_is_refused_naming_both(lab: Lab) -> None:
    """CHECK names the attachment's namespace when given another one (CNI code 4: CNI_NETNS
    is wrong; the attachment exists and still needs DEL) and changes nothing; the same
    namespace by its name under /run/netns is the same namespace."""
    _need_shim()
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "10.166.0.0/24", "chk")
    ns, other = _netns(lab, "chk"), _netns(lab, "chk2")
    cid, path, wrong = "3" * 64, f"/run/netns/{ns}", f"/run/netns/{other}"
    code, res = cni_shim(d.socket, "ADD", "chk", cid, path)
    assert code == 0, res
    before = snapshot(d, ns, other)
    code, err = cni_shim(d.socket, "CHECK", "chk", cid, wrong)
    assert code == 1, err
    assert err["code"] == 4, err
    assert f"CNI_NETNS {wrong} is not the namespace" in err["msg"], err
    assert f"its ADD was given {path}" in err["msg"], err
    assert f"CNI_NETNS={path}" in err["details"] and "DEL" in err["details"], err
    after = snapshot(d, ns, other)
    assert after == before, "\n".join(snapshot_diff(before, after))
    assert cni_shim(d.socket, "CHECK", "chk", cid, path) == (0, {})
    assert cni_shim(d.socket, "CHECK", "chk", cid, ns) == (0, {})  # by its name: the same
    assert cni_shim(d.socket, "DEL", "chk", cid, path)[0] == 0
    d.cli("network", "rm", "chk")


def test_a_nat_switch_keeps_its_mac_as_ports_come_and_go(lab: Lab) -> None:
    """The gateway's MAC, as a container's neighbour entry has it, is the switch's own
    fixed one: the same with one port, with none, with another, and put back by
    reconcile when someone changed it."""
    _need_shim()
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "10.167.0.0/24", "--gateway", "10.167.0.1", "gwmac")
    one, two = _netns(lab, "gw1"), _netns(lab, "gw2")

    def attach(cid: str, ns: str) -> tuple[str, str]:
        """ADD; the gateway's MAC as the container's neighbour entry has it, and the switch."""
        code, res = cni_shim(d.socket, "ADD", "gwmac", cid, f"/run/netns/{ns}")
        assert code == 0, res
        in_ns(ns, "ping", "-c1", "-W5", "10.167.0.1")
        (entry,) = json.loads(in_ns(ns, "ip", "-j", "neigh", "show", "10.167.0.1").stdout)
        return str(entry["lladdr"]), _switch(d, res["interfaces"][0]["name"])

    seen, switch = attach("4" * 64, one)
    mac = _mac(d.host, switch)
    assert seen == mac
    assert int(mac.split(":")[0], 16) & 0b11 == 0b10, mac  # locally administered, unicast
    assert cni_shim(d.socket, "DEL", "gwmac", "4" * 64, f"/run/netns/{one}")[0] == 0
    assert _mac(d.host, switch) == mac  # no port
    assert attach("5" * 64, two) == (mac, switch)  # another port
    assert _mac(d.host, switch) == mac
    in_ns(d.host, "ip", "link", "set", "dev", switch, "address", "06:00:00:00:00:01")
    d.cli("system", "reconcile")
    assert _mac(d.host, switch) == mac  # put back
    assert cni_shim(d.socket, "DEL", "gwmac", "5" * 64, f"/run/netns/{two}")[0] == 0
    d.cli("network", "rm", "gwmac")
