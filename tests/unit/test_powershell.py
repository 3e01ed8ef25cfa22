"""The seed's cmdlets translated into hostnet's command line (no daemon needed): each
translation is parsed by the real click CLI, every parameter of every cmdlet changes
what it becomes, and what hostnet cannot honour is refused by name."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner

from hostnet.cli import commands as hostnet_cli
from hostnet.cli import hns as cli_hns
from hostnet.cli import lifecycle as cli_lifecycle
from hostnet.cli import ops as cli_ops
from hostnet.cli import powershell as ps
from hostnet.cli import wildcard
from hostnet.cli.cmdlets import items
from hostnet.cli.runcmd import run as run_command
from hostnet.errors import Conflict, HostnetError, InvalidRequest, NotFound

# the CLI as main() builds it: the lifecycle's and ops' commands and `run` added
hostnet_cli.cli.add_command(run_command)
cli_ops.register(hostnet_cli.cli)
cli_lifecycle.register(hostnet_cli.cli)
cli_hns.register(hostnet_cli.cli)

STATES = {"DemoNAT": "created", "web1": "running", "web2": "stopped"}


class FakeClient:
    """The two daemon answers a translation may need: the switches and a container."""

    def get(self, path: str) -> Any:
        if path == "/switches":
            return [{"Switch": "MySwitch", "Networks": "ext1"}]
        name = path.removeprefix("/containers/")
        if name not in STATES:
            raise NotFound(f"no container named {name!r}")
        return {"Name": name, "State": STATES[name]}


def translate(*argv: str) -> list[str] | None:
    return ps.translate(list(argv), FakeClient())  # type: ignore[arg-type]


def accepted(args: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Parse ``args`` with hostnet's click CLI down to the command, without running it;
    returns the command's path and its parsed parameters (raises what click raises)."""
    group: click.Command = hostnet_cli.cli
    ctx = group.make_context("hostnet", list(args))
    path = []
    while isinstance(group, click.Group):
        name, sub, rest = group.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        assert name is not None and sub is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        group, path = sub, [*path, name]
    return path, ctx.params


def line(cmdlet: str, given: dict[str, str]) -> list[str]:
    c = ps.BY_NAME[cmdlet.lower()]
    argv = [cmdlet]
    for k, v in given.items():
        argv += [f"-{k}"] if k in c.switches else [f"-{k}", v]
    return argv


