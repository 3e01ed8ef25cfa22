"""Start a lab daemon with some of its own deadlines widened (knobs/sitecustomize.py), so a
test holds a slow operation open until it releases it and never races the deadline."""

from __future__ import annotations

import os

KNOBS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "knobs")


def knobs(*settings: str) -> list[str]:
    """A ``wrap`` for ``Lab.host``: ``env`` giving hostnetd the knobs, e.g.
    ``knobs("hostnet.dns.forward:FORWARD_DEADLINE_S=3600")``."""
    path = os.pathsep.join(p for p in (KNOBS_DIR, os.environ.get("PYTHONPATH", "")) if p)
    return ["env", f"PYTHONPATH={path}", f"HOSTNET_TEST_KNOBS={';'.join(settings)}"]
