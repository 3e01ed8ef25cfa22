"""The seed's container lifecycle: created STOPPED, adapters configured, then started.

``hostnet create`` records a container's intent (its adapters: network, static IP, static
MAC, maximum bandwidth, static port mappings) after checking it, and realizes nothing. The
first ``start`` makes the compartment and an endpoint for each connected adapter; the
command then runs in it (the client starts it, as ``hostnet run -d`` does). ``stop`` ends
the process and keeps the compartment, its addresses and mappings; ``start`` again runs
the command in the same compartment. An adapter changed before the first start changes
the intent only; changed after, its endpoint is made again at once with the new settings
(hot: a running container keeps running).

States: created (nothing realized), stopped (realized, no process), running.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from hostnet.core import planning, ports, procs
from hostnet.errors import Conflict, HostnetError, InvalidRequest, NotFound
from hostnet.model import Adapter, Container, Endpoint, Network, check_name, parse_mac

if TYPE_CHECKING:
    from hostnet.core.service import HostNetworkingService

log = logging.getLogger("hostnet")

ADAPTER_FIELDS = ("network", "name", "static_ip", "static_mac", "max_bandwidth", "mappings")


def _stateful(c: Container) -> Container:
    if not c.state:
        raise InvalidRequest(
            f"container {c.name!r} lives as long as its process (made by 'hostnet run', a CNI "
            "runtime or Docker): it has no start or stop",
            "make containers with 'hostnet create' to start and stop them",
        )
    return c


def adapter_of(c: Container, name: str = "") -> Adapter:
    """The adapter named ``name`` (case-insensitive), or the only one when none is named."""
    if not name:
        if len(c.adapters) == 1:
            return c.adapters[0]
        if not c.adapters:
            raise NotFound(f"container {c.name!r} has no network adapter", "add one first")
        raise InvalidRequest(
            f"container {c.name!r} has {len(c.adapters)} adapters",
            "name one: " + ", ".join(repr(a.name) for a in c.adapters),
        )
    for a in c.adapters:
        if a.name.lower() == name.lower():
            return a
    raise NotFound(
        f"container {c.name!r} has no adapter named {name!r}",
        "its adapters: " + (", ".join(repr(a.name) for a in c.adapters) or "none"),
    )


def _adapter(svc: HostNetworkingService, c: Container, req: dict[str, Any], i: int) -> Adapter:
    """An adapter from a request, every field checked (the address and ports are checked
    against the network by ``_check``)."""
    unknown = sorted(set(req) - set(ADAPTER_FIELDS))
    if unknown:
        raise InvalidRequest(
            f"unknown adapter setting(s): {', '.join(unknown)}",
            f"an adapter takes: {', '.join(ADAPTER_FIELDS)}",
        )
    name = str(req.get("name") or ("Network Adapter" if i == 0 else f"Network Adapter {i + 1}"))
    check_name("adapter", name.replace(" ", "-"))
    net_id = svc.network(str(req["network"])).id if req.get("network") else ""
    mac = parse_mac(str(req["static_mac"])) if req.get("static_mac") else ""
    bw = req.get("max_bandwidth") or 0
    if bw:
        planning.qos_limit(str(bw))  # raises with the reason
        bw = planning.qos_limit(str(bw))["egressRate"] // 8
    mappings = [str(m) for m in req.get("mappings") or []]
    for m in mappings:
        ports.parse_port_spec(m)
    return Adapter(
        name=name,
        network_id=net_id,
        static_ip=str(req.get("static_ip") or ""),
        static_mac=mac,
        max_bandwidth=int(bw),
        mappings=mappings,
    )


def _check(svc: HostNetworkingService, c: Container, adapters: list[Adapter]) -> None:
    """Everything the start will need, checked now, nothing kept: networks given once, each
    address inside its subnet and free, each host port free, names and MACs unique."""
    names = [a.name.lower() for a in adapters]
    if len(set(names)) != len(names):
        raise InvalidRequest("two adapters have the same name", "give each adapter its own name")
    nets = [a.network_id for a in adapters if a.network_id]
    if len(set(nets)) != len(nets):
        raise InvalidRequest(
            "two adapters are connected to the same network",
            "connect each adapter to a network of its own",
        )
    macs = [a.static_mac for a in adapters if a.static_mac]
    if len(set(macs)) != len(macs):
        raise InvalidRequest("two adapters have the same static MAC", "give each its own")
    mine = {e.id for e in svc.endpoints_of(c)}
    with svc.attachments.planning() as plans:
        for a in adapters:
            if not a.network_id:
                continue
            net = svc.nets[a.network_id]
            current = _endpoint(svc, c, a)
            if current is not None and current.id in mine:
                svc.index.forget(current)  # its own address and ports are no conflict
            try:
                svc.attachments.plan(plans, net, c, "eth0", a.static_ip, a.mappings)
            finally:
                if current is not None and current.id in mine:
                    svc.index.remember(current)


def create(
    svc: HostNetworkingService,
    name: str,
    adapters: list[dict[str, Any]],
    command: list[str] | None = None,
    image: str = "",
) -> Container:
    """A container in state created: its intent checked and recorded, nothing realized."""
    c = svc.new_container(name, state="created", command=list(command or []), image=image)
    c.adapters = [_adapter(svc, c, req, i) for i, req in enumerate(adapters)]
    _check(svc, c, c.adapters)
    os.makedirs(os.path.dirname(c.log_path), exist_ok=True)
    c.compartment_id = svc.next_compartment_id()
    svc.record_container(c)
    log.info("created container %s (stopped, %d adapter(s))", c.name, len(c.adapters))
    return c


def _save(svc: HostNetworkingService, c: Container) -> Container:
    svc.index.add_container(c)
    with svc.store_io():
        svc.store.update_container(c)
    return c


def _endpoint(svc: HostNetworkingService, c: Container, a: Adapter) -> Endpoint | None:
    return next((e for e in svc.endpoints_of(c) if e.network_id == a.network_id), None)


def _realize_adapter(
    svc: HostNetworkingService,
    c: Container,
    a: Adapter,
    default_route: bool,
    keep: Endpoint | None = None,
) -> Endpoint:
    """An endpoint for adapter ``a``; ``keep``: the endpoint it replaces, whose automatic
    addresses it keeps."""
    net = svc.nets[a.network_id]
    taken = {e.ifname for e in svc.endpoints_of(c)}
    ifname = (
        keep.ifname
        if keep
        else next(f"eth{i}" for i in range(len(taken) + 1) if f"eth{i}" not in taken)
    )
    ip = a.static_ip or (keep.ip if keep and not keep.dhcp else "")
    ip6 = keep.ip6 if keep and not keep.slaac else ""
    with svc.attachments.planning() as plans:
        ep = svc.attachments.plan(plans, net, c, ifname, ip, a.mappings, ip6)
        if a.static_mac:
            ep.mac = a.static_mac
        if a.max_bandwidth:
            ep.bandwidth = planning.qos_limit(str(a.max_bandwidth))
        return svc.attachments.attach(net, c, ep, default_route, auto_ip=not ip, auto_ip6=not ip6)


def _routes_out(svc: HostNetworkingService, a: Adapter) -> bool:
    return bool(a.network_id) and svc.routes_out(svc.nets[a.network_id])


def _realize(svc: HostNetworkingService, c: Container) -> None:
    """The compartment and an endpoint per connected adapter (undone if one fails)."""
    svc.kernel.create_compartment(c.netns)
    routed = next((a.name for a in c.adapters if _routes_out(svc, a)), "")
    try:
        for a in c.adapters:
            if a.network_id:
                _realize_adapter(svc, c, a, a.name == routed)
    except BaseException:
        for ep in svc.endpoints_of(c):
            svc.attachments.detach(ep, c=c)
        svc.kernel.remove_compartment(c.netns)
        raise


def start(svc: HostNetworkingService, ref: str) -> Container:
    """Realize a created container; a stopped one is realized already. The caller then
    starts the command in the compartment and registers its process (state running)."""
    c = _stateful(svc.container(ref))
    if c.state == "running" and svc.process_alive(c):
        raise Conflict(f"container {c.name!r} is running", "stop it first, or use restart")
    if c.state == "created":
        _realize(svc, c)
        log.info("started container %s in compartment %s", c.name, c.netns)
    return _save(svc, c.model_copy(update={"state": "stopped", "pid": 0, "pid_start": 0}))


def stop(svc: HostNetworkingService, ref: str, grace_s: float = 10.0) -> Container:
    """End every process in the container's compartment (its command and what ``exec -d``
    started: SIGTERM, SIGKILL after ``grace_s``); the compartment, its addresses and
    mappings stay. Stopping a stopped container changes nothing."""
    c = _stateful(svc.container(ref))
    if c.state == "created":
        return c
    end_processes(svc, c, grace_s)
    c = svc.container(c.id)  # it may have changed meanwhile
    return _save(svc, c.model_copy(update={"state": "stopped", "pid": 0, "pid_start": 0}))


def end_processes(svc: HostNetworkingService, c: Container, grace_s: float) -> None:
    """SIGTERM to the compartment's processes, SIGKILL to those left after ``grace_s``."""
    path = c.netns if c.netns.startswith("/") else f"/run/netns/{c.netns}"
    procs.end_processes(path, grace_s, svc.released)  # other requests go on meanwhile


