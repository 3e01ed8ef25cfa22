"""Running README statements in a lab: in the lab host's namespace, HOSTNET_SOCKET naming
its daemon, DOCKER_HOST a lab dockerd or nothing, ``$LAB`` the lab's temp dir; foreground
servers reached and stopped, hostnetd lines started as lab daemons, hooks around forms."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from lab import Daemon, Lab, eventually, in_ns
from readme_blocks import Statement, statements


@dataclass
class Readme:
    """Runs one README section's statements against a lab daemon, hooks around forms."""

    lab: Lab
    d: Daemon
    ns: str = ""
    before: dict[str, Callable[[], object]] = field(default_factory=dict)
    after: dict[str, Callable[[subprocess.CompletedProcess[str]], object]] = field(
        default_factory=dict
    )
    servers: dict[str, Callable[[], bool]] = field(default_factory=dict)  # form -> answered?
    daemons: dict[str, Daemon] = field(default_factory=dict)  # hostnetd forms
    inputs: dict[str, str] = field(default_factory=dict)
    forms: Callable[[Statement], tuple[str, ...]] = lambda st: (st.text,)
    exempt: Collection[str] = ()
    exit_ok: dict[str, tuple[int, ...]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    docker_host: str = ""  # a lab dockerd's; by default a socket nobody serves

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOSTNET_SOCKET": self.d.socket,
            "DOCKER_HOST": self.docker_host or f"unix://{self.lab.tmp}/no-docker.sock",
            "LAB": self.lab.tmp,
        }

    def argv(self, form: str) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.ns or self.d.host}", "bash", "-c", form]

    def sh(self, form: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(form),
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=self.lab.tmp,
            input=input,
            timeout=120,
        )

    def section(self, title: str, pick: Callable[[Statement], bool] = lambda _: True) -> None:
        sts = [st for st in statements() if st.section == title and pick(st)]
        assert sts, f"no README section {title!r}"
        for st in sts:
            if st.text in self.exempt:
                continue
            for form in self.forms(st):
                if form in self.before:
                    self.before[form]()
                self.one(st, form)

    def one(self, st: Statement, form: str) -> None:
        self.ran.append(form)
        if form in self.servers:
            self.serve(form, self.servers[form])
            return
        if form in self.daemons:
            self.daemon(form, self.daemons[form])
            return
        res = self.sh(form, self.inputs.get(form))
        assert res.returncode in self.exit_ok.get(form, (0,)), (
            f"README line {st.line}: `{form}` exited {res.returncode}:\n{res.stdout}{res.stderr}"
        )
        if form in self.after:
            self.after[form](res)

    def serve(self, form: str, answered: Callable[[], bool]) -> None:
        """A foreground server: started, reached with a real connection, stopped (^C)."""
        argv = self.argv(f"exec {form}")
        p = subprocess.Popen(argv, env=self.env(), cwd=self.lab.tmp, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)  # fmt: skip
        self.lab.procs.append(p)
        try:
            eventually(lambda: p.poll() is None and answered(), timeout=30)
        finally:
            p.send_signal(signal.SIGINT)
            out = p.communicate(timeout=30)[0]
        # it ends as a server does on ^C, and hostnet removes its compartment
        assert p.returncode in (0, 1, 130), f"`{form}` ended with {p.returncode}: {out!r}"

    def daemon(self, form: str, d: Daemon) -> None:
        """A hostnetd line: started in the background as ``d``, ready when it answers."""
        os.makedirs(d.state_dir, exist_ok=True)
        d.proc = subprocess.Popen(
            self.argv(f"exec {form}"), env=self.env(), cwd=self.lab.tmp,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.lab.daemons.append(d)

        def ready() -> bool:
            assert d.proc is not None and d.proc.poll() is None, f"`{form}` exited"
            return d.cli("network", "ls", check=False).returncode == 0

        eventually(ready, timeout=30)


def http_answers(ns: str, ip: str, port: int) -> Callable[[], bool]:
    """Whether an HTTP server answers a GET at ip:port from namespace ``ns``."""

    def answered() -> bool:
        res = in_ns(ns, "socat", "-T2", "-", f"TCP:{ip}:{port},connect-timeout=2",
                    input="GET / HTTP/1.0\r\n\r\n", check=False, timeout=10)  # fmt: skip
        return res.stdout.startswith("HTTP/1")

    return answered


def restart(d: Daemon) -> None:
    """Start a daemon again after ``system reset`` (which stops it and removes its state)."""
    assert d.proc is not None
    d.proc.wait(30)
    os.makedirs(d.state_dir, exist_ok=True)
    d.start(*d.args)


def names(d: Daemon) -> list[str]:
    return [c["Name"] for c in d.json("ps", "-a", "--format", "json")]


def stop_by_pidfile(pidfile: str) -> None:
    """Stop the daemon install.sh started, as the README says (kill $(cat PIDFILE))."""
    if not os.path.exists(pidfile):
        return
    with open(pidfile) as fh:
        pid = int(fh.read().strip())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    eventually(gone, timeout=20)
