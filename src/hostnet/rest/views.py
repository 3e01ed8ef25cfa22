"""Read-only views: Docker-shaped network JSON and the seed's management tables."""

from __future__ import annotations

import datetime
import re
from typing import TYPE_CHECKING, Any

from hostnet.dns import names
from hostnet.docker import binding as docker_binding
from hostnet.kernel import adapters

if TYPE_CHECKING:
    from hostnet.core.service import HostNetworkingService
    from hostnet.model import Container, Endpoint, Network


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


def network_summary(net: Network, docker: str = docker_binding.OFF) -> dict[str, Any]:
    """One row of ``network ls``; ``docker``: what hostnetd knows of Docker now."""
    return {
        "Name": net.name,
        "Id": net.id,
        "Driver": net.driver,
        "Scope": "local",
        "Subnet": net.subnet,
        "Gateway": net.gateway,
        "SubnetIPv6": net.subnet6,
        "GatewayIPv6": net.gateway6,
        "EnableIPv6": net.enable_ipv6,
        "Internal": net.internal,
        "Docker": docker_binding.docker_state(net, docker),
        "DockerIds": list(net.docker_ids),
    }


def ipam_config(net: Network) -> list[dict[str, Any]]:
    """Docker's IPAM.Config: one entry per subnet, with its range and reserved addresses."""
    out: list[dict[str, Any]] = []
    for subnet, gateway, rng, version in (
        (net.subnet, net.gateway, net.ip_range, 4),
        (net.subnet6, net.gateway6, net.ip_range6, 6),
    ):
        if not subnet:
            continue
        entry: dict[str, Any] = {"Subnet": subnet, "Gateway": gateway}
        if rng:
            entry["IPRange"] = rng
        aux = {k: v for k, v in net.aux_addresses.items() if (":" in v) == (version == 6)}
        if aux:
            entry["AuxiliaryAddresses"] = aux
        out.append(entry)
    return out


def _cidr(ip: str, prefix: int) -> str:
    return f"{ip}/{prefix}" if ip else ""


def network_inspect(svc: HostNetworkingService, net: Network) -> dict[str, Any]:
    containers: dict[str, Any] = {}
    for ep in svc.endpoints_on(net):
        c = svc.containers.get(ep.container_id)
        if c is None:
            continue
        containers[c.id] = {
            "Name": c.name,
            "EndpointID": ep.id,
            "MacAddress": ep.mac,
            "IPv4Address": _cidr(ep.ip, ep.prefix_len),
            "IPv6Address": _cidr(ep.ip6, ep.prefix_len6),
        }
    view: dict[str, Any] = {
        "Name": net.name,
        "Id": net.id,
        "Created": _iso(net.created),
        "Scope": "local",
        "Driver": net.driver,
        "EnableIPv6": net.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": {}, "Config": ipam_config(net)},
        "Internal": net.internal,
        "Attachable": True,
        "Containers": containers,
        "Options": dict(net.options),
        "Labels": {},
        "Switch": net.options.get("networkname", net.switch),
    }
    if net.note:
        view["Note"] = net.note
    others = [e for e in svc.endpoints_on(net) if e.on_host] + svc.index.unattached_on(net)
    if others:  # Docker has no such endpoints: a key of hostnet's own, there when they are
        view["Endpoints"] = {
            e.id: {
                "Name": e.name,
                "State": "attached" if e.attached else "unattached",
                "Namespace": "host" if e.on_host else "",
                "MacAddress": e.mac,
                "IPv4Address": _cidr(e.ip, e.prefix_len),
                "IPv6Address": _cidr(e.ip6, e.prefix_len6),
            }
            for e in others
        }
    return view


def endpoint_view(ep: Endpoint) -> dict[str, Any]:
    return {
        "Id": ep.id,
        "Network": ep.network_id,
        "IfName": ep.ifname,
        "HostIfName": ep.host_ifname,
        "IPAddress": ep.ip,
        "PrefixLength": ep.prefix_len,
        "Gateway": ep.gateway,
        "GlobalIPv6Address": ep.ip6,
        "GlobalIPv6PrefixLen": ep.prefix_len6,
        "IPv6Gateway": ep.gateway6,
        "MacAddress": ep.mac,
        "Ports": [p.model_dump() for p in ep.ports],
    }


