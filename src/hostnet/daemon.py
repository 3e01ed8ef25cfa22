"""hostnetd: the daemon. Reconciles at start, serves the REST API on a unix socket,
watches container processes, and leaves the kernel state in place when it stops
(containers keep their connectivity across a restart)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import gc
import grp
import hashlib
import http.client
import logging
import os
import shutil
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, TypeVar

from aiohttp import web

import hostnet
from hostnet.core import identity, lifecycle, metrics
from hostnet.core.loopback import LoopbackProxy
from hostnet.core.nswatch import NamespaceWatch
from hostnet.core.reconcile import reconcile
from hostnet.core.service import HostNetworkingService
from hostnet.dns.resolver import Resolver
from hostnet.docker import endpoints as docker_endpoints
from hostnet.docker.binding import WAITING
from hostnet.docker.engine import DockerWatch, Engine
from hostnet.docker.plugin import SOCKET_NAMES, serve_plugins
from hostnet.errors import Conflict, HostnetError
from hostnet.kernel import fds
from hostnet.model import Container
from hostnet.rest import views
from hostnet.rest.app import build_app
from hostnet.store import Store, open_store
from hostnet.store.base import ClusterStore
from hostnet.store.etcdv3 import StoreUnavailable

log = logging.getLogger("hostnet")
T = TypeVar("T")
DEFAULT_STATE_DIR = "/var/lib/hostnet"
DEFAULT_SOCKET = "/run/hostnet/hostnet.sock"
IDENTITY_RENEW_S = 3.0  # the identity lease lives 10 s: renewed well before


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="hostnetd", description="hostnet's host networking daemon")
    p.add_argument("--version", action="version", version=f"hostnetd {hostnet.__version__}")
    p.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="where intent is kept (SQLite)")
    p.add_argument("--socket", default=DEFAULT_SOCKET, help="the API's unix socket")
    p.add_argument(
        "-b", "--bridge", default="", help="'none' starts without the default nat network"
    )
    p.add_argument(
        "--group", default="", help="group allowed on the socket (mode 0660); default root"
    )
    p.add_argument(
        "--docker-plugins",
        default="/run/docker/plugins",
        help="directory for Docker plugin sockets (nat.sock, ...); 'none' serves no Docker plugin",
    )
    p.add_argument(
        "--resolv-conf",
        default="/etc/resolv.conf",
        help="the host's resolvers: where the embedded DNS forwards when a network names none",
    )
    p.add_argument(
        "--store",
        default="",
        help="intent store: etcd://m1:2379,m2:2379,... (etcds:// for TLS); default SQLite "
        "in --state-dir",
    )
    p.add_argument("--store-ca", default="", help="CA bundle that signed etcd's certificates")
    p.add_argument("--store-cert", default="", help="client certificate for etcd")
    p.add_argument("--store-key", default="", help="client key for etcd")
    p.add_argument(
        "--host-id",
        default="",
        help="this host's id in the cluster (default: one made once, kept in STATE/host-id)",
    )
    p.add_argument(
        "--advertise-addr",
        default="",
        help="this host's underlay address for VXLAN (default: the one that reaches etcd)",
    )
    p.add_argument(
        "--docker-host",
        default="unix:///var/run/docker.sock",
        help="Docker's API socket: whenever Docker (re)starts there, the default nat network "
        "(and the networks 'hostnet docker expose' made) become Docker networks; 'none': never",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--metrics",
        type=metrics.listen_arg,
        metavar="ADDR:PORT",
        help="serve Prometheus metrics at http://ADDR:PORT/metrics (off by default)",
    )
    args = p.parse_args(argv)
    if args.docker_host != "none" and not args.docker_host.startswith(("unix:///", "/")):
        p.error(
            f"--docker-host {args.docker_host!r}: hostnetd talks to Docker on its unix socket "
            "only; give unix:///PATH (or none)"
        )
    return args


def instance_id(state_dir: str) -> str:
    """Four hex digits naming this daemon's objects (compartments), from its state dir."""
    return hashlib.sha1(os.path.abspath(state_dir).encode()).hexdigest()[:4]


def take_lock(state_dir: str) -> IO[str]:
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    fh = open(os.path.join(state_dir, "hostnetd.lock"), "a+")  # noqa: SIM115 - held for life
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(
            f"hostnetd: another hostnetd uses {state_dir}; stop it or give another --state-dir"
        )
    return fh


