"""The daemon's executor: service calls one at a time, except while one waits (released)."""

from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace

import pytest

from hostnet.core.service import HostNetworkingService
from hostnet.daemon import FairLock, ServiceExecutor


def test_calls_run_one_at_a_time() -> None:
    lock = FairLock()
    ex = ServiceExecutor(lock, workers=4)
    inside, most = 0, 0
    guard = threading.Lock()

    def call() -> None:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        time.sleep(0.01)
        with guard:
            inside -= 1

    for f in [ex.submit(call) for _ in range(8)]:
        f.result()
    ex.shutdown()
    assert most == 1


def test_a_waiting_call_lets_others_run_and_goes_on_holding_the_lock() -> None:
    lock = FairLock()
    svc = SimpleNamespace(lock=lock)
    ex = ServiceExecutor(lock, workers=4)
    order: list[str] = []
    go = threading.Event()

    def slow() -> bool:
        with HostNetworkingService.released(svc):  # type: ignore[arg-type]
            order.append("slow waits")
            go.wait(5)
        order.append("slow goes on")
        return lock.locked()

    def quick() -> None:
        order.append("quick")
        go.set()

    waiting = ex.submit(slow)
    while not order:
        time.sleep(0.001)
    ex.submit(quick).result(5)
    assert waiting.result(5) is True
    ex.shutdown()
    assert order == ["slow waits", "quick", "slow goes on"]


def test_released_outside_the_executor_is_harmless() -> None:
    svc = SimpleNamespace(lock=threading.Lock())
    with HostNetworkingService.released(svc):  # type: ignore[arg-type]
        pass
    assert not svc.lock.locked()


def test_background_failures_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    ex = ServiceExecutor(FairLock(), workers=1)

    def boom() -> None:
        raise ValueError("kaputt")

    with caplog.at_level(logging.ERROR, logger="hostnet"):
        ex.submit_logged("a cluster event", boom)
        ex.shutdown(wait=True)
    assert "a cluster event failed" in caplog.text and "kaputt" in caplog.text


def test_the_lock_is_granted_in_order() -> None:
    lock = FairLock()
    lock.acquire()
    got: list[int] = []
    threads = []
    for i in range(5):
        t = threading.Thread(target=lambda i=i: (lock.acquire(), got.append(i), lock.release()))
        t.start()
        threads.append(t)
        time.sleep(0.02)  # each asks after the one before
    lock.release()
    for t in threads:
        t.join(5)
    assert got == [0, 1, 2, 3, 4]
    assert not lock.locked()
