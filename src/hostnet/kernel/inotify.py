"""inotify through libc (the standard library has none, and no dependency offers it well):
one non-blocking descriptor, watches on directories, events read in batches.

``hostnet.core.nswatch`` watches the directories that hold runtimes' namespace files with it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from typing import NamedTuple

IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000  # sent whether asked for or not, as are the two below
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_EXCL_UNLINK = 0x04000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then name)
_READ_SIZE = 1 << 16
_libc = ctypes.CDLL(None, use_errno=True)


class Event(NamedTuple):
    wd: int  # -1 with IN_Q_OVERFLOW: events were lost
    mask: int
    name: str  # the entry of the watched directory the event is about ("" for the directory)


def parse(buf: bytes) -> list[Event]:
    """The events in one read (a read returns whole events only)."""
    events, at = [], 0
    while at + _HEADER.size <= len(buf):
        wd, mask, _cookie, size = _HEADER.unpack_from(buf, at)
        at += _HEADER.size
        raw = buf[at : at + size].split(b"\0", 1)[0]
        at += size
        events.append(Event(wd, mask, os.fsdecode(raw)))
    return events


def _error(what: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{what}: {os.strerror(code)}")


class Inotify:
    """An inotify instance. ``fd`` may be replaced by the caller (moved elsewhere) as long
    as it stays the same open file."""

    def __init__(self) -> None:
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise _error("inotify_init1")
        self.fd: int = fd

    def add_watch(self, path: str, mask: int) -> int:
        """Watch ``path``; its watch descriptor (the same one again for the same inode)."""
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), ctypes.c_uint32(mask))
        if wd < 0:
            raise _error(f"watching {path}")
        return int(wd)

    def rm_watch(self, wd: int) -> None:
        """Stop a watch; one the kernel ended already (its inode went) is success."""
        if _libc.inotify_rm_watch(self.fd, wd) != 0 and ctypes.get_errno() != errno.EINVAL:
            raise _error(f"removing watch {wd}")

    def read(self) -> list[Event]:
        """Every event queued now ([] when none)."""
        events: list[Event] = []
        while True:
            try:
                buf = os.read(self.fd, _READ_SIZE)
            except BlockingIOError:
                return events
            if not buf:
                return events
            events += parse(buf)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
