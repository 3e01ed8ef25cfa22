"""The test lab: hosts, a physical segment and clients, all network namespaces.

Topology (names get a per-lab prefix so parallel labs never collide):

    [client]──┐
              ├── seg (a bridge in its own namespace): 198.51.100.0/24 (TEST-NET-2)
    [host N]──┘      each host runs its own hostnetd, state and socket under a temp dir

Everything a lab makes is removed by ``close()``, which runs even when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

SEGMENT = "198.51.100"
SEGMENT6 = "2001:db8:100::"  # the segment's IPv6 prefix (/64), for nodes that ask for it


def sh(
    *cmd: str, check: bool = True, timeout: float = 30, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(cmd), check=check, capture_output=True, text=True, timeout=timeout, input=input
    )


def in_ns(
    ns: str, *cmd: str, check: bool = True, timeout: float = 30, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command inside a namespace (nsenter keeps /sys and cgroups, unlike ip netns exec)."""
    path = ns if ns.startswith("/") else f"/run/netns/{ns}"
    return sh("nsenter", f"--net={path}", *cmd, check=check, timeout=timeout, input=input)


@dataclass
class Daemon:
    """One hostnetd inside a lab host."""

    host: str
    state_dir: str
    socket: str
    proc: subprocess.Popen[bytes] | None = None
    args: list[str] = field(default_factory=list)
    wrap: list[str] = field(default_factory=list)  # e.g. prlimit: hostnetd runs under it
    ready_timeout: float = 20.0

    @property
    def plugins_dir(self) -> str:
        """Where this daemon serves Docker plugin sockets (a dockerd of the lab mounts it)."""
        return os.path.join(self.state_dir, "plugins")

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "HOSTNET_SOCKET": self.socket}

    def start(self, *extra: str) -> None:
        self.args = list(extra)
        if "--resolv-conf" not in extra:
            # never the machine's resolvers: the embedded DNS forwards only inside the lab
            resolv = os.path.join(self.state_dir, "resolv.conf")
            if not os.path.exists(resolv):
                open(resolv, "w").close()  # noqa: SIM115
            extra = (*extra, "--resolv-conf", resolv)
        if "--docker-host" not in extra:  # never the machine's own Docker
            extra = (*extra, "--docker-host", "none")
        log = open(os.path.join(self.state_dir, "hostnetd.log"), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                *self.wrap,
                "nsenter",
                f"--net=/run/netns/{self.host}",
                "hostnetd",
                "--state-dir",
                self.state_dir,
                "--socket",
                self.socket,
                "--log-level",
                "debug",
                "--docker-plugins",
                self.plugins_dir,
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hostnetd exited: {self.log()[-2000:]}")
            if (
                os.path.exists(self.socket)
                and self.cli("network", "ls", check=False).returncode == 0
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"hostnetd did not become ready: {self.log()[-2000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def log(self) -> str:
        with open(os.path.join(self.state_dir, "hostnetd.log"), errors="replace") as fh:
            return fh.read()

    def cli(
        self, *args: str, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            ["hostnet", *args], capture_output=True, text=True, env=self.env, timeout=timeout
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"hostnet {' '.join(args)} failed ({res.returncode}): {res.stderr}{res.stdout}"
            )
        return res

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args).stdout)

    def instance_prefix(self) -> str:
        from hostnet.daemon import instance_id

        return f"hn{instance_id(self.state_dir)}-"


