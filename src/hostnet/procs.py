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
