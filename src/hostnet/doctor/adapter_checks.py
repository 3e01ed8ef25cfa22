"""Doctor checks of the host's adapters: which ones an external (transparent, l2bridge,
l2tunnel) network would take, whether one is already a port of a bridge hostnet did not
make (the seed's "existing vSwitch blocks a transparent network"), and MAC spoofing for
transparent networks inside a VM (several MACs behind the VM's one vNIC).

Pure functions of ``ip -j -d link show`` output, the default route's adapters and the
daemon's switch list (GET /switches; None when the daemon could not be asked).
"""

from __future__ import annotations

from typing import Any

from hostnet.doctor.findings import Finding, ok, warning

HOSTNET_LINKS = ("hn-", "hx-", "ho-", "vo-", "hv", "ht", "hu")  # switches, VXLAN, vNICs, teams
OTHER_RUNTIMES = ("veth", "docker", "virbr", "cni", "podman")
Switches = list[dict[str, Any]] | None


def adapters(links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Links that could carry an external network: Ethernet links that are not hostnet's
    or another runtime's, physical ones or a veth leading to another namespace (a lab)."""
    out = []
    for ln in links:
        name, kind = ln.get("ifname", ""), ln.get("linkinfo", {}).get("info_kind")
        if ln.get("link_type") != "ether" or name.startswith(HOSTNET_LINKS + OTHER_RUNTIMES):
            continue
        if kind is None or (kind == "veth" and "link_netnsid" in ln):
            out.append(ln)
    return out


def _bound(switches: Switches) -> dict[str, str]:
    """adapter -> the hostnet network whose switch it is bound to."""
    out = {}
    for s in switches or []:
        if s.get("SwitchType") == "External":
            for a in str(s.get("Adapter", "")).split(","):
                out[a] = s.get("Networks", "")
    return out


def check_adapters(
    links: list[dict[str, Any]], default_devs: list[str], switches: Switches
) -> list[Finding]:
    found = adapters(links)
    if not found:
        return [ok("adapters", "no adapter here for an external network (transparent, l2bridge)")]
    bound, out, summary = _bound(switches), [], []
    for ln in found:
        name, master = ln["ifname"], ln.get("master", "")
        tags = ["default route"] if name in default_devs else []
        if name in bound:
            tags.append(f"network {bound[name]}")
        elif master.startswith("hx-"):
            tags.append(f"hostnet switch {master}")
        elif master:
            slave = ln.get("linkinfo", {}).get("info_slave_kind") or "bridge"
            tags.append(f"port of {master}")
            out.append(
                warning(
                    "adapters",
                    f"adapter {name} is a port of {slave} {master}, which hostnet did not make",
                    "an external network (transparent, l2bridge, l2tunnel) on it is refused: "
                    "one adapter joins one switch, and hostnet does not take over a "
                    "switch made out of band",
                    f"if {master} carries the host's addresses, move them back to {name} "
                    f"first; then release the adapter (and delete {master} if nothing uses "
                    f"it), or create the network on another adapter with -o interface=NAME",
                    f"ip link set {name} nomaster",
                )
            )
        else:
            tags.append("free")
        summary.append(f"{name} ({', '.join(tags)})")
    default = next((d for d in default_devs if any(a["ifname"] == d for a in found)), "")
    takes = f"; without -o interface= a network takes {default}" if default else ""
    out.insert(0, ok("adapters", f"adapters: {', '.join(summary)}{takes}"))
    return out


SPOOFING = {
    "microsoft": "on the Hyper-V host: Get-VMNetworkAdapter -VMName <VM> | "
    "Set-VMNetworkAdapter -MacAddressSpoofing On",
    "vmware": "on the port group: Promiscuous mode, MAC address changes and Forged "
    "transmits set to Accept",
    "oracle": "VirtualBox: the adapter's Promiscuous Mode set to Allow All",
    "kvm": "libvirt/QEMU: no MAC filter (nwfilter clean-traffic, no-mac-spoofing) on the "
    "VM's interface; in a cloud (EC2, GCE, Azure) extra MACs are dropped for good",
}


def check_mac_spoofing(
    virt: str, nets: list[dict[str, Any]] | None, switches: Switches, drivers: dict[str, str]
) -> list[Finding]:
    """``drivers``: adapter -> its kernel driver (virtio_net, hv_netvsc, vmxnet3...)."""
    if not virt:
        return [ok("mac-spoofing", "not a VM: transparent endpoints' MACs reach the wire")]
    how = SPOOFING.get(
        virt, "allow MAC spoofing (several MACs per vNIC) on the VM's network adapter"
    )
    transparent = {n["Name"] for n in nets or [] if n.get("Driver") == "transparent"}
    on, virtual = [], []
    for sw in switches or []:
        if sw.get("Networks") not in transparent:
            continue
        for member in str(sw.get("Adapter", "")).split(","):
            if drivers.get(member):  # a device: the VM's vNIC as the hypervisor gave it
                on.append(f"{sw['Networks']} on {member} ({drivers[member]})")
            else:
                virtual.append(f"{sw['Networks']} on {member}")
    advice = f"{how}, or use l2bridge (every frame carries the adapter's MAC)"
    if not on:
        what = f"this host is a VM ({virt}); " + (
            f"transparent networks only on virtual links: {', '.join(virtual)}"
            if virtual
            else "no transparent network yet"
        )
        why = "a transparent network sends each endpoint's own MAC through the VM's vNIC"
        if virtual:
            why += " (where a virtual link's frames leave through it, too)"
        return [ok("mac-spoofing", what, f"{why}: {advice}")]
    return [
        warning(
            "mac-spoofing",
            f"this host is a VM ({virt}) and transparent networks send several MACs "
            f"through its vNIC: {', '.join(on)}",
            "the hypervisor drops frames from MACs it did not give the VM: DHCP leases and "
            "every endpoint's traffic go missing (the seed's MACAddressSpoofing tip)",
            f"{how}; or use l2bridge, whose frames all carry the adapter's MAC",
        )
    ]
