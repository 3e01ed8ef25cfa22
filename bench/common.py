"""The benchmark lab: network namespaces, a private segment, hosts, hostnetd, peers.

Topology (every name starts with ``hnb-<pid>-`` so parallel runs never collide):

    [client]──┐
              ├── seg (a bridge in its own namespace): 198.51.100.0/24 (TEST-NET-2)
    [host N]──┘      a host may run its own hostnetd (state and socket under a temp dir)

Namespaces are made in-process (unshare + bind mount, as ``ip netns add`` does) and
every ``ip`` command runs inside a lab namespace, never in the machine's own.
``Lab.close`` removes every namespace and ends every process started, even after a failure.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import errno
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
sys.path.insert(0, os.path.join(REPO_DIR, "src"))

from hostnet.client import Client  # noqa: E402

PREFIX = "hnb-"
SEGMENT = "198.51.100"
RUN_DIR = "/run/netns"
CNI_PATH = "/usr/lib/cni"
NETAVARK = "/usr/lib/podman/netavark"

_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


# -- processes ---------------------------------------------------------------
def sh(
    *cmd: str, check: bool = True, timeout: float = 60, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=timeout, input=input, check=False
    )
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr}{res.stdout}")
    return res


def ns_path(ns: str) -> str:
    return ns if ns.startswith("/") else os.path.join(RUN_DIR, ns)


def in_ns(
    ns: str, *cmd: str, check: bool = True, timeout: float = 60, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command inside a namespace (nsenter keeps /sys, unlike ``ip netns exec``)."""
    return sh("nsenter", f"--net={ns_path(ns)}", *cmd, check=check, timeout=timeout, input=input)


