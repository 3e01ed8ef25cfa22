"""Overlay networks across three lab hosts with a 3-member etcd cluster (one member per
host): visibility, traffic and names across hosts, VNI isolation, cluster IPAM under
parallel attaches, no flooding, and the store and host faults of issue 6."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from helpers import ask, ping, serve
from test_acl import raw_253_arrives

from lab import Daemon, Lab, etcd_member, eventually, in_ns, wait_etcd

SUBNET = "10.0.9.0/24"


@dataclass
class Cluster:
    lab: Lab
    nodes: list[tuple[str, str]]
    daemons: list[Daemon]
    etcd: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    store: str = ""

    def member_args(self, i: int) -> tuple[str, str, str, str]:
        cluster = ",".join(f"m{k + 1}=http://{ip}:2380" for k, (_, ip) in enumerate(self.nodes))
        ns, ip = self.nodes[i]
        return ns, ip, cluster, os.path.join(self.lab.tmp, f"etcd-m{i + 1}")

    def start_member(self, i: int) -> None:
        ns, ip, cluster, data = self.member_args(i)
        self.etcd[f"m{i + 1}"] = etcd_member(self.lab, f"m{i + 1}", ns, ip, cluster, data, False)

    def stop_member(self, i: int) -> None:
        p = self.etcd.pop(f"m{i + 1}")
        p.kill()
        p.wait(10)

    def fdb(self, i: int, net: str) -> set[str]:
        """MACs the host's VXLAN device forwards to other hosts."""
        d = self.daemons[i]
        dev = next(s for s in d.json("switch", "ls", "--format", "json") if s["Networks"] == net)[
            "Adapter"
        ]
        out = in_ns(d.host, "bridge", "-j", "fdb", "show", "dev", dev).stdout
        return {e["mac"] for e in json.loads(out or "[]") if e.get("dst")}


@pytest.fixture
def cluster(lab: Lab) -> Iterator[Cluster]:
    if not any(os.access(os.path.join(p, "etcd"), os.X_OK) for p in os.environ["PATH"].split(":")):
        pytest.skip("needs etcd (scripts/test.sh installs etcd-server)")
    nodes = [lab.node(f"h{i}") for i in range(1, 4)]
    cl = Cluster(lab, nodes, [])
    for i in range(3):
        cl.start_member(i)
    for ns, ip in nodes:
        wait_etcd(ns, ip)
    cl.store = "etcd://" + ",".join(f"{ip}:2379" for _, ip in nodes)
    for i, (ns, ip) in enumerate(nodes, 1):
        state = os.path.join(lab.tmp, f"h{i}")
        os.makedirs(state)
        d = Daemon(ns, state, os.path.join(state, "hostnet.sock"))
        lab.daemons.append(d)
        d.start("--store", cl.store, "--host-id", f"h{i}", "--advertise-addr", ip)
        cl.daemons.append(d)
    try:
        yield cl
    finally:
        for i in range(3):  # the members come back so the daemons can clean up
            if f"m{i + 1}" not in cl.etcd:
                cl.start_member(i)
        for d in cl.daemons:
            if d.proc is None:
                d.start(*d.args)
            for c in d.json("ps", "--format", "json"):
                d.cli("rm", c["Id"], check=False)
        for p in cl.etcd.values():
            p.terminate()
            p.wait(10)


def ip_on(d: Daemon, name: str, net: str = "ov1") -> str:
    c = next(x for x in d.json("ps", "--format", "json") if x["Name"] == name)
    return str(c["Networks"][net]["IPAddress"])


def dig_a(netns: str, name: str) -> list[str]:
    out = in_ns(netns, "dig", "@127.0.0.11", "+short", "+time=2", "+tries=1", "-q", name, "-t", "A")
    return out.stdout.split()


