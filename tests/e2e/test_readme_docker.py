"""README.md's Docker lines, run as written against a lab dockerd that uses a lab hostnetd's
plugins (the rest of the README: tests/netns/test_readme.py, whose tables cover these lines)."""

from __future__ import annotations

import os

import pytest
from dockerlab import Dockerd
from images import busybox_tar
from readme_runner import http_answers
from test_readme import readme

from lab import Lab, eventually

pytestmark = pytest.mark.root


def test_readme_docker(lab: Lab) -> None:
    work = os.path.join(lab.tmp, "docker")
    os.makedirs(work)
    d, ip = lab.host("h", "--docker-host", f"unix://{work}/docker.sock")
    client, _ = lab.node("client")
    dk = Dockerd(d, work)
    try:
        dk.start()
        # the README's "Docker finds nat on its own": a user's first docker line waits for it
        eventually(lambda: dk.network("nat")["Driver"] == "nat", timeout=30)
        dk.docker("import", "--change", "ENV PATH=/bin", busybox_tar(work), "busybox")
        r = readme(lab, d)
        r.docker_host = f"unix://{dk.sock}"
        web = (
            "docker run -d --name web --network=CustomNat1 --ip=172.16.1.105 -p 8082:80 "
            "busybox httpd -f"
        )
        r.after[web] = lambda _: eventually(http_answers(client, ip, 8082), timeout=30)
        r.before["hostnet docker expose shared"] = lambda: d.cli(
            "network", "create", "--subnet", "172.16.3.0/24", "shared"
        )
        r.section("Docker and Docker Compose")
        assert dk.network("shared")["Driver"] == "nat"
    finally:
        dk.cleanup()
        dk.stop()
