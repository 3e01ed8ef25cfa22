"""The seed's PowerShell lines, after the word ``hostnet``, as written.

``hostnet New-ContainerNetwork -Name nat -Mode NAT -SubnetPrefix "172.16.0.0/12"`` runs
``hostnet network create -d nat --subnet 172.16.0.0/12 nat``: each cmdlet is translated
into hostnet's own command line, whose checks and output it then shares. Cmdlet and
parameter names match without regard to case; a list parameter takes ``a,b``; a
positional value goes to the cmdlet's first parameter not given (``Start-Container
"DemoNAT"``); ``-Param:value`` and ``-Switch:$false`` are PowerShell's spellings too.

Every parameter a cmdlet takes is honoured; any other is an error naming it. The Get-
cmdlets' ``-Name`` takes PowerShell's wildcards (``web*``, ``?``, ``[a-c]``): a pattern
that matches nothing lists nothing, a name without wildcards that matches nothing is an
error, as in PowerShell. Every other name (``-ContainerName``, the ``-Name`` of
Remove-Container ...) is one object's full name and refuses wildcards, so a pattern never
changes more than was meant.

Names: a switch (``-SwitchName``) is a network's switch name as ``switch ls`` shows it
(its ``networkname`` option, else the network's name); an adapter of the host
(``-NetworkAdapterName "Ethernet"``) is a Linux interface of that name or alias.
A cmdlet the seed shows that hostnet cannot honour is an error naming it and what to use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import click

from hostnet.cli import cmdlets as b
from hostnet.cli import wildcard
from hostnet.cli.cmdlets import CmdletError
from hostnet.client import Client

__all__ = ["BY_NAME", "CMDLETS", "Cmdlet", "CmdletError", "is_cmdlet", "parse", "run"]

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
    "attach",
}
#: parameters every PowerShell cmdlet takes; a line here runs at once as the hostnet
#: command it becomes, so none of them has a meaning
COMMON = {
    p.lower(): p
    for p in (
        "Verbose",
        "Debug",
        "ErrorAction",
        "WarningAction",
        "InformationAction",
        "ErrorVariable",
        "WarningVariable",
        "InformationVariable",
        "OutVariable",
        "OutBuffer",
        "PipelineVariable",
        "WhatIf",
        "Confirm",
    )
}
#: parameters that name one object: a wildcard in them is refused (unless the cmdlet
#: lists the parameter in ``patterns``)
EXACT = ("Name", "ContainerName", "NetworkName", "SwitchName", "VMSwitchName", "AdapterName")


def is_cmdlet(word: str) -> bool:
    return bool(CMDLET.match(word)) and word.split("-")[0].lower() in VERBS


@dataclass
class Cmdlet:
    """One cmdlet: its parameters (canonical spellings), how it becomes a hostnet line."""

    name: str
    params: tuple[str, ...]  # the first not given takes a positional value
    build: b.Build
    switches: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()  # parameters that take wildcards
    refused: tuple[tuple[str, str], ...] = ()  # (parameter, why hostnet cannot take it)


def _refuse_unknown(c: Cmdlet, key: str) -> CmdletError:
    for param, why in c.refused:
        if key.lower() == param.lower():
            return CmdletError(f"{c.name} -{param}: {why}")
    if key.lower() in COMMON:
        return CmdletError(
            f"{c.name} -{COMMON[key.lower()]}: hostnet does not take PowerShell's common "
            "parameters (each line runs at once, as the hostnet command it becomes); "
            "leave it out"
        )
    known = ", ".join(f"-{p}" for p in (*c.params, *c.switches))
    if not known:
        return CmdletError(
            f"{c.name} has no parameter -{key}: hostnet's {c.name} takes no parameters "
            "and shows everything; leave it out"
        )
    return CmdletError(
        f"{c.name} has no parameter -{key}: hostnet does not implement it; {c.name} takes: {known}"
    )


def _switch_value(c: Cmdlet, canon: str, value: str) -> bool:
    v = value.lower().lstrip("$")
    if v in ("true", "1", ""):
        return True
    if v in ("false", "0"):
        return False
    raise CmdletError(f"{c.name} -{canon}:{value}: a switch takes $true or $false")


def parse(c: Cmdlet, argv: list[str]) -> dict[str, str]:
    """-Param value pairs (any case), -Param:value, switches, positional values."""
    names = {p.lower(): p for p in (*c.params, *c.switches)}
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        word = argv[i]
        if word.startswith("-") and len(word) > 1 and not word[1].isdigit():
            key, colon, inline = word[1:].partition(":")
            canon = names.get(key.lower())
            if canon is None:
                raise _refuse_unknown(c, key)
            if canon in out:
                raise CmdletError(f"{c.name} -{canon} is given twice: give it once")
            if canon in c.switches:
                if not colon or _switch_value(c, canon, inline):
                    out[canon] = "true"
                i += 1
                continue
            if colon and inline:
                out[canon] = inline
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
    for p, value in out.items():
        if p in EXACT and p not in c.patterns and wildcard.has_wildcard(value):
            raise CmdletError(
                f"{c.name} -{p} {value!r}: this parameter takes a full name, not a wildcard "
                "pattern, so a pattern never acts on more than meant; give the name (the "
                "Get- cmdlet's -Name takes wildcards and lists the names that match)"
            )
    return out


CONTAINER_NAME = ("Name",)
ADAPTER = ("ContainerName", "Name")
MAPPING = ("ContainerName", "AdapterName", "ExternalPort", "InternalPort", "Protocol")
ADAPTER_SETTINGS = ("StaticIPAddress", "StaticMacAddress", "MaximumBandwidth")
NETWORK = ("Name", "Mode", "SubnetPrefix", "GatewayAddress", "DNSServers", "DNSSuffix",
           "NetworkAdapterName")  # fmt: skip

DETAILED = (("Detailed", "hostnet always answers with every property; leave it out"),)
NAMESPACE_ONLY_V2 = (
    *DETAILED,
    ("Version", "namespaces have one shape, HostComputeNamespace (schema 2); leave it out"),
)
HASHTABLE = "takes a PowerShell hashtable, which hostnet does not parse; give the whole "
NEW_NETWORK_REFUSED = (
    ("SubnetPolicies", HASHTABLE + "HNSNetwork (Subnets[].Policies) with -JsonString"),
    ("AdditionalParams", HASHTABLE + "HNSNetwork with -JsonString"),
    ("NetworkSpecificParams", HASHTABLE + "HNSNetwork with -JsonString"),
    ("IPv6", "an HNSNetwork has no IPv6 field; give an IPv6 -AddressPrefix (and -Gateway) too"),
)
PIPELINE = (
    ("InputObjects", "PowerShell pipes objects in (Get-HnsNetwork | Remove-HnsNetwork); "
     "hostnet takes -Id or -Name instead"),
)  # fmt: skip

CMDLETS = [
    Cmdlet("New-ContainerNetwork", NETWORK, b.new_network, required=("Name",)),
    Cmdlet("Get-ContainerNetwork", ("Name",), b.listing("network", "ls"), patterns=("Name",)),
    Cmdlet(
        "Remove-ContainerNetwork",
        ("Name",),
        b.remove_network,
        switches=("Force",),
        required=("Name",),
    ),
    Cmdlet(
        "New-Container",
        ("Name", "ContainerImageName", "NetworkName", "SwitchName"),
        b.new_container,
        required=("Name",),
    ),
    Cmdlet("Get-Container", ("Name",), b.listing("ps", "-a"), patterns=("Name",)),
    Cmdlet("Start-Container", CONTAINER_NAME, b.each_container("start"), required=("Name",)),
    Cmdlet(
        "Stop-Container",
        CONTAINER_NAME,
        b.stop_container,
        switches=("TurnOff", "Force"),
        required=("Name",),
    ),
    Cmdlet("Restart-Container", CONTAINER_NAME, b.each_container("restart"), required=("Name",)),
    Cmdlet(
        "Remove-Container",
        CONTAINER_NAME,
        b.remove_container,
        switches=("Force",),
        required=("Name",),
    ),
    Cmdlet(
        "Get-ContainerNetworkAdapter",
        ADAPTER,
        b.get_adapter,
        required=("ContainerName",),
        patterns=("Name",),
    ),
    Cmdlet(
        "Set-ContainerNetworkAdapter",
        (*ADAPTER, *ADAPTER_SETTINGS),
        b.set_adapter,
        required=("ContainerName",),
    ),
    Cmdlet(
        "Add-ContainerNetworkAdapter",
        (*ADAPTER, "SwitchName", *ADAPTER_SETTINGS),
        b.add_adapter,
        required=("ContainerName",),
    ),
    Cmdlet(
        "Remove-ContainerNetworkAdapter",
        ADAPTER,
        lambda p, _: ["adapter", "rm", *b.named(p), p["ContainerName"]],
        required=("ContainerName",),
    ),
    Cmdlet(
        "Connect-ContainerNetworkAdapter",
        ("ContainerName", "SwitchName", "Name"),
        b.connect_adapter,
        required=("ContainerName", "SwitchName"),
    ),
    Cmdlet(
        "Disconnect-ContainerNetworkAdapter",
        ADAPTER,
        lambda p, _: ["adapter", "disconnect", *b.named(p), p["ContainerName"]],
        required=("ContainerName",),
    ),
    Cmdlet(
        "Add-ContainerNetworkAdapterStaticMapping",
        MAPPING,
        b.mapping("add"),
        required=("ContainerName", "ExternalPort", "InternalPort"),
    ),
    Cmdlet(
        "Remove-ContainerNetworkAdapterStaticMapping",
        MAPPING,
        b.mapping("rm"),
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
        b.invoke_command,
        required=("ContainerName", "ScriptBlock"),
    ),
    Cmdlet("Get-NetCompartment", (), b.fixed("compartment", "ls")),
    Cmdlet("Get-NetNat", (), b.fixed("nat", "ls")),
    Cmdlet("Get-NetNatStaticMapping", (), b.fixed("nat", "ls")),
    Cmdlet("Get-VMSwitch", ("Name",), b.listing("switch", "ls"), patterns=("Name",)),
    Cmdlet(
        "Get-VMSwitchExtension",
        ("VMSwitchName", "Name"),
        b.get_vmswitch_extension,
        required=("VMSwitchName",),
        patterns=("Name",),
    ),
    Cmdlet("Get-NetAdapter", ("Name",), b.get_net_adapter, patterns=("Name",)),
    # hns.psm1 / hns.v2.psm1 / the HNS module: `hostnet hns ...`, JSON out
    Cmdlet("Get-HnsNetwork", ("Id", "Version"), b.hns_get("network"), refused=DETAILED),
    Cmdlet(
        "Get-HnsEndpoint",
        ("Id", "NetworkId", "NetworkName", "Version"),
        b.hns_get("endpoint"),
        refused=DETAILED,
    ),
    Cmdlet("Get-HnsNamespace", ("Id",), b.hns_get("namespace"), refused=NAMESPACE_ONLY_V2),
    Cmdlet("Get-HnsPolicyList", ("Id",), b.hns_get("policylist"), refused=DETAILED),
    Cmdlet(
        "New-HnsNetwork",
        ("JsonString", "Type", "Name", "AddressPrefix", "Gateway", "DNSServer", "AdapterName"),
        b.new_hns_network,
        refused=NEW_NETWORK_REFUSED,
    ),
    Cmdlet(
        "New-HnsEndpoint",
        ("JsonString", "NetworkId", "Name", "IPAddress", "Gateway", "MacAddress"),
        b.new_hns_endpoint,
        switches=("EnableOutboundNat",),
    ),
    Cmdlet("Remove-HnsNetwork", ("Id", "Name"), b.hns_remove("network"), refused=PIPELINE),
    Cmdlet("Remove-HnsEndpoint", ("Id", "Name"), b.hns_remove("endpoint"), refused=PIPELINE),
    Cmdlet(
        "Attach-HnsHostEndpoint",
        ("EndpointID", "CompartmentID"),
        b.attach_hns_host_endpoint,
        required=("EndpointID", "CompartmentID"),
    ),
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


def translate(argv: list[str], client: Client) -> list[str] | None:
    """The hostnet argument list one cmdlet line becomes (None: it answered itself)."""
    word = argv[0].lower()
    if word in ELSEWHERE:
        raise CmdletError(f"{argv[0]} is not a hostnet cmdlet: {ELSEWHERE[word]}")
    cmdlet = BY_NAME.get(word)
    if cmdlet is None:
        known = ", ".join(c.name for c in CMDLETS)
        raise CmdletError(f"hostnet has no cmdlet {argv[0]}; it takes: {known}")
    return cmdlet.build(parse(cmdlet, argv[1:]), client)


def run(cli: click.Group, argv: list[str]) -> int:
    """Run one cmdlet line; returns the exit code."""
    args = translate(argv, Client(None))
    if args is None:
        return 0
    cli.main(args=args, prog_name="hostnet", standalone_mode=False)
    return 0