A = "ContainerName"
GUID = "5f0b1190-63be-4e0c-b974-bd0f55675a42"
GUID2 = "0a6c3a4e-3c43-4c8e-9a8b-2f7d3c1e0b11"
#: one or more lines per cmdlet: (cmdlet, parameters, the hostnet line it becomes)
CASES: list[tuple[str, dict[str, str], list[str]]] = [
    ("New-ContainerNetwork", {"Name": "nat", "Mode": "NAT", "SubnetPrefix": "172.16.0.0/12",
     "GatewayAddress": "172.16.0.1", "DNSServers": "4.4.4.4,8.8.8.8", "DNSSuffix": "abc.com"},
     ["network", "create", "-d", "nat", "--subnet", "172.16.0.0/12", "--gateway", "172.16.0.1",
      "-o", "dnsservers=4.4.4.4,8.8.8.8", "-o", "dnssuffix=abc.com", "nat"]),
    ("New-ContainerNetwork", {"Name": "t", "Mode": "Transparent", "NetworkAdapterName": "Ethernet"},
     ["network", "create", "-d", "transparent", "-o", "interface=Ethernet", "t"]),
    ("Get-ContainerNetwork", {}, ["network", "ls"]),
    ("Get-ContainerNetwork", {"Name": "nat*,ext"},
     ["network", "ls", "--name", "nat*", "--name", "ext"]),
    ("Remove-ContainerNetwork", {"Name": "a,b"}, ["network", "rm", "a", "b"]),
    ("Remove-ContainerNetwork", {"Name": "a", "Force": ""}, ["network", "rm", "--force", "a"]),
    ("New-Container", {"Name": "DemoNAT", "ContainerImageName": "WindowsServerCore",
     "NetworkName": "nat"},
     ["create", "--name", "DemoNAT", "--image", "WindowsServerCore", "--network", "nat"]),
    ("New-Container", {"Name": "c", "SwitchName": "MySwitch"},
     ["create", "--name", "c", "--network", "ext1"]),
    ("Get-Container", {}, ["ps", "-a"]),
    ("Get-Container", {"Name": "web*"}, ["ps", "-a", "--name", "web*"]),
    ("Start-Container", {"Name": "DemoNAT"}, ["start", "DemoNAT"]),
    ("Start-Container", {"Name": "web1,web2"}, ["start", "web1", "web2"]),
    ("Stop-Container", {"Name": "web1"}, ["stop", "web1"]),
    ("Stop-Container", {"Name": "web1", "TurnOff": ""}, ["stop", "-t", "0", "web1"]),
    ("Stop-Container", {"Name": "web1", "Force": ""}, ["stop", "-t", "0", "web1"]),
    ("Restart-Container", {"Name": "web1"}, ["restart", "web1"]),
    ("Remove-Container", {"Name": "web2,DemoNAT"}, ["rm", "web2", "DemoNAT"]),
    ("Remove-Container", {"Name": "web1", "Force": ""}, ["rm", "--force", "web1"]),
    ("Get-ContainerNetworkAdapter", {A: "DemoNAT"}, ["adapter", "ls", "DemoNAT"]),
    ("Get-ContainerNetworkAdapter", {A: "DemoNAT", "Name": "Network*"},
     ["adapter", "ls", "--name", "Network*", "DemoNAT"]),
    ("Set-ContainerNetworkAdapter", {A: "DemoNAT", "StaticIPAddress": "172.16.0.100"},
     ["adapter", "set", "--static-ip", "172.16.0.100", "DemoNAT"]),
    ("Set-ContainerNetworkAdapter", {A: "c", "Name": "Network Adapter 2",
     "StaticMacAddress": "02:00:00:00:00:01", "MaximumBandwidth": "10m"},
     ["adapter", "set", "--name", "Network Adapter 2", "--static-mac", "02:00:00:00:00:01",
      "--max-bandwidth", "10m", "c"]),
    ("Add-ContainerNetworkAdapter", {A: "c", "Name": "second", "SwitchName": "MySwitch",
     "StaticIPAddress": "10.0.0.5", "StaticMacAddress": "02:00:00:00:00:02",
     "MaximumBandwidth": "1m"},
     ["adapter", "add", "--name", "second", "--network", "ext1", "--static-ip", "10.0.0.5",
      "--static-mac", "02:00:00:00:00:02", "--max-bandwidth", "1m", "c"]),
    ("Remove-ContainerNetworkAdapter", {A: "c"}, ["adapter", "rm", "c"]),
    ("Remove-ContainerNetworkAdapter", {A: "c", "Name": "second"},
     ["adapter", "rm", "--name", "second", "c"]),
    ("Connect-ContainerNetworkAdapter", {A: "c", "SwitchName": "MySwitch"},
     ["adapter", "connect", "c", "ext1"]),
    ("Connect-ContainerNetworkAdapter", {A: "c", "SwitchName": "nat", "Name": "second"},
     ["adapter", "connect", "--name", "second", "c", "nat"]),
    ("Disconnect-ContainerNetworkAdapter", {A: "c"}, ["adapter", "disconnect", "c"]),
    ("Disconnect-ContainerNetworkAdapter", {A: "c", "Name": "second"},
     ["adapter", "disconnect", "--name", "second", "c"]),
    ("Add-ContainerNetworkAdapterStaticMapping", {A: "DemoNAT", "AdapterName": "Network Adapter",
     "ExternalPort": "8082", "InternalPort": "80", "Protocol": "TCP"},
     ["adapter", "mapping", "add", "--name", "Network Adapter", "--external-port", "8082",
      "--internal-port", "80", "--protocol", "tcp", "DemoNAT"]),
    ("Add-ContainerNetworkAdapterStaticMapping", {A: "c", "ExternalPort": "53",
     "InternalPort": "53", "Protocol": "udp"},
     ["adapter", "mapping", "add", "--external-port", "53", "--internal-port", "53",
      "--protocol", "udp", "c"]),
    ("Remove-ContainerNetworkAdapterStaticMapping", {A: "c", "AdapterName": "second",
     "ExternalPort": "8082", "InternalPort": "80", "Protocol": "UDP"},
     ["adapter", "mapping", "rm", "--name", "second", "--external-port", "8082",
      "--internal-port", "80", "--protocol", "udp", "c"]),
    ("Get-ContainerNetworkAdapterStaticMapping", {A: "c"}, ["adapter", "mapping", "ls", "c"]),
    ("Invoke-Command", {A: "DemoNAT", "ScriptBlock": "{ipconfig}"}, ["ipconfig", "DemoNAT"]),
    ("Invoke-Command", {A: "c", "ScriptBlock": "{ping -c1 10.0.0.1}"},
     ["exec", "c", "sh", "-c", "ping -c1 10.0.0.1"]),
    ("Get-NetCompartment", {}, ["compartment", "ls"]),
    ("Get-NetNat", {}, ["nat", "ls"]),
    ("Get-NetNatStaticMapping", {}, ["nat", "ls"]),
    ("Get-VMSwitch", {}, ["switch", "ls"]),
    ("Get-VMSwitch", {"Name": "nat"}, ["switch", "ls", "--name", "nat"]),
    ("Get-VMSwitchExtension", {"VMSwitchName": "nat"}, ["switch", "extension", "nat"]),
    ("Get-VMSwitchExtension", {"VMSwitchName": "nat",
     "Name": "Microsoft Azure VFP Switch Extension"}, ["switch", "extension", "nat"]),
    # the HNS helpers: `hostnet hns ...`
    ("Get-HnsNetwork", {}, ["hns", "network", "ls"]),
    ("Get-HnsNetwork", {"Id": GUID, "Version": "2"},
     ["hns", "network", "ls", "--id", GUID, "--schema", "2"]),
    ("Get-HnsEndpoint", {"NetworkId": GUID, "Version": "1"},
     ["hns", "endpoint", "ls", "--network-id", GUID, "--schema", "1"]),
    ("Get-HnsEndpoint", {"Id": GUID2, "NetworkName": "cbr0"},
     ["hns", "endpoint", "ls", "--id", GUID2, "--network-name", "cbr0"]),
    ("Get-HnsNamespace", {}, ["hns", "namespace", "ls"]),
    ("Get-HnsNamespace", {"Id": GUID}, ["hns", "namespace", "ls", "--id", GUID]),
    ("Get-HnsPolicyList", {}, ["hns", "policylist", "ls"]),
    ("Get-HnsPolicyList", {"Id": GUID}, ["hns", "policylist", "ls", "--id", GUID]),
    ("New-HnsNetwork", {"Type": "L2Bridge", "Name": "cbr0", "AddressPrefix": "10.244.1.0/24",
     "Gateway": "10.244.1.1", "DNSServer": "10.96.0.10,10.96.0.11", "AdapterName": "eth1"},
     ["hns", "network", "create", "--type", "L2Bridge", "--name", "cbr0", "--address-prefix",
      "10.244.1.0/24", "--gateway", "10.244.1.1", "--dns-server", "10.96.0.10,10.96.0.11",
      "--adapter-name", "eth1"]),
    ("New-HnsNetwork", {"JsonString": '{"Type":"NAT","Name":"n"}'},
     ["hns", "network", "create", "--json", '{"Type":"NAT","Name":"n"}']),
    ("New-HnsEndpoint", {"NetworkId": GUID, "Name": "ep", "IPAddress": "10.244.1.5",
     "Gateway": "10.244.1.1", "MacAddress": "00-15-5D-01-02-03", "EnableOutboundNat": ""},
     ["hns", "endpoint", "create", "--network-id", GUID, "--name", "ep", "--ip-address",
      "10.244.1.5", "--gateway", "10.244.1.1", "--mac-address", "00-15-5D-01-02-03",
      "--enable-outbound-nat"]),
    ("New-HnsEndpoint", {"JsonString": '{"VirtualNetwork":"x"}'},
     ["hns", "endpoint", "create", "--json", '{"VirtualNetwork":"x"}']),
    ("Remove-HnsNetwork", {"Id": f"{GUID},{GUID2}"},
     ["hns", "network", "rm", "--id", GUID, "--id", GUID2]),
    ("Remove-HnsNetwork", {"Name": "cbr0"}, ["hns", "network", "rm", "--name", "cbr0"]),
    ("Remove-HnsEndpoint", {"Id": GUID, "Name": "a,b"},
     ["hns", "endpoint", "rm", "--id", GUID, "--name", "a", "--name", "b"]),
    ("Attach-HnsHostEndpoint", {"EndpointID": GUID, "CompartmentID": "1"},
     ["hns", "endpoint", "attach-host", "--endpoint-id", GUID, "--compartment-id", "1"]),
]  # fmt: skip
#: answered by hostnet itself (not a hostnet command line); checked against a daemon
SELF_ANSWERED = {"Get-NetAdapter"}
#: values the translation itself consumes: {ipconfig} picks the command, the VFP name
#: the one extension there is (test_an_extension_pattern... shows -Name is honoured)
CONSUMED = {"ipconfig", "microsoft azure vfp switch extension"}
#: a parameter given its default changes nothing (other lines give other values)
DEFAULTS = {("New-ContainerNetwork", "Mode"): "nat",
            ("Add-ContainerNetworkAdapterStaticMapping", "Protocol"): "tcp"}  # fmt: skip


