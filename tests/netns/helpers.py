"""Traffic helpers for namespace tests: servers that answer with a name, clients that ask."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import time
from typing import Any

from lab import Daemon, in_ns


def serve(
    d: Daemon, net: str, name: str, port: int = 80, udp: bool = False, *opts: str
) -> dict[str, Any]:
    """A detached container answering each TCP connection (or UDP datagram) with its name,
    over IPv4 and IPv6."""
    listen = (
        f"UDP6-RECVFROM:{port},fork,ipv6only=0"
        if udp
        else f"TCP6-LISTEN:{port},reuseaddr,fork,ipv6only=0"
    )
    d.cli(
        "run",
        "-d",
        "--net",
        net,
        "--name",
        name,
        *opts,
        "--",
        "socat",
        "-T5",
        listen,
        # read the request first: closing with unread data sends a RST that can eat the answer
        f"SYSTEM:echo {name}" if udp else f"SYSTEM:read line; echo {name}",
    )
    c = d.json("network", "inspect", net)[0]
    info = next(v for v in c["Containers"].values() if v["Name"] == name)
    ip = info["IPv4Address"].split("/")[0]
    ip6 = info["IPv6Address"].split("/")[0]
    path = d.json("ps", "--format", "json")
    netns = next(x["NetnsPath"] for x in path if x["Name"] == name)
    wait_listening(netns, port, udp)
    return {"ip": ip, "ip6": ip6, "netns": netns, "name": name}


def wait_listening(netns: str, port: int, udp: bool = False, timeout: float = 10) -> None:
    flag = "-lun" if udp else "-ltn"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = in_ns(netns, "ss", flag, check=False).stdout
        if f":{port} " in out:
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} in {netns}")


def ask(ns: str, ip: str, port: int, udp: bool = False, timeout: float = 3) -> str:
    """Connect from namespace ``ns``; return what the server said ('' if nothing arrived)."""
    host = f"[{ip}]" if ":" in ip else ip
    target = f"UDP:{host}:{port}" if udp else f"TCP:{host}:{port},connect-timeout={timeout}"
    # a second try when nothing arrived: a datagram lost, or a first connection on this
    # busy 2-core VM missing its deadline while neighbours are resolved. Checks that
    # expect nothing pass timeout=1 and get one try (they must not wait twice).
    for _ in range(2 if udp or timeout > 1 else 1):
        res = in_ns(
            ns, "socat", f"-T{timeout}", "-", target, check=False, input="hi\n", timeout=timeout + 5
        )
        if res.stdout.strip():
            break
    return _plain(res.stdout.strip())


def _plain(said: str) -> str:
    """socat's peer address on a dual-stack socket ([0000:...:ffff:c633:6402]) as written
    usually (198.51.100.2, or 2001:db8::2); anything else as it is."""
    if not (said.startswith("[") and said.endswith("]")):
        return said
    try:
        addr = ipaddress.IPv6Address(said[1:-1])
    except ValueError:
        return said
    return str(addr.ipv4_mapped or addr)


def ping(ns: str, ip: str, count: int = 1) -> bool:
    """Either family (ping picks it from the address)."""
    return in_ns(ns, "ping", "-c", str(count), "-W", "1", ip, check=False).returncode == 0


def peer_server(lab_spawn: Any, ns: str, port: int) -> None:
    """A server on a lab node that answers with the address it saw the client come from."""
    lab_spawn(
        ns,
        "socat",
        "-T5",
        f"TCP6-LISTEN:{port},reuseaddr,fork,ipv6only=0",
        "SYSTEM:read line; echo $SOCAT_PEERADDR",  # ask() gives it back plain
    )
    wait_listening(ns, port)


C_SHIM = "/opt/cni/bin/hostnet"  # the CNI plugin runtimes exec (scripts/install-cni.sh)


def cni_shim(
    sock: str,
    command: str,
    net: str,
    cid: str,
    netns: str,
    runtime: dict[str, Any] | None = None,
    ifname: str = "eth0",
) -> tuple[int, dict[str, Any]]:
    """One CNI call through the real plugin binary, as a runtime makes it: (exit code,
    the JSON it printed)."""
    conf: dict[str, Any] = {"cniVersion": "1.0.0", "name": net, "type": "hostnet", "socket": sock}
    if runtime:
        conf["runtimeConfig"] = runtime
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_PATH": "/opt/cni/bin",
        "PATH": os.environ["PATH"],
    }
    res = subprocess.run(
        [C_SHIM], input=json.dumps(conf).encode(), env=env, capture_output=True, timeout=60
    )
    return res.returncode, json.loads(res.stdout) if res.stdout.strip() else {}


def capturing(pcap: str, timeout: float = 10.0) -> None:
    """Wait until tcpdump -w has opened its capture (it writes the file's header then): a
    fixed sleep was too short on a loaded machine, and frames went unseen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(pcap) and os.path.getsize(pcap) >= 24:
            time.sleep(0.1)
            return
        time.sleep(0.05)
    raise AssertionError(f"tcpdump did not start capturing into {pcap}")


def capture(ns: str, pcap: str, ifname: str = "eth0") -> subprocess.Popen[bytes]:
    """tcpdump on node ``ns``'s ``ifname`` into ``pcap``, capturing by the time it returns."""
    proc = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{ns}", "tcpdump", "--immediate-mode", "-U", "-eni",
         ifname, "-w", pcap],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    capturing(pcap)
    return proc