def exited(svc: HostNetworkingService, c: Container) -> None:
    """Its process ended on its own: the container is stopped, not removed."""
    if c.state == "running":
        _save(svc, c.model_copy(update={"state": "stopped", "pid": 0, "pid_start": 0}))
        log.info("container %s stopped: its process %d exited", c.name, c.pid)


# -- adapters -----------------------------------------------------------------------------
def _realized(c: Container) -> bool:
    return c.state in ("running", "stopped")


def _apply(
    svc: HostNetworkingService, c: Container, old: Adapter | None, new: Adapter | None
) -> str:
    """Make the kernel follow an adapter change on a realized container. Mappings alone
    change on the endpoint; any other change makes the endpoint again (keeping its
    automatic addresses), back as it was if the new one cannot be made."""
    if not _realized(c):
        return "applies at start"
    ep = _endpoint(svc, c, old) if old is not None and old.network_id else None
    if ep is not None and old is not None and new is not None and _only_mappings(old, new):
        net = svc.nets[ep.network_id]
        gone = ports.matching(ep.ports, [m for m in old.mappings if m not in new.mappings])
        svc.unpublish(ep, gone)
        svc.publish(net, ep, [m for m in new.mappings if m not in old.mappings])
        return _how(c)
    others = [a for a in c.adapters if a is not old and _endpoint(svc, c, a) is not None]
    routed = not any(_routes_out(svc, a) for a in others)
    if ep is not None:
        svc.attachments.detach(ep, c=c)
    if new is not None and new.network_id:
        same = ep if ep is not None and ep.network_id == new.network_id else None
        try:
            _realize_adapter(svc, c, new, routed and _routes_out(svc, new), keep=same)
        except HostnetError:
            if old is not None and ep is not None:
                _realize_adapter(svc, c, old, routed and _routes_out(svc, old), keep=ep)
            raise
    return _how(c)