@pytest.mark.parametrize(("cmdlet", "given", "want"), CASES)
def test_each_line_becomes_a_command_the_cli_accepts(
    cmdlet: str, given: dict[str, str], want: list[str]
) -> None:
    args = translate(*line(cmdlet, given))
    assert args == want
    path, params = accepted(want)
    assert path == [w for w in want if not w.startswith("-")][: len(path)]
    # every value reaches a parameter of the command click parsed (a switch's network
    # under its network's name; what the cmdlet itself consumes aside)
    parsed = [str(x).lower() for v in params.values() for x in _flat(v) if str(x)]
    for value in given.values():
        for item in items(value.strip("{}")):
            token = {"myswitch": "ext1"}.get(item.lower(), item.lower())
            if token not in CONSUMED:
                assert any(token in f for f in parsed), (item, params)


def _flat(v: Any) -> list[Any]:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def test_every_cmdlet_and_every_parameter_is_tested() -> None:
    covered = {(c, p) for c, given, _ in CASES for p in given}
    declared = {
        (c.name, p)
        for c in ps.CMDLETS
        if c.name not in SELF_ANSWERED
        for p in (*c.params, *c.switches)
    }
    assert declared - covered == set()
    assert {c for c, _, _ in CASES} | SELF_ANSWERED == {c.name for c in ps.CMDLETS}
    assert len(ps.CMDLETS) == 34


