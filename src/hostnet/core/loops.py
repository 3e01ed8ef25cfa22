"""Calling into an event loop that runs on a thread of its own (the resolver's, the
loopback relay's) from the service's threads."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any


def call_in(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` on ``loop``'s thread and return its result (or raise its error)."""
    fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def run() -> None:
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # handed to the caller
            fut.set_exception(exc)

    loop.call_soon_threadsafe(run)
    return fut.result(timeout=10)
