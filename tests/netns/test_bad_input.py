"""Bad input: a clear error (what, why, what to do), a non-zero exit, and nothing changed."""

from __future__ import annotations

import pytest
from helpers import serve, snapshot

from lab import Daemon, Lab, eventually

CASES = [
    # (argv, words the error must contain)
    (["network", "create", "--subnet", "172.16.1.0/33", "x"], ["malformed subnet", "CIDR"]),
    (["network", "create", "--subnet", "banana", "x"], ["malformed subnet"]),
    (
        ["network", "create", "--subnet", "172.16.9.0/24", "--gateway", "172.16.8.1", "x"],
        ["outside subnet", "gateway inside"],
    ),
    (["network", "create", "--subnet", "172.16.1.128/25", "x"], ["overlaps network 'taken'"]),
    (
        ["network", "create", "--subnet", "198.51.100.0/25", "x"],
        ["overlaps the host's own address or route"],
    ),
    (
        ["network", "create", "--subnet", "172.16.7.0/24", "taken"],
        ["already exists", "another name"],
    ),
    (
        ["network", "create", "-d", "bogus", "x"],
        [
            "unknown driver 'bogus'",
            "available drivers: l2bridge, l2tunnel, nat, overlay, transparent",
        ],
    ),
    (["network", "create", "-d", "overlay", "x"], ["need a cluster store", "--store etcd://"]),
    (
        ["network", "create", "-d", "overlay", "-o", "encrypted=true", "x"],
        ["encrypted is not supported"],
    ),
    (["network", "create", "-d", "l2bridge", "x"], ["needs --subnet and --gateway"]),
    (
        ["network", "create", "-o", "com.docker.network.windowsshim.vlanid=11", "x"],
        [
            "'com.docker.network.windowsshim.vlanid' is not supported by the nat driver",
            "supports: disableicc",
        ],
    ),
    (["network", "create", "-o", "disableicc=perhaps", "x"], ["true or false"]),
    (["network", "create", "-o", "novalue", "x"], ["KEY=VALUE"]),
    (
        ["run", "--net", "taken", "--ip", "172.16.2.9", "--", "true"],
        ["outside subnet 172.16.1.0/24"],
    ),
    (
        ["run", "--net", "taken", "--ip", "172.16.1.2", "--", "true"],
        ["172.16.1.2 is already in use"],
    ),
    (["run", "--net", "taken", "--ip", "172.16.1.1", "--", "true"], ["gateway"]),
    (["run", "--net", "taken", "-p", "8082:80", "--", "true"], ["8082/tcp", "already mapped"]),
    (["run", "--net", "taken", "-p", "70000:80", "--", "true"], ["out of range"]),
    (
        ["run", "--net", "taken", "-p", "80:80:80:80", "--", "true"],
        ["bad port mapping", "HOSTPORT"],
    ),
    (["run", "--net", "taken", "-p", "8080:80/sctp", "--", "true"], ["sctp"]),
    (["run", "--net", "nosuch", "--", "true"], ["no network named 'nosuch'", "network ls"]),
    (["run", "--net", "taken", "--name", "web", "--", "true"], ["'web' already exists"]),
    (["rm", "nosuch"], ["no container named 'nosuch'"]),
    (["network", "rm", "taken"], ["in use by: web", "--force"]),
    (["network", "inspect", "nosuch"], ["no network named 'nosuch'"]),
    (["network", "connect", "taken", "nosuch"], ["no container named 'nosuch'"]),
    (["network", "connect", "taken", "web"], ["already connected"]),
    (["network", "disconnect", "nat", "web"], ["not connected"]),
]


@pytest.fixture
def world(lab: Lab) -> Daemon:
    d, _ = lab.host()
    d.cli("network", "create", "--subnet", "172.16.1.0/24", "--gateway", "172.16.1.1", "taken")
    serve(d, "taken", "web", 80, False, "-p", "8082:80")
    return d


def test_every_bad_input_is_refused_clearly_and_changes_nothing(world: Daemon) -> None:
    d = world
    before = snapshot(d)
    failures = []
    for argv, words in CASES:
        res = d.cli(*argv, check=False)
        text = res.stderr + res.stdout
        if res.returncode == 0 or not all(w in text for w in words):
            failures.append(f"hostnet {' '.join(argv)} -> {res.returncode}: {text.strip()}")
        elif "Error" in text and "what to do" not in text and "KEY=VALUE" not in words:
            failures.append(f"hostnet {' '.join(argv)}: no remedy given: {text.strip()}")
    assert not failures, "\n".join(failures)
    assert snapshot(d) == before


def test_command_that_cannot_start_leaves_nothing(world: Daemon) -> None:
    d = world
    before = snapshot(d)
    res = d.cli("run", "--", "/no/such/command", check=False)
    assert res.returncode == 127 and "/no/such/command" in res.stderr
    # the kernel deletes the vNIC with the emptied compartment, asynchronously
    eventually(lambda: snapshot(d) == before)
