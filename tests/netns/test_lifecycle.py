"""The CLI lifecycle: run, connect/disconnect (hot), inspect, rm, prune, management views."""

from __future__ import annotations

import os
import signal
import stat
import subprocess

from helpers import ask, ping, serve

from lab import Lab, eventually, in_ns


def test_run_streams_output_and_passes_exit_code_then_removes_everything(lab: Lab) -> None:
    d, _ = lab.host()
    res = d.cli(
        "run",
        "--network",
        "nat",
        "--name",
        "once",
        "--",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; echo to-stderr >&2; exit 7",
        check=False,
    )
    assert res.returncode == 7
    assert "172.16." in res.stdout and "to-stderr" in res.stderr
    assert d.json("ps", "--format", "json") == []
    assert not any(n.startswith(d.instance_prefix()) for n in os.listdir("/run/netns"))

    def no_veth() -> None:
        assert "hv" not in in_ns(d.host, "ip", "-o", "link", "show", "type", "veth").stdout

    eventually(no_veth)


def test_static_ip_and_net_alias(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "172.16.1.0/24", "--gateway", "172.16.1.1", "CustomNat1")
    res = d.cli(
        "run",
        "--net",
        "CustomNat1",
        "--ip",
        "172.16.1.105",
        "--",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    )
    assert "172.16.1.105/24" in res.stdout


