from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Generator, Iterator
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from host_guard import Guard  # noqa: E402
from lab import Lab  # noqa: E402

# A skip for want of one of these fails instead when HOSTNET_REQUIRE_TOOLS=1 (scripts/test.sh,
# so CI): scripts/test.sh installs them, so their absence is a broken setup, not a choice.
INSTALLED_TOOL = re.compile(
    r"scripts/test\.sh installs|scripts/install-cni\.sh|\b(docker\S*|podman|dnsmasq|etcd\S*|"
    r"iperf3|dnsperf|prometheus|tcpdump|socat|nft|nftables|graphviz|dot|busybox\S*|"
    r"hostnet-cni|compose)\b",
    re.IGNORECASE,
)
GUARD_NOTE = pytest.StashKey[str]()


def _root_ok() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("nft") is None or shutil.which("socat") is None:
        return "needs nftables and socat (scripts/test.sh installs them)"
    return None


@pytest.fixture
def lab() -> Iterator[Lab]:
    why = _root_ok()
    if why:
        pytest.skip(why)
    lab = Lab()
    try:
        yield lab
    finally:
        leftovers = lab.close()
        stale = [n for n in os.listdir("/run/netns") if n.startswith(lab.prefix)]
        assert not leftovers, f"hostnet left behind: {leftovers}"
        assert not stale, f"lab namespaces left behind: {stale}"


@pytest.fixture(scope="session", autouse=True)
def host_hostnetd(request: pytest.FixtureRequest) -> Iterator[None]:
    """The suite runs beside a hostnetd on the default socket (the machine's own, or a
    sentinel started as install.sh starts one) and must leave it answering, as it was."""
    uses_lab = any(
        {"lab", "world"} & set(getattr(i, "fixturenames", ())) for i in request.session.items
    )
    if os.geteuid() != 0 or not uses_lab:  # nothing else can reach a daemon
        yield
        return
    guard = Guard()
    try:
        guard.start()
        yield
    finally:
        problems = guard.finish()
        seen = "watched " + guard.describe() if guard.pid else ""
        request.config.stash[GUARD_NOTE] = f"hostnetd guard: {guard.note or seen}"
    assert not problems, (
        f"the test suite touched {guard.describe()}: "
        + "; ".join(problems)
        + ". Tests must never touch a hostnetd, socket or pid file they did not make."
    )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if note := config.stash.get(GUARD_NOTE, ""):
        terminalreporter.write_line(note)


def _require_tools() -> bool:
    return os.environ.get("HOSTNET_REQUIRE_TOOLS") == "1" and os.geteuid() == 0


def _fail_if_tool_missing(rep: Any) -> None:
    if not rep.skipped or hasattr(rep, "wasxfail") or not _require_tools():
        return
    reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    if INSTALLED_TOOL.search(reason):
        rep.outcome = "failed"
        rep.longrepr = (
            f"{reason}\nHOSTNET_REQUIRE_TOOLS=1 (scripts/test.sh, CI): scripts/test.sh installs "
            "this tool, so a skip for want of it is a failure; install it (run scripts/test.sh)"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    _fail_if_tool_missing(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    _fail_if_tool_missing(outcome.get_result())
