"""Reading the host for ``hostnet doctor``: sysctls, the kernel's configuration, what the
kernel accepts (nftables dry runs, a BPF program load), links, the hypervisor, limits.

Everything here reads the network namespace the process runs in (a test runs doctor in
a lab host with ``nsenter --net=...``) and changes nothing: an nftables probe is a dry run
(the kernel checks the transaction and aborts it) and a probed BPF program is closed at
once.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import platform
import resource
import shutil
import socket
import struct
import subprocess
from typing import Any

from hostnet.errors import HostnetError


def sysctl(name: str) -> str | None:
    """A sysctl's value (``net.ipv4.ip_forward``), None when the kernel has no such knob."""
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as fh:
            return fh.read().strip()
    except OSError:
        return None


def kernel_config() -> dict[str, str] | None:
    """CONFIG_* of the running kernel (/proc/config.gz, else /boot/config-RELEASE)."""
    text = ""
    with contextlib.suppress(OSError), gzip.open("/proc/config.gz", "rt") as fh:
        text = fh.read()
    if not text:
        with contextlib.suppress(OSError), open(f"/boot/config-{platform.release()}") as fh:
            text = fh.read()
    if not text:
        return None
    return parse_config(text)


def parse_config(text: str) -> dict[str, str]:
    """CONFIG_X=y|m|value lines; '# CONFIG_X is not set' ones are simply absent."""
    out = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, value = line.split("=", 1)
            out[key] = value.strip('"')
    return out


def module_loaded(name: str) -> bool:
    return os.path.isdir(f"/sys/module/{name}")


# What hostnet asks of nftables, per family: one small transaction each, dry-run.
NFT_PROBES: dict[str, str] = {
    "ip": "add table ip hostnet_doctor\n"
    "add chain ip hostnet_doctor c1 { type nat hook postrouting priority 100; }\n"
    "add rule ip hostnet_doctor c1 masquerade\n"
    "add chain ip hostnet_doctor c2 { type nat hook prerouting priority -100; }\n"
    "add rule ip hostnet_doctor c2 tcp dport 8080 dnat to 192.0.2.1:80\n",
    "ip6": "add table ip6 hostnet_doctor\n"
    "add chain ip6 hostnet_doctor c1 { type nat hook postrouting priority 100; }\n"
    "add rule ip6 hostnet_doctor c1 masquerade\n",
    "inet": "add table inet hostnet_doctor\n"
    "add chain inet hostnet_doctor c1 { type filter hook forward priority 0; }\n"
    "add rule inet hostnet_doctor c1 ct state established accept\n",
    "bridge": "add table bridge hostnet_doctor\n"
    "add chain bridge hostnet_doctor c1 { type filter hook postrouting priority 0; }\n"
    "add rule bridge hostnet_doctor c1 ether saddr set 02:00:00:00:00:01\n",
    "netdev": "add table netdev hostnet_doctor\n"
    "add chain netdev hostnet_doctor c1 { type filter hook ingress device lo priority 0; }\n"
    "add rule netdev hostnet_doctor c1 fwd to lo\n",
}


CAP_NET_ADMIN = 12


def has_capability(cap: int) -> bool:
    """Whether this process holds ``cap`` (its effective set, /proc/self/status)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> cap & 1)
    return False


NOT_PERMITTED = "Operation not permitted (needs CAP_NET_ADMIN)"


def nft_refusals() -> dict[str, str]:
    """Each family's probe: '' when the kernel would take it, else nft's error text."""
    from hostnet.kernel import nft

    if not has_capability(CAP_NET_ADMIN):  # libnftables would also print to our stderr
        return {family: NOT_PERMITTED for family in NFT_PROBES}
    try:
        return {family: nft.refusal(script) for family, script in NFT_PROBES.items()}
    except HostnetError as exc:  # libnftables missing
        return {family: exc.message for family in NFT_PROBES}


def nft_ruleset() -> list[dict[str, Any]] | str:
    """The ruleset (libnftables JSON objects), or why it could not be read."""
    from hostnet.kernel import nft

    if not has_capability(CAP_NET_ADMIN):
        return NOT_PERMITTED
    try:
        return nft.ruleset()
    except HostnetError as exc:
        return exc.message


def legacy_filter_save() -> dict[str, str]:
    """``ip6?tables-legacy-save -t filter`` per family ('ip', 'ip6') where this namespace
    has a legacy filter table (/proc/net/ip*_tables_names): rules nftables cannot see."""
    out = {}
    for family, names, tool in (
        ("ip", "/proc/net/ip_tables_names", "iptables-legacy-save"),
        ("ip6", "/proc/net/ip6_tables_names", "ip6tables-legacy-save"),
    ):
        try:
            with open(names) as fh:
                if "filter" not in fh.read().split():
                    continue
        except OSError:
            continue
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            res = subprocess.run([tool, "-t", "filter"], capture_output=True, text=True, timeout=10)
            if res.returncode == 0:
                out[family] = res.stdout
    return out


def bpf_refusal() -> str:
    """Load (and close) the VLAN push program hostnet attaches for ``vlanid``."""
    from hostnet.kernel import bpf

    try:
        os.close(bpf.load(bpf.push_program(11), "hostnet_doctor"))
    except HostnetError as exc:
        return exc.message.rstrip(": ")
    return ""


def links() -> list[dict[str, Any]]:
    """``ip -j -d link show``: every link of this namespace with its kind and master."""
    return _ip_json("-d", "link", "show")


def default_route_devs() -> list[str]:
    return [r["dev"] for r in _ip_json("route", "show", "default") if r.get("dev")]


def _ip_json(*args: str) -> list[dict[str, Any]]:
    try:
        res = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    try:
        data = json.loads(res.stdout or "[]")
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def virtualization() -> str:
    """The hypervisor this host runs under ('kvm', 'microsoft', 'vmware', ...), 'vm' when
    only the CPU says it is virtual, '' on bare metal."""
    if shutil.which("systemd-detect-virt"):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            res = subprocess.run(
                ["systemd-detect-virt", "--vm"], capture_output=True, text=True, timeout=5
            )
            name = res.stdout.strip()
            return "" if name in ("", "none") else name
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("flags") and " hypervisor" in line:
                return "vm"
    return ""


def nic_driver(ifname: str) -> str:
    """The kernel driver behind an adapter (virtio_net, hv_netvsc, vmxnet3...), or ''."""
    with contextlib.suppress(OSError):
        return os.path.basename(os.readlink(f"/sys/class/net/{ifname}/device/driver"))
    return ""


def socket_peer_pid(path: str) -> int:
    """The pid of the process listening on a unix socket (SO_PEERCRED), 0 if unknown."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(path)
        creds = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, _, _ = struct.unpack("3i", creds)
        return pid
    return 0


def fd_limits(pid: int = 0) -> tuple[int, int] | None:
    """(soft, hard) RLIMIT_NOFILE of ``pid`` (from /proc/PID/limits), or of this process."""
    if not pid:
        return resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        with open(f"/proc/{pid}/limits") as fh:
            return parse_fd_limits(fh.read())
    except OSError:
        return None


def parse_fd_limits(text: str) -> tuple[int, int] | None:
    for line in text.splitlines():
        if line.startswith("Max open files"):
            fields = line[len("Max open files") :].split()
            soft, hard = (-1 if v == "unlimited" else int(v) for v in fields[:2])
            return soft, hard
    return None
