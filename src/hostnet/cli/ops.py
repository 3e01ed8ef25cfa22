"""``hostnet doctor`` and ``hostnet topology``: looking at a host rather than changing it.
Registered on the CLI by ``hostnet.cli.commands.main`` (``register``)."""

from __future__ import annotations

import ssl
import sys

import click

from hostnet.cli import topology as topo
from hostnet.client import Client


def _socket(ctx: click.Context) -> str | None:
    value = ctx.find_root().params.get("socket")
    return str(value) if value else None


@click.command("doctor")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    help="table (default) or json",
)
@click.option(
    "--store",
    default="",
    help="check this etcd store too: etcd://HOST:PORT[,...] (etcds:// for TLS), as hostnetd's",
)
@click.option("--store-ca", default="", help="CA bundle that signed etcd's certificates")
@click.option("--store-cert", default="", help="client certificate for etcd")
@click.option("--store-key", default="", help="client key for etcd")
@click.pass_context
def doctor(
    ctx: click.Context, fmt: str, store: str, store_ca: str, store_cert: str, store_key: str
) -> None:
    """Check this host for what breaks container networking, each finding with a remedy.

    Reads the network namespace it runs in and asks hostnetd when it answers; changes
    nothing. Exit code 0: all ok, 1: warnings, 2: errors."""
    from hostnet import doctor as doc
    from hostnet.doctor import findings, store_checks
    from hostnet.errors import InvalidRequest

    if store:
        try:
            store_checks.members(store)
        except InvalidRequest as exc:
            raise click.BadParameter(f"{exc.message}; {exc.remedy}", param_hint="--store") from None
    tls = None
    if store.startswith("etcds://"):
        try:
            tls = ssl.create_default_context(cafile=store_ca or None)
            if store_cert:
                tls.load_cert_chain(store_cert, store_key or None)
        except (OSError, ssl.SSLError) as exc:
            raise click.BadParameter(
                f"cannot load the TLS files: {exc}",
                param_hint="--store-ca/--store-cert/--store-key",
            ) from None
    result = doc.run(_socket(ctx), store, tls)
    click.echo(findings.as_json(result) if fmt == "json" else findings.as_table(result))
    sys.exit(findings.exit_code(result))


@click.command("topology")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tree", "dot", "svg"]),
    default="tree",
    help="tree (default), dot (Graphviz source) or svg (drawn by Graphviz' dot)",
)
@click.pass_context
def topology(ctx: click.Context, fmt: str) -> None:
    """Switches, adapters, networks, endpoints and compartments of this host."""
    client = Client(_socket(ctx))
    graph = topo.build(
        client.get("/switches"),
        client.get("/networks"),
        client.get("/containers"),
        str(client.get("/_ping").get("instance", "")),
    )
    if fmt == "tree":
        click.echo(topo.render_tree(graph))
    elif fmt == "dot":
        click.echo(topo.render_dot(graph), nl=False)
    else:
        click.echo(topo.to_svg(topo.render_dot(graph)), nl=False)


def register(cli: click.Group) -> None:
    cli.add_command(doctor)
    cli.add_command(topology)