def test_overlay_spans_hosts_with_names_and_no_flooding(cluster: Cluster) -> None:
    h1, h2, h3 = cluster.daemons
    h1.cli(
        "network",
        "create",
        "-d",
        "overlay",
        "--subnet",
        SUBNET,
        "-o",
        "com.docker.network.driver.overlay.vxlanid_list=4097",
        "ov1",
    )
    for d in (h2, h3):  # visible on every host
        eventually(
            lambda d=d: any(n["Name"] == "ov1" for n in d.json("network", "ls", "--format", "json"))
        )
    a = serve(h1, "ov1", "a")
    b = serve(h2, "ov1", "b")
    c = serve(h3, "ov1", "c")
    assert len({a["ip"], b["ip"], c["ip"]}) == 3
    eventually(lambda: len(cluster.fdb(0, "ov1")) == 2)
    # by address and by name, across hosts
    assert ping(b["netns"], a["ip"]) and ping(c["netns"], b["ip"])
    assert ask(b["netns"], a["ip"], 80) == "a" and ask(a["netns"], c["ip"], 80) == "c"
    eventually(lambda: dig_a(b["netns"], "a") == [a["ip"]])
    assert dig_a(c["netns"], "b") == [b["ip"]]
    # the VXLAN overhead is taken off the endpoints' MTU; learning is off (proxy ARP on)
    link = json.loads(in_ns(b["netns"], "ip", "-j", "link", "show", "eth0").stdout)[0]
    assert link["mtu"] == 1450
    vx = in_ns(h1.host, "ip", "-d", "link", "show", "type", "vxlan").stdout
    assert "nolearning" in vx and "proxy" in vx and "id 4097" in vx
    # overlay endpoints allow every protocol in (Windows' overlay default): raw IP 253 arrives
    assert raw_253_arrives(cluster.lab, b["netns"], a["netns"], a["ip"])
    # the way out is a second endpoint on a nat network: it gives the default route
    out = h1.cli("run", "--net", "ov1", "--net", "nat", "--", "ip", "route").stdout
    assert "default via 172.16.0.1 dev eth1" in out and "10.0.9.0/24 dev eth0" in out
    # a second overlay gets another VNI and cannot reach the first
    h2.cli("network", "create", "-d", "overlay", "--subnet", "10.0.10.0/24", "ov2")
    eventually(
        lambda: any(n["Name"] == "ov2" for n in h1.json("network", "ls", "--format", "json"))
    )
    x = serve(h1, "ov2", "x")
    y = serve(h2, "ov2", "y")
    assert ping(y["netns"], x["ip"])
    assert not ping(x["netns"], b["ip"]) and not ping(y["netns"], a["ip"])
    assert dig_a(y["netns"], "a") == []  # names of another overlay are not local
    vnis = {s["VNI"] for s in h1.json("switch", "ls", "--format", "json") if s.get("VNI")}
    assert vnis == {4097, 4098}
    # the network is in use elsewhere: refused, naming the hosts
    res = h1.cli("network", "rm", "ov1", check=False)
    assert res.returncode != 0 and "h2" in res.stderr and "h3" in res.stderr
    # endpoints leaving: forwarding entries leave every other host
    b_mac = cluster.fdb(0, "ov1") & cluster.fdb(2, "ov1")  # h1 and h3 both forward to b
    h2.cli("rm", "b")
    eventually(lambda: len(cluster.fdb(0, "ov1")) == 1 and len(cluster.fdb(2, "ov1")) == 1)
    assert b_mac and not (b_mac & cluster.fdb(0, "ov1"))


