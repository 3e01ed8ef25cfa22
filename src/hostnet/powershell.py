"""The seed's PowerShell lines, after the word ``hostnet``, as written.

``hostnet New-ContainerNetwork -Name nat -Mode NAT -SubnetPrefix "172.16.0.0/12"`` runs
``hostnet network create -d nat --subnet 172.16.0.0/12 nat``: each cmdlet is translated
into hostnet's own command line, whose checks and output it then shares. Cmdlet and
parameter names match without regard to case; a list parameter takes ``a,b``; a
positional value goes to the cmdlet's first parameter (``Start-Container "DemoNAT"``).

Names: a switch (``-SwitchName``) is a network's switch name as ``switch ls`` shows it
(its ``networkname`` option, else the network's name); an adapter of the host
(``-NetworkAdapterName "Ethernet"``) is a Linux interface of that name or alias.
A cmdlet the seed shows that hostnet cannot honour is an error naming it and what to use.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import click

from hostnet.client import Client

CMDLET = re.compile(r"^[A-Za-z]+-[A-Za-z]+$")
VERBS = {
    "new",
    "get",
    "set",
    "add",
    "remove",
    "start",
    "stop",
    "restart",
    "connect",
    "disconnect",
    "invoke",
}
VFP = "microsoft azure vfp switch extension"


def is_cmdlet(word: str) -> bool:
    return bool(CMDLET.match(word)) and word.split("-")[0].lower() in VERBS


class CmdletError(click.ClickException):
    exit_code = 2


@dataclass
class Cmdlet:
    name: str
    params: tuple[str, ...]  # canonical spellings; the first is the positional one
    build: Callable[[dict[str, str], Client], list[str] | None]
    switches: tuple[str, ...] = ()
    required: tuple[str, ...] = ()


def parse(c: Cmdlet, argv: list[str]) -> dict[str, str]:
    """-Param value pairs (any case), switches, one positional value."""
    names = {p.lower(): p for p in (*c.params, *c.switches)}
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        word = argv[i]
        if word.startswith("-") and len(word) > 1 and not word[1].isdigit():
            key = word[1:].rstrip(":")
            canon = names.get(key.lower())
            if canon is None:
                known = ", ".join(f"-{p}" for p in (*c.params, *c.switches))
                raise CmdletError(f"{c.name} has no parameter -{key}; it takes: {known}")
            if canon in c.switches:
                out[canon] = "true"
                i += 1
                continue
            if i + 1 >= len(argv):
                raise CmdletError(f"{c.name} -{canon} needs a value")
            out[canon] = argv[i + 1]
            i += 2
            continue
        free = next((p for p in c.params if p not in out), None)
        if free is None:
            raise CmdletError(f"{c.name}: unexpected value {word!r}")
        out[free] = word
        i += 1
    missing = [p for p in c.required if p not in out]
    if missing:
        raise CmdletError(f"{c.name} needs -{', -'.join(missing)}")
    return out


def _items(value: str) -> list[str]:
    return [v.strip().strip('"').strip("'") for v in value.split(",") if v.strip()]


def _network_of_switch(client: Client, switch: str) -> str:
    """The network whose switch is named ``switch`` (switch ls), or the network of that name."""
    for row in client.get("/switches"):
        if str(row.get("Switch", "")).lower() == switch.lower():
            return str(row["Networks"]).split(",")[0].strip()
    return switch


# -- the cmdlets --------------------------------------------------------------------------
MODES = {
    "nat": "nat",
    "transparent": "transparent",
    "l2bridge": "l2bridge",
    "l2tunnel": "l2tunnel",
    "overlay": "overlay",
}


def new_network(p: dict[str, str], _: Client) -> list[str]:
    mode = p.get("Mode", "NAT").lower()
    if mode not in MODES:
        raise CmdletError(
            f"New-ContainerNetwork -Mode {p['Mode']}: hostnet has NAT, Transparent, "
            "L2Bridge, L2Tunnel and Overlay"
        )
    args = ["network", "create", "-d", MODES[mode]]
    for s in _items(p.get("SubnetPrefix", "")):
        args += ["--subnet", s]
    for g in _items(p.get("GatewayAddress", "")):
        args += ["--gateway", g]
    if p.get("DNSServers"):
        args += ["-o", "dnsservers=" + ",".join(_items(p["DNSServers"]))]
    if p.get("DNSSuffix"):
        args += ["-o", f"dnssuffix={p['DNSSuffix']}"]
    if p.get("NetworkAdapterName"):
        args += ["-o", "interface=" + ",".join(_items(p["NetworkAdapterName"]))]
    return [*args, p["Name"]]


def new_container(p: dict[str, str], client: Client) -> list[str]:
    args = ["create", "--name", p["Name"]]
    if p.get("ContainerImageName"):
        args += ["--image", p["ContainerImageName"]]
    net = p.get("NetworkName") or (
        _network_of_switch(client, p["SwitchName"]) if p.get("SwitchName") else ""
    )
    return [*args, *(["--network", net] if net else [])]


def _adapter_args(p: dict[str, str]) -> list[str]:
    args = []
    for param, flag in (
        ("StaticIPAddress", "--static-ip"),
        ("StaticMacAddress", "--static-mac"),
        ("MaximumBandwidth", "--max-bandwidth"),
    ):
        if param in p:
            args += [flag, p[param]]
    return args


def set_adapter(p: dict[str, str], _: Client) -> list[str]:
    extra = _adapter_args(p)
    if not extra:
        raise CmdletError(
            "Set-ContainerNetworkAdapter: give -StaticIPAddress, -StaticMacAddress or -MaximumBandwidth"
        )
    return [
        "adapter",
        "set",
        *_named(p),
        *extra,
        p["ContainerName"],
    ]


def add_adapter(p: dict[str, str], client: Client) -> list[str]:
    net = _network_of_switch(client, p["SwitchName"]) if p.get("SwitchName") else ""
    return [
        "adapter",
        "add",
        *_named(p),
        *(["--network", net] if net else []),
        *_adapter_args(p),
        p["ContainerName"],
    ]


def _named(p: dict[str, str], key: str = "Name") -> list[str]:
    return ["--name", p[key]] if p.get(key) else []


def mapping(verb: str) -> Callable[[dict[str, str], Client], list[str]]:
    def build(p: dict[str, str], _: Client) -> list[str]:
        return [
            "adapter",
            "mapping",
            verb,
            *_named(p, "AdapterName"),
            "--external-port",
            p["ExternalPort"],
            "--internal-port",
            p["InternalPort"],
            "--protocol",
            p.get("Protocol", "TCP").lower(),
            p["ContainerName"],
        ]

    return build


def invoke_command(p: dict[str, str], _: Client) -> list[str]:
    block = p.get("ScriptBlock", "").strip()
    if block.startswith("{") and block.endswith("}"):
        block = block[1:-1].strip()
    if not block:
        raise CmdletError("Invoke-Command needs a script block, e.g. {ipconfig}")
    if block.lower() in ("ipconfig", "ipconfig /all"):
        return ["ipconfig", p["ContainerName"]]
    return ["exec", p["ContainerName"], "sh", "-c", block]


def get_vmswitch_extension(p: dict[str, str], _: Client) -> list[str]:
    if p.get("Name") and p["Name"].lower() != VFP:
        raise CmdletError(
            f"Get-VMSwitchExtension -Name {p['Name']!r}: hostnet's switches have one "
            f"extension, {VFP.title()!r} (nftables, eBPF and VXLAN pieces)"
        )
    return ["switch", "extension", p["VMSwitchName"]]


def get_net_adapter(_: dict[str, str], __: Client) -> None:
    """This namespace's interfaces: Name (Linux), InterfaceAlias (its alias), MAC, status."""
    links = json.loads(
        subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout
    )
    click.echo(f"{'Name':<16} {'InterfaceAlias':<24} {'MacAddress':<18} Status")
    for lk in links:
        if lk["ifname"] == "lo":
            continue
        status = (
            "Up"
            if "UP" in lk.get("flags", []) and "NO-CARRIER" not in lk.get("flags", [])
            else "Down"
        )
        click.echo(
            f"{lk['ifname']:<16} {lk.get('ifalias', ''):<24} {lk.get('address', ''):<18} {status}"
        )
    return None


