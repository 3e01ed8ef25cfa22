"""Release the attachments whose namespace vanished.

A CNI runtime that never calls DEL (containerd's ``ctr run -d --cni``, a crashed kubelet)
would leave an attachment's address, port mappings, DNS name and vNIC held until a
restart. A CNI attachment names its namespace by path (CNI_NETNS, e.g.
/run/netns/cni-1234); the namespace itself may outlive the path (hostnet's own sockets
inside hold it), so the path is what is watched: one inotify watch per directory that
holds such paths, its events looked up by (directory, name). The file's identity (device
and inode, read when it was first watched) tells a path that went, or that names another
namespace now, from one that is still the attachment's. Paths under /proc/PID/ns/net
cannot be watched with inotify: a pidfd says when PID exits. Nothing looks at every
attachment, except once after the kernel's event queue overflowed.

The release is CNI DEL's own (``HostNetworkingService.detach_external``), run on the
service's executor like any request.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from hostnet.kernel import fds, netns
from hostnet.kernel import inotify as ino
from hostnet.model import Container, Endpoint

if TYPE_CHECKING:
    from hostnet.core.service import HostNetworkingService

log = logging.getLogger("hostnet")

PROC_NS = re.compile(r"/proc/(\d+)(?:/task/(\d+))?/ns/net")
# the entry itself (removed, renamed away, or something renamed over it or made anew)
ENTRY_EVENTS = ino.IN_DELETE | ino.IN_MOVED_FROM | ino.IN_MOVED_TO | ino.IN_CREATE
# the directory: removed, renamed, its file system unmounted, or its watch ended
DIR_EVENTS = ino.IN_DELETE_SELF | ino.IN_MOVE_SELF | ino.IN_UNMOUNT | ino.IN_IGNORED
WATCH_MASK = ENTRY_EVENTS | ino.IN_DELETE_SELF | ino.IN_MOVE_SELF | ino.IN_ONLYDIR
GONE_ERRNOS = (errno.ENOENT, errno.ENOTDIR, errno.ESRCH)


class Executor(Protocol):
    """The daemon's ServiceExecutor, as far as the watch uses it."""

    def submit_logged(self, what: str, fn: Any, *args: Any) -> None: ...


@dataclass
class Watched:
    """One attachment's namespace path and what it was when first watched."""

    cid: str
    netns: str  # as the container records it
    path: str
    ident: tuple[int, int] | None = None  # (st_dev, st_ino); None: gone already
    key: tuple[str, str] | None = None  # (real directory, name): under an inotify watch
    pid: int = 0  # /proc/PID/...: under a pidfd


@dataclass
class _Dir:
    wd: int  # -1: not watched (the directory is gone)
    names: dict[str, set[str]] = field(default_factory=dict)  # entry -> container ids


@dataclass
class _Pid:
    fd: int
    cids: set[str] = field(default_factory=set)


def identity(path: str) -> tuple[int, int] | None:
    """What ``path`` is now (device, inode), or None if it is gone."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno in GONE_ERRNOS:
            return None
        raise
    return (st.st_dev, st.st_ino)


def wanted(c: Container) -> bool:
    """A compartment someone else made, named by path and not Docker's (Docker's goes
    through its plugin's Leave and DeleteEndpoint)."""
    return c.external and c.runtime != "docker" and bool(c.netns)


def _described(ep: Endpoint) -> str:
    ports = ",".join(f"{p.host_port}/{p.protocol}" for p in ep.ports)
    addrs = " ".join(a for a in (ep.ip, ep.ip6) if a)
    return f"{ep.ifname} {addrs}" + (f" ports {ports}" if ports else "")


