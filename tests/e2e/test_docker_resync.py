"""Docker's view and hostnet's stay in step when either side loses its state (issue #15):
the real Docker engine with a persistent data root, hostnet's state wiped, networks made
again under the same name, Docker's data root wiped. Each test builds its own lab."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from dockerlab import Dockerd  # noqa: E402
from images import busybox_tar  # noqa: E402
from test_docker import assert_clean_text  # noqa: E402

from lab import Daemon, Lab, eventually  # noqa: E402

KEEP = {"plugins", "hostnetd.log", "resolv.conf"}  # dockerd has the plugins dir mounted


def wipe_hostnet(d: Daemon) -> None:
    """hostnet's state lost (a reinstall, a wiped /var/lib/hostnet): stop, empty the state
    directory, start again with the same arguments."""
    d.stop()
    for entry in os.listdir(d.state_dir):
        if entry in KEEP:
            continue
        path = os.path.join(d.state_dir, entry)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    d.start(*d.args)


def docker_column(d: Daemon) -> dict[str, str]:
    return {n["Name"]: n["Docker"] for n in d.json("network", "ls", "--format", "json")}


@pytest.fixture
def lab_docker(request: pytest.FixtureRequest) -> Iterator[tuple[Daemon, Dockerd]]:
    """A lab host's hostnetd and a dockerd beside it; ``docker_host`` marks whether
    hostnetd is told Docker's socket."""
    if not shutil.which("dockerd") or not os.path.exists("/bin/busybox"):
        pytest.skip("needs docker.io and busybox-static (scripts/test.sh installs them)")
    lab = Lab()
    dk = None
    try:
        work = tempfile.mkdtemp(prefix="hostnet-docker-")
        args = ["--docker-host", f"unix://{work}/docker.sock"] if request.param else []
        d, _ = lab.host("h", *args)
        dk = Dockerd(d, work)
        dk.start()
        dk.docker("import", "--change", "ENV PATH=/bin", busybox_tar(work), "busybox")
        os.environ["DOCKER_HOST"] = f"unix://{dk.sock}"
        yield d, dk
    finally:
        os.environ.pop("DOCKER_HOST", None)
        if dk is not None:
            dk.cleanup()
            dk.stop()
        leftovers = lab.close()
        assert not leftovers, leftovers


def expose(d: Daemon, name: str, check: bool = True) -> str:
    res = d.cli("docker", "expose", "--docker", "/usr/bin/docker", name, check=check)
    return res.stdout + res.stderr


def run_on(dk: Dockerd, net: str, check: bool = True) -> str:
    res = dk.docker("run", "--rm", "--network", net, "busybox", "true", check=check)
    return res.stderr


