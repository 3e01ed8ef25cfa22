"""Cutting vNICs without making anyone wait for the kernel's RCU grace period.

Deleting a veth waits out an RCU grace period (15-35 ms here) with the rtnl lock held.
A vNIC being removed is instead taken out of service at once: its host end goes down
(no traffic) and joins a device group, and its peer inside the compartment goes down
and is renamed aside (``hx`` + the endpoint id), so the compartment's interface name is
free again when the call returns, as a runtime expects after CNI DEL. A thread deletes
the whole group in one request a moment later: one grace period for every vNIC cut
meanwhile. What a crash leaves in the group is swept at the next start (hostnet owns it).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from hostnet.errors import KernelError
from hostnet.kernel.rtnl import Rtnl

log = logging.getLogger("hostnet")
GROUP = 0x686E  # "hn": the device group of vNICs waiting to be deleted
BATCH_S = 0.02  # how long the thread lets cuts gather before it deletes them


class Reaper:
    def __init__(self, rt: Rtnl) -> None:
        self.rt = rt
        self._wake = threading.Condition()
        self._pending = 0  # cuts not yet deleted
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the deleting thread (from the daemon's namespace: it stays in it)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hostnet-reaper", daemon=True)
            self._thread.start()

    def cut(self, host_ifname: str, netns: str | None, ifname: str, aside: str) -> None:
        """Take a vNIC out of service now; delete it soon. ``netns`` None: the peer is not
        in a compartment hostnet can enter (Docker's, or the compartment is gone)."""
        if not self.rt.set_down_in_group(host_ifname, GROUP):
            return  # already gone (with its compartment): nothing to delete
        if netns:
            with contextlib.suppress(KernelError, OSError), Rtnl(netns) as inside:
                inside.rename_down(ifname, aside)
        if self._thread is None:  # no thread (unit tests, tools): delete it now
            self.rt.delete_link(host_ifname)
            return
        with self._wake:
            self._pending += 1
            self._wake.notify()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every cut so far is deleted (daemon stop)."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while self._pending and time.monotonic() < deadline:
                self._wake.wait(0.05)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
            time.sleep(BATCH_S)
            with self._wake:
                taken = self._pending  # all in the group now (and any cut from here on)
            try:
                self.rt.delete_group(GROUP)
            except KernelError as exc:
                log.error("deleting %d cut vNICs: %s (the next start sweeps them)", taken, exc)
            with self._wake:
                self._pending -= taken
                self._wake.notify_all()
