"""The embedded store: one SQLite file in the state directory (WAL mode)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from hostnet.errors import Conflict
from hostnet.model import Container, Endpoint, Network, PortMapping, host_ips_clash
from hostnet.store.base import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS containers (id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (id TEXT PRIMARY KEY, network_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS addresses (
  network_id TEXT NOT NULL, ip TEXT NOT NULL, endpoint_id TEXT NOT NULL, PRIMARY KEY (network_id, ip));
CREATE INDEX IF NOT EXISTS addresses_by_endpoint ON addresses (endpoint_id);
CREATE TABLE IF NOT EXISTS host_ports (
  protocol TEXT NOT NULL, port INTEGER NOT NULL, host_ip TEXT NOT NULL, endpoint_id TEXT NOT NULL,
  container_port INTEGER NOT NULL, PRIMARY KEY (protocol, port, host_ip));
CREATE INDEX IF NOT EXISTS host_ports_by_endpoint ON host_ports (endpoint_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class _Cursor(sqlite3.Cursor):
    """Counts SQLite's failures (I/O, locked, full; a constraint is a Conflict, not one)."""

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error:
            if isinstance(self.connection, _Connection):
                self.connection.failures += 1
            raise


class _Connection(sqlite3.Connection):
    failures = 0

    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)


class SqliteStore(Store):
    """Intent in SQLite; each call is one transaction."""

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, factory=_Connection
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL survives a killed daemon (not a power cut) and keeps attach fast.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def describe(self) -> dict[str, str]:
        return {"Kind": "sqlite", "Location": self.path}

    def _docs(self, table: str) -> list[str]:
        return [row[0] for row in self.db.execute(f"SELECT doc FROM {table}")]

    def networks(self) -> list[Network]:
        return [Network.model_validate_json(d) for d in self._docs("networks")]

    def create_network(self, net: Network) -> None:
        try:
            self.db.execute(
                "INSERT INTO networks (id, name, doc) VALUES (?, ?, ?)",
                (net.id, net.name, net.model_dump_json()),
            )
        except sqlite3.IntegrityError:
            raise Conflict(
                f"a network named {net.name!r} already exists", "choose another name"
            ) from None

    def update_network(self, net: Network) -> None:
        self.db.execute("UPDATE networks SET doc = ? WHERE id = ?", (net.model_dump_json(), net.id))

    def delete_network(self, net_id: str) -> None:
        self.db.execute("DELETE FROM networks WHERE id = ?", (net_id,))

    def containers(self) -> list[Container]:
        return [Container.model_validate_json(d) for d in self._docs("containers")]

    def create_container(self, c: Container) -> None:
        try:
            self.db.execute(
                "INSERT INTO containers (id, name, doc) VALUES (?, ?, ?)",
                (c.id, c.name, c.model_dump_json()),
            )
        except sqlite3.IntegrityError:
            raise Conflict(
                f"a container named {c.name!r} already exists",
                "choose another name, or remove it with 'hostnet rm'",
            ) from None

    def update_container(self, c: Container) -> None:
        self.db.execute("UPDATE containers SET doc = ? WHERE id = ?", (c.model_dump_json(), c.id))

    def delete_container(self, c_id: str) -> None:
        self.db.execute("DELETE FROM containers WHERE id = ?", (c_id,))

    def endpoints(self) -> list[Endpoint]:
        """Endpoints with their port mappings (kept as rows, so adding one is O(1))."""
        eps = {e.id: e for e in (Endpoint.model_validate_json(d) for d in self._docs("endpoints"))}
        rows = self.db.execute(
            "SELECT endpoint_id, protocol, host_ip, port, container_port FROM host_ports "
            "ORDER BY rowid"
        )
        for ep_id, proto, host_ip, port, cport in rows:
            if ep_id in eps:
                eps[ep_id].ports.append(
                    PortMapping(
                        protocol=proto, host_ip=host_ip, host_port=port, container_port=cport
                    )
                )
        return list(eps.values())

    @staticmethod
    def _doc(ep: Endpoint) -> str:
        return ep.model_dump_json(exclude={"ports"})

    def create_endpoint(self, ep: Endpoint) -> None:
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            # each address IPAM gave (a DHCP lease's or a SLAAC one belongs to the network)
            for ip in ("" if ep.dhcp else ep.ip, "" if ep.slaac else ep.ip6):
                if not ip:
                    continue
                try:
                    cur.execute(
                        "INSERT INTO addresses (network_id, ip, endpoint_id) VALUES (?, ?, ?)",
                        (ep.network_id, ip, ep.id),
                    )
                except sqlite3.IntegrityError:
                    raise Conflict(
                        f"address {ip} is already in use", "choose another address", address=ip
                    ) from None
            self._claim_ports(cur, ep.id, ep.ports)
            cur.execute(
                "INSERT INTO endpoints (id, network_id, doc) VALUES (?, ?, ?)",
                (ep.id, ep.network_id, self._doc(ep)),
            )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    @staticmethod
    def _claim_ports(cur: sqlite3.Cursor, ep_id: str, ports: list[PortMapping]) -> None:
        for pm in ports:
            bound = cur.execute(
                "SELECT host_ip FROM host_ports WHERE protocol = ? AND port = ?",
                (pm.protocol, pm.host_port),
            ).fetchall()
            if any(host_ips_clash(pm.host_ip, row[0]) for row in bound):
                raise Conflict(
                    f"host port {pm.host_port}/{pm.protocol} is already mapped",
                    "choose another host port (see 'hostnet nat ls')",
                )
            cur.execute(
                "INSERT INTO host_ports (protocol, port, host_ip, endpoint_id, container_port) "
                "VALUES (?, ?, ?, ?, ?)",
                (pm.protocol, pm.host_port, pm.host_ip, ep_id, pm.container_port),
            )

    def add_ports(self, ep: Endpoint, added: list[PortMapping]) -> None:
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            self._claim_ports(cur, ep.id, added)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def remove_ports(self, ep: Endpoint, removed: list[PortMapping]) -> None:
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for pm in removed:
                cur.execute(
                    "DELETE FROM host_ports WHERE protocol = ? AND port = ? AND host_ip = ? "
                    "AND endpoint_id = ?",
                    (pm.protocol, pm.host_port, pm.host_ip, ep.id),
                )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def update_endpoint(self, ep: Endpoint) -> None:
        self.db.execute("UPDATE endpoints SET doc = ? WHERE id = ?", (self._doc(ep), ep.id))

    def delete_endpoint(self, ep_id: str) -> None:
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute("DELETE FROM addresses WHERE endpoint_id = ?", (ep_id,))
            cur.execute("DELETE FROM host_ports WHERE endpoint_id = ?", (ep_id,))
            cur.execute("DELETE FROM endpoints WHERE id = ?", (ep_id,))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def wipe(self) -> None:
        for table in ("networks", "containers", "endpoints", "addresses", "host_ports", "meta"):
            self.db.execute(f"DELETE FROM {table}")

    def errors(self) -> dict[str, int]:
        return {"sqlite": self.db.failures if isinstance(self.db, _Connection) else 0}

    def close(self) -> None:
        self.db.close()