class NamespaceWatch:
    """Watches the namespace paths of CNI attachments; releases those that vanish.

    ``watch`` and ``forget`` are called from any thread (the service calls them as
    attachments come and go, holding its lock); events are read on the loop's thread;
    releases run on the service's executor."""

    def __init__(
        self, svc: HostNetworkingService, loop: asyncio.AbstractEventLoop, worker: Executor
    ) -> None:
        self.svc, self.loop, self.worker = svc, loop, worker
        self._lock = threading.RLock()
        self._watched: dict[str, Watched] = {}
        self._dirs: dict[str, _Dir] = {}
        self._by_wd: dict[int, set[str]] = {}  # one inode reached by two paths: one wd
        self._pids: dict[int, _Pid] = {}
        self._pending: set[str] = set()  # releases submitted, not yet run
        self._ino: ino.Inotify | None = None

    # -- life -------------------------------------------------------------------------
    def start(self) -> None:
        """Open the inotify instance; from the loop's thread."""
        notify = ino.Inotify()
        notify.fd = fds.park_fd(notify.fd)  # held for life: out of libnftables' range
        self._ino = notify
        self.loop.add_reader(notify.fd, self._on_events)

    def close(self) -> None:
        """Stop watching; from the loop's thread."""
        with self._lock:
            if self._ino is not None:
                self.loop.remove_reader(self._ino.fd)
                self._ino.close()
                self._ino = None
            for p in self._pids.values():
                self._close_pid(p.fd)
            self._pids.clear()
            self._watched.clear()
            self._dirs.clear()
            self._by_wd.clear()

    # -- attachments come and go --------------------------------------------------------
    def watch(self, c: Container) -> None:
        """Watch a CNI attachment's namespace path (again is nothing: the path and its
        identity stay those of its first ADD)."""
        if not wanted(c):
            return
        path = netns.path_of(c.netns)
        with self._lock:
            if self._ino is None or c.id in self._watched:
                return
            w = self._watched[c.id] = Watched(c.id, c.netns, path)
            m = PROC_NS.fullmatch(path)
            try:
                if m:
                    self._watch_pid(w, int(m.group(1)), int(m.group(2) or 0))
                else:
                    self._watch_dir(w)
                # read after the watch is set: a removal from here on is an event
                w.ident = identity(path)
            except OSError as exc:
                if exc.errno not in GONE_ERRNOS:  # EMFILE, ENOSPC (max_user_watches)
                    self._forget_id(c.id)
                    log.error(
                        "cannot watch namespace %s of %s: %s; 'hostnet system reconcile' "
                        "releases it once it is gone",
                        path,
                        c.name,
                        exc.strerror or exc,
                    )
                    return
            if w.ident is None:  # gone already (or its directory is)
                self._submit(c.id)

    def forget(self, c: Container) -> None:
        """Stop watching a removed attachment's path."""
        self._forget_id(c.id)

    def watched(self) -> int:
        with self._lock:
            return len(self._watched)

    def watches(self) -> int:
        """Kernel watches held: one per directory, one pidfd per process."""
        with self._lock:
            return len(self._by_wd) + len(self._pids)

    def _watch_dir(self, w: Watched) -> None:
        assert self._ino is not None
        where, name = os.path.split(w.path)
        real = os.path.realpath(where)
        entry = self._dirs.get(real)
        if entry is None or entry.wd < 0:
            wd = self._ino.add_watch(real, WATCH_MASK)
            if entry is None:
                entry = self._dirs[real] = _Dir(wd)
            entry.wd = wd
            self._by_wd.setdefault(wd, set()).add(real)
        entry.names.setdefault(name, set()).add(w.cid)
        w.key = (real, name)

    def _watch_pid(self, w: Watched, pid: int, tid: int) -> None:
        target = tid or pid
        entry = self._pids.get(target)
        if entry is None:
            try:
                fd = os.pidfd_open(target)
            except OSError as exc:
                # a thread's own pidfd needs Linux 6.9: its process' then (which may
                # outlive the thread: the path is checked when the process exits)
                if not tid or exc.errno != errno.EINVAL:
                    raise
                target, entry = pid, self._pids.get(pid)
                fd = -1 if entry is not None else os.pidfd_open(pid)
            if entry is None:
                entry = self._pids[target] = _Pid(fds.park_fd(fd))
                self.loop.call_soon_threadsafe(self._add_pid_reader, target, entry.fd)
        entry.cids.add(w.cid)
        w.pid = target

    def _forget_id(self, cid: str) -> None:
        with self._lock:
            w = self._watched.pop(cid, None)
            if w is None:
                return
            if w.key is not None:
                real, name = w.key
                entry = self._dirs.get(real)
                held = entry.names.get(name) if entry is not None else None
                if entry is not None and held is not None:
                    held.discard(cid)
                    if not held:
                        del entry.names[name]
                    if not entry.names:
                        del self._dirs[real]
                        self._unwatch(real, entry.wd)
            if w.pid:
                p = self._pids.get(w.pid)
                if p is not None:
                    p.cids.discard(cid)
                    if not p.cids:
                        del self._pids[w.pid]
                        self.loop.call_soon_threadsafe(self._close_pid, p.fd)

    def _unwatch(self, real: str, wd: int) -> None:
        paths = self._by_wd.get(wd)
        if paths is None:
            return
        paths.discard(real)
        if not paths:
            del self._by_wd[wd]
            if self._ino is not None:
                try:
                    self._ino.rm_watch(wd)
                except OSError as exc:
                    log.warning("inotify: %s", exc)

    # -- events (the loop's thread) ----------------------------------------------------
    def _on_events(self) -> None:
        with self._lock:
            if self._ino is None:
                return
            try:
                events = self._ino.read()
            except OSError as exc:
                log.error("reading namespace path events: %s", exc)
                return
            suspects: set[str] = set()
            overflow = False
            for ev in events:
                if ev.mask & ino.IN_Q_OVERFLOW:
                    overflow = True
                    continue
                for real in list(self._by_wd.get(ev.wd, ())):
                    entry = self._dirs.get(real)
                    if entry is None:
                        continue
                    if ev.mask & DIR_EVENTS:
                        suspects |= self._rewatch(real, entry)
                    else:
                        suspects |= entry.names.get(ev.name, set())
            if overflow:  # events were lost: every path once, then events again
                log.warning(
                    "namespace path events were lost (inotify queue overflow): checking "
                    "all %d watched paths once",
                    len(self._watched),
                )
                suspects = set(self._watched)
            for cid in suspects:
                self._check(cid)

    def _rewatch(self, real: str, entry: _Dir) -> set[str]:
        """The directory's watch ended or moved: watch what the path names now (nothing
        when it is gone); every attachment under it is checked."""
        assert self._ino is not None
        self._unwatch(real, entry.wd)
        entry.wd = -1
        try:
            entry.wd = self._ino.add_watch(real, WATCH_MASK)
            self._by_wd.setdefault(entry.wd, set()).add(real)
        except OSError as exc:
            if exc.errno not in GONE_ERRNOS:
                log.error("cannot watch %s again: %s", real, exc.strerror or exc)
        return {cid for cids in entry.names.values() for cid in cids}

    def _add_pid_reader(self, pid: int, fd: int) -> None:
        p = self._pids.get(pid)
        if p is not None and p.fd == fd:
            self.loop.add_reader(fd, self._exited, pid, fd)

    def _close_pid(self, fd: int) -> None:
        self.loop.remove_reader(fd)
        os.close(fd)

    def _exited(self, pid: int, fd: int) -> None:
        with self._lock:
            p = self._pids.get(pid)
            if p is None or p.fd != fd:
                return
            self.loop.remove_reader(fd)  # readable for good now
            for cid in list(p.cids):
                self._check(cid)

    def _check(self, cid: str) -> None:
        w = self._watched.get(cid)
        if w is not None and self._gone(w):
            self._submit(cid)

    def _gone(self, w: Watched) -> str:
        """Why ``w``'s path no longer names its namespace ("" while it does)."""
        try:
            now = identity(w.path)
        except OSError as exc:  # cannot tell: it stays
            log.warning("namespace %s: %s", w.path, exc)
            return ""
        if now is None:
            return f"is gone (process {w.pid} exited)" if w.pid else "is gone"
        if now != w.ident:
            return "names another namespace now"
        return ""

    def _submit(self, cid: str) -> None:
        if cid not in self._pending:
            self._pending.add(cid)
            self.worker.submit_logged(f"releasing attachment {cid[:12]}", self.release, cid)

    # -- the release (the service's executor, holding its lock) --------------------------
    def release(self, cid: str) -> bool:
        """Release ``cid`` as CNI DEL does if its path still does not name its namespace;
        True if it did."""
        with self._lock:
            self._pending.discard(cid)
            w = self._watched.get(cid)
            why = self._gone(w) if w is not None else ""
        c = self.svc.containers.get(cid)
        if w is None or not why:
            return False
        if c is None or c.netns != w.netns or not wanted(c):
            self._forget_id(cid)  # removed (or made anew) meanwhile
            return False
        eps = self.svc.endpoints_of(c)
        what = "; ".join(_described(ep) for ep in eps) or "no endpoint"
        # Nothing is entered through the path any more (another namespace may be there
        # now): the vNIC goes with its host end, wherever its peer is.
        self.svc.index.add_container(c.model_copy(update={"netns": ""}))
        errors: list[str] = []
        try:
            for ifname in [ep.ifname for ep in eps] or [""]:
                errors += self.svc.detach_external(cid, ifname)
        except BaseException:
            if cid in self.svc.containers:
                self.svc.index.add_container(c)
            raise
        self._forget_id(cid)  # the service's removal hook did it already
        self.svc.stats.vanished_releases += 1
        log.info("released %s (%s): its namespace %s %s", c.name, what, w.path, why)
        for e in errors:
            log.warning("releasing %s: %s", c.name, e)
        return True
