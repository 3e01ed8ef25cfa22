"""What a doctor check reports: a finding (level, what, why, remedy), and the report's two
forms (a table for people, JSON for tools) and exit code (0 ok, 1 warnings, 2 errors)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

Level = Literal["ok", "warning", "error"]
EXIT = {"ok": 0, "warning": 1, "error": 2}


@dataclass(frozen=True)
class Finding:
    """One check's answer. ``remedy`` says what to do in words; ``command``, when there is
    one, is the exact shell command that applies it here."""

    check: str
    level: Level
    what: str
    why: str = ""
    remedy: str = ""
    command: str = ""


def ok(check: str, what: str, why: str = "") -> Finding:
    return Finding(check, "ok", what, why)


def warning(check: str, what: str, why: str, remedy: str, command: str = "") -> Finding:
    return Finding(check, "warning", what, why, remedy, command)


def error(check: str, what: str, why: str, remedy: str, command: str = "") -> Finding:
    return Finding(check, "error", what, why, remedy, command)


def exit_code(findings: list[Finding]) -> int:
    return max((EXIT[f.level] for f in findings), default=0)


def status(findings: list[Finding]) -> Level:
    return ("ok", "warning", "error")[exit_code(findings)]


def as_json(findings: list[Finding]) -> str:
    counts = {lvl: sum(f.level == lvl for f in findings) for lvl in EXIT}
    return json.dumps(
        {"status": status(findings), "counts": counts, "findings": [asdict(f) for f in findings]},
        indent=2,
    )


def as_table(findings: list[Finding]) -> str:
    width = max((len(f.check) for f in findings), default=5)
    lines = [f"{'LEVEL':<8} {'CHECK':<{width}}  WHAT"]
    pad = " " * (8 + 1 + width + 2)
    for f in findings:
        lines.append(f"{f.level:<8} {f.check:<{width}}  {f.what}")
        for label, text in (("why", f.why), ("fix", f.remedy), ("run", f.command)):
            if text and (f.level != "ok" or label == "why"):
                lines.append(f"{pad}{label}: {text}")
    n = {lvl: sum(f.level == lvl for f in findings) for lvl in EXIT}
    plural = {lvl: "" if n[lvl] == 1 or lvl == "ok" else "s" for lvl in EXIT}
    lines.append("\n" + ", ".join(f"{n[lvl]} {lvl}{plural[lvl]}" for lvl in EXIT))
    return "\n".join(lines)
