"""The embedded resolver's way into a compartment: its UDP and TCP sockets opened inside
the namespace, and an nft table there that rewrites port 53 to their ports (statelessly).

The compartment's libnftables context is freed on a helper thread (closing its netlink
socket waits out an RCU grace period); ``start`` starts that thread in the daemon's own
namespace, before any compartment is entered.
"""

from __future__ import annotations

import concurrent.futures
import socket

from hostnet.errors import HostnetError
from hostnet.kernel import fds, netns
from hostnet.kernel.nft import Nft

IP_FREEBIND = 15
NFT_TABLE = "hostnet_dns"
_closer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hostnet-close")


def start() -> None:
    """Start the helper thread from the daemon's namespace (call before entering any)."""
    _closer.submit(lambda: None).result()


def redirect_rules(addr: str, udp_port: int, tcp_port: int) -> str:
    """In the compartment: port 53 of ``addr`` goes to the resolver's own ports, so port
    53 stays free for the container's own servers (as Docker does). Stateless: both
    directions are local output on loopback, so each packet's port is rewritten there and
    no connection tracking (no NAT) is switched on in the compartment."""
    a = addr  # short, for the lines below
    return (
        f"add table ip {NFT_TABLE}\n"
        f"delete table ip {NFT_TABLE}\n"
        f"table ip {NFT_TABLE} {{\n"
        "  chain output {\n"
        "    type filter hook output priority raw; policy accept;\n"
        f"    ip daddr {a} udp dport 53 udp dport set {udp_port}\n"
        f"    ip daddr {a} tcp dport 53 tcp dport set {tcp_port}\n"
        f"    ip saddr {a} udp sport {udp_port} udp sport set 53\n"
        f"    ip saddr {a} tcp sport {tcp_port} tcp sport set 53\n"
        "  }\n"
        "}\n"
    )


def open_sockets(netns_path: str, addr: str) -> tuple[socket.socket, socket.socket]:
    """The resolver's sockets inside a compartment (``addr``, kernel-chosen ports) and the
    redirect of port 53 to them; call from a thread that may setns."""
    nft: Nft | None = None
    try:
        with netns.entered(netns_path):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                for s in (udp, tcp):
                    s.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
                    s.bind((addr, 0))
                    s.setblocking(False)
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                tcp.listen(64)
                # they live as long as the compartment: above the select() range, so
                # libnftables' descriptors stay low however many compartments there are
                udp = fds.park_socket(udp)
                tcp = fds.park_socket(tcp)
                nft = Nft()  # its netlink socket belongs to the compartment
                nft.run(redirect_rules(addr, udp.getsockname()[1], tcp.getsockname()[1]))
            except (OSError, HostnetError):
                udp.close()
                tcp.close()
                raise
    finally:
        if nft is not None:
            # closing a netlink socket waits out an RCU grace period (7-15 ms here): off the
            # attach path, on a thread started in the daemon's namespace (a thread started
            # in here would live in the compartment and keep it alive)
            _closer.submit(nft.close)
    return udp, tcp


def remove_redirect(netns_path: str) -> None:
    """Take the redirect out of a compartment hostnet stops serving but does not own (a CNI
    runtime's, after DEL): the runtime's namespace is left as ADD found it. A namespace
    already gone is success. Call from a thread that may setns."""
    if not netns.exists(netns_path):
        return
    nft: Nft | None = None
    try:
        with netns.entered(netns_path):
            nft = Nft()
            nft.run(f"add table ip {NFT_TABLE}\ndelete table ip {NFT_TABLE}\n")
    finally:
        if nft is not None:
            _closer.submit(nft.close)  # off this path, as in open_sockets
