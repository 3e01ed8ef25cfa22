"""The suite runs beside a hostnetd started as the README starts it, and leaves it alone.

At session start the guard finds the hostnetd answering on the default socket (the
machine's own), or starts a sentinel there itself: inside a network namespace of its own,
with its pid file where ``scripts/install.sh`` writes it, a temporary state directory and
nothing of the machine's (no Docker, no resolvers). At session end that daemon must still
answer, with the same pid, its networks and its pid file; otherwise the session fails.

Several pytest sessions may run at once on one machine (people working in one checkout):
they share one sentinel. Starting and stopping happen under one lock; each session holds
a shared lock on a second file for its life, and the session that ends last (the one
that can take that lock exclusively) stops the sentinel, by its pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from hostnet.client import DEFAULT_SOCKET, Client
from hostnet.errors import HostnetError

RUN_DIR = os.path.dirname(DEFAULT_SOCKET)
PID_FILE = os.path.join(RUN_DIR, "hostnetd.pid")  # where install.sh keeps it
LOCKS = "/run/lock"  # tmpfs: the lock files go with the next boot
MUTEX = os.path.join(LOCKS, "hostnet-test-guard.lock")
USERS = os.path.join(LOCKS, "hostnet-test-guard.users")
RECORD = os.path.join(LOCKS, "hostnet-test-guard.json")  # the sentinel, for whoever ends last


@contextlib.contextmanager
def _mutex() -> Iterator[None]:
    fd = os.open(MUTEX, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _ask(path: str) -> tuple[dict[str, Any], list[str]] | None:
    """The daemon's /system/info and network names, or None when nothing answers there."""
    try:
        client = Client(path, timeout=30)
        info = client.get("/system/info")
        return info, sorted(n["Name"] for n in client.get("/networks"))
    except (HostnetError, OSError):
        return None


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _is(pid: int, needle: str) -> bool:
    """Whether ``pid`` still runs the command it was (pids are reused)."""
    return needle in _read(f"/proc/{pid}/cmdline").replace("\0", " ")


