"""NAT networks with real traffic: containers, masquerade, port mappings, isolation."""

from __future__ import annotations

from helpers import ask, peer_server, ping, serve, wait_listening

from lab import SEGMENT, Lab, in_ns


def test_containers_on_one_network_talk_and_reach_outside_masqueraded(lab: Lab) -> None:
    d, host_ip = lab.host()
    client, client_ip = lab.node("client")
    d.cli(
        "network",
        "create",
        "-d",
        "nat",
        "--subnet",
        "172.16.1.0/24",
        "--gateway",
        "172.16.1.1",
        "CustomNat1",
    )
    a = serve(d, "CustomNat1", "a")
    b = serve(d, "CustomNat1", "b")
    assert a["ip"].startswith("172.16.1.") and b["ip"].startswith("172.16.1.")
    assert ping(a["netns"], b["ip"])
    assert ask(a["netns"], b["ip"], 80) == "b"
    # containers see each other's own addresses (no NAT inside a network)
    d.cli(
        "run",
        "-d",
        "--net",
        "CustomNat1",
        "--name",
        "peer",
        "--",
        "socat",
        "-T5",
        "TCP-LISTEN:81,reuseaddr,fork",
        "SYSTEM:read line; echo $SOCAT_PEERADDR",
    )
    peer = next(c for c in d.json("ps", "--format", "json") if c["Name"] == "peer")
    wait_listening(peer["NetnsPath"], 81)
    assert ask(a["netns"], peer["Networks"]["CustomNat1"]["IPAddress"], 81) == a["ip"]
    peer_server(lab.spawn, client, 7000)
    # outbound traffic leaves with the host's address (masquerade)
    seen = ask(a["netns"], client_ip, 7000)
    assert seen == host_ip, f"client saw {seen!r}, expected the host address {host_ip}"
    # the private address is not reachable from outside, even with a route to it
    in_ns(client, "ip", "route", "add", "172.16.1.0/24", "via", host_ip)
    assert ask(client, a["ip"], 80, timeout=1) == ""
    assert not ping(client, a["ip"])
    d.cli("rm", "a", "b", "peer")
    assert d.json("ps", "--format", "json") == []


def test_port_mapping_from_client_host_itself_and_hairpin(lab: Lab) -> None:
    d, host_ip = lab.host()
    client, _ = lab.node("client")
    d.cli("network", "create", "--subnet", "172.16.1.0/24", "--gateway", "172.16.1.1", "CustomNat1")
    web = serve(d, "CustomNat1", "web", 80, False, "-p", "8082:80")
    other = serve(d, "CustomNat1", "other")
    assert ask(client, host_ip, 8082) == "web"  # from another machine
    assert ask(d.host, host_ip, 8082) == "web"  # from the host itself
    assert ask(d.host, "127.0.0.1", 8082) == "web"  # via loopback
    assert ask(other["netns"], host_ip, 8082) == "web"  # hairpin from a neighbour
    assert ask(web["netns"], host_ip, 8082) == "web"  # hairpin to itself
    assert ask(client, host_ip, 8083, timeout=1) == ""  # unmapped port: nothing
    rows = d.json("nat", "ls", "--format", "json")
    assert any(r["External"] == "0.0.0.0:8082" and r["Internal"] == f"{web['ip']}:80" for r in rows)
    d.cli("rm", "web")
    assert ask(client, host_ip, 8082, timeout=1) == ""  # mapping gone with the container
    assert not any(r["External"] == "0.0.0.0:8082" for r in d.json("nat", "ls", "--format", "json"))


def test_udp_host_ip_and_range_mappings(lab: Lab) -> None:
    d, host_ip = lab.host()
    client, _ = lab.node("client")
    in_ns(d.host, "ip", "addr", "add", f"{SEGMENT}.200/24", "dev", "eth0")
    serve(d, "nat", "dns", 53, True, "-p", "5353:53/udp")
    serve(d, "nat", "pinned", 80, False, "-p", f"{SEGMENT}.200:9000:80")
    serve(d, "nat", "ranged", 81, False, "-p", "9100-9101:80-81")
    assert ask(client, host_ip, 5353, udp=True) == "dns"
    assert ask(client, f"{SEGMENT}.200", 9000) == "pinned"
    assert ask(client, host_ip, 9000, timeout=1) == ""  # bound to .200 only
    assert ask(client, host_ip, 9101) == "ranged"  # 9101 -> 81


def test_different_nat_networks_are_isolated(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "172.16.1.0/24", "n1")
    d.cli("network", "create", "--subnet", "172.16.2.0/24", "n2")
    a = serve(d, "n1", "a")
    b = serve(d, "n2", "b")
    c = serve(d, "nat", "c")
    assert not ping(a["netns"], b["ip"])
    assert ask(a["netns"], b["ip"], 80, timeout=1) == ""
    assert ask(b["netns"], a["ip"], 80, timeout=1) == ""
    assert ask(c["netns"], a["ip"], 80, timeout=1) == ""
    assert ask(a["netns"], c["ip"], 80, timeout=1) == ""


def test_disableicc_blocks_container_to_container(lab: Lab) -> None:
    d, host_ip = lab.host()
    client, _ = lab.node("client")
    d.cli(
        "network",
        "create",
        "--subnet",
        "172.16.5.0/24",
        "-o",
        "com.docker.network.windowsshim.disableicc=true",
        "quiet",
    )
    a = serve(d, "quiet", "a")
    b = serve(d, "quiet", "b", 80, False, "-p", "8080:80")
    assert not ping(a["netns"], b["ip"])
    assert ask(a["netns"], b["ip"], 80, timeout=1) == ""
    assert ask(client, host_ip, 8080) == "b"  # published ports still work
    assert ping(a["netns"], "172.16.5.1")  # the gateway still answers
    d.cli("network", "create", "--subnet", "172.16.6.0/24", "-o", "disableicc=false", "chatty")
    x = serve(d, "chatty", "x")
    y = serve(d, "chatty", "y")
    assert ask(x["netns"], y["ip"], 80) == "y"
