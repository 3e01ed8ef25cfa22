"""A small CNI runtime for tests: runs a conflist the way libcni does (ADD in order with
prevResult, DEL in reverse, runtimeConfig to plugins that declare the capability)."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

CNI_PATH = "/opt/cni/bin:/usr/lib/cni"


def find_plugin(kind: str) -> str:
    for d in CNI_PATH.split(":"):
        if os.path.exists(os.path.join(d, kind)):
            return os.path.join(d, kind)
    raise FileNotFoundError(kind)


def exec_plugin(
    plugin: str,
    command: str,
    conf: dict[str, Any],
    container_id: str = "",
    netns: str = "",
    ifname: str = "eth0",
    env: dict[str, str] | None = None,
    host_ns: str = "",
) -> tuple[int, Any]:
    """Exec a plugin as a runtime on the host would: in the host's namespace (``host_ns``)."""
    e = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_PATH": CNI_PATH,
        "PATH": os.environ["PATH"],
        **(env or {}),
    }
    argv = ["nsenter", f"--net=/run/netns/{host_ns}", plugin] if host_ns else [plugin]
    res = subprocess.run(
        argv, input=json.dumps(conf).encode(), env=e, capture_output=True, timeout=60
    )
    out = res.stdout.decode().strip()
    return res.returncode, (json.loads(out) if out else None)


def plugin_conf(
    conflist: dict[str, Any], p: dict[str, Any], runtime: dict[str, Any]
) -> dict[str, Any]:
    conf = {**p, "name": conflist["name"], "cniVersion": conflist["cniVersion"]}
    caps = {k for k, v in (p.get("capabilities") or {}).items() if v}
    rc = {k: v for k, v in runtime.items() if k in caps}
    if rc:
        conf["runtimeConfig"] = rc
    return conf


def add(
    conflist: dict[str, Any],
    cid: str,
    netns: str,
    ifname: str = "eth0",
    runtime: dict[str, Any] | None = None,
    host_ns: str = "",
) -> Any:
    prev = None
    for p in conflist["plugins"]:
        conf = plugin_conf(conflist, p, runtime or {})
        if prev is not None:
            conf["prevResult"] = prev
        code, prev = exec_plugin(
            find_plugin(p["type"]), "ADD", conf, cid, netns, ifname, host_ns=host_ns
        )
        if code != 0:
            raise RuntimeError(f"{p['type']} ADD failed: {prev}")
    return prev


def delete(
    conflist: dict[str, Any],
    cid: str,
    netns: str,
    ifname: str = "eth0",
    runtime: dict[str, Any] | None = None,
    host_ns: str = "",
) -> None:
    for p in reversed(conflist["plugins"]):
        conf = plugin_conf(conflist, p, runtime or {})
        code, out = exec_plugin(
            find_plugin(p["type"]), "DEL", conf, cid, netns, ifname, host_ns=host_ns
        )
        if code != 0:
            raise RuntimeError(f"{p['type']} DEL failed: {out}")
