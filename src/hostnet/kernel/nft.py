"""nftables through libnftables (the library behind ``nft``), no subprocess.

Each ``run`` hands libnftables one script; a script is one transaction, so a
whole table is replaced atomically and no packet sees half of it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

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
    return lib