class FairLock:
    """The service lock, granted in the order it was asked for (threading.Lock is not): a
    request or a cluster event waits behind those that came before it, never behind a
    stream of later ones."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next = 0  # the next ticket handed out
        self._serving = 0  # the ticket that may hold the lock

    def acquire(self) -> bool:
        with self._cond:
            ticket = self._next
            self._next += 1
            while ticket != self._serving:
                self._cond.wait()
        return True

    def release(self) -> None:
        with self._cond:
            if self._serving == self._next:
                raise RuntimeError("release of an unheld lock")
            self._serving += 1
            self._cond.notify_all()

    def locked(self) -> bool:
        with self._cond:
            return self._serving != self._next

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class ServiceExecutor(ThreadPoolExecutor):
    """Service calls on a few threads, one at a time under the service lock (the kernel
    handles and indexes are shared); a call waiting for something slow, such as a DHCP
    lease, lets go of the lock (``HostNetworkingService.released``) so that other requests,
    ``ls`` and ``inspect`` among them, go on meanwhile."""

    def __init__(self, lock: FairLock, workers: int = 8) -> None:
        super().__init__(max_workers=workers, thread_name_prefix="hostnet-service")
        self.lock = lock

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        def locked() -> T:
            with self.lock:
                return fn(*args, **kwargs)

        return super().submit(locked)

    def submit_logged(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        """Background work nobody waits for: a failure is logged, never lost."""

        def done(fut: Future[Any]) -> None:
            exc = fut.exception()
            if isinstance(exc, HostnetError):
                log.error("%s: %s", what, exc)
            elif exc is not None:
                log.error("%s failed", what, exc_info=exc)

        self.submit(fn, *args).add_done_callback(done)


class ProcessWatcher:
    """Removes a container when its process exits (pidfd readable = process gone); one made
    with 'hostnet create' is stopped instead."""

    def __init__(
        self,
        svc: HostNetworkingService,
        loop: asyncio.AbstractEventLoop,
        worker: ServiceExecutor,
    ) -> None:
        self.svc, self.loop, self.worker = svc, loop, worker
        self.fds: dict[str, int] = {}

    def watch(self, c: Container) -> None:
        if c.id in self.fds or c.pid <= 0:
            return
        try:
            fd = fds.park_fd(os.pidfd_open(c.pid))
        except ProcessLookupError:
            self.loop.call_soon(self.exited, c.id)
            return
        except OSError as exc:  # no descriptor left: the container lives on, unwatched
            log.error("cannot watch container %s (pid %d): %s", c.name, c.pid, exc)
            return
        self.fds[c.id] = fd
        self.loop.add_reader(fd, self.exited, c.id)

    def exited(self, cid: str) -> None:
        fd = self.fds.pop(cid, None)
        if fd is not None:
            self.loop.remove_reader(fd)
            os.close(fd)
        self.worker.submit_logged(f"removing container {cid[:12]}", self._remove_if_dead, cid)

    def _remove_if_dead(self, cid: str) -> None:
        c = self.svc.containers.get(cid)
        if c is not None and c.state and not self.svc.process_alive(c):
            lifecycle.exited(self.svc, c)  # created with 'hostnet create': it stays, stopped
        elif c is not None and not self.svc.process_alive(c):
            log.info("container %s: process %d exited", c.name, c.pid)
            try:
                self.svc.teardown(c)
            except HostnetError as exc:
                log.error("removing container %s: %s", c.name, exc)


def make_socket(path: str, group: str) -> socket.socket:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    gid = grp.getgrnam(group).gr_gid if group else 0
    os.chown(path, 0, gid)
    os.chmod(path, 0o660)
    return sock


async def serve(args: argparse.Namespace) -> None:
    lock = take_lock(args.state_dir)
    exporter = metrics.MetricsServer(args.metrics) if args.metrics else None  # bound now
    soft, hard = fds.raise_limit()
    log.info("descriptor limit %d (hard %d)", soft, hard)
    store = _open_store(args)
    loop = asyncio.get_running_loop()
    service_lock = FairLock()
    worker = ServiceExecutor(service_lock)

    vtep = ""
    shared = store.cluster()  # None: a store of this host only
    if shared is not None:
        vtep = args.advertise_addr or _local_addr_towards(shared)
        me = identity.holder(args.state_dir, vtep)
        lease = 0
        try:
            lease = shared.claim_identity(me)  # refuses when another live daemon holds it
        except StoreUnavailable as exc:  # claimed when the store is back (as the rest)
            log.warning("cluster identity %s not claimed yet: %s", shared.host, exc)
        threading.Thread(
            target=_keep_identity, args=(shared, lease, me), name="hostnet-id", daemon=True
        ).start()
        log.info("cluster identity %s (%s)", shared.host, me["hostname"])

    def start() -> HostNetworkingService:
        svc = HostNetworkingService(
            store, instance_id(args.state_dir), args.state_dir, service_lock
        )
        if shared is not None:
            svc.host_id = shared.host
            svc.cluster.vtep = vtep  # the cluster-scoped driver's underlay address
        if args.bridge != "none":
            svc.ensure_default_network()
        svc.resolver = Resolver(args.resolv_conf)
        svc.drivers.relay_loopback(LoopbackProxy())  # the drivers that publish ports
        report = reconcile(svc, at_start=True)
        log.info("reconciled at start: %s", {k: v for k, v in report.items() if v})
        return svc

    svc = await loop.run_in_executor(worker, start)
    if args.docker_host != "none":  # until the watch starts (after the plugins are served)
        svc.docker_presence = lambda: WAITING
    if exporter is not None:
        exporter.serve(svc)
    svc.kernel.start()  # from the daemon's own namespace (this thread's)
    # Long-lived state (models, modules) out of the collector's way: full collections would
    # otherwise walk it and stall the resolver's hot path for milliseconds.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    watcher = ProcessWatcher(svc, loop, worker)

    def started(c: Container) -> None:
        loop.call_soon_threadsafe(watcher.watch, c)

    svc.on_container_started = started
    for c in list(svc.containers.values()):
        watcher.watch(c)
    # CNI attachments whose namespace's path goes are released (reconcile at start
    # released those gone while no daemon ran)
    namespaces = NamespaceWatch(svc, loop, worker)
    namespaces.start()
    svc.on_external_attached = namespaces.watch
    svc.on_container_removed = namespaces.forget
    for c in list(svc.containers.values()):
        namespaces.watch(c)
    stop = asyncio.Event()
    wiped = False

    def on_reset() -> None:  # after a reset: stop, and take the state directory along
        nonlocal wiped
        wiped = True
        loop.call_soon_threadsafe(stop.set)

    runner = web.AppRunner(build_app(svc, worker, on_reset), access_log=None)
    await runner.setup()
    site = web.SockSite(runner, make_socket(args.socket, args.group))
    await site.start()
    plugin_runners = []
    if args.docker_plugins != "none":
        plugin_runners = await serve_plugins(
            svc, worker, args.docker_plugins, _docker_lookup(args.docker_host)
        )
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(
        signal.SIGHUP, lambda: worker.submit_logged("SIGHUP reconcile", _reconcile_logged, svc)
    )
    watch = asyncio.create_task(_watch_teams(svc, worker))
    docker = _follow_docker(svc, worker, args.docker_host)
    if shared is not None:
        events = ServiceExecutor(service_lock, workers=1)  # one thread: batches stay in order
        threading.Thread(
            target=_follow_cluster,
            args=(svc, worker, events, shared),
            name="hostnet-cluster",
            daemon=True,
        ).start()
    log.info(
        "hostnetd ready on %s (instance %s, state %s)", args.socket, svc.instance, args.state_dir
    )
    _notify_ready()
    await stop.wait()
    watch.cancel()
    svc.on_external_attached = svc.on_container_removed = lambda c: None
    namespaces.close()
    if docker is not None:
        docker.stop()
    log.info("hostnetd stopping%s", "" if wiped else "; kernel state stays in place")
    for r in plugin_runners:
        await r.cleanup()
    for name in SOCKET_NAMES if args.docker_plugins != "none" else ():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(args.docker_plugins, f"{name}.sock"))
    await runner.cleanup()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(args.socket)
    worker.shutdown(wait=True)
    if svc.resolver is not None:
        svc.resolver.stop()
    for relay in svc.drivers.loopbacks():
        relay.stop()
    svc.kernel.flush_cuts()  # vNICs cut before the stop are deleted before it ends
    store.close()
    lock.close()
    if wiped:
        shutil.rmtree(args.state_dir, ignore_errors=True)
        log.info("hostnetd reset: state %s removed", args.state_dir)


async def _watch_teams(svc: HostNetworkingService, worker: ServiceExecutor) -> None:
    """Team failover: a member's link state is checked every half second."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(0.5)
        try:
            await loop.run_in_executor(worker, svc.check_teams)
        except HostnetError as exc:
            log.error("team check: %s", exc)


