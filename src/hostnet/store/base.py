"""The store interface and its correctness contract.

Every store keeps networks, containers and endpoints as whole documents.
Contract (each backend must honour it, and the contract tests check it):

- ``create_network`` is compare-and-set on the name: two concurrent creates of
  one name, exactly one succeeds; the other gets ``Conflict``.
- ``create_endpoint`` claims the endpoint's address on its network and each of
  its host ports atomically with writing the endpoint: an address or host port
  is never held by two endpoints. A failed claim writes nothing.
- ``add_ports`` claims new host ports for an existing endpoint with the same
  guarantee; ``remove_ports`` releases them.
- ``delete_*`` of something already gone succeeds.
- ``create_container`` is compare-and-set on the container name.

A store shared by hosts also keeps the cluster's own records (``ClusterStore``: the
cluster-wide networks, their endpoint registry, VNIs, the members); ``Store.cluster``
hands it out, or None for a store of one host (SQLite): "not clustered".
"""

from __future__ import annotations

import ssl
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from hostnet.model import Container, Endpoint, Network, PortMapping


@dataclass(frozen=True)
class ClusterChange:
    """One change the cluster watch saw: a network or registry endpoint put (``doc``) or
    deleted (``doc`` None)."""

    kind: Literal["network", "endpoint"]
    id: str
    doc: Network | Endpoint | None


class ClusterStore(Protocol):
    """The cluster-wide records of a shared store. Claims are compare-and-set across
    hosts: a VNI is held by one network, an identity by one live daemon."""

    #: this host's id in the cluster
    host: str

    def shared_networks(self) -> tuple[list[Network], int]:
        """The cluster's networks, and the revision they were read at."""
        ...

    def cluster_endpoints(self) -> tuple[list[Endpoint], int]:
        """Every endpoint of the cluster's registry, and the revision to watch from."""
        ...

    def watch_changes(self, start_rev: int) -> Iterator[list[ClusterChange]]:
        """The cluster's changes from ``start_rev`` on, a batch at a time."""
        ...

    def claim_vni(self, net_id: str, vni: int) -> bool:
        """Claim a VXLAN id for a network cluster-wide; False: another network holds it."""
        ...

    def release_vni(self, vni: str) -> None: ...

    def forget_endpoint(self, ep: Endpoint) -> None:
        """An endpoint of a host gone for good out of the registry, with its claims."""
        ...

    def forget_host(self, host: str) -> None:
        """Every record a host gone for good kept, and its membership."""
        ...

    def members(self) -> dict[str, tuple[dict[str, str], bool]]:
        """Every daemon that joined: what its identity said, and whether it is alive."""
        ...

    def claim_identity(self, holder: dict[str, str], ttl: int = ...) -> int:
        """Hold this host's id while the daemon lives (a lease); Conflict if another
        live daemon holds it."""
        ...

    def keep_identity(self, lease: int, holder: dict[str, str]) -> int:
        """Renew the identity's lease (claim it again after it ran out)."""
        ...

    def contact(self) -> tuple[str, int]:
        """Host and port of a store member (to find this host's address towards it)."""
        ...

    def use_tls(self, ctx: ssl.SSLContext) -> None:
        """Speak TLS to the members with this context."""
        ...


class Store(ABC):
    """What should exist: the daemon's intent."""

    #: writes are network round trips (etcd): the service writes containers and endpoints
    #: with its lock let go (having reserved their names and addresses in its index first),
    #: so a slow store holds up no other request. A remote store is safe to call from
    #: several threads at once; a local one (SQLite) is called under the service lock.
    remote = False
    #: other hosts share it (etcd): cluster-wide records (overlay networks) belong to the
    #: cluster, not to this host, and a reset of this host leaves them
    shared = False

    def cluster(self) -> ClusterStore | None:
        """The cluster-wide records, or None: this store is one host's (not clustered)."""
        return None

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """What ``hostnet system info`` shows of the store: its kind and where it is."""

    @abstractmethod
    def networks(self) -> list[Network]: ...

    @abstractmethod
    def create_network(self, net: Network) -> None: ...

    @abstractmethod
    def update_network(self, net: Network) -> None: ...

    @abstractmethod
    def delete_network(self, net_id: str) -> None: ...

    @abstractmethod
    def containers(self) -> list[Container]: ...

    @abstractmethod
    def create_container(self, c: Container) -> None: ...

    @abstractmethod
    def update_container(self, c: Container) -> None: ...

    @abstractmethod
    def delete_container(self, c_id: str) -> None: ...

    @abstractmethod
    def endpoints(self) -> list[Endpoint]: ...

    @abstractmethod
    def create_endpoint(self, ep: Endpoint) -> None: ...

    @abstractmethod
    def update_endpoint(self, ep: Endpoint) -> None:
        """Rewrite an endpoint's document (e.g. a DHCP lease); claims do not change."""

    @abstractmethod
    def delete_endpoint(self, ep_id: str) -> None: ...

    @abstractmethod
    def add_ports(self, ep: Endpoint, added: list[PortMapping]) -> None:
        """Claim ``added`` for ``ep``; the cost must not grow with ep's other mappings."""

    @abstractmethod
    def remove_ports(self, ep: Endpoint, removed: list[PortMapping]) -> None:
        """Release ``removed`` from ``ep``."""

    @abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    @abstractmethod
    def wipe(self) -> None:
        """Forget everything this host keeps (``hostnet system reset``): a shared store
        keeps the cluster's own records."""

    @abstractmethod
    def close(self) -> None: ...

    def errors(self) -> dict[str, int]:
        """Failures since start, by kind, for the metrics endpoint: the store could not be
        reached or refused a request (a Conflict is an answer, not an error)."""
        return {}
