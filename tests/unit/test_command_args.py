"""How ``run``, ``create`` and ``exec`` read their COMMAND (no daemon: the parse alone),
and the namespace identity that process adoption compares."""

from __future__ import annotations

import os
import subprocess

import click
import pytest

from hostnet.cli.lifecycle import create, exec_
from hostnet.cli.runcmd import run
from hostnet.core.procs import has_exited, in_netns, netns_identity

CMD = ["python3", "-m", "http.server", "80", "--bind", "0.0.0.0"]


def parsed(cmd: click.Command, args: list[str]) -> dict[str, object]:
    return cmd.make_context(cmd.name or "", list(args)).params  # it consumes the list


@pytest.mark.parametrize(
    "args",
    [
        ["DemoNAT", "--", *CMD],
        ["DemoNAT", *CMD],
        ["-d", "DemoNAT", "--", *CMD],
        ["-d", "DemoNAT", *CMD],
        ["-d", "--", "DemoNAT", *CMD],
    ],
)
def test_exec_takes_the_command_with_or_without_dashes(args: list[str]) -> None:
    params = parsed(exec_, args)
    assert params["container"] == "DemoNAT" and params["command"] == CMD
    assert params["detach"] == ("-d" in args)


@pytest.mark.parametrize("cmd, opts", [(run, []), (run, ["-d"]), (create, [])])
@pytest.mark.parametrize("dashes", [[], ["--"]])
def test_run_and_create_take_it_the_same_way(
    cmd: click.Command, opts: list[str], dashes: list[str]
) -> None:
    params = parsed(cmd, [*opts, "--name", "x", *dashes, *CMD])
    assert params["command"] == CMD and params["name"] == "x"


def test_a_dash_dash_inside_the_command_is_the_commands() -> None:
    assert parsed(exec_, ["C", "--", "sh", "--", "x"])["command"] == ["sh", "--", "x"]
    assert parsed(run, ["sh", "--", "x"])["command"] == ["sh", "--", "x"]


def test_dashes_without_a_command_are_a_usage_error() -> None:
    with pytest.raises(click.UsageError, match="missing COMMAND"):
        parsed(exec_, ["C", "--"])
    assert parsed(create, ["--name", "x", "--"])["command"] == []  # an idle process


def test_netns_identity_and_membership() -> None:
    mine = netns_identity("/proc/self/ns/net")
    assert mine is not None and mine == netns_identity(f"/proc/{os.getpid()}/ns/net")
    assert in_netns(os.getpid(), "/proc/self/ns/net")
    assert not in_netns(os.getpid(), "/nonexistent/netns")
    assert netns_identity("/nonexistent/netns") is None
    # a pid that has exited is in no namespace
    child = subprocess.Popen(["true"])
    child.wait()
    assert not in_netns(child.pid, "/proc/self/ns/net")
    # another namespace of the same kind is another identity
    assert netns_identity("/proc/self/ns/uts") != mine


def test_a_child_that_ended_has_exited_and_a_live_one_has_not() -> None:
    """`run -- true` may end before the daemon hears of it: the CLI must tell that from a
    refusal (a zombie's namespaces are gone for good; a live process keeps them)."""
    child = subprocess.Popen(["true"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # a zombie, not reaped yet
    assert has_exited(child.pid)
    child.wait()
    live = subprocess.Popen(["sleep", "infinity"])
    try:
        assert not has_exited(live.pid)
    finally:
        live.kill()
        live.wait()
