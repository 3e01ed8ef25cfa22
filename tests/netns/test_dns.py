"""The embedded resolver with real queries: local names, aliases, PTR, scope, forwarding,
SERVFAIL when upstreams are silent, and that nobody outside a compartment can use it."""

from __future__ import annotations

import signal
import subprocess

import pytest
from helpers import ask, serve

from lab import SEGMENT, Daemon, Lab, eventually, in_ns

EMBEDDED = "127.0.0.11"


def dig(
    ns: str, name: str, qtype: str = "A", server: str = EMBEDDED, tcp: bool = False
) -> tuple[str, list[str]]:
    """(status, answer data) of one query from inside ``ns``; status 'TIMEOUT' if none came."""
    res = in_ns(
        ns,
        "dig",
        f"@{server}",
        "+tries=1",
        "+time=3",
        "+noall",
        "+comments",
        "+answer",
        *(["+tcp"] if tcp else []),
        "-q",
        name,  # -q: a name like 'a' is not taken for the record type
        "-t",
        qtype,
        check=False,
        timeout=15,
    )
    status = "TIMEOUT"
    for line in res.stdout.splitlines():
        if "status:" in line:
            status = line.split("status:")[1].split(",")[0].strip()
    if "refused" in res.stdout or "timed out" in res.stdout:
        status = "TIMEOUT"
    answers = [ln.split()[-1] for ln in res.stdout.splitlines() if ln and not ln.startswith(";")]
    return status, answers


def netns_of(d: Daemon, name: str) -> str:
    return str(next(c["NetnsPath"] for c in d.json("ps", "--format", "json") if c["Name"] == name))


def upstream(lab: Lab) -> tuple[str, subprocess.Popen[bytes]]:
    """A DNS server on the segment (dnsmasq) that knows ext.test and nothing else."""
    ns, ip = lab.node("dns", 253)  # high: l2bridge IPAM hands out the segment's low addresses
    proc = lab.spawn(
        ns,
        "dnsmasq",
        "--no-daemon",
        "--no-resolv",
        "--no-hosts",
        f"--listen-address={ip}",
        "--bind-interfaces",
        "--address=/ext.test/192.0.2.55",
        "--local=/test/",  # everything else under .test: NXDOMAIN from here
    )
    eventually(lambda: dig(ns, "www.ext.test", server=ip)[1] == ["192.0.2.55"])
    return ip, proc


@pytest.mark.parametrize("driver", ["nat", "l2bridge"])
def test_containers_resolve_names_on_shared_networks_only(lab: Lab, driver: str) -> None:
    d, _ = lab.host()
    dns_ip, _ = upstream(lab)
    if driver == "nat":
        d.cli("network", "create", "--subnet", "172.20.1.0/24", "-o", f"dnsservers={dns_ip}", "n1")
    else:
        d.cli(
            "network",
            "create",
            "-d",
            "l2bridge",
            "--subnet",
            f"{SEGMENT}.0/24",
            "--gateway",
            f"{SEGMENT}.1",
            "-o",
            "interface=eth0",
            "-o",
            f"dnsservers={dns_ip}",
            "n1",
        )
    d.cli("network", "create", "--subnet", "172.20.2.0/24", "n2")
    a = serve(d, "n1", "a", 80, False, "--network-alias", "db")
    b = serve(d, "n1", "b")
    c = serve(d, "n2", "c")
    assert dig(b["netns"], "a") == ("NOERROR", [a["ip"]])
    assert dig(b["netns"], "db") == ("NOERROR", [a["ip"]])
    assert dig(b["netns"], "a", tcp=True) == ("NOERROR", [a["ip"]])
    assert dig(a["netns"], "b") == ("NOERROR", [b["ip"]])
    # AAAA of a local name: an empty answer, not NXDOMAIN
    assert dig(b["netns"], "a", "AAAA") == ("NOERROR", [])
    rev = ".".join(reversed(a["ip"].split("."))) + ".in-addr.arpa"
    assert dig(b["netns"], rev, "PTR") == ("NOERROR", ["a."])
    # c is on another network: not local to b (the upstream says NXDOMAIN); and vice versa
    assert dig(b["netns"], "c.test") == ("NXDOMAIN", [])
    assert dig(b["netns"], "c")[1] == []
    assert dig(c["netns"], "a")[1] == []
    # other names go to the network's dnsservers
    assert dig(b["netns"], "www.ext.test") == ("NOERROR", ["192.0.2.55"])
    # a compartment's names follow connect and disconnect
    d.cli("network", "connect", "--alias", "cache", "n1", "c")
    c_on_n1 = d.json("ps", "--format", "json")
    c_ip = next(x for x in c_on_n1 if x["Name"] == "c")["Networks"]["n1"]["IPAddress"]
    assert dig(b["netns"], "cache") == ("NOERROR", [c_ip])
    assert dig(c["netns"], "a") == ("NOERROR", [a["ip"]])
    d.cli("network", "disconnect", "n1", "c")
    assert dig(b["netns"], "cache")[1] == []
    d.cli("rm", "a")
    assert dig(b["netns"], "a")[1] == []


