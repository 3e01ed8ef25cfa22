"""``hostnet hns ...``: the HNS helpers Windows node operators type (microsoft/SDN
``Kubernetes/windows/hns.psm1``, ``hns.v2.psm1``, the HNS PowerShell module), over
hostnetd's /hns (v1) and /hcn (v2) faces. Every command prints JSON: the HNS objects as
hcsshim marshals them (``--schema 1``: HNSNetwork/HNSEndpoint; ``--schema 2``: HCN's).
The cmdlets (``Get-HnsNetwork`` ...) translate to these (``cmdlets``).
"""

from __future__ import annotations

import json
from typing import Any

import click

from hostnet import hcn
from hostnet.client import q
from hostnet.errors import InvalidRequest, NotFound

SCHEMA = click.option(
    "--schema",
    type=click.Choice(["1", "2"]),
    default="1",
    show_default=True,
    help="1: the v1 HNS objects (/hns); 2: the HCN objects (/hcn)",
)


def _client(ctx: click.Context) -> hcn.HcnClient:
    return hcn.HcnClient(ctx.find_root().params.get("socket"))


def _echo(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _v2(kind: str, c: hcn.HcnClient, flt: dict[str, str]) -> list[dict[str, Any]]:
    query = {
        "SchemaVersion": {"Major": 2, "Minor": 0},
        **({"Filter": json.dumps(flt)} if flt else {}),
    }
    return c.enumerate(kind, query)


def _one(rows: list[dict[str, Any]], what: str, oid: str, ls: str) -> dict[str, Any]:
    if not rows:
        raise NotFound(f'{what} ID "{oid}" not found', f"list them with {ls}")
    return rows[0]


@click.group("hns")
def hns() -> None:
    """HNS objects as HNS shows them (JSON): networks, endpoints, namespaces, policy lists."""


@hns.group("network")
def network() -> None:
    """HNS networks (Get-HnsNetwork, New-HnsNetwork, Remove-HnsNetwork)."""


@network.command("ls")
@click.option("--id", "oid", default="", help="only this network (its ID)")
@SCHEMA
@click.pass_context
def network_ls(ctx: click.Context, oid: str, schema: str) -> None:
    """List networks (one object with --id)."""
    c = _client(ctx)
    if schema == "2":
        rows = _v2("networks", c, {"ID": oid} if oid else {})
        _echo(_one(rows, "Network", oid, "hostnet hns network ls") if oid else rows)
    else:
        _echo(c.hns_call("GET", f"/networks/{q(oid)}" if oid else "/networks/"))


def _v1_subnets(prefixes: tuple[str, ...], gateways: tuple[str, ...]) -> list[dict[str, str]]:
    """hns.psm1's pairing: the i-th gateway goes with the i-th prefix."""
    if len(gateways) > len(prefixes):
        raise InvalidRequest(
            f"{len(gateways)} gateways for {len(prefixes)} address prefixes",
            "give one --address-prefix per --gateway (the i-th gateway is the i-th prefix's)",
        )
    out = []
    for i, prefix in enumerate(prefixes):
        subnet = {"AddressPrefix": prefix}
        if i < len(gateways) and gateways[i]:
            subnet["GatewayAddress"] = gateways[i]
        out.append(subnet)
    return out


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"--json is not JSON ({exc.msg})", f"give the {what} as JSON"
        ) from None
    if not isinstance(obj, dict):
        raise InvalidRequest("--json is not a JSON object", f"give the {what} as a JSON object")
    return obj


def _only_json(given: dict[str, Any], what: str) -> None:
    extra = [f"--{k.replace('_', '-')}" for k, v in given.items() if v]
    if extra:
        raise InvalidRequest(
            f"--json and {', '.join(extra)} together: the JSON is the whole {what}",
            f"put {', '.join(extra)} into the JSON, or leave --json out",
        )


