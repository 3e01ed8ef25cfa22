"""A real Docker engine (Debian's docker.io) inside a lab host, using hostnet's plugins.

dockerd runs in the lab host's network namespace and in a private mount namespace
where /run/docker/plugins is that lab's hostnetd plugin directory, so labs never
see each other's plugins and the machine's own Docker (if any) is untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from typing import Any

from lab import Daemon

DOCKER = "/usr/bin/docker"
# A server answering each TCP connection (IPv4 or IPv6) with a name. nc -ll keeps
# listening, one child per connection: a plain -l serves one and exits, and a connection
# coming before the loop listened again was refused (a flaky '').
SERVER = "printf '#!/bin/sh\\nread l\\necho {name}\\n' >/tmp/h; chmod +x /tmp/h; while true; do nc -ll -p {port} -e /tmp/h; done"


class Dockerd:
    def __init__(self, d: Daemon, workdir: str) -> None:
        self.d = d
        self.dir = workdir
        self.sock = os.path.join(workdir, "docker.sock")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        os.makedirs("/run/docker/plugins", exist_ok=True)
        os.makedirs(self.d.plugins_dir, exist_ok=True)
        inner = (
            f"mount --bind {self.d.plugins_dir} /run/docker/plugins && exec dockerd "
            f"--data-root {self.dir}/root --exec-root {self.dir}/exec --pidfile {self.dir}/pid "
            f"-H unix://{self.sock} --iptables=false --ip-forward=false --bridge=none "
            f"--log-level warn"
        )
        log = open(os.path.join(self.dir, "dockerd.log"), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{self.d.host}",
                "unshare",
                "--mount",
                "--propagation",
                "slave",
                "sh",
                "-c",
                inner,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dockerd exited: " + self.log()[-2000:])
            if self.docker("version", check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("dockerd did not start: " + self.log()[-2000:])

    def log(self) -> str:
        with open(os.path.join(self.dir, "dockerd.log"), errors="replace") as fh:
            return fh.read()

    def docker(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            [DOCKER, "-H", f"unix://{self.sock}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {res.stderr}{res.stdout}")
        return res

    def endpoint(self, name: str, net: str = "") -> dict[str, Any]:
        """A container's entry in NetworkSettings.Networks (its first network by default):
        IPAddress, GlobalIPv6Address, IPv6Gateway, ..."""
        nets = json.loads(self.docker("inspect", name).stdout)[0]["NetworkSettings"]["Networks"]
        entry: dict[str, Any] = nets[net or next(iter(nets))]
        return entry

    def network(self, name: str) -> dict[str, Any]:
        """``docker network inspect``'s view of one network."""
        view: dict[str, Any] = json.loads(self.docker("network", "inspect", name).stdout)[0]
        return view

    def cleanup(self) -> None:
        """Remove every container and user network (so hostnet sees the Docker calls)."""
        ids = self.docker("ps", "-aq", check=False).stdout.split()
        if ids:
            self.docker("rm", "-f", *ids, check=False)
        nets = self.docker(
            "network", "ls", "--filter", "type=custom", "-q", check=False
        ).stdout.split()
        for n in nets:
            self.docker("network", "rm", n, check=False)

    def stop(self, keep_data: bool = False) -> None:
        """Stop dockerd; its work dir (the data root with it) goes unless ``keep_data``
        (then ``start()`` again is Docker restarting with its networks and containers)."""
        if self.proc is None:
            if not keep_data:
                subprocess.run(["rm", "-rf", self.dir], check=False)
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
        if not keep_data:
            subprocess.run(["rm", "-rf", self.dir], check=False)

    def wipe_data_root(self) -> None:
        """Docker's data root emptied (dockerd stopped), as a reinstall would."""
        assert self.proc is None, "stop dockerd first"
        subprocess.run(["rm", "-rf", os.path.join(self.dir, "root")], check=True)
