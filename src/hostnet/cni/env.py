"""The CNI runtime's environment (CNI_CONTAINERID, CNI_IFNAME, CNI_NETNS), checked before
anything changes: the rules libcni applies (``ValidateContainerID``,
``ValidateInterfaceName``), and a namespace that is a namespace and not the host's own."""

from __future__ import annotations

import os
import re

from hostnet.kernel import netns

# libcni's ValidateContainerID: what every runtime's ids (podman, containerd, CRI-O) match
CONTAINER_ID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]*")
MAX_ID = 1024
IFNAMSIZ = 16  # the kernel's, with its NUL


class EnvError(ValueError):
    """A variable of the CNI environment that hostnet refuses: (variable, why, what to do)."""

    def __init__(self, var: str, why: str, remedy: str) -> None:
        super().__init__(f"{var} {why}")
        self.var, self.why, self.remedy = var, why, remedy


def check_container_id(cid: str) -> None:
    if len(cid) > MAX_ID or not CONTAINER_ID.fullmatch(cid):
        raise EnvError(
            "CNI_CONTAINERID",
            f"{cid[:80]!r} is not a container id",
            f"use letters, digits, '_', '.' and '-' (first a letter or digit), at most {MAX_ID}",
        )


def check_ifname(ifname: str) -> None:
    bad = next((ch for ch in ifname if ch in "/:" or ch.isspace()), None)
    if not ifname or len(ifname) >= IFNAMSIZ or ifname in (".", "..") or bad is not None:
        raise EnvError(
            "CNI_IFNAME",
            f"{ifname[:80]!r} is not an interface name"
            + (f" (it has {bad!r})" if bad is not None else ""),
            f"at most {IFNAMSIZ - 1} characters, no '/', ':' or spaces, not '.' or '..'",
        )


def _same_file(a: os.stat_result, path: str) -> bool:
    try:
        b = os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def same_netns(a: str, b: str) -> bool:
    """Whether two CNI_NETNS values name one namespace: the same path (a name under
    /run/netns is that path), or two paths to the same namespace file."""
    pa, pb = netns.path_of(a), netns.path_of(b)
    if os.path.normpath(pa) == os.path.normpath(pb):
        return True
    try:
        st = os.stat(pa)
    except OSError:
        return False
    return _same_file(st, pb)


def _host_pids() -> list[str]:
    """Processes whose namespace is the host's: hostnetd, PID 1 and, where PID 1's cannot
    be read (a PID 1 not dumpable, without CAP_SYS_PTRACE), kthreadd: kernel threads live
    in the initial namespace."""
    pids = ["self", "1"]
    try:
        with open("/proc/2/comm") as fh:
            if fh.read().strip() == "kthreadd":
                pids.append("2")
    except OSError:
        pass
    return pids


def check_netns(path: str) -> None:
    """A path to a namespace, or a name under /run/netns (never one that climbs out); not the
    namespace hostnetd runs in nor the host's (PID 1's): CNI attaches containers only."""
    if not path.startswith("/") and (path in (".", "..") or "/" in path):
        raise EnvError(
            "CNI_NETNS",
            f"{path[:80]!r} is neither an absolute path nor a name under {netns.RUN_DIR}",
            "give the namespace's path, e.g. /run/netns/NAME or /proc/PID/ns/net",
        )
    try:
        st = os.stat(netns.path_of(path))
    except OSError as exc:
        raise EnvError(
            "CNI_NETNS",
            f"{path[:80]!r} cannot be opened: {exc.strerror}",
            "the runtime must create the namespace before ADD",
        ) from None
    if not netns.exists(path):
        raise EnvError(
            "CNI_NETNS",
            f"{path[:80]!r} is not a network namespace",
            "give the namespace's path, e.g. /run/netns/NAME or /proc/PID/ns/net",
        )
    if any(_same_file(st, f"/proc/{pid}/ns/net") for pid in _host_pids()):
        raise EnvError(
            "CNI_NETNS",
            f"{path[:80]!r} is the host's own network namespace",
            "give the container's namespace; a container on the host's network needs no CNI",
        )
