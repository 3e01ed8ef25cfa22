"""The seed's lifecycle on the command line: ``create`` (STOPPED), ``start``, ``stop``,
``restart``, ``exec``, ``ipconfig`` and ``adapter ...`` (see hostnet/core/lifecycle.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import click

from hostnet.cli import wildcard
from hostnet.cli.runcmd import command_argument, resolv_conf
from hostnet.client import Client, q
from hostnet.core.procs import has_exited
from hostnet.errors import HostnetError
from hostnet.kernel import netns

#: what a container runs when it was created without a command (New-Container names an
#: image, not a command): an idle process that keeps the container running. (Defined here,
#: not in core/lifecycle.py: importing the service's modules costs every CLI call 0.2 s.)
IDLE = ["sleep", "infinity"]
FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", help="table or json"
)
GRACE = click.option(
    "-t", "--time", "grace", default=10.0, show_default=True, help="seconds before SIGKILL"
)
ADAPTER_COLUMNS = [
    ("ContainerName", "ContainerName"),
    ("Name", "Name"),
    ("Network Id", "NetworkId"),
    ("Static MacAddress", "StaticMacAddress"),
    ("Static IPAddress", "StaticIPAddress"),
    ("Maximum Bandwidth", "MaximumBandwidth"),
]


def _client(ctx: click.Context) -> Client:
    return Client(ctx.find_root().params.get("socket"))


def spawn(c: dict[str, Any], command: list[str], log: bool = True) -> subprocess.Popen[bytes]:
    """Start ``command`` inside the container's compartment, detached (its own session,
    output to the container's log). The child enters the compartment before it execs and
    Popen returns only after the exec, so the pid returned is already inside: the daemon,
    which takes only a process of the compartment, never sees it on its way in."""
    resolv = resolv_conf(c.get("Dns") or {})
    path = c["NetnsPath"]
    out: Any = subprocess.DEVNULL
    try:
        if log and c.get("LogPath"):
            out = open(c["LogPath"], "ab")  # noqa: SIM115 - handed to the child
        return subprocess.Popen(
            command,
            preexec_fn=lambda: netns.enter_in_child(path, resolv),  # noqa: PLW1509
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    except OSError as exc:
        raise click.ClickException(f"cannot start {command[0]!r}: {exc.strerror}") from None
    finally:
        if out is not subprocess.DEVNULL:
            out.close()
        if resolv:
            os.unlink(resolv)


def start_container(client: Client, ref: str) -> dict[str, Any]:
    """Realize (the first time) and run the container's command; returns its view."""
    c = client.post(f"/containers/{q(ref)}/start")
    proc = spawn(c, c["Command"] or IDLE)
    try:
        return client.post(f"/containers/{q(c['Id'])}/process", {"pid": proc.pid})
    except HostnetError:
        if has_exited(proc.pid):  # it ended before the daemon heard of it: stopped
            proc.wait()
            return client.get(f"/containers/{q(c['Id'])}")
        proc.kill()  # refused: nothing may run that the container does not own
        proc.wait()
        raise


def adapter_spec(
    network: str, name: str, static_ip: str, static_mac: str, max_bandwidth: str
) -> dict[str, Any]:
    given = {
        "network": network,
        "name": name,
        "static_ip": static_ip,
        "static_mac": static_mac,
        "max_bandwidth": max_bandwidth,
    }
    return {k: v for k, v in given.items() if v}


