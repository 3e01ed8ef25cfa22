"""Traffic control: token-bucket rate limits on a vNIC (tbf), through netlink."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyroute2.netlink.exceptions import NetlinkError

from hostnet.errors import KernelError

if TYPE_CHECKING:
    from hostnet.kernel.handles import HostLinks

MIN_BURST_BYTES = 3000  # two full frames


def limit_egress(nl: HostLinks, ifname: str, rate_bps: int, burst_bits: int) -> None:
    """Limit what ``ifname`` sends to ``rate_bps`` (bits/s) with a ``burst_bits`` bucket."""
    idx = nl.index(ifname)
    if idx is None:
        raise KernelError(f"{ifname} is missing; cannot limit its bandwidth")
    burst = max(burst_bits // 8, MIN_BURST_BYTES)
    try:
        nl.ipr.tc(
            "replace",
            "tbf",
            index=idx,
            handle="1:",
            rate=f"{rate_bps}bit",
            burst=burst,
            latency="50ms",
        )
    except NetlinkError as exc:
        raise KernelError(f"limiting {ifname} to {rate_bps} bit/s failed: {exc}") from None