def test_cluster_ipam_under_parallel_attaches(cluster: Cluster) -> None:
    h1 = cluster.daemons[0]
    h1.cli("network", "create", "-d", "overlay", "--subnet", "10.0.11.0/24", "ov1")
    for d in cluster.daemons[1:]:
        eventually(
            lambda d=d: any(n["Name"] == "ov1" for n in d.json("network", "ls", "--format", "json"))
        )
    got: list[str] = []
    errors: list[str] = []

    def attach(d: Daemon, k: int) -> None:
        from hostnet.client import Client

        try:
            view = Client(d.socket).post(
                "/containers", {"name": f"{d.host[-2:]}c{k}", "networks": [{"network": "ov1"}]}
            )
            got.append(view["Networks"]["ov1"]["IPAddress"])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(str(exc))

    threads = [
        threading.Thread(target=attach, args=(d, k)) for k in range(50) for d in cluster.daemons
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert len(got) == 150 and len(set(got)) == 150
    # every host's registry view agrees: 150 endpoints, 50 per host
    for d in cluster.daemons:
        eventually(
            lambda d=d: sum(h["Endpoints"] for h in d.json("node", "ls", "--format", "json")) == 150
        )
    for d in cluster.daemons:  # no process ever runs in them: remove explicitly
        for c in d.json("ps", "--format", "json"):
            d.cli("rm", c["Id"])
    eventually(lambda: sum(h["Endpoints"] for h in h1.json("node", "ls", "--format", "json")) == 0)


def test_store_faults_and_host_restart_and_removal(cluster: Cluster) -> None:
    h1, h2, h3 = cluster.daemons
    h1.cli("network", "create", "-d", "overlay", "--subnet", SUBNET, "ov1")
    for d in (h2, h3):
        eventually(
            lambda d=d: any(n["Name"] == "ov1" for n in d.json("network", "ls", "--format", "json"))
        )
    a = serve(h1, "ov1", "a")
    b = serve(h2, "ov1", "b")
    c = serve(h3, "ov1", "c")
    eventually(lambda: ping(a["netns"], b["ip"]) and ping(c["netns"], a["ip"]))
    # one member down: attach and detach still work
    cluster.stop_member(2)
    d1 = serve(h1, "ov1", "d1")
    eventually(lambda: ping(b["netns"], d1["ip"]))
    h1.cli("rm", "d1")
    # every member down: traffic goes on, attach fails fast and clearly, nothing changes
    cluster.stop_member(0)
    cluster.stop_member(1)
    assert ping(a["netns"], b["ip"]) and ask(c["netns"], a["ip"], 80) == "a"
    before = h1.json("ps", "--format", "json")
    res = h1.cli(
        "run", "-d", "--net", "ov1", "--name", "late", "--", "sleep", "infinity", check=False
    )
    assert res.returncode != 0 and "cluster store unavailable" in res.stderr, res.stderr
    assert [x["Name"] for x in h1.json("ps", "--format", "json")] == [x["Name"] for x in before]
    # back: attach works again; no endpoint lost or doubled
    for i in range(3):
        cluster.start_member(i)
    for ns, ip in cluster.nodes:
        wait_etcd(ns, ip)
    e = serve(h1, "ov1", "e")
    eventually(lambda: ping(c["netns"], e["ip"]), timeout=15)
    eventually(
        lambda: (
            sorted((h["Host"], h["Endpoints"]) for h in h2.json("node", "ls", "--format", "json"))
            == [("h1", 2), ("h2", 1), ("h3", 1)]
        ),
        timeout=15,
    )
    # a host's daemon killed and restarted: it rejoins; its endpoints were never lost
    h2.stop(signal.SIGKILL)
    assert ping(a["netns"], b["ip"])
    h2.start(*h2.args)
    f = serve(h3, "ov1", "f")  # learned by h2 after its restart
    eventually(lambda: ping(b["netns"], f["ip"]), timeout=15)
    assert len(cluster.fdb(1, "ov1")) == 4  # a, c, e, f
    # a host removed for good: its endpoints leave everyone's forwarding tables
    gone = h3.json("ps", "--format", "json")
    h3.stop(signal.SIGKILL)
    h1.cli("node", "rm", "h3")
    eventually(
        lambda: len(cluster.fdb(0, "ov1")) == 1 and len(cluster.fdb(1, "ov1")) == 2, timeout=15
    )
    assert not ping(a["netns"], c["ip"])
    # the host's containers go with it (its store keys are gone, so no daemon removes them)
    for x in gone:
        os.killpg(x["Pid"], signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", os.path.basename(x["NetnsPath"])], check=False)


def _certs(tmp: str, ip: str) -> dict[str, str]:
    """A lab CA, a server certificate for ``ip`` and a client certificate (openssl)."""
    p = {
        k: os.path.join(tmp, f"{k}.pem")
        for k in ("ca", "ca-key", "srv", "srv-key", "cli", "cli-key")
    }

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=lab-ca",
        "-keyout",
        p["ca-key"],
        "-out",
        p["ca"],
    )
    for name, ext in (("srv", f"subjectAltName=IP:{ip}"), ("cli", "extendedKeyUsage=clientAuth")):
        csr = os.path.join(tmp, f"{name}.csr")
        extfile = os.path.join(tmp, f"{name}.ext")
        with open(extfile, "w") as fh:
            fh.write(ext + "\n")
        run(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            p[f"{name}-key"],
            "-out",
            csr,
        )
        run(
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            p["ca"],
            "-CAkey",
            p["ca-key"],
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            extfile,
            "-out",
            p[name],
        )
    return p


def test_store_over_tls_with_client_certificates(lab: Lab) -> None:
    ns, ip = lab.node("h1")
    certs = _certs(lab.tmp, ip)
    data = os.path.join(lab.tmp, "etcd-tls")
    log = open(f"{data}.log", "ab")  # noqa: SIM115 - handed to the child
    lab.procs.append(
        subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{ns}",
                "etcd",
                "--name",
                "m1",
                "--data-dir",
                data,
                "--listen-client-urls",
                f"https://{ip}:2379",
                "--advertise-client-urls",
                f"https://{ip}:2379",
                "--listen-peer-urls",
                f"http://{ip}:2380",
                "--initial-advertise-peer-urls",
                f"http://{ip}:2380",
                "--initial-cluster",
                f"m1=http://{ip}:2380",
                "--cert-file",
                certs["srv"],
                "--key-file",
                certs["srv-key"],
                "--client-cert-auth",
                "--trusted-ca-file",
                certs["ca"],
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    )
    log.close()
    state = os.path.join(lab.tmp, "h1")
    os.makedirs(state)
    d = Daemon(ns, state, os.path.join(state, "hostnet.sock"))
    lab.daemons.append(d)

    def started() -> bool:
        try:
            d.start(
                "--store",
                f"etcds://{ip}:2379",
                "--host-id",
                "h1",
                "--store-ca",
                certs["ca"],
                "--store-cert",
                certs["cli"],
                "--store-key",
                certs["cli-key"],
            )
            return True
        except RuntimeError:
            return False

    eventually(started, timeout=20)
    d.cli("network", "create", "-d", "overlay", "--subnet", SUBNET, "ov1")
    a = serve(d, "ov1", "a")
    assert a["ip"].startswith("10.0.9.")
    # without the client certificate etcd refuses the connection: a clear error, no start
    state2 = os.path.join(lab.tmp, "h1b")
    os.makedirs(state2)
    d2 = Daemon(ns, state2, os.path.join(state2, "hostnet.sock"))
    with pytest.raises(RuntimeError, match="cluster store unavailable"):
        d2.start("--store", f"etcds://{ip}:2379", "--host-id", "h1b", "--store-ca", certs["ca"])
    d.cli("rm", "a")  # while etcd still runs (the lab stops it first)


def test_dual_stack_overlay_across_hosts_with_cluster_wide_ipv6_claims(cluster: Cluster) -> None:
    """IPv6 inner addresses: claimed once in the cluster, forwarded by FDB entries with a
    proxy neighbour per address (neighbour discovery answered by the VXLAN device, never
    flooded), names answer AAAA across hosts; removal takes both addresses' entries."""
    h1, h2, h3 = cluster.daemons
    v6 = "fd12:3456:789a:40::/64"
    h1.cli("network", "create", "-d", "overlay", "--subnet", "10.0.40.0/24", "--subnet", v6, "ds")
    for d in (h2, h3):
        eventually(lambda d=d: "ds" in d.cli("network", "ls").stdout)
    a = serve(h1, "ds", "a")
    b = serve(h2, "ds", "b", 80, False, "--ip6", "fd12:3456:789a:40::b")
    c = serve(h3, "ds", "c")
    ips6 = {a["ip6"], b["ip6"], c["ip6"]}
    assert len(ips6) == 3 and all(ip.startswith("fd12:3456:789a:40::") for ip in ips6), ips6
    for i in range(3):  # every host forwards to the other two
        eventually(lambda i=i: len(cluster.fdb(i, "ds")) == 2)
    assert ping(b["netns"], a["ip6"]) and ping(c["netns"], b["ip6"])
    assert ask(a["netns"], b["ip6"], 80) == "b" and ask(b["netns"], c["ip6"], 80) == "c"
    neigh = in_ns(h1.host, "ip", "-6", "neigh", "show").stdout
    assert b["ip6"] in neigh and c["ip6"] in neigh, neigh
    eventually(
        lambda: (
            in_ns(
                a["netns"], "dig", "@127.0.0.11", "+short", "-q", "b", "-t", "AAAA"
            ).stdout.split()
            == [b["ip6"]]
        )
    )
    # b's IPv6 address is claimed cluster-wide: another host cannot take it
    res = h3.cli("run", "--net", "ds", "--ip6", b["ip6"], "--", "true", check=False)
    assert res.returncode != 0 and "already in use" in res.stderr, res.stderr
    h2.cli("rm", "b")
    eventually(lambda: b["ip6"] not in in_ns(h1.host, "ip", "-6", "neigh", "show").stdout)
    # free again once b is gone, on another host; with b's addresses d has b's MAC (derived
    # from the IPv4 address, as Docker's), so what peers had cached for b holds for d
    d = serve(h3, "ds", "d", 80, False, "--ip", b["ip"], "--ip6", b["ip6"])
    eventually(lambda: len(cluster.fdb(0, "ds")) == 2)
    assert ping(a["netns"], d["ip6"]) and ask(a["netns"], d["ip6"], 80) == "d"
    h1.cli("rm", "a")
    h3.cli("rm", "c", "d")
    h1.cli("network", "rm", "ds")
