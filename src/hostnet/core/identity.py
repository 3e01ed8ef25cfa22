"""Who this daemon is in a cluster: an id made once and kept with its state (the hostname
is only a display name: cloned machines share it), and what it tells others about itself.
"""

from __future__ import annotations

import os
import secrets
import socket

ID_FILE = "host-id"


def host_id(state_dir: str, given: str = "") -> str:
    """``given`` (--host-id), else the id kept in the state directory, made on first use."""
    if given:
        return given
    path = os.path.join(state_dir, ID_FILE)
    try:
        with open(path) as fh:
            kept = fh.read().strip()
        if kept:
            return kept
    except FileNotFoundError:
        pass
    made = f"{socket.gethostname()[:40]}-{secrets.token_hex(4)}"
    os.makedirs(state_dir, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(made + "\n")
    os.replace(tmp, path)
    return made


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def holder(state_dir: str, address: str) -> dict[str, str]:
    """What the identity's key in the store says: where this daemon is, and enough to tell
    its own earlier run (same boot, same state directory) from another daemon."""
    return {
        "address": address,
        "hostname": socket.gethostname(),
        "boot_id": boot_id(),
        "state_dir": os.path.abspath(state_dir),
        "pid": str(os.getpid()),
    }
