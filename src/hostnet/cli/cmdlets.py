"""What each of the seed's cmdlets becomes: a hostnet command line built from its
parameters (see hostnet/cli/powershell.py for the parsing and the table of cmdlets).

Each builder takes the parsed parameters and a client (some look up the daemon's state,
e.g. a switch's network or whether a container runs) and returns hostnet's argument
list, or None when it printed its answer itself. A parameter hostnet cannot honour is a
CmdletError naming it, why, and what to use; nothing has changed then.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import click

from hostnet.cli import wildcard
from hostnet.client import Client, q
from hostnet.drivers import registry
from hostnet.errors import Conflict

Params = dict[str, str]
Build = Callable[[Params, Client], "list[str] | None"]
VFP = "microsoft azure vfp switch extension"
MODES = registry.modes()  # -Mode, lower case -> hostnet driver
_MODE_NAMES = [m for i in registry.BUILTIN for m in i.modes]


class CmdletError(click.ClickException):
    """A cmdlet line hostnet cannot run as written (exit code 2, as a usage error)."""

    exit_code = 2


def items(value: str) -> list[str]:
    """A PowerShell list ``a,b`` (each item may be quoted)."""
    return [v.strip().strip('"').strip("'") for v in value.split(",") if v.strip()]


def network_of_switch(client: Client, switch: str) -> str:
    """The network whose switch is named ``switch`` (switch ls), or the network of that name."""
    for row in client.get("/switches"):
        if str(row.get("Switch", "")).lower() == switch.lower():
            return str(row["Networks"]).split(",")[0].strip()
    return switch


def named(p: Params, key: str = "Name") -> list[str]:
    return ["--name", p[key]] if p.get(key) else []


def name_filters(p: Params) -> list[str]:
    """-Name a*,b as ``--name a* --name b`` (the ls commands match PowerShell's wildcards)."""
    return [arg for pattern in items(p.get("Name", "")) for arg in ("--name", pattern)]


def listing(*args: str) -> Build:
    """A Get- cmdlet whose -Name filters what ``args`` lists."""
    return lambda p, _c: [*args, *name_filters(p)]


def fixed(*args: str) -> Build:
    return lambda _p, _c: list(args)


def new_network(p: Params, _: Client) -> list[str]:
    mode = p.get("Mode", "NAT").lower()
    if mode not in MODES:
        raise CmdletError(
            f"New-ContainerNetwork -Mode {p['Mode']}: hostnet has "
            f"{', '.join(_MODE_NAMES[:-1])} and {_MODE_NAMES[-1]}"
        )
    args = ["network", "create", "-d", MODES[mode]]
    for s in items(p.get("SubnetPrefix", "")):
        args += ["--subnet", s]
    for g in items(p.get("GatewayAddress", "")):
        args += ["--gateway", g]
    if p.get("DNSServers"):
        args += ["-o", "dnsservers=" + ",".join(items(p["DNSServers"]))]
    if p.get("DNSSuffix"):
        args += ["-o", f"dnssuffix={p['DNSSuffix']}"]
    if p.get("NetworkAdapterName"):
        args += ["-o", "interface=" + ",".join(items(p["NetworkAdapterName"]))]
    return [*args, p["Name"]]


def remove_network(p: Params, _: Client) -> list[str]:
    return ["network", "rm", *(["--force"] if p.get("Force") else []), *items(p["Name"])]


def new_container(p: Params, client: Client) -> list[str]:
    if p.get("NetworkName") and p.get("SwitchName"):
        raise CmdletError(
            "New-Container takes -NetworkName or -SwitchName, not both: each names the one "
            "network its first adapter joins; add another adapter with "
            "Add-ContainerNetworkAdapter -SwitchName"
        )
    args = ["create", "--name", p["Name"]]
    if p.get("ContainerImageName"):
        args += ["--image", p["ContainerImageName"]]
    net = p.get("NetworkName") or (
        network_of_switch(client, p["SwitchName"]) if p.get("SwitchName") else ""
    )
    return [*args, *(["--network", net] if net else [])]


def each_container(verb: str, *flags: str) -> Build:
    """Start-/Restart-Container: the command once for every name of -Name a,b."""
    return lambda p, _c: [verb, *flags, *items(p["Name"])]


def stop_container(p: Params, _: Client) -> list[str]:
    # -TurnOff pulls the plug; -Force stops it at once too: neither waits out the grace period
    at_once = p.get("TurnOff") or p.get("Force")
    return ["stop", *(["-t", "0"] if at_once else []), *items(p["Name"])]


def remove_container(p: Params, client: Client) -> list[str]:
    """Remove-Container refuses a running container unless -Force (which stops it first)."""
    names = items(p["Name"])
    if not p.get("Force"):
        running = [n for n in names if client.get(f"/containers/{q(n)}")["State"] == "running"]
        if running:
            listed = ", ".join(running)
            raise Conflict(
                f"Remove-Container: {listed} {'is' if len(running) == 1 else 'are'} running; "
                "nothing was removed",
                f"stop it first (Stop-Container {listed}), or add -Force to stop and remove it",
            )
    return ["rm", *(["--force"] if p.get("Force") else []), *names]


def _adapter_args(p: Params) -> list[str]:
    args = []
    for param, flag in (
        ("StaticIPAddress", "--static-ip"),
        ("StaticMacAddress", "--static-mac"),
        ("MaximumBandwidth", "--max-bandwidth"),
    ):
        if param in p:
            args += [flag, p[param]]
    return args


def set_adapter(p: Params, _: Client) -> list[str]:
    extra = _adapter_args(p)
    if not extra:
        raise CmdletError(
            "Set-ContainerNetworkAdapter: give -StaticIPAddress, -StaticMacAddress or "
            "-MaximumBandwidth (to change its switch: Connect-ContainerNetworkAdapter)"
        )
    return ["adapter", "set", *named(p), *extra, p["ContainerName"]]


def add_adapter(p: Params, client: Client) -> list[str]:
    net = network_of_switch(client, p["SwitchName"]) if p.get("SwitchName") else ""
    return [
        "adapter",
        "add",
        *named(p),
        *(["--network", net] if net else []),
        *_adapter_args(p),
        p["ContainerName"],
    ]


def get_adapter(p: Params, _: Client) -> list[str]:
    return ["adapter", "ls", *name_filters(p), p["ContainerName"]]


def connect_adapter(p: Params, client: Client) -> list[str]:
    net = network_of_switch(client, p["SwitchName"])
    return ["adapter", "connect", *named(p), p["ContainerName"], net]


def _port(p: Params, key: str) -> str:
    value = p[key]
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise CmdletError(f"-{key} {value!r} is not a port: give a number from 1 to 65535")
    return str(int(value))


def mapping(verb: str) -> Build:
    def build(p: Params, _: Client) -> list[str]:
        protocol = p.get("Protocol", "TCP").lower()
        if protocol not in ("tcp", "udp"):
            raise CmdletError(
                f"-Protocol {p['Protocol']!r}: a static mapping carries TCP or UDP; give one "
                "of them (one line each to map both)"
            )
        return [
            "adapter",
            "mapping",
            verb,
            *named(p, "AdapterName"),
            "--external-port",
            _port(p, "ExternalPort"),
            "--internal-port",
            _port(p, "InternalPort"),
            "--protocol",
            protocol,
            p["ContainerName"],
        ]

    return build


def invoke_command(p: Params, _: Client) -> list[str]:
    block = p.get("ScriptBlock", "").strip()
    if block.startswith("{") and block.endswith("}"):
        block = block[1:-1].strip()
    if not block:
        raise CmdletError("Invoke-Command needs a script block, e.g. {ipconfig}")
    if block.lower() in ("ipconfig", "ipconfig /all"):
        return ["ipconfig", p["ContainerName"]]
    return ["exec", p["ContainerName"], "sh", "-c", block]


def get_vmswitch_extension(p: Params, _: Client) -> list[str] | None:
    """hostnet's switches have one extension: -Name selects it (wildcards too) or nothing."""
    pattern = p.get("Name", "")
    if pattern and not wildcard.compile_pattern(pattern).fullmatch(VFP):
        if wildcard.has_wildcard(pattern):
            return None  # a pattern that matches no extension lists none, as PowerShell does
        raise CmdletError(
            f"Get-VMSwitchExtension -Name {pattern!r}: hostnet's switches have one "
            f"extension, {VFP.title()!r} (nftables, eBPF and VXLAN pieces); give that name "
            "or leave -Name out"
        )
    return ["switch", "extension", p["VMSwitchName"]]


def get_net_adapter(p: Params, _: Client) -> None:
    """This namespace's interfaces: Name (Linux), InterfaceAlias (its alias), MAC, status.
    -Name matches the Linux name or the alias (the seed's "Ethernet" is an alias here)."""
    try:
        out = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise CmdletError(
            f"Get-NetAdapter: cannot list this host's interfaces with 'ip -j link' ({exc}); "
            "install iproute2"
        ) from None
    links: list[dict[str, Any]] = [lk for lk in json.loads(out.stdout) if lk["ifname"] != "lo"]
    links = wildcard.select(
        links,
        items(p.get("Name", "")),
        lambda lk: [lk["ifname"], lk.get("ifalias", "")],
        "network adapter",
        "list them with Get-NetAdapter (a name is the Linux name or its alias)",
    )
    click.echo(f"{'Name':<16} {'InterfaceAlias':<24} {'MacAddress':<18} Status")
    for lk in links:
        flags = lk.get("flags", [])
        status = "Up" if "UP" in flags and "NO-CARRIER" not in flags else "Down"
        click.echo(
            f"{lk['ifname']:<16} {lk.get('ifalias', ''):<24} {lk.get('address', ''):<18} {status}"
        )
    return None


# -- the HNS helpers (hns.psm1, hns.v2.psm1, the HNS module): `hostnet hns ...` ------------
PIPED = (
    "{0} takes objects from the pipeline in PowerShell ({1} | {0}); hostnet takes -Id or "
    "-Name instead (a,b for several)"
)


def _schema(p: Params) -> list[str]:
    if "Version" not in p:
        return []
    if p["Version"] not in ("1", "2"):
        raise CmdletError(f"-Version {p['Version']!r}: give 1 (HNS v1 objects) or 2 (HCN objects)")
    return ["--schema", p["Version"]]


def hns_get(kind: str) -> Build:
    """Get-HnsNetwork/-Endpoint/-Namespace/-PolicyList: ``hostnet hns KIND ls``."""

    def build(p: Params, _: Client) -> list[str]:
        args = ["hns", kind, "ls", *(["--id", p["Id"]] if p.get("Id") else [])]
        for param, flag in (("NetworkId", "--network-id"), ("NetworkName", "--network-name")):
            if p.get(param):
                args += [flag, p[param]]
        return [*args, *_schema(p)]

    return build


def _json_or(p: Params, instead: str) -> None:
    """The one positional value is -JsonString when it is JSON, else ``instead``."""
    value = p.get("JsonString", "")
    if value and not value.lstrip().startswith("{") and instead not in p:
        p[instead] = p.pop("JsonString")


def _whole_json(name: str, p: Params, what: str) -> list[str]:
    others = [f"-{k}" for k in p if k != "JsonString"]
    if others:
        raise CmdletError(
            f"{name} -JsonString is the whole {what}: put {', '.join(others)} into it, or "
            "leave -JsonString out"
        )
    return ["--json", p["JsonString"]]


def new_hns_network(p: Params, _: Client) -> list[str]:
    """hns.psm1's New-HnsNetwork: -Type/-Name/-AddressPrefix/-Gateway (paired by position)
    or the whole network as -JsonString; -DNSServer is sent as DNSServerList."""
    _json_or(p, "Type")
    args = ["hns", "network", "create"]
    if p.get("JsonString"):
        return [*args, *_whole_json("New-HnsNetwork", p, "HNSNetwork")]
    if not p.get("Type"):
        raise CmdletError("New-HnsNetwork needs -Type (NAT, L2Bridge, ...) or -JsonString")
    args += ["--type", p["Type"], *named(p)]
    for prefix in items(p.get("AddressPrefix", "")):
        args += ["--address-prefix", prefix]
    for gateway in items(p.get("Gateway", "")):
        args += ["--gateway", gateway]
    if p.get("DNSServer"):
        args += ["--dns-server", ",".join(items(p["DNSServer"]))]
    if p.get("AdapterName"):
        args += ["--adapter-name", p["AdapterName"]]
    return args


def new_hns_endpoint(p: Params, _: Client) -> list[str]:
    """hns.psm1's New-HnsEndpoint: an HNSEndpoint on -NetworkId, or -JsonString."""
    _json_or(p, "NetworkId")
    args = ["hns", "endpoint", "create"]
    if p.get("JsonString"):
        return [*args, *_whole_json("New-HnsEndpoint", p, "HNSEndpoint")]
    if not p.get("NetworkId"):
        raise CmdletError(
            "New-HnsEndpoint needs -NetworkId (Get-HnsNetwork shows it) or -JsonString"
        )
    args += ["--network-id", p["NetworkId"], *named(p)]
    for param, flag in (("IPAddress", "--ip-address"), ("Gateway", "--gateway"),
                        ("MacAddress", "--mac-address")):  # fmt: skip
        if p.get(param):
            args += [flag, p[param]]
    return [*args, *(["--enable-outbound-nat"] if p.get("EnableOutboundNat") else [])]


def hns_remove(kind: str) -> Build:
    """Remove-HnsNetwork/-Endpoint by -Id or -Name (PowerShell pipes the objects in)."""
    noun = f"Hns{kind.title()}"

    def build(p: Params, _: Client) -> list[str]:
        ids, names = items(p.get("Id", "")), items(p.get("Name", ""))
        if not ids and not names:
            raise CmdletError(PIPED.format(f"Remove-{noun}", f"Get-{noun}"))
        return [
            "hns",
            kind,
            "rm",
            *[a for i in ids for a in ("--id", i)],
            *[a for n in names for a in ("--name", n)],
        ]

    return build


def attach_hns_host_endpoint(p: Params, _: Client) -> list[str]:
    """Attach-HnsHostEndpoint: the endpoint becomes the host's vNIC (SystemType Host)."""
    return [
        "hns",
        "endpoint",
        "attach-host",
        "--endpoint-id",
        p["EndpointID"],
        "--compartment-id",
        p["CompartmentID"],
    ]