def _open_store(args: argparse.Namespace) -> Store:
    if not args.store:
        return open_store(os.path.join(args.state_dir, "hostnet.db"))
    store = open_store(args.store, identity.host_id(args.state_dir, args.host_id))
    shared = store.cluster()
    if shared is not None and args.store.startswith("etcds://"):
        ctx = ssl.create_default_context(cafile=args.store_ca or None)
        if args.store_cert:
            ctx.load_cert_chain(args.store_cert, args.store_key or None)
        shared.use_tls(ctx)
    return store


def _local_addr_towards(store: ClusterStore) -> str:
    """The address this host uses to reach a store member (UDP connect: no packet)."""
    host, port = store.contact()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((socket.gethostbyname(host), port))
        return str(s.getsockname()[0])


def _follow_cluster(
    svc: HostNetworkingService, worker: ServiceExecutor, events: ServiceExecutor, st: ClusterStore
) -> None:
    """Re-list the cluster's overlays and endpoints, then apply the watch's changes in order
    (on one thread of their own, queued as they arrive; a failed batch is logged); after a
    lost watch or an unreachable store, wait a second and start over."""
    while True:
        try:
            rev = worker.submit(svc.cluster_resync).result()
            for batch in st.watch_changes(rev + 1):
                events.submit_logged("cluster event", svc.cluster_event, batch)
        except HostnetError as exc:
            log.warning("cluster store: %s; retrying", exc)
        except RuntimeError:  # the worker shut down: hostnetd is stopping
            return
        time.sleep(1)