class Lab:
    """Namespaces for one test; ``close`` removes all of them and every process started."""

    _count = 0

    def __init__(self) -> None:
        Lab._count += 1
        self.prefix = f"hnt{os.getpid() % 10000}x{Lab._count}-"
        self.namespaces: list[str] = []
        self.daemons: list[Daemon] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.tmp = tempfile.mkdtemp(prefix="hostnet-lab-")
        self.seg = self._ns("seg")
        in_ns(self.seg, "ip", "link", "add", "seg0", "type", "bridge")
        in_ns(self.seg, "ip", "link", "set", "seg0", "up")
        self._next_ip = 1

    def _ns(self, name: str) -> str:
        full = self.prefix + name
        sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        in_ns(full, "ip", "link", "set", "lo", "up")
        return full

    def node(self, name: str, host_part: int = 0) -> tuple[str, str]:
        """A namespace with one adapter (eth0) on the segment; returns (netns, its address)."""
        ns = self._ns(name)
        if not host_part:
            self._next_ip += 1
            host_part = self._next_ip
        ip = f"{SEGMENT}.{host_part}"
        peer = f"{self.prefix[-6:]}{host_part}"
        sh(
            "ip",
            "link",
            "add",
            "eth0",
            "netns",
            ns,
            "type",
            "veth",
            "peer",
            "name",
            peer,
            "netns",
            self.seg,
        )
        in_ns(self.seg, "ip", "link", "set", peer, "master", "seg0", "up")
        in_ns(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        in_ns(ns, "ip", "link", "set", "eth0", "up")
        return ns, ip

    def with_ipv6(self, ns: str, ip: str) -> str:
        """Give node ``ns`` (at IPv4 ``ip``) an IPv6 address on the segment too; returns it."""
        ip6 = f"{SEGMENT6}{ip.rsplit('.', 1)[1]}"
        in_ns(ns, "ip", "-6", "addr", "add", f"{ip6}/64", "dev", "eth0", "nodad")
        return ip6

    def adapter(self, ns: str, ifname: str) -> None:
        """Another adapter (no address) of node ``ns`` on the segment."""
        self._next_port = getattr(self, "_next_port", 200) + 1
        peer = f"{self.prefix[-6:]}p{self._next_port}"
        sh(
            "ip",
            "link",
            "add",
            ifname,
            "netns",
            ns,
            "type",
            "veth",
            "peer",
            "name",
            peer,
            "netns",
            self.seg,
        )
        in_ns(self.seg, "ip", "link", "set", peer, "master", "seg0", "up")
        in_ns(ns, "ip", "link", "set", ifname, "up")

    def router(self) -> tuple[str, str]:
        """The segment's gateway (.1); hosts get a default route through it."""
        ns, ip = self.node("router", 1)
        self.gateway = ip
        return ns, ip

    def seg_port(self, node_ip: str) -> str:
        """The upstream switch's port (in the segment namespace) facing a node."""
        return f"{self.prefix[-6:]}{node_ip.rsplit('.', 1)[1]}"

    def host(
        self, name: str = "host", *daemon_args: str, wrap: list[str] | None = None
    ) -> tuple[Daemon, str]:
        ns, ip = self.node(name)
        if getattr(self, "gateway", ""):
            in_ns(ns, "ip", "route", "add", "default", "via", self.gateway)
        state = os.path.join(self.tmp, name)
        os.makedirs(state)
        d = Daemon(ns, state, os.path.join(state, "hostnet.sock"), wrap=list(wrap or []))
        self.daemons.append(d)
        d.start(*daemon_args)
        return d, ip

    def spawn(self, ns: str, *cmd: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{ns}", *cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(p)
        return p

    def _lab_netns_inodes(self) -> set[int]:
        inodes = set()
        names = list(self.namespaces)
        for d in self.daemons:
            names += [n for n in os.listdir("/run/netns") if n.startswith(d.instance_prefix())]
        for n in names:
            with contextlib.suppress(OSError):
                inodes.add(os.stat(f"/run/netns/{n}").st_ino)
        return inodes

    @staticmethod
    def _processes_in(inodes: set[int]) -> list[int]:
        pids = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{pid}/ns/net").st_ino in inodes:
                    pids.append(int(pid))
        return pids

    def close(self) -> list[str]:
        """Remove everything; return what had to be cleaned up that hostnet left behind."""
        leftovers: list[str] = []
        inodes = self._lab_netns_inodes()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(5)
        for d in self.daemons:
            if d.proc is not None:
                with contextlib.suppress(Exception):  # -a: stopped ones keep a compartment too
                    for c in json.loads(
                        d.cli("ps", "-a", "--format", "json", check=False).stdout or "[]"
                    ):
                        d.cli("rm", c["Id"], check=False)
            d.stop()
            for name in os.listdir("/run/netns"):
                if name.startswith(d.instance_prefix()):
                    leftovers.append(f"compartment {name}")
                    sh("ip", "netns", "del", name, check=False)
        # every process that ran in the lab must be gone (hostnet rm stops containers)
        deadline = time.monotonic() + 5
        while (stray := self._processes_in(inodes)) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in stray:
            with contextlib.suppress(OSError):
                with open(f"/proc/{pid}/comm") as fh:
                    leftovers.append(f"process {pid} ({fh.read().strip()})")
                os.kill(pid, signal.SIGKILL)
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return leftovers


def start_etcd(
    lab: Lab, members: dict[str, tuple[str, str]], track: bool = True
) -> dict[str, subprocess.Popen[bytes]]:
    """An etcd cluster (Debian's etcd-server): ``members`` maps a member name to (the lab
    namespace it runs in, the address it listens on). Returns the processes by name."""
    cluster = ",".join(f"{n}=http://{ip}:2380" for n, (_, ip) in members.items())
    procs = {}
    for name, (ns, ip) in members.items():
        data = os.path.join(lab.tmp, f"etcd-{name}")
        procs[name] = etcd_member(lab, name, ns, ip, cluster, data, track)
    return procs


def etcd_member(
    lab: Lab, name: str, ns: str, ip: str, cluster: str, data: str, track: bool = True
) -> subprocess.Popen[bytes]:
    """One member; ``track`` False leaves stopping it to the caller (after the daemons that
    need it have cleaned up)."""
    log = open(f"{data}.log", "ab")  # noqa: SIM115 - handed to the child
    p = subprocess.Popen(
        [
            "nsenter",
            f"--net=/run/netns/{ns}",
            "etcd",
            "--name",
            name,
            "--data-dir",
            data,
            "--listen-client-urls",
            f"http://{ip}:2379",
            "--advertise-client-urls",
            f"http://{ip}:2379",
            "--listen-peer-urls",
            f"http://{ip}:2380",
            "--initial-advertise-peer-urls",
            f"http://{ip}:2380",
            "--initial-cluster",
            cluster,
            "--initial-cluster-state",
            "new",
            "--heartbeat-interval",
            "50",
            "--election-timeout",
            "500",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    if track:
        lab.procs.append(p)
    return p


def wait_etcd(ns: str, ip: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = in_ns(
            ns, "etcdctl", f"--endpoints=http://{ip}:2379", "endpoint", "health", check=False
        )
        if res.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"etcd at {ip} did not become healthy")


def eventually(check: Any, timeout: float = 30.0) -> None:
    """Retry ``check`` (an assertion) until it passes: the kernel frees a removed
    compartment's veths asynchronously, a few milliseconds after the namespace goes.
    ``timeout`` only guards against a hang: a loaded machine may take seconds, and no
    verdict may depend on its speed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check() is False:  # a predicate as well as an assertion
                raise AssertionError(f"still false after {timeout} s: {check}")
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