@pytest.mark.parametrize(("cmdlet", "given", "want"), CASES)
def test_no_parameter_is_silently_ignored(
    cmdlet: str, given: dict[str, str], want: list[str]
) -> None:
    """Leaving out any optional parameter given changes the line (or is refused)."""
    required = ps.BY_NAME[cmdlet.lower()].required
    for p in given:
        if p in required:
            continue
        rest = {k: v for k, v in given.items() if k != p}
        if given[p].lower() in CONSUMED or DEFAULTS.get((cmdlet, p)) == given[p].lower():
            continue
        try:
            without = translate(*line(cmdlet, rest))
        except (ps.CmdletError, HostnetError):
            continue  # refused without it: it mattered
        assert without != want, f"{cmdlet} -{p} changed nothing"


def test_hns_positional_value_is_json_or_the_first_parameter() -> None:
    """hns.psm1 gives -JsonString and -Type (-NetworkId) both Position 0."""
    assert translate("New-HnsNetwork", "NAT", "-Name", "n") == [
        "hns", "network", "create", "--type", "NAT", "--name", "n"]  # fmt: skip
    assert translate("New-HnsEndpoint", GUID) == [
        "hns", "endpoint", "create", "--network-id", GUID]  # fmt: skip
    assert ps.is_cmdlet("Attach-HnsHostEndpoint")


def test_names_match_in_any_case_and_powershell_spellings() -> None:
    assert ps.is_cmdlet("new-containernetwork") and ps.is_cmdlet("GET-VMSWITCH")
    assert not ps.is_cmdlet("network") and not ps.is_cmdlet("system-reset")
    assert translate("start-container", "-name", "x") == ["start", "x"]
    assert translate("STOP-CONTAINER", "x", "-TURNOFF") == ["stop", "-t", "0", "x"]
    assert translate("Stop-Container", "x", "-Force:$false") == ["stop", "x"]
    assert translate("Stop-Container", "x", "-Force:$true") == ["stop", "-t", "0", "x"]
    assert translate("Get-Container", "-Name:web*") == ["ps", "-a", "--name", "web*"]
    assert translate("Invoke-Command", "-ContainerName", "DemoNAT", "{ipconfig}") == [
        "ipconfig", "DemoNAT"]  # fmt: skip


def test_remove_container_without_force_refuses_a_running_one() -> None:
    with pytest.raises(Conflict) as exc:
        translate("Remove-Container", "-Name", "web2,web1")
    assert "web1 is running" in exc.value.message and "web2" not in exc.value.message
    assert "-Force" in exc.value.remedy and "Stop-Container web1" in exc.value.remedy
    with pytest.raises(NotFound):
        translate("Remove-Container", "nope")


