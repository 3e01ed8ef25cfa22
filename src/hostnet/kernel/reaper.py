"""Cutting vNICs without making anyone wait for the kernel.

Deleting a veth ends in a wait for outstanding RCU callbacks (15-35 ms here), after the
rtnl lock is let go. A vNIC being removed is instead taken out of service at once: its
host end goes down (no traffic), and its peer inside the compartment goes down and is
renamed aside (``hx`` + the endpoint id), so the compartment's interface name is free
when the call returns, as a runtime expects after CNI DEL. A few threads then delete
the pairs by name, each wait overlapping the others'; a switch that is full meanwhile
waits for them (cut vNICs still hold their bridge ports). (Deleting a device group at once
would cost a scan of every device of the namespace: milliseconds at 10,000 vNICs.)
What a crash leaves is hostnet-owned and swept at the next start.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time

from hostnet.errors import KernelError
from hostnet.kernel.rtnl import Rtnl

log = logging.getLogger("hostnet")
THREADS = 8


class Reaper:
    def __init__(self, rt: Rtnl) -> None:
        self.rt = rt  # one socket per thread (Rtnl(per_thread=True))
        self._todo: queue.Queue[str] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the deleting threads (from the daemon's namespace: they stay in it)."""
        while len(self._threads) < THREADS:
            t = threading.Thread(target=self._run, name="hostnet-reaper", daemon=True)
            t.start()
            self._threads.append(t)

    def cut(self, host_ifname: str, netns: str | None, ifname: str, aside: str) -> None:
        """Take a vNIC out of service now; delete it soon. ``netns`` None: the peer is not
        in a compartment hostnet can enter (Docker's, or the compartment is gone)."""
        if not self.rt.set_down(host_ifname):
            return  # already gone (with its compartment): nothing to delete
        if netns:
            with contextlib.suppress(KernelError, OSError), Rtnl(netns) as inside:
                inside.rename_down(ifname, aside)
        if not self._threads:  # not started (tools, tests): delete it now
            self.rt.delete_link(host_ifname)
            return
        self._todo.put(host_ifname)

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every cut so far is deleted (a full switch, daemon stop); False if
        some were still waiting after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self._threads and self._todo.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _run(self) -> None:
        while True:
            name = self._todo.get()
            try:
                self.rt.delete_link(name)
            except KernelError as exc:
                log.error("deleting cut vNIC %s: %s (the next start sweeps it)", name, exc)
            finally:
                self._todo.task_done()
