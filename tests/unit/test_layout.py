"""The tree's layout: pytest cannot collect two test modules of one name; src/hostnet
reads as the architecture (the shared vocabulary at the top, a package per face, the
core beneath them)."""

from __future__ import annotations

import collections
import os
import re

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(os.path.dirname(TESTS), "src", "hostnet")

#: beside the packages: the vocabulary every package speaks, the client, the daemon
TOP_MODULES = {"__init__.py", "errors.py", "model.py", "client.py", "daemon.py"}
FACES = ("rest", "hns", "docker", "cni", "cli")
BENEATH_THE_FACES = ("core", "drivers", "kernel", "store", "dns")


def test_test_module_names_are_unique_across_the_suite() -> None:
    seen = collections.defaultdict(list)
    for d, _, files in os.walk(TESTS):
        for f in files:
            if f.startswith("test_") and f.endswith(".py"):
                seen[f].append(os.path.relpath(os.path.join(d, f), TESTS))
    twice = {k: v for k, v in seen.items() if len(v) > 1}
    assert not twice, f"rename one of each: {twice}"


def test_the_top_of_the_package_holds_only_the_shared_modules() -> None:
    top = {f for f in os.listdir(SRC) if f.endswith(".py")}
    assert top == TOP_MODULES, (
        f"put these in their package (core/ or a face's): {top - TOP_MODULES}"
    )
    for face in (*FACES, *BENEATH_THE_FACES):
        assert os.path.isfile(os.path.join(SRC, face, "__init__.py")), face


def test_the_core_and_what_is_beneath_it_import_no_face_but_hns() -> None:
    face = re.compile(r"^\s*from hostnet(?:\.| import )(rest|docker|cni|cli)\b", re.M)
    bad = []
    for pkg in BENEATH_THE_FACES:
        for d, _, files in os.walk(os.path.join(SRC, pkg)):
            for f in files:
                if f.endswith(".py"):
                    with open(os.path.join(d, f)) as fh:
                        bad += [f"{pkg}/{f}: {m}" for m in face.findall(fh.read())]
    with open(os.path.join(SRC, "model.py")) as fh:
        bad += [f"model.py: {m}" for m in face.findall(fh.read())]
    assert not bad, f"the core is every face's, so it imports none of them: {bad}"
