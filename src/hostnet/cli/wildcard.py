"""Names matched as PowerShell's ``-Name`` matches them: ``*``, ``?`` and ``[a-c]``
wildcards, a backtick escaping the next character, any case.

A pattern with a wildcard that matches nothing selects nothing; a name without one that
matches nothing is an error, as ``Get-VMSwitch -Name X`` errors in PowerShell ("no
switch named X") while ``Get-VMSwitch -Name X*`` returns nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

from hostnet.errors import InvalidRequest, NotFound

T = TypeVar("T")
WILD = "*?["


def has_wildcard(pattern: str) -> bool:
    """Whether ``pattern`` holds an unescaped ``*``, ``?`` or ``[``."""
    escaped = False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "`":
            escaped = True
        elif ch in WILD:
            return True
    return False


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression matching what ``pattern`` matches, whole names only."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "`" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end <= i + 1:
                raise InvalidRequest(
                    f"the name pattern {pattern!r} opens '[' at {i + 1} and never closes it",
                    "close the range (web[0-9]*), or write `[ to match a '[' itself",
                )
            # a range keeps its '-'; anything else in it stands for itself
            body = "".join(c if c == "-" else re.escape(c) for c in pattern[i + 1 : end])
            out.append(f"[{body}]")
            i = end + 1
            continue
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def unescape(pattern: str) -> str:
    """The literal name a pattern without wildcards stands for (backticks removed)."""
    return re.sub(r"`(.)", r"\1", pattern)


def select(
    items: Iterable[T],
    patterns: Iterable[str],
    names: Callable[[T], Iterable[str]],
    what: str,
    remedy: str,
) -> list[T]:
    """The items one of whose ``names`` matches one of ``patterns`` (all items when there
    are none), in their order. A pattern without wildcards that matches nothing raises
    NotFound naming ``what`` (e.g. "container"), with ``remedy``."""
    items, patterns = list(items), [p for p in patterns if p != ""]
    if not patterns:
        return items
    compiled = [(p, compile_pattern(p)) for p in patterns]
    chosen: list[T] = []
    hit: set[str] = set()
    for item in items:
        matched = [p for p, rx in compiled if any(rx.fullmatch(n) for n in names(item))]
        hit.update(matched)
        if matched:
            chosen.append(item)
    missing = [unescape(p) for p in patterns if p not in hit and not has_wildcard(p)]
    if missing:
        listed = ", ".join(repr(m) for m in missing)
        raise NotFound(f"no {what} named {listed}", remedy)
    return chosen