def _only_mappings(old: Adapter, new: Adapter) -> bool:
    return old.model_dump(exclude={"mappings"}) == new.model_dump(exclude={"mappings"})


def _how(c: Container) -> str:
    return "applied now (hot)" if c.state == "running" else "applied"


def _with(c: Container, adapters: list[Adapter]) -> Container:
    return c.model_copy(update={"adapters": adapters})


def add_adapter(svc: HostNetworkingService, ref: str, req: dict[str, Any]) -> tuple[Adapter, str]:
    c = _stateful(svc.container(ref))
    new = _adapter(svc, c, req, len(c.adapters))
    _check(svc, c, [*c.adapters, new])
    how = _apply(svc, c, None, new)
    _save(svc, _with(c, [*c.adapters, new]))
    return new, how


def set_adapter(
    svc: HostNetworkingService, ref: str, name: str, changes: dict[str, Any]
) -> tuple[Adapter, str]:
    """Change an adapter's static IP, MAC, bandwidth, mappings or network (an empty value
    clears a setting)."""
    c = _stateful(svc.container(ref))
    old = adapter_of(c, name)
    merged = {k: getattr(old, k) for k in ("name", "static_ip", "static_mac", "mappings")}
    merged["network"] = old.network_id
    merged["max_bandwidth"] = str(old.max_bandwidth) if old.max_bandwidth else ""
    merged.update(changes)
    new = _adapter(svc, c, merged, c.adapters.index(old))
    others = [a for a in c.adapters if a is not old]
    _check(svc, c, [*others, new])
    how = _apply(svc, c, old, new)
    _save(svc, _with(c, [new if a is old else a for a in c.adapters]))
    return new, how


def remove_adapter(svc: HostNetworkingService, ref: str, name: str) -> str:
    c = _stateful(svc.container(ref))
    old = adapter_of(c, name)
    how = _apply(svc, c, old, None)
    _save(svc, _with(c, [a for a in c.adapters if a is not old]))
    return how


def connect_adapter(
    svc: HostNetworkingService, ref: str, name: str, net: Network
) -> tuple[Adapter, str]:
    return set_adapter(svc, ref, name, {"network": net.id})


def disconnect_adapter(svc: HostNetworkingService, ref: str, name: str) -> tuple[Adapter, str]:
    return set_adapter(svc, ref, name, {"network": "", "static_ip": ""})


def add_mapping(svc: HostNetworkingService, ref: str, name: str, spec: str) -> tuple[Adapter, str]:
    c = _stateful(svc.container(ref))
    a = adapter_of(c, name)
    ports.parse_port_spec(spec)
    return set_adapter(svc, ref, a.name, {"mappings": [*a.mappings, spec]})


def remove_mapping(
    svc: HostNetworkingService, ref: str, name: str, spec: str
) -> tuple[Adapter, str]:
    c = _stateful(svc.container(ref))
    a = adapter_of(c, name)
    matching = [m for m in a.mappings if _same_mapping(m, spec)]
    if not matching:
        raise NotFound(
            f"adapter {a.name!r} of {c.name!r} has no mapping {spec!r}",
            "its mappings: " + (", ".join(a.mappings) or "none"),
        )
    kept = [m for m in a.mappings if m not in matching]
    return set_adapter(svc, ref, a.name, {"mappings": kept})


def _same_mapping(a: str, b: str) -> bool:
    x, y = ports.parse_port_spec(a), ports.parse_port_spec(b)
    return x == y
