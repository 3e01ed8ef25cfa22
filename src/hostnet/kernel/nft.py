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

_LIB: ctypes.CDLL | None = None


def _library() -> ctypes.CDLL:
    """libnftables, found and typed once (find_library runs ldconfig: milliseconds)."""
    global _LIB
    if _LIB is None:
        _LIB = _load()
    return _LIB


class Nft:
    """A libnftables context in the calling thread's current network namespace."""

    def __init__(self) -> None:
        lib = _library()
        self._lib = lib
        self._ctx = lib.nft_ctx_new(0)
        lib.nft_ctx_buffer_output(self._ctx)
        lib.nft_ctx_buffer_error(self._ctx)
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._ctx:
            self._lib.nft_ctx_free(self._ctx)
            self._ctx = None

    def run(self, script: str) -> None:
        """Apply ``script`` as one transaction; raise with nft's own message if refused."""
        self.output(script)

    def output(self, script: str) -> str:
        """Run ``script`` (e.g. ``list tables``) and return what nft printed."""
        lib, ctx = self._lib, self._ctx
        with self._lock:
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


NFT_CTX_OUTPUT_JSON = 1 << 4


def _oneshot(script: str, dry_run: bool = False, as_json: bool = False) -> tuple[int, str, str]:
    """Run ``script`` in a context of its own: (return code, output, error text)."""
    lib = _library()
    ctx = lib.nft_ctx_new(0)
    try:
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        lib.nft_ctx_set_dry_run(ctx, dry_run)
        if as_json:
            lib.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON)
        rc = lib.nft_run_cmd_from_buffer(ctx, script.encode())
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
        err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
    finally:
        lib.nft_ctx_free(ctx)
    return rc, out, err


def ruleset() -> list[dict[str, Any]]:
    """The calling thread's namespace's whole ruleset, in libnftables' JSON form (the
    objects of its ``nftables`` list: tables, chains, rules, sets...). Read only."""
    rc, out, err = _oneshot("list ruleset", as_json=True)
    if rc != 0:
        raise KernelError(f"cannot list the nftables ruleset: {err.strip()}", "run as root")
    return list(json.loads(out or '{"nftables": []}').get("nftables", []))


def refusal(script: str) -> str:
    """Ask the kernel whether it would take ``script`` (a dry run: the transaction is
    checked and aborted, nothing changes). Returns nft's error text, '' when accepted."""
    rc, _, err = _oneshot(script, dry_run=True)
    return "" if rc == 0 else (err.strip() or f"refused (code {rc})")


def _load() -> ctypes.CDLL:
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
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_set_dry_run.argtypes = [ctypes.c_void_p, ctypes.c_bool]
    lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    return lib
