"""Docker finds hostnet's networks on its own, as Docker on Windows finds ``nat``.

hostnetd follows Docker's API socket (``--docker-host``): whenever the socket answers
(Docker started, or started again, perhaps with a wiped data root), every hostnet network
kept for Docker (the default ``nat``, and those ``hostnet docker expose`` made) that Docker
does not have becomes a Docker network of the same name, bound to it (driver: the hostnet
driver's plugin; IPAM: hostnet-ipam); a stale one of that name no container uses is made
again; networks Docker made that Docker no longer has are removed. Then it holds Docker's event stream open: the stream
ends when Docker stops, and the watch waits for the socket to come back. No polling while
Docker runs; one stat a second while it does not.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from hostnet.client import UnixConnection
from hostnet.docker import binding as bind

log = logging.getLogger("hostnet")

API = "/v1.41"  # Docker 20.10 and later answer it


class Engine:
    """The few calls of Docker's Engine API hostnet makes, over its unix socket."""

    def __init__(self, path: str) -> None:
        self.path = path

    def call(self, method: str, url: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
        conn = UnixConnection(self.path, timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, API + url, data, {"Content-Type": "application/json"})
            res = conn.getresponse()
            raw = res.read()
        finally:
            conn.close()
        try:
            return res.status, json.loads(raw) if raw else None
        except ValueError:
            return res.status, raw.decode(errors="replace")

    def network(self, name: str, timeout: float = 10) -> dict[str, Any] | None:
        status, found = self.call("GET", f"/networks/{quote(name)}", timeout=timeout)
        return found if status == 200 and isinstance(found, dict) else None

    def network_ids(self) -> set[str]:
        status, found = self.call("GET", "/networks")
        if status != 200 or not isinstance(found, list):
            raise OSError(f"Docker answered GET /networks with {status}")
        return {str(n.get("Id")) for n in found if isinstance(n, dict)}

    def remove_network(self, ref: str) -> tuple[int, Any]:
        return self.call("DELETE", f"/networks/{quote(ref)}")

    def create_network(self, body: dict[str, Any]) -> tuple[int, Any]:
        return self.call("POST", "/networks/create", body)

    def wait_until_gone(self) -> None:
        """Hold Docker's event stream open; return when it ends (Docker stopped)."""
        conn = UnixConnection(self.path, None)
        try:
            conn.request("GET", API + "/events")
            res = conn.getresponse()
            while res.read1(65536):
                pass
        finally:
            conn.close()


def network_body(net: dict[str, Any]) -> dict[str, Any]:
    """The Docker network that stands for hostnet network ``net`` (its summary view): the
    same name, its subnets given (Docker's host-overlap check would fail on the network's
    own bridge), addresses from hostnet-ipam."""
    name = net["Name"]
    config = [{"Subnet": net["Subnet"], "Gateway": net["Gateway"]}] if net.get("Subnet") else []
    if net.get("SubnetIPv6"):
        config.append({"Subnet": net["SubnetIPv6"], "Gateway": net["GatewayIPv6"]})
    return {
        "Name": name,
        "Driver": net["Driver"],
        "CheckDuplicate": True,
        "EnableIPv6": bool(net.get("SubnetIPv6")),
        "Internal": bool(net.get("Internal")),
        "IPAM": {
            "Driver": "hostnet-ipam",
            "Options": {"hostnet.network": name},
            "Config": config,
        },
        "Options": {"hostnet.network": name},
        "Labels": {"hostnet.exposed": "auto"},
    }


def _message(answer: Any) -> str:
    return str(answer.get("message", answer) if isinstance(answer, dict) else answer)


def expose(engine: Engine, nets: list[dict[str, Any]]) -> list[str]:
    """Make each of ``nets`` (network summaries) a Docker network bound to it: create the
    ones Docker does not have, make again the stale ones no container uses (see
    docker_binding.expose_verdict); returns what it made."""
    made = []
    for net in nets:
        name = net["Name"]
        view = engine.network(name)
        verdict = bind.expose_verdict(view, net)
        if verdict.action == "bound":
            continue
        if verdict.action == "refuse":
            log.warning("docker: %s is not exposed: %s", name, verdict.why)
            continue
        if verdict.action == "recreate" and view is not None:
            users = [str(c.get("Name")) for c in (view.get("Containers") or {}).values()]
            if users:
                log.warning("docker: %s", bind.in_use_refusal(name, verdict.why, users))
                continue
            status, answer = engine.remove_network(str(view.get("Id")))
            if status not in (200, 204, 404):
                log.warning("docker: could not remove stale %s: %s", name, _message(answer))
                continue
            log.info("docker: stale Docker network %s removed (%s)", name, verdict.why)
        status, answer = engine.create_network(network_body(net))
        if status in (200, 201):
            made.append(name)
            log.info("docker: network %s made a Docker network", name)
        else:
            log.warning("docker: could not make %s a Docker network: %s", name, _message(answer))
    return made


class DockerWatch:
    """The thread that follows Docker's socket; ``wanted`` lists the networks to expose
    (network summaries), called each time Docker appears."""

    def __init__(
        self,
        path: str,
        wanted: Callable[[], list[dict[str, Any]]],
        lost: Callable[[set[str], float], list[str]] = lambda ids, before: [],
    ) -> None:
        self.engine = Engine(path)
        self.wanted = wanted
        self.lost = lost
        self.appearances = 0  # how often Docker was found (for tests and the log)
        self.presence = bind.WAITING  # UP once Docker answered and was brought in step
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hostnet-docker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not os.path.exists(self.engine.path):
                self._stop.wait(1)
                continue
            try:
                status, _ = self.engine.call("GET", "/_ping", timeout=5)
                if status != 200:
                    raise OSError(f"Docker answered /_ping with {status}")
                self.appearances += 1
                before = time.time()
                removed = self.lost(self.engine.network_ids(), before)
                if removed:
                    log.info("docker: networks Docker made and no longer has: %s", removed)
                expose(self.engine, self.wanted())
                self.presence = bind.UP
                try:
                    self.engine.wait_until_gone()
                finally:
                    self.presence = bind.WAITING
                log.info("docker: %s closed; waiting for Docker to come back", self.engine.path)
            except (OSError, http.client.HTTPException) as exc:
                log.debug("docker: %s: %s", self.engine.path, exc)
            except Exception:  # never let the watch die: log it, try again
                log.exception("docker: watch of %s failed", self.engine.path)
            time.sleep(1)
