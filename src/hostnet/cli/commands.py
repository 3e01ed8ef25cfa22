"""``hostnet``: the command line. A client of hostnetd's REST API and nothing more
(``run`` also starts the command inside the compartment the daemon made)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

import hostnet
from hostnet.cli import wildcard
from hostnet.client import Client, q
from hostnet.docker import binding as docker_binding
from hostnet.drivers import registry
from hostnet.errors import HostnetError

if TYPE_CHECKING:
    import subprocess

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    help="table (default) or json",
)
#: Get-Container -Name, Get-VMSwitch -Name ...: PowerShell's wildcards, repeatable
NAMES = click.option(
    "--name",
    "patterns",
    multiple=True,
    help="only NAME (wildcards * ? [a-c], any case; repeat for more); "
    "a NAME without wildcards that matches nothing is an error",
)


def _client(ctx: click.Context) -> Client:
    return Client(ctx.find_root().params.get("socket"))


def print_rows(rows: list[dict[str, Any]], fmt: str, columns: list[str] | None = None) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    cols = columns or (list(rows[0]) if rows else [])
    if not cols:
        return
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def parse_opts(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        if "=" not in v:
            raise click.BadParameter(f"{v!r} is not KEY=VALUE", param_hint="-o/--opt")
        k, val = v.split("=", 1)
        out[k] = val
    return out


def parse_aux(values: tuple[str, ...]) -> dict[str, str]:
    """--aux-address NAME=ADDR, each name once."""
    out: dict[str, str] = {}
    for v in values:
        name, sep, addr = v.partition("=")
        if not sep or not name or not addr:
            raise click.BadParameter(f"{v!r} is not NAME=ADDRESS", param_hint="--aux-address")
        if name in out:
            raise click.BadParameter(f"{name!r} is given twice", param_hint="--aux-address")
        out[name] = addr
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    hostnet.__version__, "--version", prog_name="hostnet", message="%(prog)s %(version)s"
)
@click.option(
    "--socket",
    envvar="HOSTNET_SOCKET",
    default=None,
    help="hostnetd's socket (default /run/hostnet/hostnet.sock, or $HOSTNET_SOCKET)",
)
def cli(socket: str | None) -> None:
    """hostnet: container networking on the kernel's own datapath."""


@cli.group()
def network() -> None:
    """Manage networks."""


@network.command("create")
@click.option("-d", "--driver", default="nat", show_default=True)
@click.option("--subnet", "subnets", multiple=True, help="a prefix; one IPv4 and one IPv6 at most")
@click.option("--gateway", "gateways", multiple=True, help="a subnet's gateway (matched by family)")
@click.option("--ip-range", "ip_ranges", multiple=True, help="allocate from this sub-prefix")
@click.option("--aux-address", "aux", multiple=True, help="NAME=ADDR reserved, never handed out")
@click.option("--ipv6", is_flag=True, help="IPv6 too (a unique local /64 without an IPv6 subnet)")
@click.option(
    "--ipv4",
    type=click.BOOL,
    default=True,
    show_default=True,
    help="--ipv4=false with --ipv6: an IPv6-only network",
)
@click.option("--internal", is_flag=True, help="no way out: no NAT, no mapped ports")
@click.option("-o", "--opt", "opts", multiple=True, help="driver option KEY=VALUE")
@click.option(
    "--acl",
    "acls",
    multiple=True,
    help="NetworkACL rule for every endpoint (see 'hostnet run --acl')",
)
@click.argument("name")
@click.pass_context
def network_create(
    ctx: click.Context,
    driver: str,
    subnets: tuple[str, ...],
    gateways: tuple[str, ...],
    ip_ranges: tuple[str, ...],
    aux: tuple[str, ...],
    ipv6: bool,
    ipv4: bool,
    internal: bool,
    opts: tuple[str, ...],
    acls: tuple[str, ...],
    name: str,
) -> None:
    """Create a network."""
    net = _client(ctx).post(
        "/networks",
        {
            "name": name,
            "driver": driver,
            "subnets": list(subnets),
            "gateways": list(gateways),
            "ip_ranges": list(ip_ranges),
            "aux_addresses": parse_aux(aux),
            "ipv6": ipv6,
            "ipv4": ipv4,
            "internal": internal,
            "options": parse_opts(opts),
            "acl": list(acls),
        },
    )
    click.echo(net["Id"])