def _fixed(*args: str) -> Callable[[dict[str, str], Client], list[str]]:
    return lambda _p, _c: list(args)


CMDLETS = [
    Cmdlet(
        "New-ContainerNetwork",
        (
            "Name",
            "Mode",
            "SubnetPrefix",
            "GatewayAddress",
            "DNSServers",
            "DNSSuffix",
            "NetworkAdapterName",
        ),
        new_network,
        required=("Name",),
    ),
    Cmdlet(
        "Get-ContainerNetwork",
        ("Name",),
        lambda p, _: ["network", "inspect", p["Name"]] if p.get("Name") else ["network", "ls"],
    ),
    Cmdlet(
        "Remove-ContainerNetwork",
        ("Name",),
        lambda p, _: ["network", "rm", *(["--force"] if p.get("Force") else []), p["Name"]],
        switches=("Force",),
        required=("Name",),
    ),
    Cmdlet(
        "New-Container",
        ("Name", "ContainerImageName", "NetworkName", "SwitchName"),
        new_container,
        required=("Name",),
    ),
    Cmdlet(
        "Get-Container",
        ("Name",),
        lambda p, _: ["ps", "-a"],
    ),
    Cmdlet("Start-Container", ("Name",), lambda p, _: ["start", p["Name"]], required=("Name",)),
    Cmdlet(
        "Stop-Container",
        ("Name",),
        lambda p, _: ["stop", *(["-t", "0"] if p.get("TurnOff") else []), p["Name"]],
        switches=("TurnOff", "Force"),
        required=("Name",),
    ),
    Cmdlet("Restart-Container", ("Name",), lambda p, _: ["restart", p["Name"]], required=("Name",)),
    Cmdlet(
        "Remove-Container",
        ("Name",),
        lambda p, _: ["rm", p["Name"]],
        switches=("Force",),
        required=("Name",),
    ),
    Cmdlet(
        "Get-ContainerNetworkAdapter",
        ("ContainerName", "Name"),
        lambda p, _: ["adapter", "ls", p["ContainerName"]],
        required=("ContainerName",),
    ),
    Cmdlet(
        "Set-ContainerNetworkAdapter",
        ("ContainerName", "Name", "StaticIPAddress", "StaticMacAddress", "MaximumBandwidth"),
        set_adapter,
        required=("ContainerName",),
    ),
    Cmdlet(
        "Add-ContainerNetworkAdapter",
        (
            "ContainerName",
            "Name",
            "SwitchName",
            "StaticIPAddress",
            "StaticMacAddress",
            "MaximumBandwidth",
        ),
        add_adapter,
        required=("ContainerName",),
    ),
    Cmdlet(
        "Remove-ContainerNetworkAdapter",
        ("ContainerName", "Name"),
        lambda p, _: ["adapter", "rm", *_named(p), p["ContainerName"]],
        required=("ContainerName",),
    ),
    Cmdlet(
        "Connect-ContainerNetworkAdapter",
        ("ContainerName", "SwitchName", "Name"),
        lambda p, c: [
            "adapter",
            "connect",
            *_named(p),
            p["ContainerName"],
            _network_of_switch(c, p["SwitchName"]),
        ],
        required=("ContainerName", "SwitchName"),
    ),
    Cmdlet(
        "Disconnect-ContainerNetworkAdapter",
        ("ContainerName", "Name"),
        lambda p, _: ["adapter", "disconnect", *_named(p), p["ContainerName"]],
        required=("ContainerName",),
    ),
    Cmdlet(
        "Add-ContainerNetworkAdapterStaticMapping",
        ("ContainerName", "AdapterName", "ExternalPort", "InternalPort", "Protocol"),
        mapping("add"),
        required=("ContainerName", "ExternalPort", "InternalPort"),
    ),
    Cmdlet(
        "Remove-ContainerNetworkAdapterStaticMapping",
        ("ContainerName", "AdapterName", "ExternalPort", "InternalPort", "Protocol"),
        mapping("rm"),
        required=("ContainerName", "ExternalPort", "InternalPort"),
    ),
    Cmdlet(
        "Get-ContainerNetworkAdapterStaticMapping",
        ("ContainerName",),
        lambda p, _: ["adapter", "mapping", "ls", p["ContainerName"]],
        required=("ContainerName",),
    ),
    Cmdlet(
        "Invoke-Command",
        ("ContainerName", "ScriptBlock"),
        invoke_command,
        required=("ContainerName", "ScriptBlock"),
    ),
    Cmdlet("Get-NetCompartment", (), _fixed("compartment", "ls")),
    Cmdlet("Get-NetNat", (), _fixed("nat", "ls")),
    Cmdlet("Get-NetNatStaticMapping", (), _fixed("nat", "ls")),
    Cmdlet("Get-VMSwitch", ("Name",), _fixed("switch", "ls")),
    Cmdlet(
        "Get-VMSwitchExtension",
        ("VMSwitchName", "Name"),
        get_vmswitch_extension,
        required=("VMSwitchName",),
    ),
    Cmdlet("Get-NetAdapter", ("Name",), get_net_adapter),
]
BY_NAME = {c.name.lower(): c for c in CMDLETS}

