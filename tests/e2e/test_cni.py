"""hostnet-cni against the CNI spec, chained with the reference plugins, and under podman."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "netns"))
from cni_runner import add, delete, exec_plugin  # noqa: E402
from helpers import ask, ping, wait_listening  # noqa: E402

from lab import Daemon, Lab, eventually, in_ns, sh  # noqa: E402

C_SHIM = "/opt/cni/bin/hostnet"
PY_SHIM = os.path.join(os.path.dirname(__file__), "py-hostnet-cni")


@pytest.fixture(scope="module", autouse=True)
def shims() -> Iterator[None]:
    if not os.path.exists(C_SHIM):
        pytest.skip("hostnet-cni is not installed (scripts/install-cni.sh)")
    src = os.path.join(os.path.dirname(__file__), "..", "..", "src")
    with open(PY_SHIM, "w") as fh:
        fh.write(
            f"#!{sys.executable} -IS\nimport sys\nsys.path.insert(0, {os.path.abspath(src)!r})\n"
            "from hostnet.cni_plugin import main\nmain()\n"
        )
    os.chmod(PY_SHIM, 0o755)
    yield
    os.unlink(PY_SHIM)


@pytest.fixture
def world(lab: Lab) -> Iterator[tuple[Lab, Daemon, str, str]]:
    d, host_ip = lab.host()
    ns = lab.prefix + "pod"
    sh("ip", "netns", "add", ns)
    try:
        yield lab, d, host_ip, ns
    finally:
        sh("ip", "netns", "del", ns, check=False)


def conf(d: Daemon, version: str = "1.0.0", **extra: object) -> dict[str, object]:
    return {"cniVersion": version, "name": "nat", "type": "hostnet", "socket": d.socket, **extra}


@pytest.mark.parametrize("shim", [C_SHIM, PY_SHIM], ids=["c-shim", "python-shim"])
@pytest.mark.parametrize("version", ["0.4.0", "1.0.0", "1.1.0"])
def test_add_check_del_round_trip(
    world: tuple[Lab, Daemon, str, str], shim: str, version: str
) -> None:
    lab, d, host_ip, ns = world
    client, _ = lab.node("client")
    runtime = {
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        "dns": {"nameservers": ["198.51.100.53"], "search": ["lab"]},
    }
    code, res = exec_plugin(
        shim, "ADD", conf(d, version, runtimeConfig=runtime), "ctr1", f"/run/netns/{ns}"
    )
    assert code == 0, res
    assert res["cniVersion"] == version
    assert res["interfaces"][1] == {
        "name": "eth0",
        "mac": res["interfaces"][1]["mac"],
        "sandbox": f"/run/netns/{ns}",
    }
    ip = res["ips"][0]["address"].split("/")[0]
    assert res["ips"][0]["interface"] == 1 and res["ips"][0]["gateway"] == "172.16.0.1"
    assert ("version" in res["ips"][0]) == (version == "0.4.0")
    assert res["routes"] == [{"dst": "0.0.0.0/0", "gw": "172.16.0.1"}]
    assert res["dns"] == runtime["dns"]
    assert f"{ip}/16" in in_ns(ns, "ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert ping(ns, "172.16.0.1")
    lab.spawn(ns, "socat", "TCP-LISTEN:80,reuseaddr,fork", "SYSTEM:read l; echo pod")
    time.sleep(0.3)
    assert ask(client, host_ip, 8080) == "pod"
    assert exec_plugin(shim, "CHECK", conf(d, version), "ctr1", f"/run/netns/{ns}")[0] == 0
    assert (
        exec_plugin(
            shim, "DEL", conf(d, version, runtimeConfig=runtime), "ctr1", f"/run/netns/{ns}"
        )[0]
        == 0
    )
    assert ask(client, host_ip, 8080, timeout=1) == ""
    assert in_ns(ns, "ip", "link", "show", "eth0", check=False).returncode != 0
    assert (
        exec_plugin(shim, "DEL", conf(d, version), "ctr1", f"/run/netns/{ns}")[0] == 0
    )  # idempotent
    assert d.json("ps", "--format", "json") == []


def test_static_ip_and_mac_from_runtime_config(world: tuple[Lab, Daemon, str, str]) -> None:
    _, d, _, ns = world
    runtime = {"ips": ["172.16.9.9/16"], "mac": "02:11:22:33:44:55"}
    code, res = exec_plugin(
        C_SHIM, "ADD", conf(d, runtimeConfig=runtime), "ctr2", f"/run/netns/{ns}"
    )
    assert code == 0, res
    assert (
        res["ips"][0]["address"] == "172.16.9.9/16"
        and res["interfaces"][1]["mac"] == "02:11:22:33:44:55"
    )
    link = in_ns(ns, "ip", "-o", "link", "show", "eth0").stdout
    assert "02:11:22:33:44:55" in link
    assert exec_plugin(C_SHIM, "DEL", conf(d), "ctr2", f"/run/netns/{ns}")[0] == 0


def test_del_succeeds_when_namespace_is_gone_and_releases_everything(
    world: tuple[Lab, Daemon, str, str],
) -> None:
    _, d, _, ns = world
    assert exec_plugin(C_SHIM, "ADD", conf(d), "ctr3", f"/run/netns/{ns}")[0] == 0
    sh("ip", "netns", "del", ns)
    code, out = exec_plugin(C_SHIM, "DEL", conf(d), "ctr3", f"/run/netns/{ns}")
    assert code == 0, out
    assert d.json("ps", "--format", "json") == []

    def no_veth() -> None:
        assert "hv" not in in_ns(d.host, "ip", "-o", "link", "show", "type", "veth").stdout

    eventually(no_veth)
    assert d.json("network", "inspect", "nat")[0]["Containers"] == {}


def test_check_reports_a_deleted_veth(world: tuple[Lab, Daemon, str, str]) -> None:
    _, d, _, ns = world
    code, res = exec_plugin(C_SHIM, "ADD", conf(d), "ctr4", f"/run/netns/{ns}")
    assert code == 0
    in_ns(d.host, "ip", "link", "del", res["interfaces"][0]["name"])
    code, err = exec_plugin(C_SHIM, "CHECK", conf(d), "ctr4", f"/run/netns/{ns}")
    assert code != 0 and "missing" in err["msg"] and err["code"] >= 5
    assert exec_plugin(C_SHIM, "DEL", conf(d), "ctr4", f"/run/netns/{ns}")[0] == 0


def test_gc_removes_attachments_not_in_the_valid_list(world: tuple[Lab, Daemon, str, str]) -> None:
    lab, d, _, ns = world
    ns2 = lab.prefix + "pod2"
    sh("ip", "netns", "add", ns2)
    try:
        assert exec_plugin(C_SHIM, "ADD", conf(d), "keep", f"/run/netns/{ns}")[0] == 0
        assert exec_plugin(C_SHIM, "ADD", conf(d), "stale", f"/run/netns/{ns2}")[0] == 0
        valid = {"cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "eth0"}]}
        assert exec_plugin(C_SHIM, "GC", conf(d, "1.1.0", **valid))[0] == 0
        assert [c["Id"] for c in d.json("ps", "--format", "json")] == ["keep"]
        assert in_ns(ns2, "ip", "link", "show", "eth0", check=False).returncode != 0
        assert exec_plugin(C_SHIM, "DEL", conf(d), "keep", f"/run/netns/{ns}")[0] == 0
    finally:
        sh("ip", "netns", "del", ns2, check=False)


def test_status_and_version(world: tuple[Lab, Daemon, str, str]) -> None:
    _, d, _, _ = world
    assert exec_plugin(C_SHIM, "STATUS", conf(d, "1.1.0"))[0] == 0
    code, out = exec_plugin(C_SHIM, "VERSION", {"cniVersion": "1.1.0"})
    assert code == 0 and set(out["supportedVersions"]) >= {"0.4.0", "1.0.0", "1.1.0"}
    bad = {**conf(d, "1.1.0"), "socket": "/nonexistent.sock"}
    code, out = exec_plugin(C_SHIM, "STATUS", bad)
    assert code != 0 and out["code"] == 50


@pytest.mark.parametrize(
    ("config", "env", "code", "words"),
    [
        ({"cniVersion": "9.9.9", "name": "nat", "type": "hostnet"}, {}, 1, "not supported"),
        ({"cniVersion": "1.0.0", "type": "hostnet"}, {}, 7, "'name'"),
        (
            {"cniVersion": "1.0.0", "name": "nat", "type": "hostnet"},
            {"CNI_NETNS": ""},
            4,
            "CNI_NETNS",
        ),
        (
            {"cniVersion": "1.0.0", "name": "nope", "type": "hostnet"},
            {},
            3,
            "no network named 'nope'",
        ),
        (
            {"cniVersion": "1.0.0", "name": "n2", "type": "hostnet", "subnet": "10.1.2.3/33"},
            {},
            7,
            "malformed subnet",
        ),
        (
            {"cniVersion": "1.0.0", "name": "n3", "type": "hostnet", "driver": "bogus"},
            {},
            7,
            "unknown driver",
        ),
        (
            {
                "cniVersion": "1.0.0",
                "name": "nat",
                "type": "hostnet",
                "runtimeConfig": {"bandwidth": {"ingressRate": 1000}},
            },
            {},
            7,
            "needs ingressBurst",
        ),
    ],
)
def test_bad_config_gets_cni_error_codes(
    world: tuple[Lab, Daemon, str, str],
    config: dict[str, object],
    env: dict[str, str],
    code: int,
    words: str,
) -> None:
    _, d, _, ns = world
    config = {**config, "socket": d.socket}
    rc, out = exec_plugin(C_SHIM, "ADD", config, "bad", f"/run/netns/{ns}", env=env)
    assert rc != 0 and out["code"] == code and words in out["msg"], out
    assert d.json("ps", "--format", "json") == []
    res = subprocess.run(
        [C_SHIM],
        input=b"not json",
        env={
            "CNI_COMMAND": "ADD",
            "CNI_CONTAINERID": "x",
            "CNI_NETNS": f"/run/netns/{ns}",
            "CNI_IFNAME": "eth0",
            "HOSTNET_SOCKET": d.socket,
        },
        capture_output=True,
    )
    assert res.returncode != 0 and json.loads(res.stdout)["code"] == 6


@pytest.mark.parametrize("second", ["bandwidth", "tuning"])
def test_chained_with_reference_plugins(world: tuple[Lab, Daemon, str, str], second: str) -> None:
    _, d, _, ns = world
    extra = (
        {"type": "bandwidth", "capabilities": {"bandwidth": True}}
        if second == "bandwidth"
        else {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.rp_filter": "2"}, "mtu": 1400}
    )
    conflist = {
        "cniVersion": "1.0.0",
        "name": "nat",
        "plugins": [{"type": "hostnet", "socket": d.socket}, extra],
    }
    runtime = {
        "bandwidth": {
            "ingressRate": 8_000_000,
            "ingressBurst": 16_000_000,
            "egressRate": 8_000_000,
            "egressBurst": 16_000_000,
        }
    }
    res = add(conflist, "chain1", f"/run/netns/{ns}", runtime=runtime, host_ns=d.host)
    assert res["ips"][0]["address"].startswith("172.16.")
    if second == "bandwidth":
        host_if = res["interfaces"][0]["name"]
        assert "tbf" in in_ns(d.host, "tc", "qdisc", "show", "dev", host_if).stdout
    else:
        assert "mtu 1400" in in_ns(ns, "ip", "link", "show", "eth0").stdout
        assert in_ns(ns, "sysctl", "-n", "net.ipv4.conf.eth0.rp_filter").stdout.strip() == "2"
    delete(conflist, "chain1", f"/run/netns/{ns}", runtime=runtime, host_ns=d.host)
    assert d.json("ps", "--format", "json") == []


PODMAN_CONF = """[network]
network_backend = "cni"
cni_plugin_dirs = ["/opt/cni/bin", "/usr/lib/cni"]
network_config_dir = "{netd}"
[engine]
events_logger = "none"
cgroup_manager = "cgroupfs"
# runc (docker.io's): crun refuses hosts with cgroup v1 and v2 mounted at once (hybrid)
runtime = "runc"
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
"""


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], str, str]]:
    if not shutil.which("podman") or not os.path.exists("/bin/busybox"):
        pytest.skip("needs podman and busybox-static (scripts/test.sh installs them)")
    base = tmp_path_factory.mktemp("podman")
    netd = base / "net.d"
    netd.mkdir()
    (base / "containers.conf").write_text(PODMAN_CONF.format(netd=netd))
    cmd = [
        "podman",
        "--root",
        str(base / "root"),
        "--runroot",
        str(base / "run"),
        "--storage-driver",
        "vfs",
    ]
    os.environ["CONTAINERS_CONF"] = str(base / "containers.conf")
    from images import busybox_tar

    sh(
        *cmd,
        "import",
        "--change",
        "ENV PATH=/bin",
        busybox_tar(str(base)),
        "localhost/busybox:latest",
        timeout=120,
    )
    yield cmd, str(netd), str(base)
    sh(*cmd, "rm", "-af", check=False, timeout=120)
    sh(*cmd, "rmi", "-af", check=False, timeout=120)
    os.environ.pop("CONTAINERS_CONF", None)
    subprocess.run(["rm", "-rf", str(base)], check=False)


def test_podman_run_gets_address_and_port_mapping_and_rm_releases(
    lab: Lab, podman: tuple[list[str], str, str]
) -> None:
    cmd, netd, _ = podman
    d, host_ip = lab.host()
    client, _ = lab.node("client")
    conflist = {
        "cniVersion": "1.0.0",
        "name": "hnpod",
        "plugins": [
            {
                "type": "hostnet",
                "network": "nat",
                "socket": d.socket,
                "capabilities": {"portMappings": True},
            }
        ],
    }
    path = os.path.join(netd, "hnpod.conflist")
    with open(path, "w") as fh:
        json.dump(conflist, fh)
    try:
        in_ns(
            d.host,
            *cmd,
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "hnpod",
            "-p",
            "8080:80",
            "localhost/busybox",
            "sh",
            "-c",
            "while true; do echo podweb | nc -l -p 80; done",
            timeout=120,
        )
        ps = d.json("ps", "--format", "json")
        assert (
            len(ps) == 1
            and ps[0]["External"]
            and ps[0]["Networks"]["nat"]["IPAddress"].startswith("172.16.")
        )
        deadline = time.monotonic() + 10
        while ask(client, host_ip, 8080, timeout=1) != "podweb" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ask(client, host_ip, 8080) == "podweb"
        in_ns(d.host, *cmd, "rm", "-f", "-t", "0", "web", timeout=120)
        assert d.json("ps", "--format", "json") == []
        assert ask(client, host_ip, 8080, timeout=1) == ""
    finally:
        sh(*cmd, "rm", "-f", "-t", "0", "web", check=False, timeout=120)
        os.unlink(path)


def iperf_mbps(
    lab: Lab, server_ns: str, client_ns: str, ip: str, reverse: bool, port: int
) -> float:
    lab.spawn(server_ns, "iperf3", "-s", "-1", "-p", str(port))
    wait_listening(f"/run/netns/{server_ns}", port)
    args = ["iperf3", "-c", ip, "-p", str(port), "-t", "2", "-J"] + (["-R"] if reverse else [])
    out = json.loads(in_ns(client_ns, *args, timeout=30).stdout)
    assert "error" not in out, out["error"]
    return float(out["end"]["sum_received"]["bits_per_second"]) / 1e6


def test_bandwidth_limits_both_directions(world: tuple[Lab, Daemon, str, str]) -> None:
    lab, d, _, ns = world
    rate = 20_000_000
    runtime = {
        "bandwidth": {
            "ingressRate": rate,
            "ingressBurst": rate // 10,
            "egressRate": rate,
            "egressBurst": rate // 10,
        }
    }
    code, res = exec_plugin(C_SHIM, "ADD", conf(d, runtimeConfig=runtime), "bw", f"/run/netns/{ns}")
    assert code == 0, res
    ip = res["ips"][0]["address"].split("/")[0]
    towards = iperf_mbps(lab, ns, d.host, ip, reverse=False, port=5201)  # host -> container
    away = iperf_mbps(lab, ns, d.host, ip, reverse=True, port=5202)  # container -> host
    assert 5 < towards < 30 and 5 < away < 30, (towards, away)
    assert exec_plugin(C_SHIM, "DEL", conf(d), "bw", f"/run/netns/{ns}")[0] == 0


def test_network_dns_options_in_the_result(world: tuple[Lab, Daemon, str, str]) -> None:
    _, d, _, ns = world
    config = conf(
        d,
        name="named",
        subnet="172.16.7.0/24",
        options={"dnsservers": "198.51.100.53", "dnssuffix": "corp.example"},
    )
    code, res = exec_plugin(C_SHIM, "ADD", config, "dns1", f"/run/netns/{ns}")
    assert code == 0, res
    # the embedded resolver serves the namespace and forwards to the network's dnsservers
    assert res["dns"] == {"nameservers": ["127.0.0.11"], "search": ["corp.example"]}
    assert "127.0.0.11:" in in_ns(ns, "ss", "-lun").stdout
    assert exec_plugin(C_SHIM, "DEL", config, "dns1", f"/run/netns/{ns}")[0] == 0
    assert "127.0.0.11:" not in in_ns(ns, "ss", "-lun").stdout  # nothing pins the runtime's netns


def test_acl_and_policies_from_the_config(world: tuple[Lab, Daemon, str, str]) -> None:
    lab, d, _, ns = world
    config = conf(
        d,
        acl=["action=block;dir=in;proto=tcp;lport=81"],
        policies=[
            {
                "Type": "ACL",
                "Settings": {
                    "Action": "Block",
                    "Direction": "In",
                    "Protocols": "6",
                    "LocalPorts": "82",
                },
            },
            {"Type": "OutBoundNAT", "Settings": {"Exceptions": ["198.51.100.0/24"]}},
        ],
    )
    code, res = exec_plugin(C_SHIM, "ADD", config, "acl1", f"/run/netns/{ns}")
    assert code == 0, res
    ip = res["ips"][0]["address"].split("/")[0]
    for port in (80, 81, 82):
        lab.spawn(ns, "socat", f"TCP-LISTEN:{port},reuseaddr,fork", f"SYSTEM:read l; echo p{port}")
        wait_listening(f"/run/netns/{ns}", port)
    assert ask(d.host, ip, 80) == "p80"
    assert ask(d.host, ip, 81, timeout=1) == "" and ask(d.host, ip, 82, timeout=1) == ""
    hns = d.json("endpoint", "inspect", "acl1")
    kinds = sorted(p["Type"] for p in hns["Policies"])
    assert kinds == ["ACL", "ACL", "OutBoundNAT"]
    assert exec_plugin(C_SHIM, "DEL", config, "acl1", f"/run/netns/{ns}")[0] == 0
    bad = conf(d, policies=[{"Type": "SDNRoute", "Settings": {"NeedEncap": True}}])
    code, res = exec_plugin(C_SHIM, "ADD", bad, "acl2", f"/run/netns/{ns}")
    assert code != 0 and "NeedEncap" in res["msg"] + res.get("details", "")