@network.command("ls")
@FORMAT
@NAMES
@click.pass_context
def network_ls(ctx: click.Context, fmt: str, patterns: tuple[str, ...]) -> None:
    """List networks."""
    rows = wildcard.select(
        _client(ctx).get("/networks"),
        patterns,
        lambda r: [r["Name"]],
        "network",
        "list them with 'hostnet network ls'",
    )
    for r in rows:
        r["Id"] = r["Id"][:12] if fmt == "table" else r["Id"]
        if fmt == "table":  # both families in the columns they share
            r["Subnet"] = " ".join(x for x in (r["Subnet"], r["SubnetIPv6"]) if x)
            r["Gateway"] = " ".join(x for x in (r["Gateway"], r["GatewayIPv6"]) if x)
    print_rows(rows, fmt, ["Id", "Name", "Driver", "Scope", "Subnet", "Gateway", "Docker"])


@network.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def network_inspect(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Show networks as Docker-shaped JSON."""
    c = _client(ctx)
    click.echo(json.dumps([c.get(f"/networks/{q(n)}") for n in names], indent=2))


@network.command("rm")
@click.option("-f", "--force", is_flag=True, help="also remove the endpoints on it")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def network_rm(ctx: click.Context, force: bool, names: tuple[str, ...]) -> None:
    """Remove networks."""
    c = _client(ctx)
    for n in names:
        c.delete(f"/networks/{q(n)}" + ("?force=1" if force else ""))
        click.echo(n)


@network.command("prune")
@click.pass_context
def network_prune(ctx: click.Context) -> None:
    """Remove every network with no endpoints (the default nat network stays)."""
    for n in _client(ctx).post("/networks/prune")["NetworksDeleted"]:
        click.echo(n)


@network.command("connect")
@click.option("--ip", default="")
@click.option("--ip6", default="")
@click.option("--alias", "aliases", multiple=True, help="another name on this network (DNS)")
@click.option("--max-bandwidth", default="", help="maximum outgoing bytes/s (k, m, g: 1000s)")
@click.option("--policy", "policies", multiple=True, help="HNS OutBoundNAT/SDNRoute policy (JSON)")
@click.argument("net")
@click.argument("container")
@click.pass_context
def network_connect(
    ctx: click.Context,
    ip: str,
    ip6: str,
    aliases: tuple[str, ...],
    max_bandwidth: str,
    policies: tuple[str, ...],
    net: str,
    container: str,
) -> None:
    """Connect a running container to a network (hot add)."""
    body = {"container": container, "ip": ip, "ip6": ip6, "aliases": list(aliases)}
    body |= {"max_bandwidth": max_bandwidth, "policies": list(policies)}
    _client(ctx).post(f"/networks/{q(net)}/connect", body)


@network.command("disconnect")
@click.argument("net")
@click.argument("container")
@click.pass_context
def network_disconnect(ctx: click.Context, net: str, container: str) -> None:
    """Disconnect a container from a network (hot remove)."""
    _client(ctx).post(f"/networks/{q(net)}/disconnect", {"container": container})


@cli.command("ps")
@FORMAT
@click.option("-a", "--all", "show_all", is_flag=True, help="stopped and created ones too")
@NAMES
@click.pass_context
def ps(ctx: click.Context, fmt: str, show_all: bool, patterns: tuple[str, ...]) -> None:
    """List running containers (with -a, stopped and created ones too)."""
    rows = wildcard.select(
        [r for r in _client(ctx).get("/containers") if show_all or r["State"] == "running"],
        patterns,
        lambda r: [r["Name"]],
        "container" if show_all else "running container",
        "list them with 'hostnet ps -a'",
    )
    if fmt == "json":
        print_rows(rows, fmt)
        return
    table = [
        {
            "Id": r["Id"][:12],
            "Name": r["Name"],
            "Pid": r["Pid"],
            "State": r["State"],
            "Compartment": r["CompartmentId"],
            "Networks": ", ".join(
                f"{n}={'+'.join(a for a in (e['IPAddress'], e['GlobalIPv6Address']) if a)}"
                for n, e in r["Networks"].items()
            ),
        }
        for r in rows
    ]
    print_rows(table, fmt, ["Id", "Name", "State", "Pid", "Compartment", "Networks"])


@cli.command("rm")
@click.option(
    "-f", "--force", is_flag=True, help="accepted for Docker compatibility; rm always stops"
)
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, force: bool, names: tuple[str, ...]) -> None:
    """Stop containers and remove their compartments and endpoints."""
    c = _client(ctx)
    for n in names:
        c.delete(f"/containers/{q(n)}")
        click.echo(n)


@cli.group()
def port() -> None:
    """Published ports of a running container (hot add and remove)."""


@port.command("add")
@click.argument("container")
@click.argument("specs", nargs=-1, required=True)
@click.pass_context
def port_add(ctx: click.Context, container: str, specs: tuple[str, ...]) -> None:
    """Publish SPECS ([HOSTIP:]HOSTPORT:CONTAINERPORT[/proto]) of CONTAINER."""
    for p in _client(ctx).post(f"/containers/{q(container)}/ports", {"ports": list(specs)}):
        host = p["host_ip"] or "0.0.0.0"
        host = f"[{host}]" if ":" in host else host
        click.echo(f"{host}:{p['host_port']}->{p['container_port']}/{p['protocol']}")


@port.command("rm")
@click.argument("container")
@click.argument("specs", nargs=-1, required=True)
@click.pass_context
def port_rm(ctx: click.Context, container: str, specs: tuple[str, ...]) -> None:
    """Unpublish SPECS of CONTAINER."""
    _client(ctx).post(f"/containers/{q(container)}/ports/remove", {"ports": list(specs)})


@cli.group()
def endpoint() -> None:
    """Endpoints (vNICs) and their policies."""


@endpoint.command("inspect")
@click.option("--network", default="", help="the endpoint on this network (default: the first)")
@click.argument("container")
@click.pass_context
def endpoint_inspect(ctx: click.Context, network: str, container: str) -> None:
    """Show a container's endpoint in HNS form, with its policies."""
    suffix = f"?network={q(network)}" if network else ""
    click.echo(
        json.dumps(_client(ctx).get(f"/containers/{q(container)}/endpoint{suffix}"), indent=2)
    )


@endpoint.group("acl")
def endpoint_acl() -> None:
    """Port ACLs of an endpoint: action=allow|block;dir=in|out;proto=..;lport=..;raddr=..;prio=N"""


def _acl_rules(ctx: click.Context, container: str, network: str) -> list[dict[str, Any]]:
    suffix = f"?network={q(network)}" if network else ""
    ep = _client(ctx).get(f"/containers/{q(container)}/endpoint{suffix}")
    return [p["Settings"] for p in ep["Policies"] if p["Type"] == "ACL"]


def _spec(rule: dict[str, Any]) -> str:
    parts = [
        f"action={rule['Action'].lower()}",
        f"dir={rule['Direction'].lower()}",
        "proto=" + ",".join("any" if p == 256 else str(p) for p in rule["Protocols"]),
        f"prio={rule['Priority']}",
    ]
    for key, short in (
        ("LocalPorts", "lport"),
        ("RemotePorts", "rport"),
        ("LocalAddresses", "laddr"),
        ("RemoteAddresses", "raddr"),
    ):
        if rule[key]:
            parts.append(f"{short}={','.join(rule[key])}")
    return ";".join(parts)


@endpoint_acl.command("ls")
@click.option("--network", default="")
@FORMAT
@click.argument("container")
@click.pass_context
def acl_ls(ctx: click.Context, network: str, fmt: str, container: str) -> None:
    rules = _acl_rules(ctx, container, network)
    print_rows([{"N": i, **r} for i, r in enumerate(rules)], fmt)


@endpoint_acl.command("add")
@click.option("--network", default="")
@click.argument("container")
@click.argument("specs", nargs=-1, required=True)
@click.pass_context
def acl_add(ctx: click.Context, network: str, container: str, specs: tuple[str, ...]) -> None:
    """Add rules; the endpoint's whole rule set is replaced in one step."""
    rules = [_spec(r) for r in _acl_rules(ctx, container, network)] + list(specs)
    _client(ctx).request(
        "PUT", f"/containers/{q(container)}/acl", {"rules": rules, "network": network}
    )


@endpoint_acl.command("rm")
@click.option("--network", default="")
@click.argument("container")
@click.argument("numbers", nargs=-1, type=int, required=True)
@click.pass_context
def acl_rm(ctx: click.Context, network: str, container: str, numbers: tuple[int, ...]) -> None:
    """Remove rules by their number in 'acl ls'."""
    rules = _acl_rules(ctx, container, network)
    bad = [n for n in numbers if not 0 <= n < len(rules)]
    if bad:
        raise click.ClickException(f"no rule number {bad[0]}; see 'hostnet endpoint acl ls'")
    keep = [_spec(r) for i, r in enumerate(rules) if i not in numbers]
    _client(ctx).request(
        "PUT", f"/containers/{q(container)}/acl", {"rules": keep, "network": network}
    )


@cli.group()
def compartment() -> None:
    """Network compartments (Get-NetCompartment)."""


@compartment.command("ls")
@FORMAT
@click.pass_context
def compartment_ls(ctx: click.Context, fmt: str) -> None:
    print_rows(_client(ctx).get("/compartments"), fmt)


@cli.group()
def nat() -> None:
    """NAT and its static mappings (Get-NetNat, Get-NetNatStaticMapping)."""


@nat.command("ls")
@FORMAT
@click.pass_context
def nat_ls(ctx: click.Context, fmt: str) -> None:
    print_rows(_client(ctx).get("/nat"), fmt)


@cli.group()
def switch() -> None:
    """Virtual switches (Get-VMSwitch)."""


@switch.command("ls")
@FORMAT
@NAMES
@click.pass_context
def switch_ls(ctx: click.Context, fmt: str, patterns: tuple[str, ...]) -> None:
    """Every network's switch, then bridges no hostnet made (Get-VMSwitch)."""
    rows = wildcard.select(
        _client(ctx).get("/switches"),
        patterns,
        lambda r: [r["Switch"]],
        "switch",
        "list them with 'hostnet switch ls'",
    )
    print_rows(
        rows, fmt, [k for k in dict.fromkeys(k for r in rows for k in r) if k != "PortNames"]
    )


@switch.command("extension")
@click.argument("name")
@FORMAT
@click.pass_context
def switch_extension(ctx: click.Context, name: str, fmt: str) -> None:
    """The datapath pieces serving a switch and whether each is there (Get-VMSwitchExtension)."""
    view = _client(ctx).get(f"/switches/{q(name)}/extension")
    if fmt == "json":
        click.echo(json.dumps(view, indent=2))
        return
    for key in ("Name", "Vendor", "SwitchName", "Kernel", "Enabled", "Running", "Note"):
        if key in view:
            click.echo(f"{key + ':':<12}{view[key]}")
    click.echo()
    print_rows(view["Pieces"], fmt)


@cli.group()
def docker() -> None:
    """Docker integration (hostnetd serves Docker's plugin protocol)."""


@docker.command("expose")
@click.option(
    "--docker",
    "docker_cmd",
    default="docker",
    show_default=True,
    help="the docker CLI to run (DOCKER_HOST is honoured)",
)
@click.argument("names", nargs=-1)
@click.pass_context
def docker_expose(ctx: click.Context, docker_cmd: str, names: tuple[str, ...]) -> None:
    """Make hostnet networks (default: all) usable from Docker under the same name.

    Each becomes a Docker network of the same driver bound to the hostnet network, with
    its subnets (IPv4, and IPv6 with --ipv6 when it has one) and addresses from hostnet's
    IPAM, so 'docker run --network nat' works. A Docker network of that name already
    bound to it is left as it is; a stale one (hostnet's state lost, the network made
    again, another subnet) is made again unless Docker containers use it; one hostnet did
    not expose is refused.
    """
    nets = _client(ctx).get("/networks")
    wanted = [n for n in nets if not names or n["Name"] in names]
    missing = set(names) - {n["Name"] for n in nets}
    if missing:
        raise click.ClickException(f"no hostnet network named {', '.join(sorted(missing))}")
    failed = []
    for n in wanted:
        try:
            click.echo(f"{n['Name']}: {_expose_one(ctx, docker_cmd, n)}")
        except click.ClickException as exc:
            click.echo(f"Error: {exc.message}", err=True)
            failed.append(n["Name"])
    if failed:
        raise click.ClickException(f"not exposed: {', '.join(failed)}")


def _docker(docker_cmd: str, *args: str) -> subprocess.CompletedProcess[str]:
    import subprocess

    try:
        return subprocess.run([docker_cmd, *args], capture_output=True, text=True)
    except OSError as exc:
        raise click.ClickException(
            f"cannot run the docker CLI {docker_cmd!r}: {exc.strerror}; install it or "
            "give its path with --docker"
        ) from None


def _expose_one(ctx: click.Context, docker_cmd: str, n: dict[str, Any]) -> str:
    """Expose one hostnet network (a network summary); says what was done."""
    name, driver = n["Name"], n["Driver"]
    found = _docker(docker_cmd, "network", "inspect", name)
    view = None
    if found.returncode == 0:
        views = json.loads(found.stdout or "[]")
        view = views[0] if views else None
    elif "No such network" not in found.stderr and "not found" not in found.stderr:
        raise click.ClickException(f"docker network inspect {name} failed: {found.stderr.strip()}")
    verdict = docker_binding.expose_verdict(view, n)
    if verdict.action == "refuse":
        raise click.ClickException(verdict.why)
    if verdict.action == "bound":
        _client(ctx).post(f"/networks/{q(name)}/docker")
        return f"already exposed to Docker (Docker network {str(view and view['Id'])[:12]})"
    if view is not None:  # stale: made again, if no container of Docker's uses it
        users = [str(c.get("Name")) for c in (view.get("Containers") or {}).values()]
        if users:
            raise click.ClickException(docker_binding.in_use_refusal(name, verdict.why, users))
        res = _docker(docker_cmd, "network", "rm", str(view["Id"]))
        if res.returncode != 0:
            raise click.ClickException(
                f"docker network rm {name} (stale: {verdict.why}) failed: {res.stderr.strip()}"
            )
    # --subnet spares Docker its host-overlap check, which this network's own bridge would
    # fail forever
    argv = ["network", "create", "-d", registry.docker_name(driver)]
    argv += ["--ipam-driver", "hostnet-ipam", "--ipam-opt", f"hostnet.network={name}"]
    argv += ["-o", f"hostnet.network={name}"]
    if n.get("Subnet"):
        argv += ["--subnet", n["Subnet"], "--gateway", n["Gateway"]]
    if n.get("SubnetIPv6"):  # dual stack: Docker asks hostnet-ipam for both pools
        argv += ["--ipv6", "--subnet", n["SubnetIPv6"], "--gateway", n["GatewayIPv6"]]
    if n.get("Internal"):
        argv.append("--internal")
    res = _docker(docker_cmd, *argv, name)
    if res.returncode != 0:
        raise click.ClickException(f"docker network create {name} failed: {res.stderr.strip()}")
    _client(ctx).post(f"/networks/{q(name)}/docker")  # made again when Docker starts anew
    if view is None:
        return "exposed to Docker"
    return f"Docker network made again ({verdict.why})"


@cli.group()
def system() -> None:
    """Daemon-wide operations."""


@system.command("reconcile")
@click.pass_context
def system_reconcile(ctx: click.Context) -> None:
    """Make the kernel match intent now (also done at every daemon start)."""
    click.echo(json.dumps(_client(ctx).post("/system/reconcile"), indent=2))


@system.command("info")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def system_info(ctx: click.Context, fmt: str) -> None:
    """Versions, the store, this daemon's instance and the kernel pieces it uses."""
    info = _client(ctx).get("/system/info")
    info["Client"] = {"Version": hostnet.__version__, "Executable": sys.executable}
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
        return
    kernel, store = info["Kernel"], info["Store"]
    rows = [
        ("hostnet", f"{info['Client']['Version']} (CLI), {info['Version']} (daemon)"),
        ("python", f"{info['Python']} ({info['Executable']})"),
        ("instance", f"{info['Instance']}" + (f", host {info['Host']}" if info["Host"] else "")),
        ("state", info["StateDir"]),
        ("store", f"{store['Kind']} {store['Location']}"),
        (
            "objects",
            f"{info['Networks']} networks, {info['Containers']} containers, "
            f"{info['Endpoints']} endpoints",
        ),
        ("drivers in use", ", ".join(info["DriversInUse"]) or "-"),
        ("kernel", kernel["Release"]),
        ("nft tables", ", ".join(kernel["NftTables"]) or "-"),
        ("links", ", ".join(f"{n} {k}" for k, n in kernel["Links"].items()) or "-"),
        ("modules", ", ".join(f"{m} {'yes' if v else 'no'}" for m, v in kernel["Modules"].items())),
    ]
    for k, v in rows:
        click.echo(f"{k + ':':<16}{v}")


@system.command("reset")
@click.option("--force", "-f", is_flag=True, help="do not ask for confirmation")
@click.pass_context
def system_reset(ctx: click.Context, force: bool) -> None:
    """Remove everything this daemon made and its state; the daemon then stops.

    Compartments it owns, switches, bound adapters (given back their addresses), nft
    tables, tc programs, DHCP clients; then the state. On an etcd store the cluster's
    overlay networks stay in the cluster (only this host's share of them goes).
    """
    c = _client(ctx)
    plan = c.get("/system/reset")
    if not force:
        click.echo(
            f"This removes {len(plan['Containers'])} container(s) "
            f"({plan['Endpoints']} endpoint(s)) and {len(plan['Networks'])} network(s)"
            + (f": {', '.join(plan['Networks'])}" if plan["Networks"] else "")
            + f", then {plan['Store']['Kind']} state in {plan['StateDir']}; hostnetd stops."
        )
        if plan["KeptInCluster"]:
            click.echo(f"Kept in the cluster: {', '.join(plan['KeptInCluster'])}.")
        if not click.confirm("Reset hostnet?", default=False):
            click.echo("cancelled: nothing changed")
            sys.exit(1)
    out = c.post("/system/reset", {"confirm": True})
    click.echo(
        f"removed {len(out['Containers'])} container(s), {len(out['Networks'])} network(s), "
        f"{len(out['Tables'])} nft table(s), {len(out['Swept'])} stale object(s); "
        "hostnetd stopped and its state is gone"
    )
    for e in out["Errors"]:
        click.echo(f"warning: {e}", err=True)


@cli.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script (the installer puts bash's in place).

    e.g. eval "$(hostnet completion bash)" or hostnet completion zsh > ~/.zfunc/_hostnet
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "hostnet", "_HOSTNET_COMPLETE").source())


