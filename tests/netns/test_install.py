"""The installer from a clean clone: its own virtual environment, the unit, the daemon's
readiness signal, and the uninstaller leaving nothing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest

import hostnet
from lab import Lab, in_ns

pytestmark = pytest.mark.root

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*cmd: str, env: dict[str, str], timeout: float = 600) -> str:
    res = subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=timeout)
    assert res.returncode == 0, (
        f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}{res.stderr}"
    )
    return res.stdout


def test_install_into_its_own_venv_then_uninstall(lab: Lab) -> None:
    root = os.path.join(lab.tmp, "root")
    clone = os.path.join(lab.tmp, "clone")
    subprocess.run(["git", "clone", "-q", REPO, clone], check=True, timeout=120)
    where = {
        "HOSTNET_PREFIX": f"{root}/opt/hostnet",
        "HOSTNET_BIN_DIR": f"{root}/bin",
        "HOSTNET_CNI_DIRS": f"{root}/cni/bin {root}/lib/cni",
        "HOSTNET_COMPLETION_DIR": f"{root}/completions",
        "HOSTNET_SYSTEMD_DIR": f"{root}/systemd",
    }
    # what a root shell has: no PYTHONPATH pointing into a source tree
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | where
    prefix, bin_dir = where["HOSTNET_PREFIX"], where["HOSTNET_BIN_DIR"]
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
    for d in where["HOSTNET_CNI_DIRS"].split():
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

    # uninstall (nothing running: it starts the daemon once for the reset, in the lab)
    uninstall = ["nsenter", f"--net=/run/netns/{ns}", "bash", f"{REPO}/scripts/uninstall.sh"]
    out = run(*uninstall, env=env | {"HOSTNET_SOCKET": sock, "HOSTNET_LOG": f"{lab.tmp}/log", "HOSTNETD_ARGS":
              f"--state-dir {state} --docker-plugins none --resolv-conf /dev/null"})  # fmt: skip
    assert "hostnet removed" in out
    left = [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]
    assert left == [], left
    assert not os.path.exists(prefix) and not os.path.exists(state)
