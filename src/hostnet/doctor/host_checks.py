"""Doctor checks of the host itself: kernel features, IPv6, forwarding, descriptor limits.

Each check is a pure function of what was read (see ``probe``), so unit tests hand in
canned inputs. ``nets`` is the daemon's network list (GET /networks), None when the
daemon could not be asked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hostnet.doctor.findings import Finding, error, ok, warning

Sysctl = Callable[[str], str | None]
Nets = list[dict[str, Any]] | None

# what each nftables family carries for hostnet (the probes in ``probe.NFT_PROBES``)
NFT_USES = {
    "ip": "NAT networks: outbound NAT and port mappings (IPv4)",
    "ip6": "NAT networks in IPv6",
    "inet": "the forward filter of NAT networks",
    "bridge": "l2bridge's MAC rewrite and the default inbound ACL",
    "netdev": "port ACLs, l2tunnel's forced upstream and adapter teaming (fwd)",
}
FD_WANTED = 1 << 20
SELECT_LIMIT = 1024


def _has(config: dict[str, str] | None, key: str) -> bool | None:
    if config is None:
        return None
    return config.get(key) in ("y", "m")


def check_nftables(refusals: dict[str, str]) -> list[Finding]:
    bad = {fam: err for fam, err in refusals.items() if err}
    if not bad:
        return [
            ok("kernel.nftables", f"nftables families {', '.join(refusals)} take hostnet's rules")
        ]
    if all("not permitted" in e.lower() for e in bad.values()):
        return [
            warning(
                "kernel.nftables",
                "cannot ask the kernel about nftables",
                "a dry run of hostnet's rules needs CAP_NET_ADMIN",
                "run 'hostnet doctor' as root",
            )
        ]
    return [
        error(
            f"kernel.nftables.{fam}",
            f"the kernel refuses nftables rules of family {fam}: {err.splitlines()[0]}",
            f"hostnet needs it for {NFT_USES.get(fam, 'its tables')}",
            "use a kernel with nf_tables and its family and expression modules "
            "(CONFIG_NF_TABLES_INET, _BRIDGE, _NETDEV, CONFIG_NFT_NAT, _MASQ, _FWD_NETDEV); "
            "install Debian's nftables and libnftables1",
        )
        for fam, err in bad.items()
    ]


def check_vxlan(config: dict[str, str] | None, loaded: bool, nets: Nets) -> list[Finding]:
    have = _has(config, "CONFIG_VXLAN")
    if have or loaded:
        return [ok("kernel.vxlan", "VXLAN is available (overlay networks)")]
    overlays = [n["Name"] for n in nets or [] if n.get("Driver") == "overlay"]
    if have is None:
        return [
            warning(
                "kernel.vxlan",
                "cannot tell whether the kernel has VXLAN (no /proc/config.gz or /boot/config-*)",
                "overlay networks need VXLAN devices",
                "check with 'modprobe -n vxlan'; overlay networks fail to attach without it",
            )
        ]
    make = error if overlays else warning
    return [
        make(
            "kernel.vxlan",
            "the kernel has no VXLAN (CONFIG_VXLAN is not set)"
            + (f": overlay networks {', '.join(overlays)} cannot work" if overlays else ""),
            "overlay networks carry their traffic in VXLAN devices",
            "use a kernel with CONFIG_VXLAN, or no overlay networks on this host",
        )
    ]


def check_bpf(refusal: str, config: dict[str, str] | None) -> list[Finding]:
    missing = [
        k
        for k in ("CONFIG_NET_CLS_BPF", "CONFIG_NET_SCH_INGRESS")
        if config is not None and not _has(config, k)
    ]
    if not refusal and not missing:
        return [ok("kernel.bpf", "eBPF programs load and tc can attach them (vlanid tagging)")]
    why = refusal or f"{', '.join(missing)} not set"
    return [
        warning(
            "kernel.bpf",
            f"VLAN tagging (-o vlanid=N) will fail: {why}",
            "without the 8021q module hostnet tags VLANs with two eBPF programs on tc clsact",
            "use a kernel with CONFIG_BPF_SYSCALL, CONFIG_NET_CLS_BPF and CONFIG_NET_SCH_INGRESS"
            " (and run doctor as root: loading a program needs CAP_BPF)",
        )
    ]


def check_modules(config: dict[str, str] | None, loaded: Callable[[str], bool]) -> list[Finding]:
    """8021q and bonding: hostnet never needs them; say which path it takes instead."""
    out = []
    for check, key, module, instead in (
        ("kernel.8021q", "CONFIG_VLAN_8021Q", "8021q", "VLANs are tagged by eBPF on tc clsact"),
        ("kernel.bonding", "CONFIG_BONDING", "bonding", "teams are spread by nftables netdev fwd"),
    ):
        have = _has(config, key) or loaded(module)
        state = "present" if have else "absent" if config is not None else "unknown"
        out.append(ok(check, f"{module} module {state}: not needed, {instead}"))
    return out


def check_ipv6(sysctl: Sysctl, nets: Nets) -> list[Finding]:
    v6 = [n["Name"] for n in nets or [] if n.get("EnableIPv6") or n.get("SubnetIPv6")]
    make = error if v6 else warning
    uses = f"networks {', '.join(v6)} have IPv6" if v6 else "no network has IPv6 yet"
    if sysctl("net.ipv6.conf.all.disable_ipv6") is None:
        return [
            make(
                "ipv6",
                f"IPv6 is disabled at boot (no /proc/sys/net/ipv6): {uses}",
                "dual-stack networks, SLAAC on transparent networks and the seed's hosts need IPv6",
                "remove ipv6.disable=1 from the kernel command line (GRUB_CMDLINE_LINUX) and reboot",
            )
        ]
    off = [
        k
        for k in ("all", "default")
        if sysctl(f"net.ipv6.conf.{k}.disable_ipv6") not in ("0", None)
    ]
    if off:
        keys = " ".join(f"net.ipv6.conf.{k}.disable_ipv6=0" for k in off)
        return [
            make(
                "ipv6",
                f"IPv6 is disabled ({', '.join(f'net.ipv6.conf.{k}.disable_ipv6=1' for k in off)}): {uses}",
                "links made from now on get no IPv6; dual-stack networks and endpoints need it",
                f"enable it (and remove the setting from /etc/sysctl.conf, /etc/sysctl.d/): sysctl -w {keys}",
                f"sysctl -w {keys}",
            )
        ]
    return [ok("ipv6", "IPv6 is enabled")]


def check_forwarding(sysctl: Sysctl, nets: Nets) -> list[Finding]:
    out = []
    routed = [n for n in nets or [] if n.get("Driver") == "nat" and not n.get("Internal")]
    v4 = [n["Name"] for n in routed if n.get("Subnet")]
    v6 = [n["Name"] for n in routed if n.get("SubnetIPv6")]
    for check, key, needed, family in (
        ("forwarding.ipv4", "net.ipv4.ip_forward", v4, "IPv4"),
        ("forwarding.ipv6", "net.ipv6.conf.all.forwarding", v6, "IPv6"),
    ):
        value = sysctl(key)
        if value is None or value == "1":
            if value == "1":
                out.append(ok(check, f"{family} forwarding is on ({key}=1)"))
            continue
        if needed or (nets is None and family == "IPv4"):
            what = f"{family} forwarding is off ({key}={value})"
            what += f": NAT networks {', '.join(needed)} are cut off" if needed else ""
            out.append(
                (error if needed else warning)(
                    check,
                    what,
                    "NAT containers reach nothing beyond the host and mapped ports do not "
                    "answer; hostnet turns it on when it makes a NAT network, something "
                    "turned it off since",
                    f"turn it on, and look for '{key} = 0' in /etc/sysctl.conf and /etc/sysctl.d/",
                    f"sysctl -w {key}=1",
                )
            )
        else:
            out.append(ok(check, f"{family} forwarding is off; no network needs it yet"))
    return out


def check_fd_limit(limits: tuple[int, int] | None, pid: int) -> list[Finding]:
    whose = f"hostnetd (pid {pid})" if pid else "this shell (hostnetd started from it)"
    if limits is None:
        return [ok("limits.nofile", f"cannot read the descriptor limit of {whose}")]
    soft, hard = limits
    # a running daemon has raised its soft limit to the hard one; a new one will
    effective = soft if pid else hard
    if effective == -1 or effective > SELECT_LIMIT:
        return [ok("limits.nofile", f"descriptor limit of {whose}: {soft} (hard {hard})")]
    # up to the hard limit needs no privilege; above it, CAP_SYS_RESOURCE
    target = hard if hard > SELECT_LIMIT or hard == -1 else FD_WANTED
    limit = "unlimited" if target == -1 else str(target)
    command = (
        f"prlimit --pid {pid} --nofile={limit}:{limit}"
        if pid
        else f"ulimit -Hn {FD_WANTED} && ulimit -n {FD_WANTED}"
    )
    return [
        warning(
            "limits.nofile",
            f"descriptor limit of {whose}: {soft} (hard {hard})",
            "each compartment's embedded DNS holds descriptors above 1023 (libnftables' "
            "select() takes only lower ones): with this limit about 380 compartments get DNS",
            f"raise it (LimitNOFILE={FD_WANTED} in hostnetd's systemd unit for good)",
            command,
        )
    ]


def check_daemon(info: dict[str, Any] | None, problem: str, socket_path: str) -> list[Finding]:
    if info is not None:
        return [
            ok("daemon", f"hostnetd at {socket_path} answers (instance {info.get('instance')})")
        ]
    return [
        warning(
            "daemon",
            f"daemon not reachable: {problem}",
            "checks of networks, adapters bound and the store need hostnetd's API",
            "start hostnetd, or point --socket / HOSTNET_SOCKET at its socket",
        )
    ]
