"""The seed's cmdlets translated into hostnet's command line (no daemon needed)."""

from __future__ import annotations

from typing import Any

import pytest

from hostnet import powershell as ps


class FakeClient:
    def get(self, path: str) -> Any:
        assert path == "/switches"
        return [{"Switch": "MySwitch", "Networks": "ext1"}]


def translate(*argv: str) -> list[str] | None:
    cmdlet = ps.BY_NAME[argv[0].lower()]
    return cmdlet.build(ps.parse(cmdlet, list(argv[1:])), FakeClient())  # type: ignore[arg-type]


def test_the_seeds_lines() -> None:
    assert translate(
        "New-ContainerNetwork", "-Name", "nat", "-Mode", "NAT", "-SubnetPrefix", "172.16.0.0/12",
        "-GatewayAddress", "172.16.0.1", "-DNSServers", "4.4.4.4,8.8.8.8", "-DNSSuffix", "abc.com",
    ) == ["network", "create", "-d", "nat", "--subnet", "172.16.0.0/12", "--gateway", "172.16.0.1",
          "-o", "dnsservers=4.4.4.4,8.8.8.8", "-o", "dnssuffix=abc.com", "nat"]  # fmt: skip
    assert translate(
        "New-ContainerNetwork", "-Name", "MyTransparentNet", "-Mode", "Transparent",
        "-NetworkAdapterName", "Ethernet",
    ) == ["network", "create", "-d", "transparent", "-o", "interface=Ethernet", "MyTransparentNet"]  # fmt: skip
    assert translate(
        "New-Container", "-Name", "DemoNAT", "-ContainerImageName", "WindowsServerCore",
        "-NetworkName", "nat",
    ) == ["create", "--name", "DemoNAT", "--image", "WindowsServerCore", "--network", "nat"]  # fmt: skip
    assert translate("Set-ContainerNetworkAdapter", "-ContainerName", "DemoNAT", "-StaticIPAddress",
                     "172.16.0.100") == ["adapter", "set", "--static-ip", "172.16.0.100", "DemoNAT"]  # fmt: skip
    assert translate("Start-Container", "DemoNAT") == ["start", "DemoNAT"]
    assert translate("Invoke-Command", "-ContainerName", "DemoNAT", "{ipconfig}") == [
        "ipconfig", "DemoNAT"]  # fmt: skip
    assert translate("Invoke-Command", "-ContainerName", "c", "{ping -c1 10.0.0.1}") == [
        "exec", "c", "sh", "-c", "ping -c1 10.0.0.1"]  # fmt: skip
    assert translate(
        "Add-ContainerNetworkAdapterStaticMapping", "-ContainerName", "DemoNAT", "-AdapterName",
        "Network Adapter", "-ExternalPort", "8082", "-InternalPort", "80", "-Protocol", "TCP",
    ) == ["adapter", "mapping", "add", "--name", "Network Adapter", "--external-port", "8082",
          "--internal-port", "80", "--protocol", "tcp", "DemoNAT"]  # fmt: skip
    assert translate("Connect-ContainerNetworkAdapter", "-ContainerName", "c", "-SwitchName",
                     "MySwitch") == ["adapter", "connect", "c", "ext1"]  # fmt: skip
    assert translate("Get-VMSwitchExtension", "-VMSwitchName", "nat", "-Name",
                     "Microsoft Azure VFP Switch Extension") == ["switch", "extension", "nat"]  # fmt: skip
    assert translate("Get-NetCompartment") == ["compartment", "ls"]


def test_names_match_in_any_case() -> None:
    assert ps.is_cmdlet("new-containernetwork") and ps.is_cmdlet("GET-VMSWITCH")
    assert not ps.is_cmdlet("network") and not ps.is_cmdlet("system-reset")
    assert translate("start-container", "-name", "x") == ["start", "x"]
    assert translate("STOP-CONTAINER", "x", "-TURNOFF") == ["stop", "-t", "0", "x"]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("Set-ContainerNetworkAdapter", "-ContainerName", "c", "-Bogus", "1"), "no parameter -Bogus"),
        (("Start-Container",), "needs -Name"),
        (("New-ContainerNetwork", "-Name", "n", "-Mode", "ICS"), "-Mode ICS"),
        (("Set-ContainerNetworkAdapter", "-ContainerName", "c"), "give -StaticIPAddress"),
        (("Get-VMSwitchExtension", "-VMSwitchName", "s", "-Name", "Other"), "one extension"),
        (("Start-Container", "a", "b"), "unexpected value 'b'"),
        (("Add-ContainerNetworkAdapterStaticMapping", "-ContainerName", "c", "-ExternalPort"), "needs a value"),
    ],
)  # fmt: skip
def test_bad_lines_name_what_was_wrong(argv: tuple[str, ...], said: str) -> None:
    with pytest.raises(ps.CmdletError) as exc:
        translate(*argv)
    assert said in exc.value.message


def test_lines_hostnet_cannot_honour_say_what_to_use() -> None:
    import click

    for line in (
        ["Get-VMNetworkAdapter", "-VMName", "x"],
        ["Restart-Service", "hns"],
        ["New-Thing"],
    ):
        with pytest.raises(ps.CmdletError) as exc:
            ps.run(click.Group(), line)
        assert line[0] in exc.value.message
