"""Shared fixtures for end-to-end tests: one lab with hostnetd and a real Docker engine."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "netns"))
from dockerlab import SERVER, Dockerd  # noqa: E402
from images import busybox_tar  # noqa: E402

from lab import Daemon, Lab, eventually, in_ns  # noqa: E402


class World:
    def __init__(self, lab: Lab, d: Daemon, host_ip: str, client: str, dk: Dockerd) -> None:
        self.lab, self.d, self.host_ip, self.client, self.dk = lab, d, host_ip, client, dk

    def serve(self, name: str, *args: str, port: int = 80) -> str:
        """A detached busybox answering each TCP connection with its name; returns its IPv4."""
        self.dk.docker(
            "run",
            "-d",
            "--name",
            name,
            *args,
            "busybox",
            "sh",
            "-c",
            SERVER.format(name=name, port=port),
        )
        return self.ip_of(name)

    def ip_of(self, name: str, net: str = "") -> str:
        nets = json.loads(self.dk.docker("inspect", name).stdout)[0]["NetworkSettings"]["Networks"]
        return nets[net or next(iter(nets))]["IPAddress"]

    def exec(self, name: str, *cmd: str, check: bool = False) -> str:
        return self.dk.docker("exec", name, *cmd, check=check).stdout.strip()

    def ask_from(self, name: str, ip: str, port: int = 80) -> str:
        return self.exec(name, "sh", "-c", f"echo hi | nc -w 2 {ip} {port}")


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    if not shutil.which("dockerd") or not os.path.exists("/bin/busybox"):
        pytest.skip("needs docker.io and busybox-static (scripts/test.sh installs them)")
    lab = Lab()
    dk = None
    try:
        d, host_ip = lab.host()
        client, _ = lab.node("client")
        work = tempfile.mkdtemp(prefix="hostnet-docker-")
        dk = Dockerd(d, work)
        dk.start()
        dk.docker("import", "--change", "ENV PATH=/bin", busybox_tar(work), "busybox")
        yield World(lab, d, host_ip, client, dk)
    finally:
        if dk is not None:
            dk.cleanup()
            dk.stop()
        leftovers = lab.close()
        assert not leftovers, leftovers


@pytest.fixture
def w(world: World) -> Iterator[World]:
    yield world
    world.dk.cleanup()
    # everything Docker removed is gone from hostnet and the kernel too
    assert world.d.json("ps", "--format", "json") == []
    assert [n["Name"] for n in world.d.json("network", "ls", "--format", "json")] == ["nat"]

    def no_veth() -> None:
        assert "hv" not in in_ns(world.d.host, "ip", "-o", "link", "show", "type", "veth").stdout

    eventually(no_veth)
    assert (
        "elements"
        not in in_ns(world.d.host, "nft", "list", "map", "ip", "hostnet", "pm_any").stdout
    )
