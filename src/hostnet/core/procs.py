"""Process identity: a pid plus its start time, so a reused pid is never mistaken."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            data = fh.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = data.rsplit(")", 1)[1].split()
    if rest[0] == "Z":  # a zombie has exited
        return None
    return int(rest[19])


def processes_in(netns_path: str) -> list[int]:
    """Every process whose network namespace is ``netns_path`` (a compartment has no pid
    namespace of its own: its processes are the ones in its network namespace)."""
    ns = netns_identity(netns_path)
    if ns is None:
        return []
    me = os.getpid()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        if netns_identity(f"/proc/{entry.name}/ns/net") == ns:
            found.append(int(entry.name))
    return found


def netns_identity(path: str) -> tuple[int, int] | None:
    """A network namespace's identity (device and inode of its nsfs file), None if gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def in_netns(pid: int, netns_path: str) -> bool:
    """True if process ``pid`` lives in the network namespace bound at ``netns_path``."""
    ns = netns_identity(netns_path)
    return ns is not None and netns_identity(f"/proc/{pid}/ns/net") == ns


def has_exited(pid: int) -> bool:
    """True once ``pid`` (a child not reaped yet) has begun to exit: its namespaces go
    first (then it is a zombie), and never come back, so the answer cannot change."""
    try:
        os.stat(f"/proc/{pid}/ns/net")
    except (FileNotFoundError, ProcessLookupError):
        return True
    except OSError:  # EACCES: a process we may not look into (pid 1 here) is alive
        return False
    return False


def signal_group(pid: int, sig: int) -> None:
    """A detached container leads its own session: signal the whole process group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def kill_if_same(pid: int, start: int) -> None:
    """SIGKILL the group of ``pid`` if it is still the process that started at ``start``."""
    if process_start_time(pid) == start:
        signal_group(pid, signal.SIGKILL)


def end_processes(
    netns_path: str,
    grace_s: float,
    waiting: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
) -> None:
    """SIGTERM to a compartment's processes, SIGKILL to those left after ``grace_s``;
    ``waiting``: held around the wait (the service lets other requests go on)."""
    pids = {p: process_start_time(p) for p in processes_in(netns_path)}
    if not pids:
        return
    for p in pids:
        _signal(p, signal.SIGTERM)
    with waiting():
        deadline = time.monotonic() + grace_s
        left = dict(pids)
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = {p: t for p, t in left.items() if process_start_time(p) == t}
        for p in left:
            _signal(p, signal.SIGKILL)
        while any(process_start_time(p) == t for p, t in left.items()):
            time.sleep(0.02)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
