"""nftables through libnftables (the library behind ``nft``), no subprocess.

Each ``run`` hands libnftables one script; a script is one transaction, so a
whole table is replaced atomically and no packet sees half of it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import threading
from typing import Any

from hostnet.errors import KernelError

NFT_CTX_OUTPUT_JSON = 1 << 4


class Nft:
    """A libnftables context in the calling process's current network namespace."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("nftables") or "libnftables.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            raise KernelError(
                "libnftables is not installed",
                "install Debian's libnftables1 (scripts/install.sh does)",
            ) from None
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_ctx_output_get_flags.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_get_flags.restype = ctypes.c_uint
        self._lib = lib
        self._ctx = lib.nft_ctx_new(0)
        lib.nft_ctx_buffer_output(self._ctx)
        lib.nft_ctx_buffer_error(self._ctx)
        self._lock = threading.Lock()

    def _cmd(self, script: str, as_json: bool) -> str:
        lib, ctx = self._lib, self._ctx
        with self._lock:
            flags = lib.nft_ctx_output_get_flags(ctx)
            want = flags | NFT_CTX_OUTPUT_JSON if as_json else flags & ~NFT_CTX_OUTPUT_JSON
            lib.nft_ctx_output_set_flags(ctx, want)
            rc = lib.nft_run_cmd_from_buffer(ctx, script.encode())
            out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode()
            err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode()
        if rc != 0:
            first = script.strip().splitlines()[0] if script.strip() else ""
            raise KernelError(
                f"nftables refused a change ({first[:80]}...): {err.strip()}",
                "this is a hostnet bug or a kernel without nftables support; "
                "see the daemon log for the script",
                script=script,
            )
        return out

    def run(self, script: str) -> None:
        self._cmd(script, as_json=False)

    def list_json(self, what: str) -> list[dict[str, Any]]:
        """``list WHAT`` as parsed JSON objects; empty if it does not exist."""
        try:
            out = self._cmd(f"list {what}", as_json=True)
        except KernelError:
            return []
        data = json.loads(out) if out.strip() else {}
        return list(data.get("nftables", []))

    def table_exists(self, family: str, name: str) -> bool:
        return any("table" in o for o in self.list_json(f"table {family} {name}"))
