"""An external switch made outside hostnet (``-o switch=BRIDGE``), the seed's out-of-band vSwitch.

The network uses an existing Linux bridge as its switch instead of making one: endpoints'
vNICs become its ports, and hostnet's own nft and tc pieces apply as on any switch. The
bridge, its other ports and its addresses are never changed: hostnet does not move the
adapter or its addresses, and ``network rm``, reconcile and the sweep never delete it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hostnet.errors import Conflict, InvalidRequest, KernelError, NotFound
from hostnet.kernel import adapters
from hostnet.model import Network

if TYPE_CHECKING:
    from hostnet.kernel.handles import HostLinks

OPTION = "switch"


def uses(net: Network) -> bool:
    """The network's switch is a bridge made outside hostnet."""
    return bool(net.options.get(OPTION))


def adopt(net: Network, others: list[Network], links: list[adapters.Link], driver: str) -> None:
    """Before anything changes: the bridge exists, is a bridge, is nobody else's; its adapter
    (a port of it) is the network's. Sets ``net.switch`` and ``net.options["interface"]``."""
    name = net.options[OPTION]
    link = next((ln for ln in links if ln["name"] == name), None)
    if link is None:
        theirs = [
            ln["name"] for ln in links if ln["kind"] == "bridge" and not adapters.hostnets(ln)
        ]
        raise NotFound(
            f"bridge {name!r} (-o switch=) does not exist",
            "name a bridge made outside hostnet ("
            + (f"bridges here: {', '.join(sorted(theirs))}" if theirs else "there is none here")
            + "), or leave -o switch= out and hostnet makes the network's own switch",
        )
    if link["kind"] != "bridge":
        raise InvalidRequest(
            f"{name} (-o switch=) is a {link['kind'] or 'device'}, not a bridge",
            f"give -o switch= a Linux bridge ('ip -br link show type bridge'); to bind an "
            f"adapter to a switch hostnet makes, use -o interface={name}",
        )
    if adapters.hostnets(link):
        raise Conflict(
            f"bridge {name} is one hostnet made (alias {link['alias'] or '-'})",
            "-o switch= is for a bridge made outside hostnet; leave it out and hostnet makes "
            "(and removes) the network's own switch",
        )
    user = next((o for o in others if o.switch == name), None)
    if user is not None:
        raise Conflict(
            f"bridge {name} is already the switch of network {user.name!r}",
            f"a switch carries one hostnet network: use {user.name!r}, or another bridge",
        )
    ports = adapters.adapter_ports(links, link["index"])
    asked = [m for m in net.options.get("interface", "").split(",") if m]
    if len(asked) > 1:
        raise InvalidRequest(
            "an adapter team (interface=A,B) needs a switch hostnet makes",
            f"leave out -o switch= to team adapters, or name one adapter that is a port of {name}",
        )
    members = [ln["name"] for ln in links if ln["master"] == link["index"]]
    if asked and asked[0] not in members:
        raise InvalidRequest(
            f"adapter {asked[0]} is not a port of bridge {name}",
            "hostnet does not add ports to a switch it did not make: add it yourself "
            f"('ip link set {asked[0]} master {name}') or leave -o interface= out"
            + (f" (the bridge's adapter: {', '.join(ports)})" if ports else ""),
        )
    if not asked and len(ports) > 1:
        raise InvalidRequest(
            f"bridge {name} has several adapters as ports: {', '.join(ports)}",
            "say which one is the network's adapter with -o interface=NAME",
        )
    adapter = asked[0] if asked else (ports[0] if ports else "")
    if not adapter and driver != "transparent":
        raise InvalidRequest(
            f"bridge {name} has no adapter as a port, and the {driver} driver rewrites frames "
            "towards its adapter",
            f"add the adapter to the bridge ('ip link set ADAPTER master {name}'), or use the "
            "transparent driver",
        )
    net.switch = name
    net.options.pop("interface", None)
    if adapter:
        net.options["interface"] = adapter


def ensure(nl: HostLinks, net: Network) -> dict[str, Any]:
    """The bridge is there (hostnet never makes it); its MAC, MTU and addresses, for the
    vNICs' MTU and the MAC rewrite. Its MAC is kept (pinned) as it was; nothing else is
    changed."""
    info = nl.link_info(net.switch)
    if info is None or info["kind"] != "bridge":
        raise KernelError(
            f"bridge {net.switch}, the switch of network {net.name!r} made outside hostnet, "
            + ("is gone" if info is None else "is no longer a bridge"),
            f"hostnet does not make a switch it did not make: create {net.switch} again "
            "(with its adapter) and run 'hostnet system reconcile', or remove the network",
        )
    state = adapters.describe(nl, net.switch)
    adapters.keep_mac(nl, net.switch, net.adapter_state.get("mac") or state["mac"])
    return {
        "mac": net.adapter_state.get("mac") or state["mac"],
        "mtu": state["mtu"],
        "addrs": state["addrs"],
        "routes": [],
        "foreign": True,
    }
