"""The namespace watch without root: plain files in a temporary directory stand for the
namespace paths CNI runtimes give (inotify and pidfds need no privilege), and the service
runs against the fake kernel. A path that goes, or names something else now, is released
through CNI DEL's own path; others, and unrelated files, are left alone."""

from __future__ import annotations

import asyncio
import os
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_kernel import FakeKernel
from prometheus_client import CollectorRegistry, generate_latest

from hostnet.core.metrics import Snapshot, render
from hostnet.core.nswatch import NamespaceWatch
from hostnet.core.service import HostNetworkingService
from hostnet.kernel import inotify
from hostnet.model import Container
from hostnet.store import open_store


class Kernel(FakeKernel):
    """The fake, also noting which namespace each vNIC cut was told to enter."""

    def __init__(self) -> None:
        super().__init__()
        self.cut_inside: dict[str, str | None] = {}

    def cut_vnic(self, host: str, netns: str | None, ifname: str, aside: str) -> None:
        self.cut_inside[host] = netns
        super().cut_vnic(host, netns, ifname, aside)


class Worker:
    """The service executor's stand-in: work runs on the loop, soon; submissions noted."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.submitted: list[tuple[Any, ...]] = []
        self.failures: list[BaseException] = []

    def submit_logged(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        self.submitted.append(args)

        def run() -> None:
            try:
                fn(*args)
            except BaseException as exc:  # a test fails on it, not the loop
                self.failures.append(exc)

        self.loop.call_soon(run)


class World:
    def __init__(self, tmp: Path) -> None:
        self.kernel = Kernel()
        self.svc = HostNetworkingService(
            open_store(str(tmp / "hostnet.db")),
            "t1",
            str(tmp),
            kernel=self.kernel,
        )
        self.svc.create_network("n1", "nat", "10.9.0.0/24")
        self.loop = asyncio.new_event_loop()
        self.worker = Worker(self.loop)
        self.watch = NamespaceWatch(self.svc, self.loop, self.worker)
        self.watch.start()
        self.svc.on_external_attached = self.watch.watch
        self.svc.on_container_removed = self.watch.forget
        self.dir = tmp / "netns"
        self.dir.mkdir()

    def namespace(self, name: str, where: Path | None = None) -> str:
        """A file standing for a runtime's namespace, known to the fake kernel."""
        path = (where or self.dir) / name
        path.touch()
        self.kernel.spaces[str(path)] = {}
        return str(path)

    def attach(self, cid: str, path: str, ports: list[str] | None = None) -> Any:
        return self.svc.attach_external(cid, path, "eth0", "n1", port_specs=ports or [])[1]

    def until(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        """Run the loop (events, releases) until ``check`` holds."""

        async def wait() -> None:
            deadline = time.monotonic() + timeout
            while not check():
                assert time.monotonic() < deadline, "still not so after 5 s"
                await asyncio.sleep(0.005)

        self.loop.run_until_complete(wait())
        assert not self.worker.failures, self.worker.failures

    def gone(self, cid: str) -> Callable[[], bool]:
        return lambda: cid not in self.svc.containers

    def close(self) -> None:
        self.watch.close()
        self.loop.close()
        self.svc.store.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_a_removed_namespace_path_is_released_as_cni_del_releases(world: World) -> None:
    ep_a = world.attach(A, world.namespace("cni-a"), ["9000:80"])
    ep_b = world.attach(B, world.namespace("cni-b"), ["9001:80"])
    assert world.watch.watches() == 1  # one inotify watch for the directory
    os.unlink(world.dir / "cni-a")
    world.until(world.gone(A))
    assert list(world.svc.containers) == [B]
    assert [e.id for e in world.svc.store.endpoints()] == [ep_b.id]
    assert world.kernel.cut_inside == {ep_a.host_ifname: None}  # its vNIC, nothing entered
    unmapped = [s for s in world.kernel.nft_scripts if "delete element" in s]
    assert len(unmapped) == 1 and "9000" in unmapped[0] and "9001" not in unmapped[0]
    assert world.svc.stats.vanished_releases == 1
    assert world.watch.watched() == 1
    # its address and host port are free: a new attachment may take both
    again = world.svc.attach_external(
        C, world.namespace("cni-c"), "eth0", "n1", ip=ep_a.ip, port_specs=["9000:80"]
    )[1]
    assert again.ip == ep_a.ip


def test_a_path_naming_another_namespace_now_is_released_without_entering_it(
    world: World,
) -> None:
    ep = world.attach(A, world.namespace("cni-a"))
    world.attach(B, world.namespace("cni-b"))
    newer = world.dir / ".cni-a.new"
    newer.touch()
    os.replace(newer, world.dir / "cni-a")  # renamed over it: IN_MOVED_TO, no delete
    world.until(world.gone(A))
    assert world.kernel.cut_inside == {ep.host_ifname: None}
    assert list(world.svc.containers) == [B]


def test_unrelated_files_and_paths_still_there_release_nothing(world: World) -> None:
    world.attach(A, world.namespace("cni-a"))
    world.attach(C, world.namespace("cni-c"))
    (world.dir / "other").touch()
    os.unlink(world.dir / "other")
    os.utime(world.dir / "cni-a")
    os.rename(world.dir / "cni-c", world.dir / "cni-c2")  # the last event: a barrier
    world.until(world.gone(C))
    assert A in world.svc.containers
    assert world.svc.stats.vanished_releases == 1
    assert world.watch.release(A) is False  # asked directly: its path is still its own


def test_a_directory_renamed_away_releases_what_was_under_it(world: World) -> None:
    other = world.dir.parent / "elsewhere"
    other.mkdir()
    world.attach(A, world.namespace("cni-a", other))
    world.attach(B, world.namespace("cni-b", other))
    world.attach(C, world.namespace("cni-c"))
    assert world.watch.watches() == 2
    os.rename(other, world.dir.parent / "elsewhere.old")  # IN_MOVE_SELF on its watch
    world.until(lambda: not {A, B} & set(world.svc.containers))
    assert list(world.svc.containers) == [C]
    assert world.watch.watches() == 1  # the gone directory's watch went with them


def test_a_path_in_a_directory_that_does_not_exist_is_released_at_once(
    world: World,
) -> None:
    path = str(world.dir / "missing" / "cni-a")
    world.kernel.spaces[path] = {}  # the fake says it exists; the file system does not
    world.attach(A, path)
    world.until(world.gone(A))
    assert world.watch.watches() == 0


def test_after_lost_events_every_watched_path_is_checked_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.attach(A, world.namespace("cni-a"))
    world.attach(B, world.namespace("cni-b"))
    os.unlink(world.dir / "cni-a")
    notify = world.watch._ino
    assert notify is not None
    assert notify.read()  # its event is taken away, as a full queue would have dropped it
    lost = [inotify.Event(-1, inotify.IN_Q_OVERFLOW, "")]
    monkeypatch.setattr(notify, "read", lambda: lost)
    world.watch._on_events()
    world.until(world.gone(A))
    assert list(world.svc.containers) == [B]
    assert [args[0] for args in world.worker.submitted] == [A]


def test_a_proc_path_is_watched_by_its_process(world: World) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        path = f"/proc/{child.pid}/ns/net"
        world.kernel.spaces[path] = {}
        world.attach(A, path)
        world.attach(B, world.namespace("cni-b"))
        assert world.watch.watches() == 2  # a pidfd and a directory
        world.until(lambda: True)  # the pidfd's reader is added on the loop
        assert A in world.svc.containers
    finally:
        assert child.stdin is not None
        child.stdin.close()  # the process ends: its /proc/PID/ns/net is gone
        child.wait(10)
    world.until(world.gone(A))
    assert list(world.svc.containers) == [B]
    assert world.watch.watches() == 1


def test_a_deleted_attachment_is_watched_no_more(world: World) -> None:
    world.attach(A, world.namespace("cni-a"))
    assert world.watch.watched() == 1
    assert world.svc.detach_external(A, "eth0") == []  # CNI DEL
    assert world.watch.watched() == 0 and world.watch.watches() == 0


def test_docker_and_own_compartments_are_not_watched(world: World) -> None:
    for c in (
        Container(id=A, name="d", compartment_id=1, netns="/x/y", external=True, runtime="docker"),
        Container(id=B, name="own", compartment_id=2, netns="hnt1-own"),
    ):
        world.watch.watch(c)
    assert world.watch.watched() == 0 and world.watch.watches() == 0


def test_one_watch_per_directory_and_one_lookup_per_event_at_2000(world: World) -> None:
    cids = [f"{i:064x}" for i in range(2000)]
    for i, cid in enumerate(cids):
        path = world.dir / f"cni-{i}"
        path.touch()
        world.watch.watch(
            Container(id=cid, name=f"e{i}", compartment_id=i + 1, netns=str(path), external=True)
        )
    assert world.watch.watched() == 2000 and world.watch.watches() == 1
    os.unlink(world.dir / "cni-1234")
    world.until(lambda: bool(world.worker.submitted))
    world.until(lambda: world.watch.watched() == 1999)  # not in the service: only forgotten
    assert world.worker.submitted == [(cids[1234],)]


def test_events_are_parsed_whole_with_names_padded() -> None:
    def event(wd: int, mask: int, name: bytes) -> bytes:
        padded = name + b"\0" * (16 - len(name)) if name else b""
        return struct.pack("iIII", wd, mask, 0, len(padded)) + padded

    buf = event(3, inotify.IN_DELETE, b"cni-1") + event(-1, inotify.IN_Q_OVERFLOW, b"")
    assert inotify.parse(buf + event(4, inotify.IN_IGNORED, b"")) == [
        inotify.Event(3, inotify.IN_DELETE, "cni-1"),
        inotify.Event(-1, inotify.IN_Q_OVERFLOW, ""),
        inotify.Event(4, inotify.IN_IGNORED, ""),
    ]


def test_the_release_counter_is_rendered_for_prometheus(world: World) -> None:
    world.attach(A, world.namespace("cni-a"))
    os.unlink(world.dir / "cni-a")
    world.until(world.gone(A))

    class Scrape:
        def collect(self) -> Iterator[Any]:
            return render(Snapshot.take(world.svc, read_acl=False))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Scrape())
    text = generate_latest(registry).decode()
    assert "hostnet_vanished_namespace_releases_total 1.0" in text, text
