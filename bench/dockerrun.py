"""``docker run --rm --network NET busybox true`` wall time: hostnet's nat network against
Docker's own bridge network, on the same dockerd in the same run.

One lab host runs hostnetd (serving its Docker plugin sockets in a lab directory) and a
private dockerd (Debian's docker.io): dockerd is started inside the lab host's network
namespace and in a private mount namespace where /run/docker/plugins is that lab directory
(and /run/containerd a private tmpfs), with --data-root/--exec-root/--pidfile/-H in a temp
dir, ``--iptables=false --ip-forward=false --bridge=none``, as tests/e2e/dockerlab.py does.
So Docker's bridge driver does no iptables (NAT/filter) work either.

Networks: ``docker network create -d nat --subnet 172.16.1.0/24 hnnat`` (hostnet's remote
driver) and ``docker network create -d bridge --subnet 10.77.0.0/24 dkbr``. The image is a
local busybox (Debian's busybox-static + applet links, ``docker import``). Runs alternate
between the two networks (order swapped every round); the time is the wall time of the
docker CLI process (/usr/bin/docker), which with --rm waits until the container is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import threading
import time
from typing import Any

import aiohttp
from aiohttp import web

from common import (
    Daemon,
    Lab,
    emit,
    in_ns,
    machine,
    ms_since,
    ns_path,
    ratio,
    require_root,
    summary,
)

DOCKER = "/usr/bin/docker"
BUSYBOX = "/bin/busybox"
PLUGINS_MOUNTPOINT = "/run/docker/plugins"
NETWORKS = {
    "hostnet": ["-d", "nat", "--subnet", "172.16.1.0/24", "hnnat"],
    "bridge": ["-d", "bridge", "--subnet", "10.77.0.0/24", "dkbr"],
}


def busybox_tar(workdir: str) -> str:
    """A tarball of a minimal root filesystem: /bin/busybox and its applet links."""
    root = os.path.join(workdir, "busybox-rootfs")
    for d in ("bin", "etc", "tmp", "proc", "sys", "dev"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy(BUSYBOX, os.path.join(root, "bin", "busybox"))
    applets = subprocess.run(
        [BUSYBOX, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for a in applets:
        if a != "busybox":  # the binary itself is already there
            os.symlink("busybox", os.path.join(root, "bin", a))
    with open(os.path.join(root, "etc", "passwd"), "w") as fh:
        fh.write("root:x:0:0:root:/:/bin/sh\n")
    tar = os.path.join(workdir, "busybox.tar")
    subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True)
    return tar


def pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (our unique temp dir)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd and int(entry) != os.getpid():
            found.append(int(entry))
    return found


class Dockerd:
    """A private dockerd (and the containerd it manages) inside a lab host."""

    def __init__(self, d: Daemon, workdir: str) -> None:
        self.d = d
        self.dir = workdir
        self.sock = os.path.join(workdir, "docker.sock")
        self.log_path = os.path.join(workdir, "dockerd.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start dockerd; return the seconds until it answered ``docker version``."""
        if not os.path.isdir(PLUGINS_MOUNTPOINT):
            raise RuntimeError(
                f"{PLUGINS_MOUNTPOINT} does not exist: it is the mount point dockerd's private "
                "mount namespace needs; this bench does not create it on the machine"
            )
        hide_containerd = (
            "mount -t tmpfs -o mode=0711 hnb-containerd /run/containerd && "
            if os.path.isdir("/run/containerd")
            else ""
        )
        inner = (
            f"mount --bind {self.d.plugins} {PLUGINS_MOUNTPOINT} && {hide_containerd}"
            f"exec dockerd --data-root {self.dir}/root --exec-root {self.dir}/exec "
            f"--pidfile {self.dir}/dockerd.pid -H unix://{self.sock} "
            "--iptables=false --ip-forward=false --bridge=none --log-level warn"
        )
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    "nsenter",
                    f"--net={ns_path(self.d.host)}",
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
        while time.monotonic() - t0 < 90:
            if self.proc.poll() is not None:
                raise RuntimeError("dockerd exited: " + self.log()[-2000:])
            if self.docker("version", check=False, timeout=10).returncode == 0:
                return round(time.monotonic() - t0, 2)
            time.sleep(0.2)
        raise RuntimeError("dockerd did not start: " + self.log()[-2000:])

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def argv(self, *args: str) -> list[str]:
        return [DOCKER, "-H", f"unix://{self.sock}", *args]

    def docker(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            self.argv(*args), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and res.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed: {res.stderr}{res.stdout}")
        return res

    def cleanup(self) -> None:
        """Remove every container and user network (so hostnet sees Docker's delete calls)."""
        ids = self.docker("ps", "-aq", check=False, timeout=60).stdout.split()
        if ids:
            self.docker("rm", "-f", *ids, check=False, timeout=60)
        for name in ("hnnat", "dkbr", "hntimed"):
            self.docker("network", "rm", name, check=False, timeout=60)

    def stop(self) -> list[str]:
        """SIGTERM dockerd (it stops its containerd); end stragglers by pid; remove the dir.
        Returns what had to be ended by force."""
        forced: list[str] = []
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                forced.append(f"dockerd {self.proc.pid}")
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None
        deadline = time.monotonic() + 10
        while pids_mentioning(self.dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in pids_mentioning(self.dir):  # containerd or a shim that outlived dockerd
            forced.append(f"pid {pid}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)
        return forced


class PluginTimer:
    """A timing relay for hostnet's Docker plugin, for the breakdown only (never in the timed
    comparison): it serves ``hnbtimed.sock`` in the lab plugin directory and forwards every
    call unchanged to hostnetd's ``nat.sock``, recording how long hostnet took to answer."""

    NAME = "hnbtimed"

    def __init__(self, plugins_dir: str) -> None:
        self.path = os.path.join(plugins_dir, f"{self.NAME}.sock")
        self.upstream = os.path.join(plugins_dir, "nat.sock")
        self.calls: list[tuple[str, float]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.session: aiohttp.ClientSession | None = None

    async def _forward(self, request: web.Request) -> web.Response:
        assert self.session is not None
        body = await request.read()
        t0 = time.perf_counter()
        async with self.session.post(
            f"http://hostnet{request.path}",
            data=body,
            headers={"Content-Type": request.headers.get("Content-Type", "application/json")},
        ) as up:
            data = await up.read()
            status, ctype = up.status, up.headers.get("Content-Type", "application/json")
        self.calls.append((request.path, ms_since(t0)))
        return web.Response(body=data, status=status, headers={"Content-Type": ctype})

    async def _start(self) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=self.upstream))
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._forward)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.UnixSite(self.runner, self.path).start()

    async def _stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.session is not None:
            await self.session.close()

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def take(self) -> list[tuple[str, float]]:
        out, self.calls = self.calls, []
        return out


def breakdown(dk: Dockerd, timer: PluginTimer, runs: int) -> dict[str, Any]:
    """Per docker run on a hostnet network reached through the relay: the plugin calls
    Docker made and the ms hostnet took for each (median over ``runs``)."""
    dk.docker("network", "create", "-d", PluginTimer.NAME, "--subnet", "172.16.2.0/24", "hntimed")
    timed_run(dk, "hntimed")  # warm-up
    timer.take()
    per_path: dict[str, list[float]] = {}
    totals: list[float] = []
    walls: list[float] = []
    for _ in range(runs):
        walls.append(timed_run(dk, "hntimed"))
        calls = timer.take()
        totals.append(sum(ms for _, ms in calls))
        for path, ms in calls:
            per_path.setdefault(path.rsplit(".", 1)[-1], []).append(ms)
    dk.docker("network", "rm", "hntimed")
    return {
        "runs": runs,
        "calls_per_run": {k: round(len(v) / runs, 2) for k, v in per_path.items()},
        "ms_median_per_call": {k: round(statistics.median(v), 2) for k, v in per_path.items()},
        "plugin_ms_per_run": summary(totals),
        "wall_ms_per_run": summary(walls),
    }


def timed_run(dk: Dockerd, net: str) -> float:
    """Wall time (ms) of one ``docker run --rm --network NET busybox true``."""
    argv = dk.argv("run", "--rm", "--network", net, "busybox", "true")
    t0 = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    ms = ms_since(t0)
    if res.returncode != 0:
        raise RuntimeError(f"docker run on {net} failed: {res.stderr}{res.stdout}")
    return ms


def check_network(dk: Dockerd, net: str, subnet_prefix: str) -> dict[str, Any]:
    """A container on ``net`` has an address of its subnet and a default route."""
    out = dk.docker(
        "run", "--rm", "--network", net, "busybox", "sh", "-c", "ip -4 addr show eth0; ip route"
    ).stdout
    addrs = re.findall(r"inet (\S+)", out)
    return {
        "eth0": addrs,
        "default_route": "default via" in out,
        "ok": any(a.startswith(subnet_prefix) for a in addrs) and "default via" in out,
    }


def main() -> None:
    require_root()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=int(os.environ.get("BENCH_DOCKER_N", "15")))
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    n, warm = args.iterations, args.warmup
    for tool in ("dockerd", "containerd", "runc", "unshare"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing (docker.io)")
    for f in (DOCKER, BUSYBOX):
        if not os.access(f, os.X_OK):
            raise SystemExit(f"{f} is missing (docker.io, busybox-static)")

    started = machine()
    version = ""
    forced: list[str] = []
    with Lab("d") as lab:
        daemon, _ = lab.host("hn", docker_plugins=True)
        dk = Dockerd(daemon, os.path.join(lab.tmp, "docker"))
        os.makedirs(dk.dir)
        timer = PluginTimer(daemon.plugins)
        try:
            startup_s = dk.start()
            version = dk.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
            dk.docker("import", "--change", "ENV PATH=/bin", busybox_tar(dk.dir), "busybox")
            for spec in NETWORKS.values():
                dk.docker("network", "create", *spec)
            nets = {k: spec[-1] for k, spec in NETWORKS.items()}
            checks = {
                "hostnet": check_network(dk, "hnnat", "172.16.1."),
                "bridge": check_network(dk, "dkbr", "10.77.0."),
            }
            hostnet_view = [
                n["Name"] for n in daemon.client().get("/networks") if isinstance(n, dict)
            ]
            times: dict[str, list[float]] = {k: [] for k in nets}
            order = list(nets)
            for it in range(warm + n):
                for k in order if it % 2 == 0 else order[::-1]:
                    ms = timed_run(dk, nets[k])
                    if it >= warm:
                        times[k].append(ms)
            timer.start()
            plugin_breakdown = breakdown(dk, timer, 5)
            left_running = dk.docker("ps", "-aq").stdout.split()
            veths = [
                line
                for line in in_ns(daemon.host, "ip", "-o", "link", "show", "type", "veth")
                .stdout.strip()
                .splitlines()
                if " eth0@" not in line  # the lab host's own link to the segment
            ]
            rss = daemon.rss_kib()
        finally:
            with contextlib.suppress(Exception):
                dk.cleanup()
            forced = dk.stop()
            timer.stop()
        leftovers = lab.close()

    med = {k: summary(v)["median"] for k, v in times.items()}
    p90 = {k: summary(v)["p90"] for k, v in times.items()}
    result = {
        "machine": started,
        "iterations": n,
        "warmup": warm,
        "docker_version": version,
        "dockerd_flags": "--iptables=false --ip-forward=false --bridge=none",
        "dockerd_startup_s": startup_s,
        "networks": {k: " ".join(spec) for k, spec in NETWORKS.items()},
        "run_ms": {k: summary(v) for k, v in times.items()},
        "run_ms_all": {k: [round(x, 1) for x in v] for k, v in times.items()},
        "paired_ratio_median": round(
            statistics.median(
                a / b for a, b in zip(times["hostnet"], times["bridge"], strict=True)
            ),
            3,
        ),
        "ratios": {
            "hostnet_over_bridge": ratio(med["hostnet"], med["bridge"]),
            "hostnet_over_bridge_p90": ratio(p90["hostnet"], p90["bridge"]),
        },
        "first_run_check": checks,
        "hostnet_plugin_breakdown": plugin_breakdown,
        "hostnet_networks_seen": hostnet_view,
        "containers_left_after_runs": len(left_running),
        "veths_left_after_runs": len(veths),
        "hostnetd_rss_kib": rss,
        "forced_stop": forced,
        "leftovers": leftovers,
    }
    emit("dockerrun", result)
    if not all(c["ok"] for c in checks.values()):
        raise SystemExit(f"sanity check of the networks failed: {checks}")


if __name__ == "__main__":
    main()