@network.command("create")
@click.option("--json", "raw", default="", help="the whole HNSNetwork as JSON (-JsonString)")
@click.option("--type", "ntype", default="", help="NAT, Transparent, L2Bridge, L2Tunnel, Overlay …")
@click.option("--name", default="")
@click.option("--address-prefix", "prefixes", multiple=True, help="a subnet (repeat for more)")
@click.option(
    "--gateway", "gateways", multiple=True, help="the gateway of the same-numbered subnet"
)
@click.option("--dns-server", default="", help="DNS servers, a,b (DNSServerList)")
@click.option("--adapter-name", default="", help="the host adapter (NetworkAdapterName)")
@click.pass_context
def network_create(
    ctx: click.Context,
    raw: str,
    ntype: str,
    name: str,
    prefixes: tuple[str, ...],
    gateways: tuple[str, ...],
    dns_server: str,
    adapter_name: str,
) -> None:
    """Create a network through /hns/networks/ (as hns.psm1's New-HnsNetwork); prints it."""
    if raw:
        _only_json(
            {"type": ntype, "name": name, "address_prefix": prefixes, "gateway": gateways,
             "dns_server": dns_server, "adapter_name": adapter_name}, "HNSNetwork")  # fmt: skip
        body = _json_object(raw, "HNSNetwork")
    else:
        if not ntype:
            raise InvalidRequest("a network needs --type (or --json)", "e.g. --type NAT")
        body = {"Type": ntype}
        if name:
            body["Name"] = name
        if prefixes or gateways:
            body["Subnets"] = _v1_subnets(prefixes, gateways)
        if dns_server:
            body["DNSServerList"] = dns_server
        if adapter_name:
            body["NetworkAdapterName"] = adapter_name
    _echo(_client(ctx).hns_call("POST", "/networks/", body))


