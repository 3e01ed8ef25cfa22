"""What the embedded resolver answers: the name directory, kept in step with the index.

Attach and detach change one endpoint's names and one compartment's scope; the whole
directory is rebuilt only at start, after a reconcile and after a cluster re-list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from hostnet.core.index import Index
from hostnet.dns import names
from hostnet.dns.resolver import Resolver
from hostnet.errors import HostnetError
from hostnet.kernel import compartment_dns
from hostnet.model import Container, Endpoint

log = logging.getLogger("hostnet")


class DnsPublisher:
    def __init__(self, index: Index) -> None:
        self.index = index
        self.directory = names.Directory()
        self.resolver: Resolver | None = None  # the daemon's, when it serves embedded DNS
        self._opening: set[str] = set()  # compartments whose sockets a request is opening

    def rebuild(self, others: Iterable[Endpoint]) -> None:
        """The whole directory (this host's endpoints and ``others``, other hosts'), and
        serve exactly the compartments that have a scope."""
        ix = self.index
        self.directory = names.build(ix.nets, ix.containers, [*ix.eps.values(), *others])
        r = self.resolver
        if r is None:
            return
        for cid in r.serving() - set(self.directory.scopes):
            r.close(cid)
        for cid in set(self.directory.scopes) - r.serving():
            self._serve(self.index.containers[cid])
        r.publish(self.directory)

    def names(self, ep: Endpoint, present: bool, c: Container | None = None) -> None:
        """One endpoint's names into (or out of) the directory, with its IPv4 and IPv6
        addresses (an IPv6-only network's endpoints have no ``ip``); ``c``: its container,
        when the index no longer has it (a removal in progress)."""
        net = self.index.nets.get(ep.network_id)
        if net is not None:
            c = self.index.containers.get(ep.container_id) or c
            own = names.own_names(net, c, ep)
            change = self.directory.add if present else self.directory.remove
            change(net, own, ep.ip, ep.ip6)

    def scope(self, c: Container) -> bool:
        """Recompute what one compartment's resolver sees; stop serving it when it has no
        scope. True when it has one but no listener yet: ``serve`` it (that may run with
        other requests going on: opening its sockets enters the compartment)."""
        scope = names.scope_of(self.index.nets, c, self.index.endpoints_of(c))
        self.directory.set_scope(c.id, scope)
        r = self.resolver
        if r is None:
            return False
        if scope is None:
            if r.close(c.id) and c.external:
                self._unredirect(c)
            return False
        if c.id in r.listeners or c.id in self._opening:
            return False
        self._opening.add(c.id)  # one request opens its sockets; serve() ends that
        return True

    def serve(self, c: Container) -> None:
        try:
            if self.resolver is not None:
                self._serve(c)
        finally:
            self._opening.discard(c.id)

    def still_wanted(self, c: Container) -> None:
        """After serving ``c`` unlocked: close it again if it was removed (or lost its
        scope) meanwhile."""
        gone = c.id not in self.index.containers or c.id not in self.directory.scopes
        if gone and self.resolver is not None and self.resolver.close(c.id) and c.external:
            self._unredirect(c)

    @staticmethod
    def _unredirect(c: Container) -> None:
        """A runtime's namespace (CNI) outlives hostnet's use of it: take the port-53
        redirect out again, as DEL must leave it as ADD found it."""
        try:
            compartment_dns.remove_redirect(c.netns)
        except (OSError, HostnetError) as exc:
            log.warning("port-53 redirect left in %s: %s", c.netns, exc)

    def _serve(self, c: Container) -> None:
        assert self.resolver is not None
        try:
            self.resolver.listen(c.id, c.netns)
        except (OSError, HostnetError) as exc:
            log.warning("no embedded DNS for %s: %s", c.name, exc)
