"""The CLI's and the daemon's own flags: --version, shell completion."""

from __future__ import annotations

import os
import subprocess

import hostnet


def test_versions() -> None:
    for cmd in ("hostnet", "hostnetd"):
        out = subprocess.run([cmd, "--version"], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == f"{cmd} {hostnet.__version__}"


def test_completion_scripts_complete_commands() -> None:
    src = subprocess.run(
        ["hostnet", "completion", "bash"], capture_output=True, text=True, check=True
    ).stdout
    assert "_HOSTNET_COMPLETE" in src and "complete " in src
    env = {
        **os.environ,
        "_HOSTNET_COMPLETE": "bash_complete",
        "COMP_WORDS": "hostnet net",
        "COMP_CWORD": "1",
    }
    out = subprocess.run(["hostnet"], capture_output=True, text=True, env=env).stdout
    assert "plain,network" in out.split("\n"), out
    env["COMP_WORDS"], env["COMP_CWORD"] = "hostnet system re", "2"
    out = subprocess.run(["hostnet"], capture_output=True, text=True, env=env).stdout
    assert {"plain,reconcile", "plain,reset"} <= set(out.split("\n")), out