@pytest.mark.parametrize("lab_docker", [False], indirect=True)
def test_exposed_networks_survive_hostnet_state_loss_and_remaking(
    lab_docker: tuple[Daemon, Dockerd],
) -> None:
    d, dk = lab_docker
    assert "nat: exposed to Docker" in expose(d, "nat")
    run_on(dk, "nat")
    docker_id = dk.network("nat")["Id"]
    assert "already exposed to Docker" in expose(d, "nat")
    # hostnetd is not told Docker's socket here: it knows the binding, not whether Docker runs
    assert docker_column(d)["nat"] == "bound, unchecked (--docker-host none)"

    # hostnet's state lost: a new `nat` of the same name and subnet; Docker's `nat` re-binds
    wipe_hostnet(d)
    run_on(dk, "nat")
    assert "re-bound to network nat" in d.log()
    assert "already exposed to Docker" in expose(d, "nat")
    assert dk.network("nat")["Id"] == docker_id  # nothing made again

    # lost again, and `expose` first: it sees the stale binding and makes it again
    wipe_hostnet(d)
    out = expose(d, "nat")
    assert "nat: Docker network made again (hostnet has no record of it" in out, out
    run_on(dk, "nat")

    # a network made again under its name with another subnet: a clean refusal naming both
    # networks, what happened and the remedy; the remedy works
    d.cli("network", "create", "--subnet", "172.30.1.0/24", "web")
    expose(d, "web")
    run_on(dk, "web")
    d.cli("network", "rm", "web")
    d.cli("network", "create", "--subnet", "172.30.2.0/24", "web")
    err = run_on(dk, "web", check=False)
    assert "Docker network 'web' was made for hostnet network 'web'" in err, err
    assert "172.30.1.0/24" in err and "172.30.2.0/24" in err
    assert "hostnet docker expose web" in err
    assert_clean_text(err)
    assert "web: Docker network made again" in expose(d, "web")
    # containers of Docker's on it: expose refuses, naming them
    dk.docker("run", "-d", "--name", "stuck", "--network", "web", "busybox", "sleep", "600")
    d.cli("network", "rm", "-f", "web")
    d.cli("network", "create", "--subnet", "172.30.3.0/24", "web")
    out = expose(d, "web", check=False)
    assert "Docker containers still use it: stuck" in out, out
    dk.docker("rm", "-f", "stuck")
    assert "web: Docker network made again" in expose(d, "web")
    run_on(dk, "web")

    # the hostnet network gone: every use fails naming it and the remedies
    d.cli("network", "rm", "web")
    err = run_on(dk, "web", check=False)
    assert "hostnet network 'web', which hostnet no longer has" in err, err
    assert "docker network rm web" in err
    assert_clean_text(err)
    dk.docker("network", "rm", "web")

    # a Docker network of that name hostnet did not make: refused, saying so
    dk.docker("network", "create", "-d", "nat", "--subnet", "172.30.4.0/24", "foo")
    d.cli("network", "create", "--subnet", "172.30.5.0/24", "foo")
    out = expose(d, "foo", check=False)
    assert "a Docker network named 'foo' exists that hostnet did not expose" in out, out
    dk.docker("network", "rm", "foo")
    d.cli("network", "rm", "foo")


@pytest.mark.parametrize("lab_docker", [True], indirect=True)
def test_docker_data_root_wiped_and_hostnet_state_lost_with_docker_watched(
    lab_docker: tuple[Daemon, Dockerd],
) -> None:
    d, dk = lab_docker
    eventually(lambda: dk.network("nat"), timeout=15)
    run_on(dk, "nat")
    dk.docker("network", "create", "-d", "nat", "--subnet", "172.16.5.0/24", "dn")
    dk.docker("network", "create", "-d", "nat", "--subnet", "172.16.6.0/24", "du")
    du = dk.network("du")["Id"]
    d.cli("run", "-d", "--net", du, "--name", "native", "--", "sleep", "600")
    col = docker_column(d)
    assert col[dk.network("dn")["Id"]] == col[du] == "made by Docker" and col["nat"] == "exposed"

    # Docker restarts with its data: nothing is made again, nothing removed
    nat_id = dk.network("nat")["Id"]
    dk.stop(keep_data=True)
    dk.start()
    run_on(dk, "nat")
    assert dk.network("nat")["Id"] == nat_id and len(docker_column(d)) == 3

    # Docker's data root wiped: the network hostnet no endpoint uses goes, the used one is
    # kept and shown gone from Docker, `nat` is made again
    dk.stop(keep_data=True)
    dk.wipe_data_root()
    dk.start()

    def resynced() -> None:
        assert docker_column(d) == {"nat": "exposed", du: "made by Docker, gone from Docker"}
        dk.network("nat")

    eventually(resynced, timeout=20)
    dk.docker("import", "--change", "ENV PATH=/bin", os.path.join(dk.dir, "busybox.tar"), "busybox")
    run_on(dk, "nat")
    d.cli("rm", "-f", "native")
    d.cli("network", "rm", du)

    # hostnet's state lost while Docker runs: the watch finds Docker's `nat` stale and,
    # with no container on it, makes it again
    wipe_hostnet(d)
    eventually(lambda: "stale Docker network nat removed" in d.log(), timeout=15)
    run_on(dk, "nat")
