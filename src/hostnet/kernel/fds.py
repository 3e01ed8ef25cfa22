"""File descriptors at size: keep the ``select()`` range free for libnftables.

Debian 12's libnftables waits on its netlink socket with ``select()``; glibc aborts the
whole process when that socket's descriptor is 1024 or more (FD_SETSIZE). The daemon
holds descriptors per compartment for its life (the resolver's sockets, process
watches), so those are *parked* above the select range, and the descriptors that
libnftables (and anything else short-lived) takes stay low however many compartments
the host carries. ``raise_limit`` lifts the soft descriptor limit to the hard one at
start (systemd's default is 1,024 soft, 524,288 hard).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import resource
import socket

log = logging.getLogger("hostnet")

SELECT_LIMIT = 1024  # FD_SETSIZE: select() takes descriptors below this
WANTED = 1 << 20  # enough for far more compartments than a host carries
#: descriptors a long-lived holder may take below the select range when nothing above is
#: available, leaving the rest to libnftables and short-lived work
LOW_BUDGET = 768


def raise_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (capped); return (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, WANTED) if hard != resource.RLIM_INFINITY else WANTED
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the descriptor limit from %d to %d: %s", soft, target, exc)
    if soft <= SELECT_LIMIT:
        log.warning(
            "descriptor limit %d: at most about %d compartments get embedded DNS; raise "
            "LimitNOFILE (e.g. 1048576) for more",
            soft,
            LOW_BUDGET // 2,
        )
    return soft, hard


def park_fd(fd: int) -> int:
    """Move a long-lived descriptor above the select range; return the new one (``fd`` is
    closed). Without room above (a low limit), keep it only if it lies below LOW_BUDGET,
    else raise EMFILE: the caller goes without rather than starving libnftables."""
    if fd >= SELECT_LIMIT:
        return fd
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, SELECT_LIMIT)
    except OSError:  # EINVAL: limit <= 1024; EMFILE: the high range is full
        if fd < LOW_BUDGET:
            return fd
        os.close(fd)
        raise OSError(
            errno.EMFILE, "no descriptor left above the select() range (raise LimitNOFILE)"
        ) from None
    os.close(fd)
    return high


def park_socket(s: socket.socket) -> socket.socket:
    """The same socket on a descriptor above the select range (the original is closed)."""
    fd = park_fd(s.detach())
    return socket.socket(fileno=fd)
