"""Docker's view and hostnet's kept in step when either side loses its state.

A Docker network bound to a hostnet network remembers it in two places hostnet cannot
rewrite: the IPAM pool ids Docker stores (``net:ID:NAME:SUBNET``, the name and subnet
carried so that a network made again under the same name re-binds) and its options
(``hostnet.network=NAME``). This module decides, from those and hostnet's networks, which
hostnet network a Docker call means (or says exactly why none), what ``hostnet docker
expose`` does with a Docker network that already has the name, and which networks Docker
made that Docker no longer has. Pure logic: no I/O, no service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hostnet.drivers import registry
from hostnet.errors import Conflict, InvalidRequest

if TYPE_CHECKING:  # the CLI imports this module: no pydantic at its start
    from hostnet.model import Network

ADOPT_OPTION = "hostnet.network"
POOL_KINDS = {"net": 4, "net6": 6}
HOSTNET_DRIVERS = set(registry.docker_names())  # Docker's names of hostnet's drivers


class StaleBinding(Conflict):
    """A Docker network stands for a hostnet network hostnet no longer has as it was."""

    status = 409
    kind = "stale_binding"


class Unbound(StaleBinding):
    """A Docker network id no hostnet network is bound to (perhaps one to re-bind)."""

    def __init__(self, docker_id: str) -> None:
        err = unbound(docker_id, None)
        super().__init__(err.message, err.remedy)
        self.docker_id = docker_id


# -- pool ids ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PoolRef:
    """What a ``net:`` / ``net6:`` pool id names: the network's id, and (pool ids made
    since re-binding exists) its name and the subnet of the pool's family."""

    version: int
    net_id: str
    name: str = ""
    subnet: str = ""


def subnet_of(net: Network, version: int) -> str:
    return net.subnet6 if version == 6 else net.subnet


def pool_id(net: Network, version: int) -> str:
    """The pool id of ``net``'s subnet of one family (names hold no ':'; the subnet,
    last, may)."""
    kind = "net6" if version == 6 else "net"
    return f"{kind}:{net.id}:{net.name}:{subnet_of(net, version)}"


def parse_pool_id(text: str) -> PoolRef | None:
    """The network a ``net:``/``net6:`` pool id names; None for other pool ids. The older
    form ``net:ID`` gives a PoolRef without name and subnet."""
    kind, _, rest = text.partition(":")
    if kind not in POOL_KINDS:
        return None
    net_id, _, rest = rest.partition(":")
    name, _, subnet = rest.partition(":")
    return PoolRef(POOL_KINDS[kind], net_id, name, subnet)


def expose_hint(name: str) -> str:
    return (
        f"run 'hostnet docker expose {name}' to make the Docker network again for it, "
        f"or remove the Docker network ('docker network rm {name}')"
    )


def network_for_pool(by_id: Mapping[str, Network], ref: PoolRef, pool: str) -> Network:
    """The hostnet network a pool id means: the one with its id (``by_id``: hostnet's
    networks by id), else (the network made again, or hostnet's state lost) the one of its
    name if its subnet is the same."""
    net = by_id.get(ref.net_id)
    if net is not None:
        return net
    if not ref.name:
        raise StaleBinding(
            f"the Docker network using address pool {pool[:17]}… wants hostnet network "
            f"{ref.net_id[:12]}, which no longer exists (hostnet's state was lost, or the "
            "network was removed), and the pool id, made by an older hostnet, does not "
            "carry its name",
            "run 'hostnet docker expose NET' for the hostnet network it stood for (it makes "
            "the Docker network again), or remove the Docker network ('docker network rm NAME')",
        )
    named = next((n for n in by_id.values() if n.name == ref.name), None)
    return check_rebind(named, ref.name, ref.name, {ref.version: ref.subnet})


def gone(docker_name: str, wanted: str) -> StaleBinding:
    return StaleBinding(
        f"Docker network {docker_name!r} is bound to hostnet network {wanted!r}, which "
        "hostnet no longer has (hostnet's state was lost, or the network was removed)",
        f"create hostnet network {wanted!r} again and run 'hostnet docker expose {wanted}', "
        f"or remove the Docker network ('docker network rm {docker_name}')",
    )


def check_rebind(
    net: Network | None,
    docker_name: str,
    wanted: str,
    subnets: dict[int, str],
    driver: str = "",
) -> Network:
    """``net`` (hostnet's network named ``wanted``, None if it has none) if Docker network
    ``docker_name``, made for a network of that name with ``subnets`` (by IP version; ""
    for none) and ``driver``, can use it; else why not, and what to do."""
    if net is None:
        raise gone(docker_name, wanted)
    for version, subnet in sorted(subnets.items()):
        have = subnet_of(net, version)
        if have != subnet:
            fam = f"IPv{version} subnet"
            raise StaleBinding(
                f"Docker network {docker_name!r} was made for hostnet network {wanted!r} "
                + (f"with {fam} {subnet}" if subnet else f"without an {fam}")
                + f", but {wanted!r} was created again "
                + (f"with {fam} {have}" if have else f"without an {fam}"),
                f"run 'hostnet docker expose {wanted}' to make the Docker network again with "
                f"the new subnet, or remove it ('docker network rm {docker_name}')",
            )
    if driver and net.driver != driver:
        raise StaleBinding(
            f"Docker network {docker_name!r} was made for hostnet network {wanted!r} with "
            f"the {driver} driver, but {wanted!r} was created again with the {net.driver} "
            "driver",
            f"run 'hostnet docker expose {wanted}' to make the Docker network again with "
            f"its driver, or remove it ('docker network rm {docker_name}')",
        )
    return net