def container_view(svc: HostNetworkingService, c: Container) -> dict[str, Any]:
    eps = svc.endpoints_of(c)
    return {
        "Id": c.id,
        "Name": c.name,
        "CompartmentId": c.compartment_id,
        "Netns": c.netns,
        "NetnsPath": c.netns if c.netns.startswith("/") else f"/run/netns/{c.netns}",
        "External": c.external,
        "Pid": c.pid,
        "Running": svc.process_alive(c),
        # "" for a container that lives with its process (run, CNI, Docker): running
        "State": c.state or "running",
        "Image": c.image,
        "Command": list(c.command),
        "Adapters": [a.model_dump() for a in c.adapters],
        "LogPath": c.log_path,
        "Created": _iso(c.created),
        "Networks": {
            svc.nets[e.network_id].name: endpoint_view(e) for e in eps if e.network_id in svc.nets
        },
        "Dns": names.dns_for(svc.nets, c, [e for e in eps if e.network_id in svc.nets]),
    }


def compartments(svc: HostNetworkingService) -> list[dict[str, Any]]:
    rows = [{"CompartmentId": 1, "Compartment": "host (default)", "Container": "", "Endpoints": ""}]
    for c in sorted(svc.containers.values(), key=lambda c: c.compartment_id):
        if c.state == "created":
            continue  # no compartment before its first start
        eps = svc.endpoints_of(c)
        rows.append(
            {
                "CompartmentId": c.compartment_id,
                "Compartment": c.netns,
                "Container": c.name,
                "Endpoints": ", ".join(
                    f"{e.ifname} {' '.join(a for a in (e.ip, e.ip6) if a)} "
                    f"({svc.nets[e.network_id].name})"
                    for e in eps
                    if e.network_id in svc.nets
                ),
            }
        )
    return rows


def nat_table(svc: HostNetworkingService) -> list[dict[str, Any]]:
    rows = []
    for net in sorted(svc.nets.values(), key=lambda n: n.name):
        if not svc.driver_of(net).publishes_ports:
            continue
        rows.append(
            {
                "Network": net.name,
                "InternalPrefix": ", ".join(x for x in (net.subnet, net.subnet6) if x),
                "External": "*",
                "Internal": "",
                "Protocol": "",
                "Container": "",
            }
        )
        for ep in svc.endpoints_on(net):
            c = svc.containers.get(ep.container_id)
            for p in ep.ports:
                for version, to in ((4, ep.ip), (6, ep.ip6)):
                    if not to or p.family not in (0, version):
                        continue  # one row per family the mapping forwards
                    host = p.host_ip or ("0.0.0.0" if version == 4 else "::")
                    rows.append(
                        {
                            "Network": net.name,
                            "InternalPrefix": net.subnet if version == 4 else net.subnet6,
                            "External": f"{_host(host)}:{p.host_port}",
                            "Internal": f"{_host(to)}:{p.container_port}",
                            "Protocol": p.protocol.upper(),
                            "Container": c.name if c else "",
                        }
                    )
    return rows


def _host(ip: str) -> str:
    """An address as it goes before :PORT (IPv6 in brackets)."""
    return f"[{ip}]" if ":" in ip else ip


def switches(svc: HostNetworkingService) -> list[dict[str, Any]]:
    """``switch ls`` (Get-VMSwitch): every network's switch, then the bridges of the
    daemon's namespace that no hostnet made (one link dump)."""
    links = adapters.link_table(svc.host)
    by_name = {ln["name"]: ln for ln in links}
    rows = []
    for net in sorted(svc.nets.values(), key=lambda n: n.name):
        view = svc.driver_of(net).switch_view(net)
        br = by_name.get(net.switch)
        ports = _ports(links, br["index"]) if br else []
        rows.append(
            {
                "Switch": net.options.get("networkname", net.name),
                "SwitchType": view["Type"],
                "Adapter": view["Adapter"] or "-",
                "VLAN": view.get("VLAN") or "-",
                "Kernel": view["Kernel"],
                "Networks": net.name,
                **({"VNI": view["VNI"], "VTEP": view["VTEP"]} if "VNI" in view else {}),
                "Ports": len(ports),
                "Origin": view.get("Origin", "hostnet"),
                "PortNames": ports,
            }
        )
    return rows + foreign_switches(links, {n.switch for n in svc.nets.values()})


