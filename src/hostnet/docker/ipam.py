"""Docker's IpamDriver (the hostnet-ipam plugin): pools are hostnet networks' subnets, or
subnets reserved for networks Docker is about to create; addresses come from the network's
own IPAM."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

from hostnet.core import ipam
from hostnet.core.service import HostNetworkingService
from hostnet.docker import binding as bind
from hostnet.docker import endpoints as dk
from hostnet.errors import Conflict, HostnetError, InvalidRequest
from hostnet.model import IPAddress, IPNetwork, Network, parse_ip, parse_subnet

log = logging.getLogger("hostnet")
GATEWAY_TYPE = "com.docker.network.gateway"


@dataclass
class _Reserved:
    """A pool handed to Docker for a network it is about to create (CreateNetwork comes
    after the gateway and --aux-address requests): its subnet and --ip-range (SubPool)."""

    subnet: IPNetwork
    sub_pool: str = ""


class IpamPools:
    """IpamDriver pools: each pool is one subnet of a hostnet network (``net:ID`` for its
    IPv4 subnet, ``net6:ID`` for its IPv6 one, adopted with ``-o hostnet.network``), or
    ``pool:SUBNET`` reserved for a network Docker is about to create, which names that
    network's subnet once it exists; addresses come from the network's own IPAM."""

    def __init__(self, svc: HostNetworkingService) -> None:
        self.svc = svc
        self.reserved: dict[str, _Reserved] = {}  # pool id -> a network not yet created
        # addresses handed to Docker but not yet claimed by CreateEndpoint, by network id
        self.pending: dict[str, set[IPAddress]] = {}
        # networks reached through a pool id whose network id is gone, by the name it
        # carries: CreateEndpoint binds the unknown Docker network to the one whose pending
        # addresses hold its address
        self.rebound: set[str] = set()

    def pending_rebound(self) -> dict[str, set[IPAddress]]:
        return {k: v for k, v in self.pending.items() if k in self.rebound}

    # -- pools -------------------------------------------------------------------
    def request_pool(
        self, pool: str, sub_pool: str, options: dict[str, str], v6: bool
    ) -> dict[str, Any]:
        version = 6 if v6 else 4
        adopt = options.get(dk.ADOPT_OPTION)
        if adopt:
            return self._adopted_pool(self.svc.network(adopt), version, pool, sub_pool)
        if pool:
            subnet = parse_subnet(pool, version)
            self.svc.check_overlap(subnet)
        elif sub_pool:
            raise InvalidRequest(
                f"--ip-range {sub_pool} without --subnet", "give --subnet too, or neither"
            )
        else:
            subnet = self._free_subnet(version)
        if sub_pool:
            _check_sub_pool(subnet, sub_pool)
        pool_id = f"pool:{subnet}"
        self.reserved[pool_id] = _Reserved(subnet, sub_pool)
        return {"PoolID": pool_id, "Pool": str(subnet), "Data": {}}

    def _adopted_pool(self, net: Network, version: int, pool: str, sub_pool: str) -> dict[str, Any]:
        """The pool of an existing hostnet network's subnet of one family."""
        subnet, gateway, ip_range = _family(net, version)
        if not subnet:
            hint = (
                "leave --ipv6 out, or create the hostnet network with --ipv6"
                if version == 6
                else "Docker 20.10 networks always have an IPv4 subnet; expose a network "
                "that has one"
            )
            raise InvalidRequest(f"network {net.name!r} has no IPv{version} subnet", hint)
        if pool and pool != subnet:
            raise InvalidRequest(
                f"network {net.name!r} has IPv{version} subnet {subnet}, not {pool}",
                f"give --subnet {subnet}",
            )
        if sub_pool and sub_pool != ip_range:
            raise InvalidRequest(
                f"network {net.name!r} hands out IPv{version} addresses from "
                f"{ip_range or 'its whole subnet'}, not --ip-range {sub_pool}",
                "leave --ip-range out: the hostnet network's own range applies",
            )
        prefix = ipaddress.ip_network(subnet).prefixlen
        return {
            "PoolID": bind.pool_id(net, version),
            "Pool": subnet,
            "Data": {GATEWAY_TYPE: f"{gateway}/{prefix}"},
        }

    def _free_subnet(self, version: int) -> IPNetwork:
        """A pool of hostnet's choice: the first free IPv4 /24, or a unique local /64."""
        reserved = [r.subnet for r in self.reserved.values()]
        if version == 6:
            used = [s for n in self.svc.nets.values() for s in n.subnets()]
            return ipam.unique_local_subnet([*used, *self.svc.host_prefixes(), *reserved])
        used4 = self.svc.subnets_in_use() + self.svc.host_prefixes() + reserved
        found = ipam.first_free_subnet(24, used4)
        if found is None:
            raise InvalidRequest("no free /24 left in 172.16.0.0/12", "give --subnet")
        return found

    def release_pool(self, pool_id: str) -> dict[str, Any]:
        self.reserved.pop(pool_id, None)
        return {}

    def sub_pool(self, subnet: str) -> str:
        """The --ip-range Docker asked for with ``subnet`` (for CreateNetwork)."""
        got = self.reserved.get(f"pool:{subnet}")
        return got.sub_pool if got else ""

    def _network(self, pool_id: str) -> tuple[Network | None, int]:
        """The hostnet network a pool belongs to (None: not created yet), and its family."""
        ref = bind.parse_pool_id(pool_id)
        if ref is not None:
            net = bind.network_for_pool(self.svc.nets, ref, pool_id)
            if net.id != ref.net_id:
                self.rebound.add(net.id)
                log.info("docker: pool %s re-bound to network %s (%s)", pool_id, net.name, net.id)
            return net, ref.version
        bind.check_pool_kind(pool_id)
        subnet = parse_subnet(pool_id.partition(":")[2], None)
        for n in self.svc.nets.values():
            if str(subnet) in (n.subnet, n.subnet6):
                return n, subnet.version
        return None, subnet.version

    # -- addresses ---------------------------------------------------------------
    def release_address(self, pool_id: str, address: str) -> dict[str, Any]:
        if not address:
            return {}
        with contextlib.suppress(HostnetError, ValueError):
            net, _ = self._network(pool_id)
            if net is not None:
                addr = ipaddress.ip_address(address.split("/")[0])
                self.pending.get(net.id, set()).discard(addr)
        return {}

    def request_address(
        self, pool_id: str, address: str, options: dict[str, str]
    ) -> dict[str, Any]:
        gateway_wanted = options.get("RequestAddressType") == GATEWAY_TYPE
        net, version = self._network(pool_id)
        if net is None:
            return self._reserving(pool_id, version, address, gateway_wanted)
        subnet_text, gateway, ip_range = _family(net, version)
        if not subnet_text:
            raise Conflict(
                f"network {net.name!r} no longer has an IPv{version} subnet",
                "remove the Docker network and create it again",
            )
        subnet = ipaddress.ip_network(subnet_text)
        gw = ipaddress.ip_address(gateway)
        flag = "--ip6" if version == 6 else "--ip"
        if gateway_wanted:
            if address and parse_ip(address, "--gateway", version) != gw:
                raise InvalidRequest(
                    f"network {net.name!r} has IPv{version} gateway {gw}, not {address}",
                    f"give --gateway {gw}, or leave --gateway out",
                )
            return {"Address": f"{gw}/{subnet.prefixlen}"}
        pending = self.pending.setdefault(net.id, set())
        aux = {ipaddress.ip_address(a) for a in net.aux_addresses.values()}
        taken = ipam.Taken(self.svc.addresses_used(net), pending, aux)
        carved = self.svc.carved(net) if version == 4 else []
        if address:
            addr = parse_ip(address, f"{flag} address", version)
            ipam.check_static(subnet, gw, addr, taken, carved)
        else:
            within = ipaddress.ip_network(ip_range) if ip_range else None
            addr = ipam.allocate(subnet, gw, taken, None, carved, within=within)
        pending.add(addr)
        return {"Address": f"{addr}/{subnet.prefixlen}"}

    def _reserving(
        self, pool_id: str, version: int, address: str, gateway_wanted: bool
    ) -> dict[str, Any]:
        """The gateway and --aux-address requests of a network Docker is creating; the
        network checks them again when it is created."""
        got = self.reserved.get(pool_id)
        subnet = got.subnet if got else parse_subnet(pool_id.split(":", 1)[1], version)
        if got is None:  # not a network being created: one hostnet has lost
            raise bind.StaleBinding(
                f"the Docker network with subnet {subnet} (hostnet-ipam pool {pool_id}) is "
                "bound to no hostnet network: hostnet has no record of it (hostnet's state "
                "was lost, or the network was removed)",
                "remove the Docker network and create it again ('docker network rm NAME', "
                "then 'docker network create ...' as before; 'docker network ls' names it)",
            )
        if not address:
            if gateway_wanted:
                return {"Address": f"{ipam.default_gateway(subnet)}/{subnet.prefixlen}"}
            raise InvalidRequest(
                f"address pool {subnet} belongs to no hostnet network",
                "use hostnet-ipam with a hostnet driver (-d nat, transparent, l2bridge, "
                "l2tunnel), or leave --ipam-driver out",
            )
        what = "--gateway" if gateway_wanted else "--aux-address"
        addr = parse_ip(address, what, version)
        if gateway_wanted:
            ipam.check_gateway(subnet, addr)
        elif addr not in subnet:
            raise InvalidRequest(
                f"{what} {addr} is outside subnet {subnet}", f"give an address inside {subnet}"
            )
        return {"Address": f"{addr}/{subnet.prefixlen}"}


def _family(net: Network, version: int) -> tuple[str, str, str]:
    """A network's subnet, gateway and --ip-range of one family ("" when it has none)."""
    if version == 6:
        return net.subnet6, net.gateway6, net.ip_range6
    return net.subnet, net.gateway, net.ip_range


def _check_sub_pool(subnet: IPNetwork, sub_pool: str) -> None:
    rng = parse_subnet(sub_pool, subnet.version)
    if not rng.subnet_of(subnet):  # type: ignore[arg-type]
        raise InvalidRequest(
            f"--ip-range {rng} is not inside subnet {subnet}",
            f"give a prefix of {subnet}, e.g. {next(subnet.subnets(prefixlen_diff=1))}",
        )
