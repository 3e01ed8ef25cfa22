"""The installer from a clean clone: its own virtual environment, the unit, the daemon's
readiness signal, and the uninstaller leaving nothing; both touch only the install their
variables name (a hostnetd on another socket, and the one on the default socket that the
session guard in conftest watches, keep running)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess

import pytest

import hostnet
from lab import Daemon, Lab, in_ns

pytestmark = pytest.mark.root

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*cmd: str, env: dict[str, str], timeout: float = 600) -> str:
    res = subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=timeout)
    assert res.returncode == 0, (
        f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}{res.stderr}"
    )
    return res.stdout


def clone_of(dest: str) -> str:
    """The working tree as a commit of it would hold it (tracked and new files, nothing
    git ignores: no .venv), so the scripts and code under test are the ones installed."""
    listed = subprocess.run(
        ["git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    for rel in filter(None, listed.split("\0")):
        src = os.path.join(REPO, rel)
        if os.path.isfile(src):  # a deleted, not yet committed file is listed too
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))
    return dest


def install_env(root: str) -> dict[str, str]:
    """Every HOSTNET_* place under ``root``, in the environment a root shell has."""
    where = {
        "HOSTNET_PREFIX": f"{root}/opt/hostnet",
        "HOSTNET_BIN_DIR": f"{root}/bin",
        "HOSTNET_CNI_DIRS": f"{root}/cni/bin {root}/lib/cni",
        "HOSTNET_COMPLETION_DIR": f"{root}/completions",
        "HOSTNET_SYSTEMD_DIR": f"{root}/systemd",
    }
    # what a root shell has: no PYTHONPATH pointing into a source tree
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | where


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has ended: whoever adopted it may not reap it yet)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def other_install(lab: Lab) -> tuple[Daemon, str]:
    """Another install's hostnetd, in a lab host of its own: its socket and its pid file in
    a run directory like the default one."""
    ns, _ = lab.node("other")
    state = os.path.join(lab.tmp, "other")
    run_dir = os.path.join(state, "run", "hostnet")
    os.makedirs(run_dir)
    d = Daemon(ns, state, os.path.join(run_dir, "hostnet.sock"))
    lab.daemons.append(d)
    d.start()
    assert d.proc is not None
    pid_file = os.path.join(run_dir, "hostnetd.pid")
    with open(pid_file, "w") as fh:
        fh.write(f"{d.proc.pid}\n")
    return d, pid_file


def assert_untouched(d: Daemon, pid_file: str) -> None:
    assert d.proc is not None and d.proc.poll() is None, "the other install's hostnetd stopped"
    assert d.json("system", "info", "--format", "json")["Pid"] == d.proc.pid
    assert [n["Name"] for n in d.json("network", "ls", "--format", "json")] == ["nat"]
    with open(pid_file) as fh:
        assert fh.read().strip() == str(d.proc.pid)


def test_install_into_its_own_venv_then_uninstall(lab: Lab) -> None:
    root = os.path.join(lab.tmp, "root")
    clone = clone_of(os.path.join(lab.tmp, "clone"))
    env = install_env(root)
    prefix, bin_dir = env["HOSTNET_PREFIX"], env["HOSTNET_BIN_DIR"]
    first = run("bash", f"{clone}/scripts/install.sh", "--no-start", env=env)
    again = run("bash", f"{clone}/scripts/install.sh", "--no-start", env=env)  # harmless
    assert "installed in" in first and "installed in" in again
    shutil.rmtree(clone)  # a copy was installed, not a link to the clone

    for cmd in ("hostnet", "hostnetd"):
        out = run(f"{bin_dir}/{cmd}", "--version", env=env)
        assert out.strip() == f"{cmd} {hostnet.__version__}"
    where_from = run(
        f"{prefix}/bin/python", "-c", "import hostnet; print(hostnet.__file__)", env=env
    )
    assert where_from.startswith(f"{prefix}/lib/"), where_from
    for d in env["HOSTNET_CNI_DIRS"].split():
        assert os.access(f"{d}/hostnet", os.X_OK) and os.access(f"{d}/hostnet-cni", os.X_OK)
    with open(f"{root}/completions/hostnet") as fh:
        assert "_HOSTNET_COMPLETE" in fh.read()

    unit_path = f"{root}/systemd/hostnetd.service"
    with open(unit_path) as fh:
        unit = fh.read()
    for line in (
        "Type=notify",
        f"ExecStart={prefix}/bin/hostnetd $HOSTNETD_ARGS",
        "Before=docker.service containerd.service",
        "KillMode=process",
        "LimitNOFILE=524288",
    ):
        assert f"\n{line}\n" in unit, line
    if shutil.which("systemd-analyze"):
        res = subprocess.run(
            ["systemd-analyze", "verify", unit_path], capture_output=True, text=True, timeout=60
        )
        assert res.returncode == 0 and "hostnetd.service" not in res.stderr, res.stderr

    # the installed daemon tells systemd it is ready (Type=notify) once it answers
    ns, _ = lab.node("svc")
    state, sock = f"{lab.tmp}/state", f"{lab.tmp}/hostnet.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(f"{lab.tmp}/notify")
    notify.settimeout(30)
    daemon = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{ns}", f"{bin_dir}/hostnetd", "--state-dir", state,
         "--socket", sock, "--docker-plugins", "none", "--resolv-conf", "/dev/null"],
        env=env | {"NOTIFY_SOCKET": f"{lab.tmp}/notify"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert notify.recv(100) == b"READY=1"
        listed = run(f"{bin_dir}/hostnet", "--socket", sock, "network", "ls", env=env)
        assert "nat" in listed
        run(f"{bin_dir}/hostnet", "--socket", sock, "system", "reset", "--force", env=env)
        assert daemon.wait(20) == 0
    finally:
        notify.close()
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert not os.path.exists(state)
    assert "hn-" not in in_ns(ns, "ip", "link").stdout

    # uninstall (nothing running: it starts the daemon once for the reset, in the lab),
    # beside another install's hostnetd, which it leaves alone
    other, other_pid_file = other_install(lab)
    uninstall = ["nsenter", f"--net=/run/netns/{ns}", "bash", f"{REPO}/scripts/uninstall.sh"]
    out = run(*uninstall, env=env | {"HOSTNET_SOCKET": sock, "HOSTNET_LOG": f"{lab.tmp}/log", "HOSTNETD_ARGS":
              f"--state-dir {state} --docker-plugins none --resolv-conf /dev/null"})  # fmt: skip
    assert "hostnet removed" in out
    assert ", started for the reset) on " + sock in out, out
    assert_untouched(other, other_pid_file)
    left = [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]
    assert left == [], left
    assert not os.path.exists(prefix) and not os.path.exists(state)


def test_install_starts_beside_its_socket_and_uninstall_stops_that_daemon(lab: Lab) -> None:
    """install.sh with HOSTNET_SOCKET serves it and keeps the pid file beside it; a second
    run finds that daemon running; uninstall.sh stops exactly the daemon answering there
    (by the pid it reports), removes its pid file and run directory, and nothing else."""
    root = os.path.join(lab.tmp, "root")
    env = install_env(root)
    run("bash", f"{clone_of(os.path.join(lab.tmp, 'clone'))}/scripts/install.sh", "--no-start",
        env=env)  # fmt: skip
    other, other_pid_file = other_install(lab)
    ns, _ = lab.node("svc")
    run_dir = f"{root}/run/hostnet"
    sock, pid_file = f"{run_dir}/hostnet.sock", f"{run_dir}/hostnetd.pid"
    state = f"{lab.tmp}/state"
    env |= {
        "HOSTNET_SOCKET": sock,
        "HOSTNET_LOG": f"{lab.tmp}/hostnetd.log",
        "HOSTNETD_ARGS": f"--state-dir {state} --docker-plugins none --resolv-conf /dev/null "
        "--docker-host none",
    }
    in_lab = ["nsenter", f"--net=/run/netns/{ns}", "bash"]
    # started in the lab host, from what is installed (no apt, no pip: the lab is offline)
    out = run(*in_lab, f"{REPO}/scripts/install.sh", "--start-only", env=env)
    with open(pid_file) as fh:
        pid = int(fh.read())
    try:
        assert f"hostnetd running (pid {pid}) on {sock}" in out, out
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{ns}").st_ino
        hostnet_cli = [f"{env['HOSTNET_BIN_DIR']}/hostnet", "--socket", sock]
        info = json.loads(run(*hostnet_cli, "system", "info", "--format", "json", env=env))
        assert info["Pid"] == pid and info["StateDir"] == state
        again = run(*in_lab, f"{REPO}/scripts/install.sh", "--start-only", env=env)
        assert f"already running (pid {pid}, {pid_file})" in again, again

        out = run(*in_lab, f"{REPO}/scripts/uninstall.sh", env=env)
        assert f"stopped hostnetd (pid {pid}) on {sock}" in out, out
        assert not running(pid)
        assert not os.path.exists(run_dir), os.listdir(run_dir)  # socket, pid file, the dir
        assert not os.path.exists(state) and not os.path.exists(env["HOSTNET_PREFIX"])
        assert_untouched(other, other_pid_file)
        left = [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]
        assert left == [], left
    finally:
        if running(pid):  # the test failed half-way: stop what it started, by its pid
            os.kill(pid, signal.SIGTERM)
