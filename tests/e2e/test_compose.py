"""The seed's two Docker Compose snippets with Debian's docker-compose 1.29."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import tempfile

import pytest
from dockerlab import SERVER, Dockerd
from images import busybox_tar

from conftest import World
from lab import Lab, eventually

EXTERNAL_NAT = """version: "2.4"
services:
  web:
    image: busybox
    command: ["sh", "-c", "{server}"]
  client:
    image: busybox
    command: ["sleep", "300"]
networks:
  default:
    external:
      name: "nat"
"""

CUSTOM_NAT = """version: "2.4"
services:
  web:
    image: busybox
    command: ["sh", "-c", "{server}"]
  client:
    image: busybox
    command: ["sleep", "300"]
networks:
  default:
    driver: nat
    ipam:
      driver: default
      config:
      - subnet: 172.16.3.0/24
"""

DUAL_STACK = """version: "2.4"
services:
  web:
    image: busybox
    command: ["sh", "-c", "{server}"]
    networks:
      ds:
        ipv6_address: fd12:3456:7::10
  client:
    image: busybox
    command: ["sleep", "300"]
    networks: [ds]
networks:
  ds:
    driver: nat
    enable_ipv6: true
    ipam:
      driver: hostnet-ipam
      config:
      - subnet: 172.16.7.0/24
      - subnet: fd12:3456:7::/64
"""


def compose(w: World, project: str, path: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{w.dk.sock}"}
    res = subprocess.run(
        ["docker-compose", "-p", project, "-f", path, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr
    return res


def reach_by_name(w: World, project: str) -> str:
    return w.exec(
        f"{project}_client_1",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo hi | nc -w 2 web 80 && break; sleep 0.5; done",
    )


@pytest.fixture(autouse=True)
def needs_compose() -> None:
    if not shutil.which("docker-compose"):
        pytest.skip("needs docker-compose (scripts/test.sh installs it)")


def test_external_nat_network_as_default(w: World, tmp_path: object) -> None:
    os.environ["DOCKER_HOST"] = f"unix://{w.dk.sock}"
    try:
        w.d.cli("docker", "expose", "--docker", "/usr/bin/docker", "nat")
    finally:
        os.environ.pop("DOCKER_HOST", None)
    path = os.path.join(str(tmp_path), "external.yml")
    with open(path, "w") as fh:
        fh.write(EXTERNAL_NAT.format(server=SERVER.format(name="web", port=80)))
    compose(w, "ext", path, "up", "-d")
    ps = w.d.json("ps", "--format", "json")
    assert len(ps) == 2 and all(list(c["Networks"]) == ["nat"] for c in ps)
    assert reach_by_name(w, "ext") == "web"
    compose(w, "ext", path, "down")
    assert w.d.json("ps", "--format", "json") == []
    w.dk.docker("network", "rm", "nat")


def test_custom_nat_network_with_subnet(w: World, tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "custom.yml")
    with open(path, "w") as fh:
        fh.write(CUSTOM_NAT.format(server=SERVER.format(name="web", port=80)))
    compose(w, "cust", path, "up", "-d")
    nets = w.d.json("network", "ls", "--format", "json")
    assert "172.16.3.0/24" in {n["Subnet"] for n in nets}
    assert w.ip_of("cust_web_1").startswith("172.16.3.")
    assert reach_by_name(w, "cust") == "web"
    compose(w, "cust", path, "down")
    assert w.d.json("ps", "--format", "json") == []
    assert [n["Name"] for n in w.d.json("network", "ls", "--format", "json")] == ["nat"]


def test_dual_stack_network_with_ipv6_address(w: World, tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "dual.yml")
    with open(path, "w") as fh:
        fh.write(DUAL_STACK.format(server=SERVER.format(name="web", port=80)))
    compose(w, "ds", path, "up", "-d")
    try:
        view = w.dk.network("ds_ds")
        assert view["EnableIPv6"] is True
        assert {c["Subnet"] for c in view["IPAM"]["Config"]} == {
            "172.16.7.0/24",
            "fd12:3456:7::/64",
        }
        web = w.dk.endpoint("ds_web_1")
        assert web["GlobalIPv6Address"] == "fd12:3456:7::10", web
        assert web["IPAddress"].startswith("172.16.7.")
        client6 = w.dk.endpoint("ds_client_1")["GlobalIPv6Address"]
        assert ipaddress.ip_address(client6) in ipaddress.ip_network("fd12:3456:7::/64")
        hn = [n for n in w.d.json("network", "ls", "--format", "json") if n["Name"] != "nat"]
        assert [(n["Subnet"], n["SubnetIPv6"]) for n in hn] == [
            ("172.16.7.0/24", "fd12:3456:7::/64")
        ]
        said = w.exec(
            "ds_client_1",
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do echo hi | nc -w 2 fd12:3456:7::10 80 && break; sleep 0.5; done",
        )
        assert said == "web"  # over IPv6
        assert reach_by_name(w, "ds") == "web"
    finally:
        compose(w, "ds", path, "down")
    assert w.d.json("ps", "--format", "json") == []
    assert [n["Name"] for n in w.d.json("network", "ls", "--format", "json")] == ["nat"]


def test_docker_finds_nat_on_its_own(tmp_path: object) -> None:
    """The seed's Compose file on the external `nat` network with no expose step: hostnetd
    makes `nat` a Docker network when Docker's socket appears, and again when Docker comes
    back with a wiped data root."""
    lab = Lab()
    dk = None
    try:
        work = tempfile.mkdtemp(prefix="hostnet-docker-")
        d, _ = lab.host("h", "--docker-host", f"unix://{work}/docker.sock")
        dk = Dockerd(d, work)
        dk.start()  # after hostnetd: the socket appears

        def has_nat() -> None:
            view = dk.network("nat")  # raises while Docker does not have it
            assert view["Driver"] == "nat" and view["IPAM"]["Driver"] == "hostnet-ipam"
            assert [c["Subnet"] for c in view["IPAM"]["Config"]] == ["172.16.0.0/16"]

        eventually(has_nat, timeout=15)
        dk.docker("import", "--change", "ENV PATH=/bin", busybox_tar(work), "busybox")
        path = os.path.join(str(tmp_path), "external.yml")
        with open(path, "w") as fh:
            fh.write(EXTERNAL_NAT.format(server=SERVER.format(name="web", port=80)))
        env = {**os.environ, "DOCKER_HOST": f"unix://{dk.sock}"}
        up = ["docker-compose", "-p", "auto", "-f", path]
        res = subprocess.run(
            [*up, "up", "-d"], capture_output=True, text=True, env=env, timeout=180
        )
        assert res.returncode == 0, res.stderr
        ps = d.json("ps", "--format", "json")
        assert len(ps) == 2 and all(list(c["Networks"]) == ["nat"] for c in ps)
        said = dk.docker(
            "exec", "auto_client_1", "sh", "-c",
            "for i in 1 2 3 4 5; do echo hi | nc -w 2 web 80 && break; sleep 0.5; done",
        ).stdout.strip()  # fmt: skip
        assert said == "web"
        res = subprocess.run([*up, "down"], capture_output=True, text=True, env=env, timeout=180)
        assert res.returncode == 0, res.stderr
        assert d.json("ps", "--format", "json") == []

        # Docker again, its data root wiped: `nat` is back without anyone asking
        dk.stop()  # removes its work dir, data root included
        os.makedirs(work)
        dk.start()
        eventually(has_nat, timeout=15)
        assert "made a Docker network" in d.log()
    finally:
        if dk is not None:
            dk.cleanup()
            dk.stop()
        leftovers = lab.close()
        assert not leftovers, leftovers
