"""DHCP for transparent endpoints: a DHCP client in the compartment (BusyBox udhcpc),
started and stopped by the daemon. The lease is obtained before attach returns, renewed
while the endpoint lives, and released when it goes (udhcpc -R)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from hostnet.core.procs import process_start_time
from hostnet.errors import KernelError, Unavailable

# Runs inside the compartment at each DHCP event; applies the lease and records it.
SCRIPT = """#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface" ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip -4 addr add "$ip/$mask" dev "$interface"
    ip link set "$interface" up
    [ -n "$router" ] && ip -4 route replace default via "${router%% *}" dev "$interface"
    printf '{"ip": "%s", "mask": "%s", "router": "%s", "dns": "%s", "domain": "%s"}' \\
      "$ip" "$mask" "${router%% *}" "$dns" "$domain" > "$LEASE_FILE.tmp"
    mv "$LEASE_FILE.tmp" "$LEASE_FILE" ;;
esac
exit 0
"""


def busybox() -> str:
    path = shutil.which("busybox")
    if path is None:
        raise Unavailable(
            "DHCP needs BusyBox's udhcpc", "install Debian's busybox (or busybox-static)"
        )
    return path


class DhcpClients:
    """One udhcpc per DHCP endpoint; pid files and leases under the state directory."""

    def __init__(
        self, state_dir: str, idle: Callable[[], AbstractContextManager[None]] = nullcontext
    ) -> None:
        #: entered while waiting for a lease or a client to go: the service lets other
        #: requests run meanwhile
        self.idle = idle
        self.dir = os.path.join(state_dir, "dhcp")
        os.makedirs(self.dir, exist_ok=True)
        self.script = os.path.join(self.dir, "event.sh")
        with open(self.script, "w") as fh:
            fh.write(SCRIPT)
        os.chmod(self.script, 0o755)

    def _paths(self, ep_id: str) -> tuple[str, str]:
        return os.path.join(self.dir, f"{ep_id}.lease"), os.path.join(self.dir, f"{ep_id}.pid")

    def running(self, ep_id: str) -> int:
        """The client's pid if it runs, else 0."""
        _, pid_file = self._paths(ep_id)
        try:
            with open(pid_file) as fh:
                pid = int(fh.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0
        return pid if pid and process_start_time(pid) is not None else 0

    def start(
        self, ep_id: str, netns_path: str, ifname: str, timeout: float = 15.0
    ) -> dict[str, Any]:
        """Start (or find) the client and wait for a lease; return it."""
        lease, pid_file = self._paths(ep_id)
        if not self.running(ep_id):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lease)
            subprocess.Popen(
                [
                    "nsenter",
                    f"--net={netns_path}",
                    busybox(),
                    "udhcpc",
                    "-f",
                    "-R",
                    "-i",
                    ifname,
                    "-s",
                    self.script,
                    "-p",
                    pid_file,
                    "-t",
                    "20",
                    "-T",
                    "1",
                    "-A",
                    "3",
                ],
                env={
                    "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                    "LEASE_FILE": lease,
                },
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        got = self._wait_lease(lease, timeout)
        if got is not None:
            return got
        self.stop(ep_id)
        raise KernelError(
            f"no DHCP lease on {ifname} within {timeout:.0f} s",
            "check that a DHCP server answers on the adapter's network, or give --subnet and --ip",
        )

    def _wait_lease(self, lease: str, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        with self.idle():
            while time.monotonic() < deadline:
                with contextlib.suppress(FileNotFoundError, ValueError), open(lease) as fh:
                    return dict(json.load(fh))
                time.sleep(0.05)
        return None

    def stop_all(self) -> list[str]:
        """Stop every client with a pid file here (a reset: their endpoints are gone)."""
        ids = sorted(f[: -len(".pid")] for f in os.listdir(self.dir) if f.endswith(".pid"))
        for ep_id in ids:
            self.stop(ep_id)
        return ids

    def stop(self, ep_id: str) -> None:
        """Release the lease (udhcpc -R does on SIGTERM) and forget it."""
        pid = self.running(ep_id)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            with self.idle():
                for _ in range(40):
                    if process_start_time(pid) is None:
                        break
                    time.sleep(0.05)
        for path in self._paths(ep_id):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
