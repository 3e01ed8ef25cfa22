"""README.md's shell blocks as statements: what the README tells a user to type.

A fenced ```sh block (indented or not) is split into statements: ``\\`` continuations are
joined, a trailing ``# comment`` is dropped, and ``;`` outside quotes separates
statements. ``|`` and ``&&`` stay inside a statement (the shell runs a pipeline as one).
Placeholders (a synopsis's ``[--opt VALUE]``, ``CMD...``, ``NET``) are found against a table of
known tokens, and a filled form is checked to be the README's statement with its
placeholders filled, so a test's table can never drift from what the README says.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


@dataclass(frozen=True)
class Statement:
    """One command as the README gives it, with where it stands."""

    text: str
    section: str  # the nearest heading above the block
    line: int  # the README line the statement starts on


def _outside_quotes(text: str) -> list[tuple[int, str]]:
    """(index, char) of every character not inside '...' or "..." (backslash escapes kept)."""
    out: list[tuple[int, str]] = []
    quote = ""
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
            continue
        if ch == "\\" and quote != "'":
            escaped = True
            continue
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
            continue
        out.append((i, ch))
    return out


def strip_comment(line: str) -> str:
    """The line without a ``# comment`` (a ``#`` at a word's start, outside quotes)."""
    for i, ch in _outside_quotes(line):
        if ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def split_statements(line: str) -> list[str]:
    """``a ; b`` → [a, b]; a ``;`` inside quotes or braces ({CMD}) stays."""
    parts: list[str] = []
    start = 0
    depth = 0
    for i, ch in _outside_quotes(line):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        elif ch == ";" and depth == 0:
            parts.append(line[start:i])
            start = i + 1
    parts.append(line[start:])
    return [" ".join(p.split()) for p in parts if p.strip()]


def sh_blocks(text: str) -> list[tuple[str, int, list[str]]]:
    """(section, first line number, lines) of every ```sh block."""
    blocks: list[tuple[str, int, list[str]]] = []
    section = ""
    inside: list[str] | None = None
    lang = ""
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if inside is None and raw.startswith("#"):
            section = raw.lstrip("#").strip()
        if stripped.startswith("```"):
            if inside is None:
                lang, inside, start = stripped[3:].strip(), [], n + 1
            else:
                if lang == "sh":
                    blocks.append((section, start, inside))
                inside = None
            continue
        if inside is not None:
            inside.append(raw)
    return blocks


def statements(text: str | None = None) -> list[Statement]:
    """Every statement of every ```sh block in README order."""
    if text is None:
        with open(README) as fh:
            text = fh.read()
    out: list[Statement] = []
    for section, start, lines in sh_blocks(text):
        pending = ""
        first = 0
        for k, raw in enumerate(lines):
            line = strip_comment(raw) if not pending else strip_comment(raw)
            if not pending:
                first = start + k
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            for st in split_statements(pending + line):
                out.append(Statement(st, section, first))
            pending = ""
        if pending.strip():
            out.extend(Statement(st, section, first) for st in split_statements(pending))
    return out


# Tokens a synopsis uses for "a value goes here". Upper-case words that are real values
# (``-Mode NAT``, ``-Protocol TCP``) are not placeholders: only these are.
PLACEHOLDERS = (
    "CMD...",
    "RULE...",
    "N...",
    "CMD",
    "...",
    "'...'",
    "NET",
    "CONTAINER",
    "HOST",
    "ADDR",
    "IMG",
    "N",
    "SECONDS",
    "G",
    "A,B",
    "S",
    "NAME",
    "UNDERLAY_IP",
    "<host subnet>",
    "<host gateway>",
)


def _placeholder_at(text: str, i: int) -> str:
    """The placeholder token starting at ``text[i]`` (a whole word), or ''."""
    if i > 0 and not (text[i - 1].isspace() or text[i - 1] in "[="):
        return ""
    for tok in sorted(PLACEHOLDERS, key=len, reverse=True):
        end = i + len(tok)
        if text.startswith(tok, i) and (end == len(text) or text[end] in " ]"):
            return tok
    return ""