def stop_capture(proc: subprocess.Popen[bytes], seen: Any, timeout: float = 10.0) -> None:
    """Stop a capture once ``seen()`` finds, in what tcpdump has written, the frames the
    verdict needs: stopped after a fixed wait, it lost the last frames on a loaded machine
    (still queued on its socket). At ``timeout`` it stops anyway; the verdict says what
    was missing."""
    deadline = time.monotonic() + timeout
    while not seen() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.terminate()
    proc.wait(5)


def _kind(link: dict[str, Any]) -> str:
    return str(link.get("linkinfo", {}).get("info_kind", ""))


def _kernel(ns: str) -> dict[str, object]:
    """Links, addresses, routes, the nft ruleset and tc of one namespace, without what the
    kernel changes on its own (carrier, counters, lifetimes, DAD flags, ifindexes)."""

    def ip(*args: str) -> list[dict[str, Any]]:
        return json.loads(in_ns(ns, "ip", "-j", *args).stdout or "[]")

    links = ip("-d", "link", "show")
    names = sorted(x["ifname"] for x in links)
    # IPv6 link-local addresses and the local table's IPv6 routes come and go with carrier
    # and DAD, on the kernel's own time: the links they derive from are compared instead
    routes = [
        tuple(str(r.get(k, "")) for k in ("table", "type", "dst", "gateway", "dev", "protocol"))
        for fam in ("-4", "-6")
        for r in ip(fam, "route", "show", "table", "all")
        if not (fam == "-6" and (r.get("table") == "local" or r.get("dst", "").startswith("fe80:")))
    ]
    tc = in_ns(
        ns, "sh", "-c",
        'tc qdisc show; for d; do echo "== $d"; tc filter show dev "$d";'
        ' tc filter show dev "$d" ingress; tc filter show dev "$d" egress; done',
        "sh", *names, check=False,
    )  # fmt: skip
    nft = in_ns(ns, "nft", "list", "ruleset").stdout
    return {
        "links": sorted(
            (
                x["ifname"],
                x.get("master", ""),
                x.get("mtu"),
                # a bridge without a MAC of its own takes its ports' (00:00:.. with none)
                "" if _kind(x) == "bridge" else x.get("address", ""),
                _kind(x),
                "UP" in x.get("flags", []),
            )
            for x in links
        ),
        "addrs": sorted(
            (x["ifname"], a["family"], a["local"], a["prefixlen"])
            for x in ip("addr", "show")
            for a in x.get("addr_info", [])
            if not a["local"].startswith("fe80:")
        ),
        "routes": sorted(routes),
        "nft": re.sub(r"(counter packets \d+ bytes \d+|expires \S+)", "", nft),
        "tc": tc.stdout,
    }


def snapshot(d: Daemon, *inside: str) -> dict[str, object]:
    """What daemon ``d`` says it holds and what its lab host's kernel holds (and each of its
    compartments', and the namespaces ``inside``): equal before and after means unchanged."""
    compartments = sorted(n for n in os.listdir("/run/netns") if n.startswith(d.instance_prefix()))
    return {
        "networks": d.json("network", "ls", "--format", "json"),
        "containers": d.json("ps", "--format", "json"),
        "nat": d.json("nat", "ls", "--format", "json"),
        "compartments": compartments,
        "kernel": {ns: _kernel(ns) for ns in (d.host, *compartments, *inside)},
    }


def snapshot_diff(before: Any, after: Any, where: str = "") -> list[str]:
    """What differs between two snapshots, one line per leaf (for assertion messages)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            line
            for k in sorted(set(before) | set(after), key=str)
            for line in snapshot_diff(before.get(k), after.get(k), f"{where}/{k}")
        ]
    if isinstance(before, list) and isinstance(after, list) and before != after:
        gone = [x for x in before if x not in after]
        new = [x for x in after if x not in before]
        return [f"{where}: gone {gone!r}, new {new!r}"[:2000]]
    if isinstance(before, str) and isinstance(after, str) and before != after:
        a, b = before.splitlines(), after.splitlines()
        gone, new = [x for x in a if x not in b], [x for x in b if x not in a]
        return [f"{where}: gone {gone!r}, new {new!r}"[:2000]]
    return [] if before == after else [f"{where}: {before!r} -> {after!r}"[:2000]]
