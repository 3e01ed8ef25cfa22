"""Network namespaces (compartments), created without forking.

A namespace is made by ``unshare`` in the calling thread, bound to a file under
``/run/netns`` (as ``ip netns add`` does), and the thread returns to its own
namespace at once. Sockets opened while inside stay bound to that namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Iterator

from hostnet.errors import KernelError

RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_REC = 16384
MS_BIND = 4096
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_run_dir_ready = False


def _fail(what: str, name: str) -> KernelError:
    code = ctypes.get_errno()
    return KernelError(f"{what} for namespace {name!r} failed: {os.strerror(code)}", errno=code)


def path_of(name: str) -> str:
    return name if name.startswith("/") else os.path.join(RUN_DIR, name)


def _ensure_run_dir() -> None:
    """Make /run/netns a shared mount so bind mounts propagate, as iproute2 does."""
    global _run_dir_ready
    if _run_dir_ready:
        return
    os.makedirs(RUN_DIR, exist_ok=True)
    done = False
    while _libc.mount(b"", RUN_DIR.encode(), b"none", MS_SHARED | MS_REC, None) != 0:
        if (
            done
            or _libc.mount(RUN_DIR.encode(), RUN_DIR.encode(), b"none", MS_BIND | MS_REC, None) != 0
        ):
            raise _fail("sharing /run/netns", RUN_DIR)
        done = True
    _run_dir_ready = True


def setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise _fail("setns", str(fd))


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body with this thread inside namespace ``name``, then come back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        try:
            target = os.open(path_of(name), os.O_RDONLY)
        except FileNotFoundError:
            raise KernelError(f"namespace {name!r} does not exist") from None
        try:
            setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            setns(home)
    finally:
        os.close(home)


def create(name: str) -> str:
    """Create a named namespace with its loopback up; return its path."""
    _ensure_run_dir()
    path = path_of(name)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    except FileExistsError:
        raise KernelError(f"namespace {name!r} already exists") from None
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if _libc.unshare(CLONE_NEWNET) != 0:
            err = _fail("unshare", name)
            os.unlink(path)
            raise err
        try:
            if _libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND, None) != 0:
                err = _fail("bind mount", name)
                os.unlink(path)
                raise err
        finally:
            setns(home)
    finally:
        os.close(home)
    return path


def remove(name: str) -> None:
    """Remove a named namespace; already gone is success."""
    path = path_of(name)
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):
            raise KernelError(f"unmounting namespace {name!r} failed: {os.strerror(code)}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def exists(name: str) -> bool:
    """True if the name is bound to a live namespace (not a stale empty file)."""
    return _is_nsfs(path_of(name))


def _is_nsfs(path: str) -> bool:
    """A live namespace file lives on nsfs, the filesystem of /proc/self/ns/net."""
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return False


def list_names(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(RUN_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_SLAVE = 4096, 16384, 1 << 19


def _die(what: str) -> None:
    os.write(2, f"hostnet: {what}: {os.strerror(ctypes.get_errno())}\n".encode())
    os._exit(125)


def enter_in_child(netns_path: str, resolv: str) -> None:
    """In a child, between fork and exec (``hostnet run``): join a compartment's network
    namespace and, when its network hands out DNS settings, see them as /etc/resolv.conf
    (a private mount). Failing, it says why and exits 125, as ``docker run`` does."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(netns_path, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        _die(f"cannot enter {netns_path}")
    os.close(fd)
    if not resolv:
        return
    if libc.unshare(CLONE_NEWNS) != 0:
        _die("cannot make a private mount namespace")
    if libc.mount(None, b"/", None, MS_REC | MS_SLAVE, None) != 0:
        _die("cannot make / a slave mount")
    if libc.mount(resolv.encode(), b"/etc/resolv.conf", None, MS_BIND, None) != 0:
        _die("cannot bind the compartment's resolv.conf")
