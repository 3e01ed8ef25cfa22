"""Intent stores: what should exist. SQLite is the embedded default."""

from hostnet.store.base import Store

__all__ = ["Store", "open_store"]


def open_store(url: str) -> Store:
    """Open a store from a URL: ``sqlite:///path`` (or a bare path)."""
    from hostnet.errors import InvalidRequest

    if url.startswith("sqlite://"):
        url = url[len("sqlite://") :]
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise InvalidRequest(f"unknown store {scheme!r}", "available stores: sqlite (the default)")
    from hostnet.store.sqlite import SqliteStore

    return SqliteStore(url)
