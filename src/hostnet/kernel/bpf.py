"""802.1Q tagging without the 8021q module: two tiny eBPF programs on a vNIC's host end.

Loaded from Python with the bpf() syscall (no compiler) and attached with tc (clsact):
- ingress (frames from the container): drop frames already tagged, push the VLAN tag;
- egress (frames to the container): pass only frames tagged with the VLAN, untagged.
The bridge forwards tagged frames unchanged, so they leave the adapter tagged.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import struct
from typing import TYPE_CHECKING

from pyroute2.netlink.exceptions import NetlinkError

from hostnet.errors import KernelError

if TYPE_CHECKING:
    from hostnet.kernel.handles import HostLinks

BPF_PROG_LOAD = 5
BPF_PROG_TYPE_SCHED_CLS = 3
NR_BPF = {"x86_64": 321, "aarch64": 280}
HELPER_VLAN_PUSH, HELPER_VLAN_POP = 18, 19
TC_ACT_OK, TC_ACT_SHOT = 0, 2
SKB_VLAN_PRESENT, SKB_VLAN_TCI = 20, 24  # offsets in struct __sk_buff
INGRESS, EGRESS = "ffff:fff2", "ffff:fff3"
VLAN_PUSH, VLAN_POP = "hn_vlan_push", "hn_vlan_pop"  # the programs' names (tc shows them)

_libc = ctypes.CDLL(None, use_errno=True)


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def mov_reg(dst: int, src: int) -> bytes:
    return insn(0xBF, dst, src)


def mov_imm(dst: int, imm: int) -> bytes:
    return insn(0xB7, dst, imm=imm)


def load_word(dst: int, src: int, off: int) -> bytes:
    return insn(0x61, dst, src, off)


def jump_if(op: int, dst: int, imm: int, off: int) -> bytes:
    return insn(op, dst, off=off, imm=imm)


JEQ, JNE = 0x15, 0x55
CALL, EXIT, AND_IMM = 0x85, 0x95, 0x57


def push_program(vid: int) -> bytes:
    """Frames from the container: refuse tagged ones, tag the rest with ``vid``."""
    return b"".join(
        [
            mov_reg(6, 1),
            load_word(2, 1, SKB_VLAN_PRESENT),
            jump_if(JNE, 2, 0, 6),  # already tagged -> drop
            mov_reg(1, 6),
            mov_imm(2, 0x0081),  # htons(ETH_P_8021Q)
            mov_imm(3, vid),
            insn(CALL, imm=HELPER_VLAN_PUSH),
            mov_imm(0, TC_ACT_OK),
            insn(EXIT),
            mov_imm(0, TC_ACT_SHOT),
            insn(EXIT),
        ]
    )


def pop_program(vid: int) -> bytes:
    """Frames to the container: only those tagged ``vid`` pass, without their tag."""
    return b"".join(
        [
            mov_reg(6, 1),
            load_word(2, 1, SKB_VLAN_PRESENT),
            jump_if(JEQ, 2, 0, 7),  # untagged -> drop
            load_word(2, 6, SKB_VLAN_TCI),
            insn(AND_IMM, 2, imm=0xFFF),
            jump_if(JNE, 2, vid, 4),  # another VLAN -> drop
            mov_reg(1, 6),
            insn(CALL, imm=HELPER_VLAN_POP),
            mov_imm(0, TC_ACT_OK),
            insn(EXIT),
            mov_imm(0, TC_ACT_SHOT),
            insn(EXIT),
        ]
    )


def load(program: bytes, name: str) -> int:
    """BPF_PROG_LOAD a SCHED_CLS program; returns its fd."""
    nr = NR_BPF.get(platform.machine())
    if nr is None:
        raise KernelError(f"VLAN tagging is not supported on {platform.machine()} yet")
    code = ctypes.create_string_buffer(program)
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(4096)
    attr = struct.pack(
        "<IIQQIIQII16s",
        BPF_PROG_TYPE_SCHED_CLS,
        len(program) // 8,
        ctypes.addressof(code),
        ctypes.addressof(license_),
        1,
        len(log),
        ctypes.addressof(log),
        0,
        0,
        name.encode()[:15],
    ).ljust(128, b"\0")
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = _libc.syscall(nr, BPF_PROG_LOAD, buf, len(attr))
    if fd < 0:
        err = ctypes.get_errno()
        raise KernelError(
            f"loading the VLAN program failed: {os.strerror(err)}: {log.value.decode(errors='replace')}",
            "the kernel needs the bpf() syscall and BPF_PROG_TYPE_SCHED_CLS",
        )
    return int(fd)


def tag_port(nl: HostLinks, ifname: str, vid: int) -> None:
    """Make ``ifname`` (a vNIC's host end) an access port of VLAN ``vid``."""
    idx = nl.index(ifname)
    if idx is None:
        raise KernelError(f"{ifname} is missing; cannot tag it")
    with contextlib.suppress(NetlinkError):  # none yet
        nl.ipr.tc("del", "clsact", idx)
    push, pop = load(push_program(vid), VLAN_PUSH), load(pop_program(vid), VLAN_POP)
    try:
        nl.ipr.tc("add", "clsact", idx)
        nl.ipr.tc(
            "add-filter",
            "bpf",
            idx,
            ":1",
            fd=push,
            name=VLAN_PUSH,
            parent=INGRESS,
            classid=1,
            direct_action=True,
        )
        nl.ipr.tc(
            "add-filter",
            "bpf",
            idx,
            ":1",
            fd=pop,
            name=VLAN_POP,
            parent=EGRESS,
            classid=1,
            direct_action=True,
        )
    except NetlinkError as exc:
        raise KernelError(f"attaching the VLAN programs to {ifname} failed: {exc}") from None
    finally:
        os.close(push)
        os.close(pop)