def _pattern(text: str, groups: list[str] | None = None) -> str:
    """A regex for the filled forms of ``text``: placeholders match a value, ``[...]``
    groups (outside quotes) are optional; ``groups`` collects each group's text."""
    out: list[str] = []
    i = 0
    live = {i for i, _ in _outside_quotes(text)}
    while i < len(text):
        ch = text[i]
        tok = _placeholder_at(text, i) if i in live or text.startswith("'...'", i) else ""
        if tok:
            out.append(r"(?:'[^']*'|\S+(?: \S+)*?)")
            i += len(tok)
            continue
        if ch == "[" and i in live:
            depth, j = 1, i + 1
            while j < len(text) and depth:
                if j in live:
                    depth += {"[": 1, "]": -1}.get(text[j], 0)
                j += 1
            inner = text[i + 1 : j - 1]
            if groups is not None:
                groups.append(inner)
            # the group and the one space before it come or go together
            if out and out[-1] == " ":
                out.pop()
                out.append(f"(?: {_pattern(inner)})?")
            else:
                out.append(f"(?:{_pattern(inner)} ?)?")
            i = j
            continue
        out.append(" " if ch == " " else re.escape(ch))
        i += 1
    return "".join(out)


def placeholders(text: str) -> list[str]:
    """The optional groups and placeholder tokens ``text`` has (empty: run it as written)."""
    live = {i for i, _ in _outside_quotes(text)}
    found: list[str] = []
    groups: list[str] = []
    _pattern(text, groups)
    found += [f"[{g}]" for g in groups]
    for i in range(len(text)):
        if i in live or text.startswith("'...'", i):
            tok = _placeholder_at(text, i)
            if tok and tok not in found:
                found.append(tok)
    for i in range(len(text)):
        # a <placeholder> this table does not know
        if i in live and text[i] == "<" and not any(text.startswith(t, i) for t in PLACEHOLDERS):
            found.append(text[i : text.find(">", i) + 1] or text[i:])
    return found


def fills(text: str, form: str) -> bool:
    """Whether ``form`` is ``text`` with its placeholders filled and optional groups
    dropped or kept (whitespace-insensitive)."""
    return re.fullmatch(_pattern(text), " ".join(form.split())) is not None


def uses_group(text: str, form: str, group: str) -> bool:
    """Whether ``form`` keeps the optional group ``group`` (given without brackets)."""
    pat = _pattern(text.replace(f"[{group}]", group, 1))
    return re.fullmatch(pat, " ".join(form.split())) is not None


RESULTS = os.path.join(os.path.dirname(README), "bench", "RESULTS.md")
# a sentence that quotes the benchmarks names them, or says it measured
_CITES = re.compile(r"\bbench\b|bench/|RESULTS\.md|\bmeasured\b|benchmark", re.IGNORECASE)
_UNIT = r"(?:ms|µs|us|s|%|qps|×|x|Gbit/s|MiB|KiB|conn/s|/s|attaches/s)"
# a figure: a decimal (a ratio, 0.947) or a number with a unit (19.21 ms, 75.5 attaches/s);
# a bare integer is a count or a section number, not a measurement
_FIGURE = re.compile(
    rf"(?<![\w.,-])(\d+(?:,\d{{3}})*\.\d+|\d+(?:,\d{{3}})*(?=\s?{_UNIT}(?![\w])))"
    rf"(?:\s?{_UNIT}(?![\w]))?"
)


# a ratio in words can never be checked against the measurement: it counts as wrong
_WORDS = re.compile(r"\b(?:a quarter|a third|a tenth|half|twice|\d+ times)\b", re.IGNORECASE)


def sentences(text: str) -> list[str]:
    """Prose sentences (code blocks left out), each on one line."""
    prose = re.sub(r"```.*?```", "\n\n", text, flags=re.DOTALL)
    out: list[str] = []
    for para in re.split(r"\n\s*\n|\n(?=\s*[-|#] )", prose):
        flat = " ".join(para.split())
        out += [s for s in re.split(r"(?<=[.;!?])\s+(?=[A-Z0-9(`*])", flat) if s]
    return out


def quoted_figures(text: str) -> list[tuple[str, str]]:
    """(figure, sentence) for every figure in a sentence that cites the benchmarks."""
    found: list[tuple[str, str]] = []
    for sentence in sentences(text):
        if _CITES.search(sentence):
            found += [(m.group(1), sentence) for m in _FIGURE.finditer(sentence)]
            found += [(m.group(0), sentence) for m in _WORDS.finditer(sentence)]
    return found


def in_results(figure: str, results: str) -> bool:
    """Whether the number ``figure`` stands in RESULTS.md as a number of its own."""
    if not re.fullmatch(r"[\d,.]+", figure):
        return False
    plain = figure.replace(",", "")
    pattern = rf"(?<![\d.]){re.escape(plain)}(?![\d])|(?<![\d.]){re.escape(figure)}(?![\d])"
    return re.search(pattern, results) is not None