def _keep_identity(store: ClusterStore, lease: int, me: dict[str, str]) -> None:
    """Renew the identity's lease every few seconds; claim it again after a cut."""
    while True:
        time.sleep(IDENTITY_RENEW_S)
        try:
            lease = store.keep_identity(lease, me) if lease else store.claim_identity(me)
        except Conflict as exc:  # another daemon took the id while the store was away
            log.error("cluster identity: %s", exc)
        except HostnetError as exc:
            log.warning("cluster identity: %s", exc)


def _docker_lookup(url: str) -> Callable[[str], dict[str, Any] | None]:
    """Docker's view of one of its networks, for the plugin's calls about Docker networks
    hostnet has no record of; None when Docker is not known or does not answer soon."""
    engine = Engine(url.removeprefix("unix://")) if url != "none" else None

    def view(docker_id: str) -> dict[str, Any] | None:
        if engine is None:
            return None
        try:
            return engine.network(docker_id, timeout=3)
        except (OSError, http.client.HTTPException) as exc:
            log.debug("docker: network %s: %s", docker_id[:12], exc)
            return None

    return view


def _follow_docker(
    svc: HostNetworkingService, worker: ServiceExecutor, url: str
) -> DockerWatch | None:
    """Keep the networks meant for Docker Docker networks (see hostnet.docker.engine)."""
    if url == "none":
        return None
    path = url.removeprefix("unix://")

    def wanted() -> list[dict[str, Any]]:
        nets = worker.submit(svc.docker_networks).result()
        return [views.network_summary(n) for n in nets]

    def lost(docker_ids: set[str], before: float) -> list[str]:
        return worker.submit(docker_endpoints.docker_lost, svc, docker_ids, before).result()

    watch = DockerWatch(path, wanted, lost)
    svc.docker_presence = lambda: watch.presence
    watch.start()
    return watch


def _reconcile_logged(svc: HostNetworkingService) -> None:
    log.info("SIGHUP reconcile: %s", reconcile(svc))


def _notify_ready() -> None:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s, contextlib.suppress(OSError):
        s.sendto(b"READY=1", "\0" + addr[1:] if addr.startswith("@") else addr)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s hostnetd %(levelname)s %(message)s")
    log.setLevel(args.log_level.upper())
    if os.geteuid() != 0:
        sys.exit("hostnetd: must run as root (it changes network namespaces, links and nftables)")
    try:
        asyncio.run(serve(args))
    except HostnetError as exc:
        sys.exit(f"hostnetd: {exc}")


if __name__ == "__main__":
    main()