def test_run_writes_resolv_conf_and_the_suffix_is_the_search_domain(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "172.20.3.0/24", "-o", "dnssuffix=corp.test", "n1")
    web = serve(d, "n1", "web")
    out = d.cli("run", "--net", "n1", "--", "sh", "-c", "cat /etc/resolv.conf").stdout
    assert f"nameserver {EMBEDDED}" in out and "search corp.test" in out
    # glibc in the compartment, through resolv.conf: the bare name and the suffixed one
    for name in ("web", "web.corp.test"):
        out = d.cli("run", "--net", "n1", "--", "getent", "hosts", name).stdout
        assert out.split()[0] == web["ip"], (name, out)
    rev = ".".join(reversed(web["ip"].split("."))) + ".in-addr.arpa"
    assert dig(web["netns"], rev, "PTR") == ("NOERROR", ["web.corp.test."])


def test_silent_upstream_gives_servfail_and_local_names_still_resolve(lab: Lab) -> None:
    hosts_resolver, proc = upstream(lab)
    d, _ = lab.host()
    with open(f"{d.state_dir}/resolv.conf", "w") as fh:  # the host's resolvers, for this daemon
        fh.write(f"nameserver {hosts_resolver}\n")
    d.stop()
    d.start()
    d.cli("network", "create", "--subnet", "172.20.4.0/24", "n1")  # no dnsservers: the host's
    a = serve(d, "n1", "a")
    b = serve(d, "n1", "b")
    assert dig(b["netns"], "www.ext.test") == ("NOERROR", ["192.0.2.55"])
    proc.send_signal(signal.SIGSTOP)  # the upstream still exists but answers nothing
    try:
        # dig waits 3 s: SERVFAIL arrives before that, never a hang
        assert dig(b["netns"], "www.ext.test") == ("SERVFAIL", [])
        assert dig(b["netns"], "a") == ("NOERROR", [a["ip"]])
    finally:
        proc.send_signal(signal.SIGCONT)
    # skipped for a while after its timeout, it is probed meanwhile and comes back
    eventually(lambda: dig(b["netns"], "www.ext.test") == ("NOERROR", ["192.0.2.55"]), 15)


def test_resolver_is_not_reachable_from_outside_its_compartments(lab: Lab) -> None:
    d, host_ip = lab.host()
    client, _ = lab.node("client")
    d.cli("network", "create", "--subnet", "172.20.5.0/24", "n1")
    a = serve(d, "n1", "a")
    b = serve(d, "n1", "b")
    assert dig(b["netns"], "a")[1] == [a["ip"]]
    # not from the host, not on a container's own address, not from the segment
    assert dig(d.host, "a")[0] == "TIMEOUT"
    assert dig(d.host, "a", server=b["ip"])[0] == "TIMEOUT"
    assert dig(client, "a", server=host_ip)[0] == "TIMEOUT"
    assert dig(client, "a", server=b["ip"])[0] == "TIMEOUT"


def test_port_53_stays_free_for_the_containers_own_servers(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "172.20.8.0/24", "n1")
    a = serve(d, "n1", "a", 53, True)  # a UDP server on 0.0.0.0:53 inside the compartment
    b = serve(d, "n1", "b")
    # UDP: a datagram may be lost on a loaded machine; the answer must come within a few tries
    eventually(lambda: ask(b["netns"], a["ip"], 53, udp=True) == "a", timeout=20)
    assert dig(a["netns"], "b") == ("NOERROR", [b["ip"]])  # its own resolver still answers


def test_discovery_can_be_switched_off_per_network(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli(
        "network",
        "create",
        "--subnet",
        "172.20.6.0/24",
        "-o",
        "discovery=false",
        "-o",
        f"dnsservers={SEGMENT}.53",
        "quiet",
    )
    serve(d, "quiet", "a")
    b = serve(d, "quiet", "b")
    out = d.cli("run", "--net", "quiet", "--", "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {SEGMENT}.53" in out and EMBEDDED not in out
    assert dig(b["netns"], "a")[0] == "TIMEOUT"  # nothing listens in the compartment


def test_resolver_comes_back_after_a_daemon_kill(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "172.20.7.0/24", "n1")
    a = serve(d, "n1", "a")
    b = serve(d, "n1", "b")
    d.stop(signal.SIGKILL)
    d.start(*d.args)
    eventually(lambda: dig(b["netns"], "a") == ("NOERROR", [a["ip"]]))
    out = in_ns(b["netns"], "ss", "-lun").stdout
    assert out.count(f"{EMBEDDED}:") == 1  # the old socket died with the old daemon