def unbound(docker_id: str, docker: dict[str, Any] | None) -> StaleBinding:
    """The error for a Docker network id hostnet has no record of and cannot re-bind.
    ``docker``: Docker's own view of that network, when Docker could be asked."""
    short = docker_id[:12]
    if docker is None:
        return StaleBinding(
            f"Docker network {short} is bound to no hostnet network: hostnet has no record "
            "of it (hostnet's state was lost, or the network was removed)",
            f"find its name with 'docker network ls --filter id={short}'; if "
            "'hostnet docker expose NET' made it, run that again, else remove the Docker "
            "network and create it again",
        )
    name = str(docker.get("Name") or short)
    wanted = wanted_name(docker)
    if wanted:
        return gone(name, wanted)
    return StaleBinding(
        f"Docker network {name!r} ({short}) was made with hostnet's {docker.get('Driver')} "
        "driver, but hostnet has no record of it (hostnet's state was lost, or the network "
        "was removed)",
        f"remove it and create it again: 'docker network rm {name}', then "
        "'docker network create ...' as before",
    )


# -- Docker's view of a network ---------------------------------------------------------
def wanted_name(docker: dict[str, Any]) -> str:
    """The hostnet network a Docker network was made for (its ``hostnet.network`` option,
    in its driver options or its IPAM options); "" if none."""
    opts = docker.get("Options") or {}
    ipam = (docker.get("IPAM") or {}).get("Options") or {}
    return str(opts.get(ADOPT_OPTION) or ipam.get(ADOPT_OPTION) or "")


def docker_subnets(docker: dict[str, Any]) -> set[str]:
    return {str(c.get("Subnet")) for c in (docker.get("IPAM") or {}).get("Config") or []}


@dataclass(frozen=True)
class Verdict:
    """What ``hostnet docker expose NET`` does with a Docker network named NET."""

    action: str  # "create", "bound", "recreate", "refuse"
    why: str = ""


def expose_verdict(docker: dict[str, Any] | None, net: dict[str, Any]) -> Verdict:
    """``docker``: Docker's view of the network named like hostnet network ``net`` (a
    network summary: Name, Id, Driver, Subnet, SubnetIPv6, DockerIds), None if Docker has
    none. Bound: made for it, its driver and subnets, and hostnet knows its Docker id."""
    if docker is None:
        return Verdict("create")
    name, driver = net["Name"], str(docker.get("Driver") or "")
    wanted = wanted_name(docker)
    if driver not in HOSTNET_DRIVERS or not wanted:
        made = f"Docker's {driver} driver" if driver not in HOSTNET_DRIVERS else "Docker"
        return Verdict(
            "refuse",
            f"a Docker network named {name!r} exists that hostnet did not expose (made by "
            f"{made}, without -o {ADOPT_OPTION}); remove it ('docker network rm {name}') "
            "and run this again, or leave it and use the hostnet network from hostnet only",
        )
    subnets = {s for s in (net.get("Subnet"), net.get("SubnetIPv6")) if s}
    plugin = registry.docker_name(net["Driver"])
    if wanted != name:
        why = f"it stands for hostnet network {wanted!r}"
    elif driver != plugin:
        why = f"it uses the {driver} driver, the hostnet network {net['Driver']}"
    elif docker_subnets(docker) != subnets:
        why = (
            f"its subnets ({', '.join(sorted(docker_subnets(docker)))}) are not the hostnet "
            f"network's ({', '.join(sorted(subnets))})"
        )
    elif docker.get("Id") not in (net.get("DockerIds") or []):
        why = "hostnet has no record of it (hostnet's state was lost, or the network made again)"
    else:
        return Verdict("bound")
    return Verdict("recreate", why)


def in_use_refusal(name: str, why: str, containers: list[str]) -> str:
    return (
        f"Docker network {name!r} needs to be made again ({why}), but Docker containers "
        f"still use it: {', '.join(sorted(containers))}. Remove them or disconnect them "
        f"('docker network disconnect {name} CONTAINER'), then run "
        f"'hostnet docker expose {name}' again"
    )


# -- Docker-made networks Docker lost ----------------------------------------------------
# What hostnetd knows of Docker now (DockerWatch.presence): not followed (--docker-host
# none), followed but not answering, answering (its networks checked and exposed)
OFF, WAITING, UP = "off", "waiting", "up"


def docker_state(net: Network, presence: str = OFF) -> str:
    """The ``Docker`` column of ``hostnet network ls``: what is true now. A network kept
    for Docker is "exposed" only while Docker answers and has a Docker network bound to it
    (the plugin's create and delete calls keep ``docker_ids`` in step; a Docker that
    appears is checked against them)."""
    if net.docker_owned:
        return "made by Docker, gone from Docker" if net.docker_gone else "made by Docker"
    if not (net.docker_expose or net.carvable or net.docker_ids):
        return "-"
    if presence == WAITING:
        return "when Docker answers"
    if presence == UP:
        return "exposed" if net.docker_ids else "not in Docker (see the daemon log)"
    if net.docker_ids:
        return "bound, unchecked (--docker-host none)"
    return "not followed (--docker-host none)"


def lost_by_docker(nets: Iterable[Network], docker_ids: set[str], before: float) -> list[Network]:
    """Networks Docker made (created before ``before``, when Docker's list was taken) of
    which Docker has none of the Docker networks bound to them."""
    return [
        n
        for n in nets
        if n.docker_owned and n.created < before and not docker_ids.intersection(n.docker_ids)
    ]


def check_pool_kind(pool: str) -> None:
    kind = pool.partition(":")[0]
    if kind not in (*POOL_KINDS, "pool"):
        raise InvalidRequest(
            f"address pool {pool!r} is not one hostnet-ipam handed out",
            "recreate the Docker network with --ipam-driver hostnet-ipam",
        )
