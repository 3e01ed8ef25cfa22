"""``exec``, ``run`` and ``create`` take the command the same way, with or without ``--``
before it (the README's ``hostnet exec [-d] DemoNAT -- CMD...``). Each form's command must
really run inside the compartment: a foreground one writes what it sees there into a file,
a background one serves a page that is then fetched from the host."""

from __future__ import annotations

import os
from typing import Any

import pytest
from helpers import wait_listening

from lab import Daemon, Lab, in_ns

pytestmark = pytest.mark.root

FETCH = "import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=5).read().decode())"


def container(d: Daemon, name: str) -> dict[str, Any]:
    return next(c for c in d.json("ps", "-a", "--format", "json") if c["Name"] == name)


def address(c: dict[str, Any]) -> str:
    return str(c["Networks"]["nat"]["IPAddress"])


def served(d: Daemon, c: dict[str, Any], port: int, page: str) -> str:
    """The page the compartment's http.server on ``port`` serves, fetched from the host."""
    wait_listening(c["NetnsPath"], port)
    url = f"http://{address(c)}:{port}/{page}"
    return in_ns(d.host, "python3", "-c", FETCH, url).stdout.strip()


def site(lab: Lab, form: str) -> str:
    """A directory with one page whose text names the form that serves it."""
    root = os.path.join(lab.tmp, f"site-{form.replace(' ', '_')}")
    os.makedirs(root)
    with open(os.path.join(root, "page.txt"), "w") as fh:
        fh.write(form)
    return root


def http_server(root: str, port: int) -> list[str]:
    # --directory after the port: options of the command never reach hostnet's own
    return ["python3", "-m", "http.server", str(port), "--bind", "0.0.0.0", "--directory", root]


def test_exec_takes_the_command_with_or_without_dashes(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("create", "--name", "DemoNAT", "--network", "nat")
    d.cli("start", "DemoNAT")
    c = container(d, "DemoNAT")
    inode = os.stat(c["NetnsPath"]).st_ino
    for form, dashes in (("exec C -- CMD", ["--"]), ("exec C CMD", [])):
        out = os.path.join(lab.tmp, form.replace(" ", "_"))
        d.cli("exec", "DemoNAT", *dashes, "sh", "-c", f"readlink /proc/self/ns/net > {out}")
        with open(out) as fh:
            assert fh.read().strip() == f"net:[{inode}]", form
    res = d.cli("exec", "DemoNAT", "--", "sh", "-c", "exit 3", check=False)
    assert res.returncode == 3, res.stderr  # the command's exit code is exec's
    for port, (form, dashes) in enumerate((("exec -d C -- CMD", ["--"]), ("exec -d C CMD", []))):
        cmd = http_server(site(lab, form), 8000 + port)
        d.cli("exec", "-d", "DemoNAT", *dashes, *cmd)
        assert served(d, c, 8000 + port, "page.txt") == form
    res = d.cli("exec", "DemoNAT", "--", check=False)
    assert res.returncode == 2 and "missing COMMAND" in res.stderr, res.stderr
    d.cli("rm", "DemoNAT")


def test_run_takes_the_command_with_or_without_dashes(lab: Lab) -> None:
    d, _ = lab.host()
    for form, dashes in (("run -- CMD", ["--"]), ("run CMD", [])):
        out = os.path.join(lab.tmp, form.replace(" ", "_"))
        d.cli("run", *dashes, "sh", "-c", f"ip -4 -o addr show dev eth0 > {out}")
        with open(out) as fh:
            assert " inet 172.16." in fh.read(), form  # it had the compartment's adapter
    for port, (form, dashes) in enumerate((("run -d -- CMD", ["--"]), ("run -d CMD", []))):
        name = f"r{port}"
        cmd = http_server(site(lab, form), 8000 + port)
        d.cli("run", "-d", "--name", name, *dashes, *cmd)
        assert served(d, container(d, name), 8000 + port, "page.txt") == form
    d.cli("rm", "r0", "r1")


def test_create_takes_the_command_with_or_without_dashes(lab: Lab) -> None:
    d, _ = lab.host()
    for port, (form, dashes) in enumerate((("create -- CMD", ["--"]), ("create CMD", []))):
        name = f"c{port}"
        cmd = http_server(site(lab, form), 8000 + port)
        d.cli("create", "--name", name, "--network", "nat", *dashes, *cmd)
        assert container(d, name)["Command"] == cmd, form  # no '--' kept in the command
        d.cli("start", name)
        assert served(d, container(d, name), 8000 + port, "page.txt") == form
    d.cli("rm", "c0", "c1")
