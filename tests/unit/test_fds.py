"""Long-lived descriptors leave the select() range to libnftables."""

from __future__ import annotations

import errno
import os
import resource
from collections.abc import Callable, Iterator

import pytest

from hostnet.kernel import fds


@pytest.fixture
def soft_limit() -> Iterator[Callable[[int], None]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def set_soft(value: int) -> None:
        if hard != resource.RLIM_INFINITY and value > hard:
            pytest.skip(f"hard descriptor limit {hard} is below {value}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (value, hard))

    yield set_soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_parked_descriptor_lands_above_the_select_range(
    soft_limit: Callable[[int], None],
) -> None:
    soft_limit(4096)
    r, w = os.pipe()
    high = fds.park_fd(r)
    try:
        assert high >= fds.SELECT_LIMIT
        os.write(w, b"x")
        assert os.read(high, 1) == b"x"  # the same pipe
    finally:
        os.close(high)
        os.close(w)


def test_without_room_above_low_ones_are_kept_within_budget_then_refused(
    soft_limit: Callable[[int], None],
) -> None:
    soft_limit(fds.SELECT_LIMIT)
    opened = []
    try:
        r, w = os.pipe()
        opened += [r, w]
        assert r < fds.LOW_BUDGET and fds.park_fd(r) == r  # kept: nothing above to move to
        while (fd := os.dup(w)) < fds.LOW_BUDGET:
            opened.append(fd)
        with pytest.raises(OSError) as err:
            fds.park_fd(fd)  # past the budget: refused (and closed), never starving the rest
        assert err.value.errno == errno.EMFILE
    finally:
        for fd in opened:
            os.close(fd)