def print_adapters(rows: list[dict[str, Any]], fmt: str) -> None:
    """Get-ContainerNetworkAdapter's columns (the seed's layout)."""
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    cells = [
        [str(r.get(k) if r.get(k) not in (None, "") else "") for _, k in ADAPTER_COLUMNS]
        for r in rows
    ]
    widths = [
        max([len(h)] + [len(row[i]) for row in cells]) for i, (h, _) in enumerate(ADAPTER_COLUMNS)
    ]
    click.echo(
        " ".join(h.ljust(w) for (h, _), w in zip(ADAPTER_COLUMNS, widths, strict=True)).rstrip()
    )
    click.echo(
        " ".join(
            "-" * len(h) + " " * (w - len(h))
            for (h, _), w in zip(ADAPTER_COLUMNS, widths, strict=True)
        ).rstrip()
    )
    for row in cells:
        click.echo(" ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@click.command("create", context_settings={"allow_interspersed_args": False})
@click.option("--name", default="", help="container name")
@click.option(
    "--network", "--net", "networks", multiple=True, help="a network adapter on NET (repeat)"
)
@click.option("--ip", default="", help="static IPv4 address of the first adapter")
@click.option("--mac-address", "mac", default="", help="static MAC of the first adapter")
@click.option("-p", "--publish", multiple=True, help="static mapping on the first adapter")
@click.option("--max-bandwidth", default="", help="first adapter's limit, bytes/s (k, m, g)")
@click.option("--image", default="", help="recorded, never pulled (New-Container's image)")
@command_argument(required=False)
@click.pass_context
def create(
    ctx: click.Context,
    name: str,
    networks: tuple[str, ...],
    ip: str,
    mac: str,
    publish: tuple[str, ...],
    max_bandwidth: str,
    image: str,
    command: list[str],
) -> None:
    """Create a container STOPPED: its adapters are checked and recorded, nothing runs.

    Configure its adapters ('hostnet adapter ...'), then 'hostnet start' it. Without
    COMMAND it runs an idle process (sleep infinity).
    """
    adapters = [
        adapter_spec(
            n, "", ip if i == 0 else "", mac if i == 0 else "", max_bandwidth if i == 0 else ""
        )
        | ({"mappings": list(publish)} if i == 0 and publish else {})
        for i, n in enumerate(networks)
    ]
    if (ip or mac or publish or max_bandwidth) and not networks:
        raise click.UsageError("--ip, --mac-address, -p and --max-bandwidth need a --network")
    c = _client(ctx).post(
        "/containers/create",
        {"name": name, "adapters": adapters, "command": list(command), "image": image},
    )
    click.echo(c["Id"])


@click.command("start")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def start(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Start stopped containers: the first start makes the compartment and endpoints."""
    client = _client(ctx)
    for n in names:
        start_container(client, n)
        click.echo(n)


@click.command("stop")
@GRACE
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def stop(ctx: click.Context, grace: float, names: tuple[str, ...]) -> None:
    """Stop containers' processes; compartments, addresses and mappings stay."""
    client = _client(ctx)
    for n in names:
        client.post(f"/containers/{q(n)}/stop", {"grace": grace})
        click.echo(n)


@click.command("restart")
@GRACE
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def restart(ctx: click.Context, grace: float, names: tuple[str, ...]) -> None:
    """Stop, then start, containers (the same compartment and addresses)."""
    client = _client(ctx)
    for n in names:
        client.post(f"/containers/{q(n)}/stop", {"grace": grace})
        start_container(client, n)
        click.echo(n)


@click.command("exec", context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="leave it running in the background")
@click.argument("container")
@command_argument()
@click.pass_context
def exec_(ctx: click.Context, detach: bool, container: str, command: list[str]) -> None:
    """Run COMMAND in a running container's compartment; its exit code is exec's."""
    c = _client(ctx).get(f"/containers/{q(container)}")
    if c["State"] != "running":
        raise click.ClickException(f"container {c['Name']!r} is {c['State']}: start it first")
    if detach:
        click.echo(spawn(c, list(command), log=True).pid)
        return
    resolv = resolv_conf(c.get("Dns") or {})
    path = c["NetnsPath"]
    try:
        proc = subprocess.Popen(
            list(command),
            preexec_fn=lambda: netns.enter_in_child(path, resolv),  # noqa: PLW1509
        )
    except OSError as exc:
        click.echo(f"Error: cannot start {command[0]!r}: {exc.strerror}", err=True)
        sys.exit(127 if isinstance(exc, FileNotFoundError) else 126)
    finally:
        if resolv:
            os.unlink(resolv)
    rc = proc.wait()
    sys.exit(rc if rc >= 0 else 128 - rc)


@click.command("ipconfig")
@FORMAT
@click.argument("container")
@click.pass_context
def ipconfig(ctx: click.Context, fmt: str, container: str) -> None:
    """The compartment's IP configuration, in ipconfig's layout (Invoke-Command {ipconfig})."""
    out = _client(ctx).get(f"/containers/{q(container)}/ipconfig")
    click.echo(json.dumps(out, indent=2) if fmt == "json" else out["Text"], nl=fmt == "json")


@click.group("adapter")
def adapter() -> None:
    """A container's network adapters (the seed's *-ContainerNetworkAdapter cmdlets).

    Made with 'hostnet create': changes while it was never started apply at start;
    after that, at once (hot, while it runs).
    """


def _report(row: dict[str, Any], fmt: str) -> None:
    print_adapters([row], fmt)
    if fmt == "table" and row.get("Applied"):
        click.echo(f"({row['Applied']})")


@adapter.command("ls")
@FORMAT
@click.option(
    "--name",
    "patterns",
    multiple=True,
    help="only adapter NAME (wildcards * ? [a-c], any case; repeat for more)",
)
@click.argument("container")
@click.pass_context
def adapter_ls(ctx: click.Context, fmt: str, patterns: tuple[str, ...], container: str) -> None:
    """CONTAINER's adapters: network, static MAC, static IP, maximum bandwidth."""
    rows = wildcard.select(
        _client(ctx).get(f"/containers/{q(container)}/adapters"),
        patterns,
        lambda r: [r["Name"]],
        f"adapter of {container}",
        f"list them with 'hostnet adapter ls {container}'",
    )
    print_adapters(rows, fmt)


def _adapter_options(f: Any) -> Any:
    for opt in (
        click.option("--max-bandwidth", default="", help="bytes/s (k, m, g = 1000s)"),
        click.option("--static-mac", default="", help="the adapter's MAC"),
        click.option("--static-ip", default="", help="the adapter's IPv4 address"),
    ):
        f = opt(f)
    return f


@adapter.command("add")
@FORMAT
@click.option("--name", default="", help="default 'Network Adapter N'")
@click.option("--network", "--switch", "network", default="", help="connect it to this network")
@_adapter_options
@click.argument("container")
@click.pass_context
def adapter_add(
    ctx: click.Context, fmt: str, name: str, network: str, static_ip: str, static_mac: str,
    max_bandwidth: str, container: str,
) -> None:  # fmt: skip
    """Add a network adapter to CONTAINER (Add-ContainerNetworkAdapter)."""
    spec = adapter_spec(network, name, static_ip, static_mac, max_bandwidth)
    _report(_client(ctx).post(f"/containers/{q(container)}/adapters", spec), fmt)


@adapter.command("set")
@FORMAT
@click.option("--name", default="", help="the adapter (when it has more than one)")
@click.option("--static-ip", default=None, help="'' clears it")
@click.option("--static-mac", default=None, help="'' clears it")
@click.option("--max-bandwidth", default=None, help="bytes/s; '' or 0 clears it")
@click.argument("container")
@click.pass_context
def adapter_set(
    ctx: click.Context, fmt: str, name: str, static_ip: str | None, static_mac: str | None,
    max_bandwidth: str | None, container: str,
) -> None:  # fmt: skip
    """Change an adapter's static IP, MAC or bandwidth (Set-ContainerNetworkAdapter)."""
    change = {"static_ip": static_ip, "static_mac": static_mac, "max_bandwidth": max_bandwidth}
    change = {
        k: ("" if v == "0" and k == "max_bandwidth" else v)
        for k, v in change.items()
        if v is not None
    }
    if not change:
        raise click.UsageError("give --static-ip, --static-mac or --max-bandwidth")
    _report(_set(ctx, container, name, change), fmt)


def _set(ctx: click.Context, container: str, name: str, change: dict[str, Any]) -> dict[str, Any]:
    client = _client(ctx)
    name = name or _only_adapter(client, container)
    return client.post(f"/containers/{q(container)}/adapters/{q(name)}", change)


def _only_adapter(client: Client, container: str) -> str:
    rows = client.get(f"/containers/{q(container)}/adapters")
    if len(rows) != 1:
        names = ", ".join(repr(r["Name"]) for r in rows) or "none"
        raise click.UsageError(f"{container} has {len(rows)} adapters ({names}): give --name")
    return str(rows[0]["Name"])


@adapter.command("rm")
@click.option("--name", default="", help="the adapter (when it has more than one)")
@click.argument("container")
@click.pass_context
def adapter_rm(ctx: click.Context, name: str, container: str) -> None:
    """Remove an adapter (Remove-ContainerNetworkAdapter)."""
    client = _client(ctx)
    name = name or _only_adapter(client, container)
    out = client.delete(f"/containers/{q(container)}/adapters/{q(name)}")
    click.echo(f"removed {name} ({out['Applied']})")


@adapter.command("connect")
@FORMAT
@click.option("--name", default="", help="the adapter (when it has more than one)")
@click.argument("container")
@click.argument("network")
@click.pass_context
def adapter_connect(ctx: click.Context, fmt: str, name: str, container: str, network: str) -> None:
    """Connect an adapter to NETWORK's switch (Connect-ContainerNetworkAdapter)."""
    _report(_set(ctx, container, name, {"network": network}), fmt)


@adapter.command("disconnect")
@FORMAT
@click.option("--name", default="", help="the adapter (when it has more than one)")
@click.argument("container")
@click.pass_context
def adapter_disconnect(ctx: click.Context, fmt: str, name: str, container: str) -> None:
    """Disconnect an adapter from its switch; it stays (Disconnect-ContainerNetworkAdapter)."""
    _report(_set(ctx, container, name, {"network": "", "static_ip": ""}), fmt)


@adapter.group("mapping")
def mapping() -> None:
    """Static port mappings of an adapter (Add-ContainerNetworkAdapterStaticMapping)."""


def _mapping_options(f: Any) -> Any:
    for opt in (
        click.option(
            "--protocol",
            type=click.Choice(["tcp", "udp"], case_sensitive=False),
            default="tcp",
            show_default=True,
        ),
        click.option("--internal-port", type=click.IntRange(1, 65535), required=True),
        click.option("--external-port", type=click.IntRange(1, 65535), required=True),
        click.option("--name", "--adapter-name", "name", default="", help="the adapter"),
    ):
        f = opt(f)
    return f


def mapping_spec(external: int, internal: int, protocol: str) -> str:
    return f"{external}:{internal}/{protocol.lower()}"


@mapping.command("add")
@_mapping_options
@click.argument("container")
@click.pass_context
def mapping_add(
    ctx: click.Context,
    name: str,
    external_port: int,
    internal_port: int,
    protocol: str,
    container: str,
) -> None:
    """Map host port EXTERNAL to the adapter's INTERNAL port."""
    client = _client(ctx)
    name = name or _only_adapter(client, container)
    spec = mapping_spec(external_port, internal_port, protocol)
    out = client.post(f"/containers/{q(container)}/adapters/{q(name)}/mappings", {"mapping": spec})
    click.echo(f"{spec} on {name} ({out['Applied']})")


@mapping.command("rm")
@_mapping_options
@click.argument("container")
@click.pass_context
def mapping_rm(
    ctx: click.Context,
    name: str,
    external_port: int,
    internal_port: int,
    protocol: str,
    container: str,
) -> None:
    """Remove a static mapping."""
    client = _client(ctx)
    name = name or _only_adapter(client, container)
    spec = mapping_spec(external_port, internal_port, protocol)
    out = client.post(
        f"/containers/{q(container)}/adapters/{q(name)}/mappings/remove", {"mapping": spec}
    )
    click.echo(f"removed {spec} from {name} ({out['Applied']})")


@mapping.command("ls")
@FORMAT
@click.argument("container")
@click.pass_context
def mapping_ls(ctx: click.Context, fmt: str, container: str) -> None:
    """Every adapter's static mappings."""
    rows = [
        {"Adapter": a["Name"], "Mapping": m}
        for a in _client(ctx).get(f"/containers/{q(container)}/adapters")
        for m in a["Mappings"]
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['Adapter']}: {r['Mapping']}")


COMMANDS = (create, start, stop, restart, exec_, ipconfig, adapter)


def register(cli: click.Group) -> None:
    for cmd in COMMANDS:
        cli.add_command(cmd)