class Guard:
    """One session's view of the default hostnetd: what it was, and the check at the end."""

    def __init__(self) -> None:
        self.note = ""  # why the guard does not apply, when it does not
        self.pid = 0
        self.networks: list[str] = []
        self.pid_file = ""  # the pid file's content at the start ('' when there was none)
        self.sentinel = False  # the daemon is the guard's own (else the machine's)
        self._users = -1

    def start(self) -> None:
        with _mutex():
            self._users = os.open(USERS, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._users, fcntl.LOCK_SH)
            record = _load_record()
            if record and not _is(record["pid"], record["state"]):
                _remove_sentinel(record)  # a session that was killed left it behind
                record = None
            seen = _ask(DEFAULT_SOCKET)
            if seen is None and os.path.exists(DEFAULT_SOCKET):
                self.note = f"{DEFAULT_SOCKET} exists but nothing answers there: not watched"
                return
            if seen is None:
                record = _start_sentinel()
                seen = _ask(DEFAULT_SOCKET)
                assert seen is not None, "the sentinel hostnetd stopped answering at once"
            info, self.networks = seen
            self.pid = int(info.get("Pid") or 0)
            self.pid_file = _read(PID_FILE)
            self.sentinel = record is not None and record["pid"] == self.pid
            if not self.pid:
                self.note = f"the hostnetd on {DEFAULT_SOCKET} does not say its pid: not watched"

    def finish(self) -> list[str]:
        """What changed about the daemon (empty: nothing); stops the sentinel when last."""
        problems: list[str] = []
        with _mutex():
            if self.pid and not self.note:
                problems = self._changes()
            if self._users >= 0:
                os.close(self._users)  # this session no longer uses the sentinel
                self._users = -1
            fd = os.open(USERS, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return problems  # another session still runs beside it
            finally:
                os.close(fd)
            record = _load_record()
            if record:
                _remove_sentinel(record)
        return problems

    def _changes(self) -> list[str]:
        seen = _ask(DEFAULT_SOCKET)
        if seen is None:
            alive = "its process is gone" if not _is(self.pid, "hostnet") else "it still runs"
            return [f"nothing answers on {DEFAULT_SOCKET} any more ({alive})"]
        info, networks = seen
        problems = []
        if int(info.get("Pid") or 0) != self.pid:
            problems.append(f"another daemon answers there now (pid {info.get('Pid')})")
        if lost := sorted(set(self.networks) - set(networks)):
            problems.append(f"its networks {lost} are gone (it has {networks})")
        if self.pid_file and _read(PID_FILE) != self.pid_file:
            problems.append(f"{PID_FILE} said {self.pid_file}, now {_read(PID_FILE) or 'nothing'}")
        return problems

    def describe(self) -> str:
        who = "the guard's sentinel" if self.sentinel else "this machine's own hostnetd"
        return f"{who} (pid {self.pid}) on {DEFAULT_SOCKET}, networks {self.networks}"


def _load_record() -> dict[str, Any] | None:
    text = _read(RECORD)
    return json.loads(text) if text else None


def _start_sentinel() -> dict[str, Any]:
    """A hostnetd on the default socket, as install.sh starts one, in a netns of its own."""
    tmp = tempfile.mkdtemp(prefix="hostnet-guard-")
    record: dict[str, Any] = {
        "pid": 0,
        "netns": f"hostnet-guard-{os.getpid()}",
        "tmp": tmp,
        "state": os.path.join(tmp, "state"),
        "made_run_dir": not os.path.exists(RUN_DIR),
    }
    resolv = os.path.join(tmp, "resolv.conf")
    open(resolv, "w").close()  # noqa: SIM115 - empty: no resolvers of the machine's
    os.makedirs(RUN_DIR, exist_ok=True)
    subprocess.run(["ip", "netns", "add", record["netns"]], check=True, timeout=30)
    try:
        subprocess.run(
            ["ip", "-n", record["netns"], "link", "set", "lo", "up"], check=True, timeout=30
        )
        with open(os.path.join(tmp, "hostnetd.log"), "ab") as log:
            proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{record['netns']}", *_hostnetd(),
                 "--state-dir", record["state"], "--socket", DEFAULT_SOCKET,
                 "--docker-plugins", "none", "--docker-host", "none", "--resolv-conf", resolv],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        record["pid"] = proc.pid  # nsenter execs the daemon: the same pid
        with open(PID_FILE, "w") as fh:
            fh.write(f"{proc.pid}\n")
        with open(RECORD, "w") as fh:
            json.dump(record, fh)
        deadline = time.monotonic() + 120  # a bound for a broken daemon, not a wait
        while _ask(DEFAULT_SOCKET) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the sentinel hostnetd did not start:\n{_log(record)}")
            time.sleep(0.05)
        record["socket_ino"] = os.stat(DEFAULT_SOCKET).st_ino  # to remove only this socket
        with open(RECORD, "w") as fh:
            json.dump(record, fh)
    except BaseException:
        _remove_sentinel(record)
        raise
    return record


def _hostnetd() -> list[str]:
    """The source tree's hostnetd, by the name install.sh runs (what a pid check looks for)."""
    script = os.path.join(os.path.dirname(sys.executable), "hostnetd")
    return [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "hostnet.daemon"]


def _log(record: dict[str, Any]) -> str:
    return _read(os.path.join(record["tmp"], "hostnetd.log"))[-2000:]


def _remove_sentinel(record: dict[str, Any]) -> None:
    """Stop the sentinel by its pid and remove what was made for it, and only that."""
    pid = record["pid"]
    if pid and _is(pid, record["state"]):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _is(pid, record["state"]) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # ours when this session started it
            time.sleep(0.05)
        if _is(pid, record["state"]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if pid and _read(PID_FILE) == str(pid):
        os.unlink(PID_FILE)
    with contextlib.suppress(FileNotFoundError):
        if os.stat(DEFAULT_SOCKET).st_ino == record.get("socket_ino"):
            os.unlink(DEFAULT_SOCKET)  # a killed sentinel leaves its socket behind
    subprocess.run(["ip", "netns", "del", record["netns"]], capture_output=True, timeout=30)
    shutil.rmtree(record["tmp"], ignore_errors=True)
    if record["made_run_dir"]:
        with contextlib.suppress(OSError):
            os.rmdir(RUN_DIR)  # only when empty: a daemon of someone else's may live there
    with contextlib.suppress(FileNotFoundError):
        os.unlink(RECORD)