# -- namespaces, in-process -------------------------------------------------
def _oserror(what: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{what}: {os.strerror(code)}")


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        raise _oserror("setns")


def netns_add(name: str) -> str:
    """Create a named network namespace (unshare + bind mount, no fork); return its path."""
    path = ns_path(name)
    os.makedirs(RUN_DIR, exist_ok=True)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if _libc.unshare(_CLONE_NEWNET) != 0:
            err = _oserror(f"unshare for {name}")
            os.unlink(path)
            raise err
        try:
            if _libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", _MS_BIND, None):
                err = _oserror(f"bind mount of {path}")
                os.unlink(path)
                raise err
        finally:
            _setns(home)
    finally:
        os.close(home)
    return path


def netns_del(name: str) -> None:
    """Remove a named namespace; already gone is fine."""
    path = ns_path(name)
    if _libc.umount2(path.encode(), _MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):
            raise OSError(code, f"umount {path}: {os.strerror(code)}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@contextlib.contextmanager
def entered(ns: str) -> Iterator[None]:
    """This thread (and every process it starts) inside ``ns`` for the body."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(ns_path(ns), os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


# -- statistics --------------------------------------------------------------
def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (q in [0, 1])."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary(values: Sequence[float], digits: int = 2) -> dict[str, Any]:
    """n, median, p90, min, max of a sample."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), digits),
        "p90": round(quantile(values, 0.9), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


# -- peers -------------------------------------------------------------------
def cni_exec(
    plugin: str, command: str, container_id: str, netns: str, ifname: str, conf: dict[str, Any]
) -> dict[str, Any]:
    """One CNI plugin invocation (exec of the binary, config on stdin), as libcni does."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_PATH": CNI_PATH,
    }
    res = subprocess.run(
        [os.path.join(CNI_PATH, plugin)],
        input=json.dumps(conf).encode(),
        capture_output=True,
        env=env,
        check=False,
        timeout=60,
    )
    if res.returncode != 0:
        raise RuntimeError(
            f"CNI {plugin} {command} failed ({res.returncode}): "
            f"{res.stdout.decode(errors='replace')}{res.stderr.decode(errors='replace')}"
        )
    return json.loads(res.stdout) if res.stdout.strip() else {}


def netavark_exec(config_dir: str, command: str, netns: str, options: dict[str, Any]) -> None:
    """``netavark --config DIR setup|teardown NETNS`` with the network options on stdin."""
    res = subprocess.run(
        [NETAVARK, "--config", config_dir, command, netns],
        input=json.dumps(options).encode(),
        capture_output=True,
        check=False,
        timeout=60,
    )
    if res.returncode != 0:
        raise RuntimeError(
            f"netavark {command} failed ({res.returncode}): "
            f"{res.stdout.decode(errors='replace')}{res.stderr.decode(errors='replace')}"
        )


# -- hostnetd ----------------------------------------------------------------
def instance_id(state_dir: str) -> str:
    """hostnetd's instance id (names its compartments ``hn<id>-``), as daemon.py derives it."""
    return hashlib.sha1(os.path.abspath(state_dir).encode()).hexdigest()[:4]


@dataclass
class Daemon:
    """One hostnetd running inside a lab host namespace."""

    host: str
    state_dir: str
    socket: str
    proc: subprocess.Popen[bytes] | None = None
    plugins: str = "none"  # --docker-plugins: a lab directory, never the machine's own
    wrap: list[str] = field(default_factory=list)  # e.g. prlimit: hostnetd runs under it

    @property
    def log_path(self) -> str:
        return os.path.join(self.state_dir, "hostnetd.log")

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "HOSTNET_SOCKET": self.socket}

    def start(self, *extra: str) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    *self.wrap,
                    "nsenter",
                    f"--net={ns_path(self.host)}",
                    "hostnetd",
                    "--state-dir",
                    self.state_dir,
                    "--socket",
                    self.socket,
                    "--docker-plugins",
                    self.plugins,
                    "--resolv-conf",
                    "/dev/null",  # the embedded DNS forwards nowhere outside the lab
                    "--docker-host",
                    "none",  # never the machine's own Docker
                    *extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hostnetd exited: {self.log()[-2000:]}")
            if os.path.exists(self.socket):
                with contextlib.suppress(Exception):
                    Client(self.socket, timeout=5).get("/_ping")
                    return
            time.sleep(0.05)
        raise RuntimeError(f"hostnetd did not become ready: {self.log()[-2000:]}")

    def client(self, timeout: float = 120.0) -> Client:
        return Client(self.socket, timeout=timeout)

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def rss_kib(self) -> int | None:
        """Resident memory of the hostnetd process (nsenter execs it, same pid)."""
        if self.proc is None:
            return None
        try:
            with open(f"/proc/{self.proc.pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def compartment_prefix(self) -> str:
        return f"hn{instance_id(self.state_dir)}-"


@dataclass
class Lab:
    """Namespaces and processes of one benchmark; ``close`` removes all of them."""

    tag: str
    prefix: str = ""
    namespaces: list[str] = field(default_factory=list)
    daemons: list[Daemon] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    tmp: str = ""
    seg: str = ""
    _next_ip: int = 1

    def __post_init__(self) -> None:
        self.prefix = f"{PREFIX}{os.getpid() % 100000}{self.tag}-"
        self.tmp = tempfile.mkdtemp(prefix=f"hostnet-bench-{self.tag}-")
        self.seg = self.ns("seg")
        in_ns(self.seg, "ip", "link", "add", "seg0", "type", "bridge")
        in_ns(self.seg, "ip", "link", "set", "seg0", "up")

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ns(self, name: str) -> str:
        """A fresh namespace with its loopback up; returns its name."""
        full = self.prefix + name
        self.namespaces.append(full)
        netns_add(full)
        in_ns(full, "ip", "link", "set", "lo", "up")
        return full

    def track_ns(self, name: str) -> None:
        """Remember a namespace made elsewhere (a peer's) so ``close`` removes it."""
        self.namespaces.append(name)

    def node(self, name: str) -> tuple[str, str]:
        """A namespace with one adapter (eth0) on the segment; returns (netns, its address)."""
        ns = self.ns(name)
        self._next_ip += 1
        ip = f"{SEGMENT}.{self._next_ip}"
        peer = f"s{self._next_ip}"
        # the pair is created inside the segment namespace, never in the machine's own
        in_ns(
            self.seg,
            "ip",
            "link",
            "add",
            peer,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns_path(ns),
        )
        in_ns(self.seg, "ip", "link", "set", peer, "master", "seg0", "up")
        in_ns(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        in_ns(ns, "ip", "link", "set", "eth0", "up")
        return ns, ip

    def host(
        self,
        name: str,
        *daemon_args: str,
        docker_plugins: bool = False,
        wrap: list[str] | None = None,
    ) -> tuple[Daemon, str]:
        """A node on the segment running its own hostnetd.

        With ``docker_plugins`` the daemon serves its Docker plugin sockets in
        ``<state>/plugins`` (a lab dockerd bind-mounts it); otherwise it serves none.
        """
        ns, ip = self.node(name)
        state = os.path.join(self.tmp, name)
        os.makedirs(state)
        plugins = os.path.join(state, "plugins") if docker_plugins else "none"
        if docker_plugins:
            os.makedirs(plugins)
        d = Daemon(
            ns, state, os.path.join(state, "hostnet.sock"), plugins=plugins, wrap=list(wrap or [])
        )
        self.daemons.append(d)
        d.start(*daemon_args)
        return d, ip

    def spawn(self, ns: str, *cmd: str, log: str | None = None) -> subprocess.Popen[bytes]:
        """A long-running process inside ``ns``; ended by pid in ``close``."""
        out: Any = subprocess.DEVNULL
        if log:
            out = open(log, "ab")  # noqa: SIM115 - handed to the child
        try:
            p = subprocess.Popen(
                ["nsenter", f"--net={ns_path(ns)}", *cmd], stdout=out, stderr=subprocess.STDOUT
            )
        finally:
            if log:
                out.close()
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen[bytes]) -> None:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def close(self) -> list[str]:
        """Remove everything; return what had to be cleaned up that hostnet left behind."""
        leftovers: list[str] = []
        for p in self.procs:
            with contextlib.suppress(Exception):
                self.stop(p)
        for d in self.daemons:
            if d.proc is not None and d.proc.poll() is None:
                with contextlib.suppress(Exception):
                    c = d.client(timeout=30)
                    for row in c.get("/containers"):
                        c.delete(f"/containers/{row['Id']}")
            d.stop()
            with contextlib.suppress(FileNotFoundError):
                for name in os.listdir(RUN_DIR):
                    if name.startswith(d.compartment_prefix()):
                        leftovers.append(f"compartment {name}")
                        netns_del(name)
        for ns in reversed(self.namespaces):
            with contextlib.suppress(OSError):
                netns_del(ns)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.procs, self.daemons, self.namespaces = [], [], []
        return leftovers


# -- output ------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """What the numbers are measured on (call it when a part starts)."""
    rev = sh("git", "-C", REPO_DIR, "rev-parse", "--short", "HEAD", check=False).stdout.strip()
    dirty = sh("git", "-C", REPO_DIR, "status", "--porcelain", "--", "src", check=False).stdout
    return {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "git": rev + (" (src/ modified)" if dirty.strip() else ""),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def emit(name: str, data: dict[str, Any]) -> None:
    """Print the JSON summary and keep it for report.py (in BENCH_OUT, default bench/out)."""
    if isinstance(data.get("machine"), dict):
        data["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out_dir = os.environ.get("BENCH_OUT") or os.path.join(BENCH_DIR, "out")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as fh:
        json.dump(data, fh, indent=2)
    print(json.dumps(data, indent=2))


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    sys.exit(128 + signum)


def require_root() -> None:
    """Refuse to run without root; let SIGTERM unwind so every lab is removed."""
    if os.geteuid() != 0:
        sys.exit("the benchmarks need root (network namespaces)")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
