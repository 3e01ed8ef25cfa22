"""``hostnet run``: a command in a new compartment, attached to networks by the daemon."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from typing import Any

import click

from hostnet.client import Client, q
from hostnet.core.procs import has_exited
from hostnet.errors import HostnetError, NotFound
from hostnet.kernel import netns


def resolv_conf(dns: dict[str, list[str]]) -> str:
    """A resolv.conf file for the compartment ('' when its network hands out no DNS)."""
    if not dns:
        return ""
    lines = [f"nameserver {s}" for s in dns.get("nameservers", [])]
    if dns.get("search"):
        lines.append("search " + " ".join(dns["search"]))
    fd, path = tempfile.mkstemp(prefix="hostnet-resolv-", suffix=".conf")
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.chmod(path, 0o644)
    return path


def _command(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    """The command as given, with or without '--' before it. Options end at the first
    argument, so click passes a '--' on as the command's first word when an argument (exec's
    CONTAINER) comes before it; that '--' only marks where the command starts."""
    words = list(value)
    if words[:1] == ["--"]:
        words = words[1:]
    if not words and param.required:
        raise click.UsageError("missing COMMAND: give the command to run after '--'")
    return words


def command_argument(required: bool = True) -> Any:
    """The COMMAND of run, create and exec, taken the same way by all three."""
    return click.argument("command", nargs=-1, required=required, callback=_command)


def _remove(client: Client, cid: str) -> None:
    with contextlib.suppress(NotFound):
        client.delete(f"/containers/{q(cid)}")


@click.command("run", context_settings={"allow_interspersed_args": False})
@click.option(
    "--network",
    "--net",
    "networks",
    multiple=True,
    default=("nat",),
    show_default=True,
    help="network to attach (repeat for more)",
)
@click.option("--name", default="", help="container name")
@click.option("--ip", default="", help="static IPv4 address on the first network")
@click.option("--ip6", default="", help="static IPv6 address on the first network")
@click.option(
    "-p", "--publish", multiple=True, help="[HOSTIP:]HOSTPORT[-END]:CONTAINERPORT[-END][/tcp|/udp]"
)
@click.option(
    "--acl",
    "acls",
    multiple=True,
    help="port ACL rule: action=allow|block;dir=in|out;proto=tcp;lport=80;raddr=CIDR;prio=N",
)
@click.option(
    "--max-bandwidth",
    default="",
    help="maximum outgoing bandwidth in bytes/s (suffix k, m, g: 1000s), HNS QoS policy",
)
@click.option(
    "--network-alias",
    "aliases",
    multiple=True,
    help="another name the container answers to on its networks (embedded DNS)",
)
@click.option(
    "--policy",
    "policies",
    multiple=True,
    help="HNS endpoint policy as JSON: OutBoundNAT or SDNRoute, e.g. "
    '\'{"Type": "OutBoundNAT", "Settings": {"Exceptions": ["10.0.0.0/8"]}}\'',
)
@click.option("-d", "--detach", is_flag=True, help="leave it running; 'hostnet rm NAME' stops it")
@command_argument()
@click.pass_context
def run(
    ctx: click.Context,
    networks: tuple[str, ...],
    name: str,
    ip: str,
    ip6: str,
    publish: tuple[str, ...],
    acls: tuple[str, ...],
    max_bandwidth: str,
    aliases: tuple[str, ...],
    policies: tuple[str, ...],
    detach: bool,
    command: list[str],
) -> None:
    """Run COMMAND in a new compartment; the compartment goes when the command exits."""
    client = Client(ctx.find_root().params.get("socket"))
    body: dict[str, Any] = {
        "name": name,
        "networks": [
            {
                "network": n,
                "ip": ip if i == 0 else "",
                "ip6": ip6 if i == 0 else "",
                "aliases": list(aliases),
            }
            for i, n in enumerate(networks)
        ],
        "ports": list(publish),
        "acl": list(acls),
        "max_bandwidth": max_bandwidth,
        "policies": list(policies),
    }
    c = client.post("/containers", body)
    cid, path = c["Id"], c["NetnsPath"]
    resolv = resolv_conf(c.get("Dns") or {})
    out: Any = None
    try:
        if detach:
            out = open(c["LogPath"], "ab") if c.get("LogPath") else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(
            list(command),
            preexec_fn=lambda: netns.enter_in_child(path, resolv),  # noqa: PLW1509 - setns in the child
            start_new_session=detach,
            stdin=subprocess.DEVNULL if detach else None,
            stdout=out if detach else None,
            stderr=subprocess.STDOUT if detach else None,
        )
    except OSError as exc:
        _remove(client, cid)
        click.echo(f"Error: cannot start {command[0]!r}: {exc.strerror}", err=True)
        sys.exit(127 if isinstance(exc, FileNotFoundError) else 126)
    finally:
        if detach and out is not None and out is not subprocess.DEVNULL:
            out.close()
        if resolv:  # the child has bound it already; the mount keeps the file alive
            os.unlink(resolv)
    try:
        # Popen returned after the exec, so the child is in the compartment already (the
        # daemon takes only a process of the compartment)
        client.post(f"/containers/{q(cid)}/process", {"pid": proc.pid})
    except HostnetError:
        # a command that ended before the daemon heard of it (`run -- true`) is refused
        # as gone: its exit code is still ours to report
        if detach or not has_exited(proc.pid):
            proc.kill()
            _remove(client, cid)
            raise
    if detach:
        click.echo(cid)
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: proc.send_signal(s))
    rc = proc.wait()
    try:
        _remove(client, cid)
    except HostnetError as exc:
        click.echo(f"warning: removing the compartment: {exc}", err=True)
    sys.exit(rc if rc >= 0 else 128 - rc)