def _ports(links: list[adapters.Link], bridge_index: int) -> list[str]:
    return sorted(ln["name"] for ln in links if ln["master"] == bridge_index)


def foreign_switches(links: list[adapters.Link], used: set[str]) -> list[dict[str, Any]]:
    """Bridges no hostnet made and no network uses: external switches made out of band
    (the seed's vSwitch "not visible to Docker"), with their ports and adapters."""
    rows = []
    for br in sorted(links, key=lambda ln: ln["name"]):
        if br["kind"] != "bridge" or adapters.hostnets(br) or br["name"] in used:
            continue
        ports = _ports(links, br["index"])
        rows.append(
            {
                "Switch": br["name"],
                "SwitchType": FOREIGN_TYPE,
                "Adapter": ",".join(adapters.adapter_ports(links, br["index"])) or "-",
                "VLAN": "-",
                "Kernel": br["name"],
                "Networks": "-",
                "Ports": len(ports),
                "Origin": likely_maker(br["name"]),
                "PortNames": ports,
            }
        )
    return rows


FOREIGN_TYPE = "External (not managed by hostnet)"
_MAKERS = (
    (re.compile(r"^(docker0|docker_gwbridge|br-[0-9a-f]{12})$"), "Docker (likely)"),
    (re.compile(r"^(cni-podman\d+|podman\d+)$"), "podman (likely)"),
    (re.compile(r"^(cni\d+|cbr\d+)$"), "a CNI bridge plugin (likely)"),
    (re.compile(r"^virbr\d+$"), "libvirt (likely)"),
    (re.compile(r"^(lxcbr|lxdbr)\d+$"), "LXC/LXD (likely)"),
)


def likely_maker(name: str) -> str:
    """Who probably made a bridge, from the names other runtimes give theirs."""
    return next((who for pattern, who in _MAKERS if pattern.match(name)), "out of band")


