"""A container takes as its process only one inside its compartment: removing a container
ends its process, so adopting pid 1, a host daemon or another container's process would
let ``hostnet rm`` kill them. Refused with a 400 that says why, and nothing changes."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from hostnet.client import Client, UnixConnection
from hostnet.errors import InvalidRequest
from lab import Daemon, Lab, eventually

pytestmark = pytest.mark.root


def post_process(d: Daemon, ref: str, pid: int) -> tuple[int, dict[str, Any]]:
    """POST /containers/REF/process over the daemon's socket, as the CLI sends it."""
    conn = UnixConnection(d.socket, 30)
    try:
        body = json.dumps({"pid": pid})
        conn.request("POST", f"/containers/{ref}/process", body=body)
        res = conn.getresponse()
        return res.status, json.loads(res.read() or b"{}")
    finally:
        conn.close()


def containers(d: Daemon) -> list[dict[str, Any]]:
    keep = ("Name", "State", "Pid", "Running", "Networks", "Adapters")
    return [{k: c.get(k) for k in keep} for c in d.json("ps", "-a", "--format", "json")]


def pid_of(d: Daemon, name: str) -> int:
    return int(next(c["Pid"] for c in d.json("ps", "-a", "--format", "json") if c["Name"] == name))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_only_a_process_of_the_compartment_is_adopted(lab: Lab) -> None:
    d, _ = lab.host()
    # one container of each kind: the seed's lifecycle (create, start) and 'hostnet run'
    d.cli("create", "--name", "life", "--network", "nat")
    d.cli("start", "life")
    d.cli("run", "-d", "--name", "other", "--", "sleep", "infinity")
    host_proc = lab.spawn(d.host, "sleep", "infinity")  # the daemon's own namespace
    eventually(lambda: os.readlink(f"/proc/{host_proc.pid}/exe").endswith("/sleep"))
    life, other = pid_of(d, "life"), pid_of(d, "other")
    # pid 1 only to 'life': were it adopted (a regression), removing 'life' still ends only
    # its compartment's processes, while removing 'other' would signal pid 1's group
    for ref, neighbour in (("life", other), ("other", life)):
        strangers = {"a host process": host_proc.pid, "another's": neighbour}
        if ref == "life":
            strangers["pid 1"] = 1
        for what, pid in strangers.items():
            before = containers(d)
            status, body = post_process(d, ref, pid)
            assert status == 400, (ref, what, status, body)
            err = body["error"]
            assert f"process {pid} is not in container {ref!r}'s compartment" in err["message"]
            assert "hostnet exec -d" in err["remedy"], err
            assert containers(d) == before, (ref, what)
    # the client the CLI uses gets the same refusal as an error it prints
    with pytest.raises(InvalidRequest, match="is not in container 'life'"):
        Client(d.socket).post("/containers/life/process", {"pid": host_proc.pid})
    assert containers(d) == before

    # a process the compartment runs is taken (and one that no longer exists is refused)
    extra = int(d.cli("exec", "-d", "life", "sleep", "infinity").stdout)
    status, body = post_process(d, "life", extra)
    assert status == 200 and body["Pid"] == extra and body["State"] == "running", body
    assert post_process(d, "life", 1 << 22)[0] == 400

    # removing them ends their own processes only
    d.cli("rm", "life")
    eventually(lambda: not alive(extra) and not alive(life))
    assert alive(1) and alive(host_proc.pid) and alive(other)
    d.cli("rm", "other")
    eventually(lambda: not alive(other))
    assert alive(host_proc.pid)


def test_a_stopped_container_refuses_a_stranger_and_stays_stopped(lab: Lab) -> None:
    d, _ = lab.host()
    d.cli("create", "--name", "idle", "--network", "nat")
    status, body = post_process(d, "idle", os.getpid())
    assert status == 409 and "not started" in body["error"]["message"], body  # created
    d.cli("start", "idle")
    d.cli("stop", "-t", "1", "idle")
    before = containers(d)
    assert before[0]["State"] == "stopped"
    status, body = post_process(d, "idle", os.getpid())  # the test itself: a host process
    assert status == 400 and "compartment" in body["error"]["message"], body
    assert containers(d) == before
    d.cli("start", "idle")  # the CLI's own process is inside: taken
    (c,) = d.json("ps", "--format", "json")
    assert c["State"] == "running" and c["Running"] and c["Pid"] != os.getpid()
    d.cli("rm", "idle")
    assert alive(os.getpid())