#: the seed's other lines, which name something hostnet is not: what to use instead
ELSEWHERE = {
    "get-vmnetworkadapter": "it configures the Hyper-V host's VM adapter (MAC spoofing); run it on "
    "the hypervisor. Here, 'hostnet doctor' says whether DHCP on a transparent network needs it",
    "set-vmnetworkadapter": "it runs on the Hyper-V host (-MacAddressSpoofing On); on VMware allow "
    "promiscuous mode and forged transmits; 'hostnet doctor' checks this host's side",
    "stop-service": "services are systemd units here: systemctl stop hostnetd (or docker)",
    "start-service": "services are systemd units here: systemctl start hostnetd (or docker)",
    "restart-service": "services are systemd units here: systemctl restart hostnetd; hostnetd "
    "sees out-of-band bridges without a restart ('hostnet switch ls')",
    "get-service": "systemctl status hostnetd; the VFP extension's pieces: hostnet switch "
    "extension NAME (Get-VMSwitchExtension)",
}


def run(cli: click.Group, argv: list[str]) -> int:
    """Run one cmdlet line; returns the exit code."""
    word = argv[0].lower()
    if word in ELSEWHERE:
        raise CmdletError(f"{argv[0]} is not a hostnet cmdlet: {ELSEWHERE[word]}")
    cmdlet = BY_NAME.get(word)
    if cmdlet is None:
        known = ", ".join(c.name for c in CMDLETS)
        raise CmdletError(f"hostnet has no cmdlet {argv[0]}; it takes: {known}")
    params = parse(cmdlet, argv[1:])
    client = Client(None)
    args = cmdlet.build(params, client)
    if args is None:
        return 0
    cli.main(args=args, prog_name="hostnet", standalone_mode=False)
    return 0
