from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from lab import Lab  # noqa: E402


def _root_ok() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("nft") is None or shutil.which("socat") is None:
        return "needs nftables and socat (scripts/test.sh installs them)"
    return None


@pytest.fixture
def lab() -> Iterator[Lab]:
    why = _root_ok()
    if why:
        pytest.skip(why)
    lab = Lab()
    try:
        yield lab
    finally:
        leftovers = lab.close()
        stale = [n for n in os.listdir("/run/netns") if n.startswith(lab.prefix)]
        assert not leftovers, f"hostnet left behind: {leftovers}"
        assert not stale, f"lab namespaces left behind: {stale}"
