"""Intent stores: what should exist. SQLite is the embedded default; etcd is the cluster's."""

from __future__ import annotations

import socket

from hostnet.store.base import Store

__all__ = ["Store", "open_store"]


def open_store(url: str, host: str = "") -> Store:
    """Open a store from a URL: ``sqlite:///path`` (or a bare path), or
    ``etcd://m1:2379,m2:2379,m3:2379`` (``etcds://`` for TLS) as host ``host``."""
    from hostnet.errors import InvalidRequest

    if url.startswith(("etcd://", "etcds://")):
        from hostnet.store.etcd import EtcdStore
        from hostnet.store.etcdv3 import Etcd

        scheme, rest = url.split("://", 1)
        members = [m.strip() for m in rest.strip("/").split(",") if m.strip()]
        if not members:
            raise InvalidRequest("--store etcd:// names no member", "e.g. etcd://10.0.0.1:2379")
        proto = "https" if scheme == "etcds" else "http"
        return EtcdStore(Etcd([f"{proto}://{m}" for m in members]), host or socket.gethostname())
    if url.startswith("sqlite://"):
        url = url[len("sqlite://") :]
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise InvalidRequest(
            f"unknown store {scheme!r}", "available stores: sqlite (the default), etcd"
        )
    from hostnet.store.sqlite import SqliteStore

    return SqliteStore(url)