def test_an_extension_pattern_that_matches_nothing_lists_nothing() -> None:
    assert translate("Get-VMSwitchExtension", "-VMSwitchName", "nat", "-Name", "*VFP*") == [
        "switch", "extension", "nat"]  # fmt: skip
    assert translate("Get-VMSwitchExtension", "-VMSwitchName", "nat", "-Name", "Other*") is None


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("Set-ContainerNetworkAdapter", "-ContainerName", "c", "-Bogus", "1"), "no parameter -Bogus"),
        (("Get-NetNat", "-Name", "x"), "takes no parameters"),
        (("Get-Container", "-WhatIf"), "common parameters"),
        (("Get-Container", "-Id", "1"), "Get-Container takes: -Name"),
        (("Start-Container",), "needs -Name"),
        (("Start-Container", "-Name", "a", "-name", "b"), "-Name is given twice"),
        (("New-ContainerNetwork", "-Name", "n", "-Mode", "ICS"), "-Mode ICS"),
        (("Set-ContainerNetworkAdapter", "-ContainerName", "c"), "give -StaticIPAddress"),
        (("Get-VMSwitchExtension", "-VMSwitchName", "s", "-Name", "Other"), "one extension"),
        (("Get-VMSwitchExtension", "-VMSwitchName", "s*"), "not a wildcard pattern"),
        (("Start-Container", "a", "b"), "unexpected value 'b'"),
        (("Add-ContainerNetworkAdapterStaticMapping", "-ContainerName", "c", "-ExternalPort"), "needs a value"),
        (("Add-ContainerNetworkAdapterStaticMapping", "-ContainerName", "c", "-ExternalPort", "0",
          "-InternalPort", "80"), "-ExternalPort '0' is not a port"),
        (("Add-ContainerNetworkAdapterStaticMapping", "-ContainerName", "c", "-ExternalPort", "80",
          "-InternalPort", "http"), "-InternalPort 'http' is not a port"),
        (("Remove-ContainerNetworkAdapterStaticMapping", "-ContainerName", "c", "-ExternalPort",
          "80", "-InternalPort", "80", "-Protocol", "ICMP"), "TCP or UDP"),
        (("Remove-Container", "-Name", "web*"), "not a wildcard pattern"),
        (("Stop-Container", "web?"), "not a wildcard pattern"),
        (("Get-ContainerNetworkAdapter", "-ContainerName", "*"), "not a wildcard pattern"),
        (("New-Container", "-Name", "c", "-NetworkName", "nat", "-SwitchName", "MySwitch"), "not both"),
        (("Stop-Container", "x", "-Force:maybe"), "takes $true or $false"),
        (("Get-HnsNetwork", "-Detailed"), "every property"),
        (("Get-HnsNetwork", "-Version", "3"), "give 1 (HNS v1 objects) or 2"),
        (("Get-HnsNamespace", "-Version", "1"), "HostComputeNamespace"),
        (("New-HnsNetwork", "-Type", "NAT", "-IPv6"), "no IPv6 field"),
        (("New-HnsNetwork", "-Type", "NAT", "-SubnetPolicies", "@{VSID=4096}"), "-JsonString"),
        (("New-HnsNetwork", "-Type", "NAT", "-AdditionalParams", "@{}"), "hashtable"),
        (("New-HnsNetwork", "-Type", "NAT", "-NetworkSpecificParams", "@{}"), "hashtable"),
        (("New-HnsNetwork", "-Name", "n"), "needs -Type"),
        (("New-HnsNetwork", '{"Type":"NAT"}', "-Name", "n"), "put -Name into it"),
        (("New-HnsEndpoint", "-Name", "e"), "needs -NetworkId"),
        (("Remove-HnsNetwork",), "from the pipeline"),
        (("Remove-HnsEndpoint", "-InputObjects", "x"), "-Id or -Name instead"),
        (("Remove-HnsEndpoint", "-Name", "ep*"), "not a wildcard pattern"),
        (("Attach-HnsHostEndpoint", "-EndpointID", "x"), "needs -CompartmentID"),
    ],
)  # fmt: skip
def test_bad_lines_name_what_was_wrong(argv: tuple[str, ...], said: str) -> None:
    with pytest.raises(ps.CmdletError) as exc:
        translate(*argv)
    assert said in exc.value.message


