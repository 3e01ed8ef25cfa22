"""The suite's own layout: pytest cannot collect two test modules of one name."""

from __future__ import annotations

import collections
import os

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_test_module_names_are_unique_across_the_suite() -> None:
    seen = collections.defaultdict(list)
    for d, _, files in os.walk(TESTS):
        for f in files:
            if f.startswith("test_") and f.endswith(".py"):
                seen[f].append(os.path.relpath(os.path.join(d, f), TESTS))
    twice = {k: v for k, v in seen.items() if len(v) > 1}
    assert not twice, f"rename one of each: {twice}"