def endpoint_hns(svc: HostNetworkingService, ep: Endpoint) -> dict[str, Any]:
    """An endpoint in HNS form (HostComputeEndpoint with its policies)."""
    policies: list[dict[str, Any]] = [{"Type": "ACL", "Settings": r.model_dump()} for r in ep.acl]
    policies += [
        {
            "Type": "PortMapping",
            "Settings": {
                "Protocol": 6 if p.protocol == "tcp" else 17,
                "InternalPort": p.container_port,
                "ExternalPort": p.host_port,
                "VIP": p.host_ip,
            },
        }
        for p in ep.ports
    ]
    if ep.bandwidth.get("egressRate"):
        policies.append(
            {
                "Type": "QOS",
                "Settings": {"MaximumOutgoingBandwidthInBytes": ep.bandwidth["egressRate"] // 8},
            }
        )
    if ep.outbound_nat is not None:
        policies.append(ep.outbound_nat.hns())
    policies += [r.hns() for r in ep.routes]
    net = svc.nets.get(ep.network_id)
    return {
        "ID": ep.id,
        "Name": ep.host_ifname,
        "HostComputeNetwork": ep.network_id,
        "HostComputeNamespace": ep.container_id,
        "IpConfigurations": [
            {"IpAddress": ip, "PrefixLength": n}
            for ip, n in ((ep.ip, ep.prefix_len), (ep.ip6, ep.prefix_len6))
            if ip
        ],
        "MacAddress": ep.mac,
        "Dns": ep.dns or (net.dns() if net else {}),
        "Policies": policies,
    }


def system_info(svc: HostNetworkingService) -> dict[str, Any]:
    """``hostnet system info``: versions, store, instance, and the kernel pieces in use."""
    import os
    import platform
    import sys

    import hostnet

    tables = sorted(
        line.removeprefix("table ")
        for line in svc.nft.output("list tables").splitlines()
        if line.split()[-1:] and line.split()[-1].startswith("hostnet")
    )
    kinds: dict[str, int] = {}
    for link in svc.host.links():
        if link["alias"] == svc.owner:
            kinds[link["kind"] or "device"] = kinds.get(link["kind"] or "device", 0) + 1
    drivers = sorted({n.driver for n in svc.nets.values()})
    return {
        "Version": hostnet.__version__,
        "Python": platform.python_version(),
        "Executable": sys.executable,
        "Pid": os.getpid(),  # what uninstall.sh stops: the daemon answering on its socket
        "Instance": svc.instance,
        "Host": svc.host_id,
        "StateDir": svc.state_dir,
        "Store": svc.store.describe(),
        "Networks": len(svc.nets),
        "Containers": len(svc.containers),
        "Endpoints": len(svc.eps),
        "DriversInUse": drivers,
        "Kernel": {
            "Release": os.uname().release,
            "NftTables": tables,
            "Links": dict(sorted(kinds.items())),
            "Modules": _modules(("8021q", "bonding", "vxlan", "br_netfilter")),
        },
    }


def _modules(names: tuple[str, ...]) -> dict[str, bool]:
    """Which of these kernel modules are loaded or built in (hostnet works without 8021q
    and bonding: it tags VLANs with eBPF and teams adapters with nftables)."""
    import os

    try:
        with open("/proc/modules") as fh:
            loaded = {line.split()[0] for line in fh}
    except OSError:
        loaded = set()
    return {n: n in loaded or os.path.isdir(f"/sys/module/{n}") for n in names}


def _dots(label: str) -> str:
    """ipconfig's leader: the label, then ' .' to column 36, then ':'."""
    if label == "Connection-specific DNS Suffix":
        return "   Connection-specific DNS Suffix  . : "
    line = "   " + label
    line += " " if len(line) % 2 == 0 else ""
    while len(line) < 36:
        line += ". " if len(line) < 35 else "."
    return line.rstrip() + " : "


def ipconfig(svc: HostNetworkingService, c: Container) -> dict[str, Any]:
    """The compartment's configuration read from the kernel, as the seed's ``Invoke-Command
    {ipconfig}`` prints it (``Text``) and as data (``Adapters``)."""
    import ipaddress

    if c.state == "created" or not svc.kernel.compartment_exists(c.netns):
        return {"Container": c.name, "Adapters": [], "Text": "\nWindows IP Configuration\n\n"}
    eps = {e.ifname: e for e in svc.endpoints_of(c)}
    by_net = {a.network_id: a.name for a in c.adapters}
    suffix = " ".join(names.dns_for(svc.nets, c, list(eps.values())).get("search", [])[:1])
    with svc.kernel.netlink_inside(c.netns) as nl:
        config = nl.ip_config()
    lines = ["", "Windows IP Configuration", ""]
    adapters = []
    for link in config:
        ep = eps.get(link["name"])
        title = by_net.get(ep.network_id, link["name"]) if ep else link["name"]
        lines += [f"Ethernet adapter vEthernet ({title}):", ""]
        rows = [("Connection-specific DNS Suffix", suffix)]
        for a in link["addresses"]:
            if a["family"] == 6 and a["scope"] == "link":
                rows.append(("Link-local IPv6 Address", f"{a['address']}%{link['index']}"))
        for a in link["addresses"]:
            if a["family"] == 6 and a["scope"] == "global":
                rows.append(("IPv6 Address", a["address"]))
        for a in link["addresses"]:
            if a["family"] == 4:
                mask = ipaddress.IPv4Network(f"0.0.0.0/{a['prefixlen']}").netmask
                rows += [("IPv4 Address", a["address"]), ("Subnet Mask", str(mask))]
        rows.append(("Default Gateway", (link["gateways"] or [""])[0]))
        rows += [("", g) for g in link["gateways"][1:]]
        lines += [(_dots(k) if k else " " * 39) + v for k, v in rows]
        lines.append("")
        adapters.append({"Name": title, "Interface": link["name"], "Mac": link["mac"], **link})
    return {"Container": c.name, "Adapters": adapters, "Text": "\n".join(lines) + "\n"}