def test_lines_hostnet_cannot_honour_say_what_to_use() -> None:
    for argv in (
        ["Get-VMNetworkAdapter", "-VMName", "x"],
        ["Restart-Service", "hns"],
        ["New-Thing"],
    ):
        with pytest.raises(ps.CmdletError) as exc:
            ps.run(click.Group(), argv)
        assert argv[0] in exc.value.message


# -- PowerShell's wildcards, and the ls commands' --name ------------------------------------
def test_wildcards_match_as_powershell_does() -> None:
    def m(pattern: str, name: str) -> bool:
        return wildcard.compile_pattern(pattern).fullmatch(name) is not None

    assert m("web*", "WEB1") and m("web*", "web") and not m("web*", "aweb")
    assert m("w?b", "web") and not m("w?b", "weeb")
    assert m("web[0-2]", "web1") and not m("web[0-2]", "web3") and m("[ab]x", "bx")
    assert m("a.b", "a.b") and not m("a.b", "axb")  # a dot is a dot
    assert m("a`*", "a*") and not m("a`*", "ab")  # a backtick escapes
    assert wildcard.has_wildcard("a*") and not wildcard.has_wildcard("a`*")
    assert not wildcard.has_wildcard("Network Adapter")
    with pytest.raises(InvalidRequest, match="never closes"):
        wildcard.compile_pattern("web[1")


def test_select_errors_only_for_a_literal_name_that_matches_nothing() -> None:
    rows = [{"Name": "web1"}, {"Name": "web2"}, {"Name": "db"}]

    def sel(*patterns: str) -> list[str]:
        got = wildcard.select(rows, patterns, lambda r: [r["Name"]], "container", "ls")
        return [r["Name"] for r in got]

    assert sel() == ["web1", "web2", "db"]
    assert sel("web*") == ["web1", "web2"]
    assert sel("DB", "web2") == ["web2", "db"]  # in their order, any case
    assert sel("x*") == []
    with pytest.raises(NotFound) as exc:
        sel("web*", "cache")
    assert exc.value.message == "no container named 'cache'" and exc.value.remedy == "ls"


class ListingClient:
    def __init__(self, _socket: str | None = None) -> None:
        pass

    def get(self, path: str) -> Any:
        return {
            "/containers": [
                {"Id": f"{n}id", "Name": n, "Pid": 0, "State": s, "CompartmentId": 1,
                 "Networks": {}}
                for n, s in (("web1", "running"), ("web2", "stopped"), ("db", "running"))
            ],
            "/switches": [{"Switch": "nat", "Networks": "nat"}, {"Switch": "br-oob"}],
            "/networks": [{"Id": "1" * 64, "Name": "nat", "Subnet": "", "SubnetIPv6": "",
                           "Gateway": "", "GatewayIPv6": ""}],
            "/containers/c/adapters": [{"Name": "Network Adapter"}, {"Name": "second"}],
        }[path]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "shown", "hidden"),
    [
        (["ps", "-a", "--name", "web*"], ["web1", "web2"], ["db"]),
        (["ps", "--name", "web*"], ["web1"], ["web2", "db"]),
        (["switch", "ls", "--name", "BR-*"], ["br-oob"], ["nat"]),
        (["network", "ls", "--name", "n?t"], ["nat"], []),
        (["adapter", "ls", "--name", "sec*", "c"], ["second"], ["Network Adapter"]),
        (["ps", "-a", "--name", "x*"], [], ["web1", "web2", "db"]),
    ],
)
def test_ls_name_filters(
    monkeypatch: pytest.MonkeyPatch, args: list[str], shown: list[str], hidden: list[str]
) -> None:
    monkeypatch.setattr(hostnet_cli, "Client", ListingClient)
    monkeypatch.setattr(cli_lifecycle, "Client", ListingClient)
    res = CliRunner().invoke(hostnet_cli.cli, args)
    assert res.exit_code == 0, res.output
    for name in shown:
        assert name in res.output
    for name in hidden:
        assert name not in res.output


def test_ls_literal_name_that_matches_nothing_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostnet_cli, "Client", ListingClient)
    res = CliRunner().invoke(hostnet_cli.cli, ["ps", "--name", "web2"])  # stopped: not without -a
    assert isinstance(res.exception, NotFound)
    assert res.exception.message == "no running container named 'web2'"
    assert "ps -a" in res.exception.remedy