def _pick(
    c: hcn.HcnClient, kind: str, ids: tuple[str, ...], names: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The v1 objects named by --id and --name (each must exist), in the order given."""
    what = kind.rstrip("s")
    if not ids and not names:
        raise InvalidRequest(
            f"say which {what}: --id or --name",
            f"(PowerShell pipes objects in: Get-Hns{what.title()} | Remove-Hns{what.title()}; "
            "here give -Id or -Name)",
        )
    rows: list[dict[str, Any]] = c.hns_call("GET", f"/{kind}/") or []
    picked = []
    for oid in ids:
        found = [r for r in rows if str(r.get("ID", "")).lower() == oid.strip("{}").lower()]
        picked += [_one(found, what.title(), oid, f"hostnet hns {what} ls")]
    for name in names:
        found = [r for r in rows if r.get("Name") == name]
        if not found:
            raise NotFound(f"no {what} named {name!r}", f"list them with hostnet hns {what} ls")
        picked += found
    return picked


def _remove(ctx: click.Context, kind: str, ids: tuple[str, ...], names: tuple[str, ...]) -> None:
    c = _client(ctx)
    _echo([c.hns_call("DELETE", f"/{kind}/{q(r['ID'])}") for r in _pick(c, kind, ids, names)])


@network.command("rm")
@click.option("--id", "ids", multiple=True, help="a network's ID (repeat for more)")
@click.option("--name", "names", multiple=True, help="a network's name (repeat for more)")
@click.pass_context
def network_rm(ctx: click.Context, ids: tuple[str, ...], names: tuple[str, ...]) -> None:
    """Remove networks (and their endpoints); prints what was removed."""
    _remove(ctx, "networks", ids, names)


@hns.group("endpoint")
def endpoint() -> None:
    """HNS endpoints (Get-/New-/Remove-HnsEndpoint, Attach-HnsHostEndpoint)."""


@endpoint.command("ls")
@click.option("--id", "oid", default="", help="only this endpoint (its ID)")
@click.option("--network-id", default="", help="only the endpoints of this network")
@click.option("--network-name", default="", help="only the endpoints of the network so named")
@SCHEMA
@click.pass_context
def endpoint_ls(
    ctx: click.Context, oid: str, network_id: str, network_name: str, schema: str
) -> None:
    """List endpoints (one object with --id)."""
    c = _client(ctx)
    if network_name:
        nets = [n for n in c.hns_call("GET", "/networks/") or [] if n.get("Name") == network_name]
        if not nets:
            raise NotFound(f"no network named {network_name!r}", "hostnet hns network ls")
        network_id = network_id or nets[0]["ID"]
        if network_id.lower() != nets[0]["ID"].lower():
            _echo([])
            return
    if schema == "2":
        flt = {"ID": oid} if oid else {}
        rows = _v2(
            "endpoints", c, {**flt, **({"VirtualNetwork": network_id} if network_id else {})}
        )
        _echo(_one(rows, "Endpoint", oid, "hostnet hns endpoint ls") if oid else rows)
        return
    if oid:
        ep = c.hns_call("GET", f"/endpoints/{q(oid)}")
        if network_id and str(ep.get("VirtualNetwork", "")).lower() != network_id.lower():
            raise NotFound(f'Endpoint ID "{oid}" not found on network {network_id}')
        _echo(ep)
        return
    rows = c.hns_call("GET", "/endpoints/") or []
    if network_id:
        rows = [r for r in rows if str(r.get("VirtualNetwork", "")).lower() == network_id.lower()]
    _echo(rows)


@endpoint.command("create")
@click.option("--json", "raw", default="", help="the whole HNSEndpoint as JSON (-JsonString)")
@click.option("--network-id", default="", help="the network's ID (VirtualNetwork)")
@click.option("--name", default="")
@click.option("--ip-address", default="")
@click.option("--gateway", default="", help="GatewayAddress")
@click.option("--mac-address", default="")
@click.option("--enable-outbound-nat", is_flag=True, help="an OutBoundNAT policy")
@click.pass_context
def endpoint_create(
    ctx: click.Context,
    raw: str,
    network_id: str,
    name: str,
    ip_address: str,
    gateway: str,
    mac_address: str,
    enable_outbound_nat: bool,
) -> None:
    """Create an endpoint through /hns/endpoints/ (as hns.psm1's New-HnsEndpoint); prints it."""
    if raw:
        _only_json(
            {"network_id": network_id, "name": name, "ip_address": ip_address, "gateway": gateway,
             "mac_address": mac_address, "enable_outbound_nat": enable_outbound_nat},
            "HNSEndpoint")  # fmt: skip
        body = _json_object(raw, "HNSEndpoint")
    else:
        if not network_id:
            raise InvalidRequest(
                "an endpoint needs --network-id (or --json)", "hostnet hns network ls"
            )
        body = {"VirtualNetwork": network_id, "Policies": []}
        for key, value in (("Name", name), ("MacAddress", mac_address), ("IPAddress", ip_address),
                           ("GatewayAddress", gateway)):  # fmt: skip
            if value:
                body[key] = value
        if enable_outbound_nat:
            body["Policies"] = [{"Type": "OutBoundNAT"}]
    _echo(_client(ctx).hns_call("POST", "/endpoints/", body))


@endpoint.command("rm")
@click.option("--id", "ids", multiple=True, help="an endpoint's ID (repeat for more)")
@click.option("--name", "names", multiple=True, help="an endpoint's name (repeat for more)")
@click.pass_context
def endpoint_rm(ctx: click.Context, ids: tuple[str, ...], names: tuple[str, ...]) -> None:
    """Remove endpoints; prints what was removed."""
    _remove(ctx, "endpoints", ids, names)


@endpoint.command("attach-host")
@click.option("--endpoint-id", required=True)
@click.option("--compartment-id", required=True, type=click.IntRange(0, 2**16 - 1))
@click.pass_context
def endpoint_attach_host(ctx: click.Context, endpoint_id: str, compartment_id: int) -> None:
    """Make the endpoint the host's vNIC on its network (SystemType Host); prints it."""
    body = {"SystemType": "Host", "CompartmentId": compartment_id}
    _echo(_client(ctx).hns_call("POST", f"/endpoints/{q(endpoint_id)}/attach", body))


@hns.group("namespace")
def namespace() -> None:
    """HCN namespaces (Get-HnsNamespace): compartments and their endpoints."""


@namespace.command("ls")
@click.option("--id", "oid", default="", help="only this namespace (its ID)")
@click.pass_context
def namespace_ls(ctx: click.Context, oid: str) -> None:
    """List namespaces as HostComputeNamespace (one object with --id)."""
    rows = _v2("namespaces", _client(ctx), {"ID": oid} if oid else {})
    _echo(_one(rows, "Namespace", oid, "hostnet hns namespace ls") if oid else rows)


@hns.group("policylist")
def policylist() -> None:
    """HNS policy lists (Get-HnsPolicyList)."""


@policylist.command("ls")
@click.option("--id", "oid", default="", help="only this policy list (its ID)")
@click.pass_context
def policylist_ls(ctx: click.Context, oid: str) -> None:
    """List policy lists (none until load balancers exist)."""
    _echo(_client(ctx).hns_call("GET", f"/policylists/{q(oid)}" if oid else "/policylists/"))


def register(cli: click.Group) -> None:
    cli.add_command(hns)
