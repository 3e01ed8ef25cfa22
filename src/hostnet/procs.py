"""Process identity: a pid plus its start time, so a reused pid is never mistaken."""

from __future__ import annotations


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
    import os

    try:
        inode = os.stat(netns_path).st_ino
    except OSError:
        return []
    me = os.getpid()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if os.stat(f"/proc/{entry.name}/ns/net").st_ino == inode:
                found.append(int(entry.name))
        except OSError:
            continue
    return found