def test_detach_rm_and_process_exit_remove_the_compartment(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("run", "-d", "--name", "sleeper", "--", "sleep", "300")
    c = d.json("ps", "--format", "json")[0]
    assert c["Name"] == "sleeper" and c["Running"] and os.path.exists(c["NetnsPath"])
    d.cli("rm", "sleeper")
    assert d.json("ps", "--format", "json") == []
    assert not os.path.exists(c["NetnsPath"])
    # a detached container whose process exits on its own is removed by the daemon (ended
    # here, not by a short sleep: that could end before 'run -d' registered it)
    d.cli("run", "-d", "--name", "brief", "--", "sleep", "infinity")
    (c,) = d.json("ps", "--format", "json")
    os.kill(c["Pid"], signal.SIGTERM)
    eventually(lambda: d.json("ps", "--format", "json") == [], timeout=10)
    assert not os.path.exists(c["NetnsPath"])


def test_connect_and_disconnect_running_container(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "172.16.1.0/24", "n1")
    d.cli("network", "create", "--subnet", "172.16.2.0/24", "n2")
    a = serve(d, "n1", "a")
    b = serve(d, "n2", "b")
    assert ask(a["netns"], b["ip"], 80, timeout=1) == ""
    d.cli("network", "connect", "--ip", "172.16.2.50", "n2", "a")
    assert "172.16.2.50/24" in in_ns(a["netns"], "ip", "-4", "-o", "addr", "show", "eth1").stdout
    assert ask(a["netns"], b["ip"], 80) == "b"
    inspect = d.json("network", "inspect", "n2")[0]
    assert {v["Name"] for v in inspect["Containers"].values()} == {"a", "b"}
    d.cli("network", "disconnect", "n2", "a")
    assert in_ns(a["netns"], "ip", "link", "show", "eth1", check=False).returncode != 0
    assert ask(a["netns"], b["ip"], 80, timeout=1) == ""
    assert ping(a["netns"], "172.16.1.1")  # the first network is untouched
    assert {v["Name"] for v in d.json("network", "inspect", "n2")[0]["Containers"].values()} == {
        "b"
    }


def test_inspect_is_docker_shaped(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli(
        "network",
        "create",
        "--subnet",
        "172.16.1.0/24",
        "--gateway",
        "172.16.1.1",
        "-o",
        "disableicc=true",
        "CustomNat1",
    )
    serve(d, "CustomNat1", "web")
    n = d.json("network", "inspect", "CustomNat1")[0]
    for key in ("Name", "Id", "Created", "Scope", "Driver", "IPAM", "Options", "Containers"):
        assert key in n
    assert n["IPAM"]["Config"] == [{"Subnet": "172.16.1.0/24", "Gateway": "172.16.1.1"}]
    assert n["Driver"] == "nat" and n["Options"] == {"disableicc": "true"} and len(n["Id"]) == 64
    ((cid, c),) = n["Containers"].items()
    assert c["Name"] == "web" and c["IPv4Address"] == "172.16.1.2/24"
    assert c["MacAddress"] == "02:42:ac:10:01:02" and c["EndpointID"]
    # the id prefix works as a reference too
    assert d.json("network", "inspect", n["Id"][:12])[0]["Name"] == "CustomNat1"


def test_rm_in_use_needs_force_and_prune_keeps_default(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "172.16.1.0/24", "busy")
    d.cli("network", "create", "--subnet", "172.16.2.0/24", "idle")
    serve(d, "busy", "web")
    res = d.cli("network", "rm", "busy", check=False)
    assert res.returncode != 0 and "in use by: web" in res.stderr and "--force" in res.stderr
    assert d.cli("network", "prune").stdout.split() == ["idle"]
    d.cli("network", "rm", "--force", "busy")
    names = [n["Name"] for n in d.json("network", "ls", "--format", "json")]
    assert names == ["nat"]
    assert d.json("network", "inspect", "nat")[0]["Containers"] == {}
    ps = d.json("ps", "--format", "json")
    assert ps[0]["Networks"] == {}  # the container lives on, without that endpoint
    d.cli("rm", "web")
    bridges = in_ns(d.host, "ip", "-o", "link", "show", "type", "bridge").stdout
    assert bridges.count("hn-") == 1


def test_management_views(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli(
        "network",
        "create",
        "--subnet",
        "172.16.1.0/24",
        "-o",
        "networkname=CustomSwitch",
        "CustomNat1",
    )
    web = serve(d, "CustomNat1", "web", 80, False, "-p", "8082:80")
    comps = d.json("compartment", "ls", "--format", "json")
    assert comps[0]["CompartmentId"] == 1
    row = next(r for r in comps if r["Container"] == "web")
    assert row["CompartmentId"] >= 2 and web["ip"] in row["Endpoints"]
    nat = d.json("nat", "ls", "--format", "json")
    assert {
        "Network": "CustomNat1",
        "InternalPrefix": "172.16.1.0/24",
        "External": "0.0.0.0:8082",
        "Internal": f"{web['ip']}:80",
        "Protocol": "TCP",
        "Container": "web",
    } in nat
    sw = d.json("switch", "ls", "--format", "json")
    assert {s["Switch"] for s in sw} == {"nat", "CustomSwitch"}
    assert all(s["SwitchType"] == "Internal" for s in sw)
    table = d.cli("nat", "ls").stdout
    assert "0.0.0.0:8082" in table and table.splitlines()[0].startswith("NETWORK")


def test_hot_port_add_and_remove(lab: Lab) -> None:
    d, host_ip = lab.host()
    client, _ = lab.node("client")
    serve(d, "nat", "web")
    assert ask(client, host_ip, 8090, timeout=1) == ""
    d.cli("port", "add", "web", "8090:80")
    assert ask(client, host_ip, 8090) == "web"
    d.cli("port", "rm", "web", "8090:80")
    assert ask(client, host_ip, 8090, timeout=1) == ""


def test_socket_is_root_only_and_missing_daemon_names_socket(lab: Lab) -> None:
    d, _ = lab.host()
    mode = os.stat(d.socket).st_mode
    assert stat.S_IMODE(mode) == 0o660 and os.stat(d.socket).st_uid == 0
    res = subprocess.run(
        ["hostnet", "--socket", "/nonexistent/hn.sock", "network", "ls"],
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0 and "/nonexistent/hn.sock" in res.stderr and "start it" in res.stderr


def test_bridge_none_starts_without_default_network(lab: Lab) -> None:
    d, _ = lab.host("host", "-b", "none")
    assert d.json("network", "ls", "--format", "json") == []
    res = d.cli("run", "--", "true", check=False)
    assert res.returncode != 0 and "no network named 'nat'" in res.stderr


def test_default_network_moves_off_a_host_route(lab: Lab) -> None:
    d, _ = lab.host("host", "-b", "none")
    d.stop()
    in_ns(d.host, "ip", "addr", "add", "172.16.4.1/24", "dev", "eth0")
    d.start()
    nat = d.json("network", "inspect", "nat")[0]
    assert nat["IPAM"]["Config"][0]["Subnet"] == "172.17.0.0/16"
    assert "172.16.0.0/16 overlaps" in nat["Note"]
    assert "overlaps an address or route" in d.log()


def test_dns_servers_and_suffix_reach_the_compartment(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli(
        "network",
        "create",
        "--subnet",
        "172.16.1.0/24",
        "-o",
        "dnsservers=198.51.100.53,198.51.100.54",
        "-o",
        "com.docker.network.windowsshim.dnssuffix=corp.example",
        "-o",
        "discovery=false",  # the servers themselves, not the embedded resolver (see test_dns)
        "named",
    )
    out = d.cli("run", "--net", "named", "--", "cat", "/etc/resolv.conf").stdout
    assert "nameserver 198.51.100.53" in out and "nameserver 198.51.100.54" in out
    assert "search corp.example" in out
    # the host's own resolv.conf is untouched, and a network without DNS options keeps it
    with open("/etc/resolv.conf") as fh:
        assert "corp.example" not in fh.read()
    assert (
        "corp.example" not in d.cli("run", "--net", "nat", "--", "cat", "/etc/resolv.conf").stdout
    )