@cli.group()
def node() -> None:
    """Cluster hosts (with --store etcd://...): ls, rm."""


@node.command("ls")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def node_ls(ctx: click.Context, fmt: str) -> None:
    """Every member of the cluster: its VTEP (underlay address), whether its daemon holds
    its lease (alive, or lease lost: stopped, killed or cut off) and its overlay endpoints."""
    rows = _client(ctx).get("/cluster/hosts")
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'HOST':<24} {'VTEP':<16} {'STATE':<11} ENDPOINTS")
    for r in rows:
        click.echo(f"{r['Host']:<24} {r['VTEP']:<16} {r['State']:<11} {r['Endpoints']}")


@node.command("rm")
@click.argument("host")
@click.pass_context
def node_rm(ctx: click.Context, host: str) -> None:
    """Forget a host gone for good: its overlay endpoints leave every forwarding table."""
    out = _client(ctx).delete(f"/cluster/hosts/{q(host)}")
    click.echo(f"removed {out['EndpointsRemoved']} endpoint(s) of {host}")


def main() -> None:
    from hostnet.cli import hns as cli_hns
    from hostnet.cli import lifecycle as cli_lifecycle
    from hostnet.cli import ops as cli_ops
    from hostnet.cli import powershell
    from hostnet.cli.runcmd import run  # registers `hostnet run`

    cli.add_command(run)
    cli_ops.register(cli)  # doctor, topology
    cli_lifecycle.register(cli)  # create, start, stop, restart, exec, ipconfig, adapter
    cli_hns.register(cli)  # hns network|endpoint|namespace|policylist (the Hns cmdlets)
    try:
        if len(sys.argv) > 1 and powershell.is_cmdlet(sys.argv[1]):
            sys.exit(powershell.run(cli, sys.argv[1:]))  # the seed's cmdlets, as written
        cli.main(standalone_mode=False)
    except HostnetError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        if exc.remedy:
            click.echo(f"  what to do: {exc.remedy}", err=True)
        sys.exit(125 if exc.status >= 500 and exc.kind == "unavailable" else 1)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
