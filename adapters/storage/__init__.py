"""Storage backends behind one repository interface named after FHIR interactions."""
from __future__ import annotations

from adapters.storage.base import Repository

SCHEMES = ("sqlite", "postgresql", "postgres", "memory")


def open_repository(url: str) -> Repository:
    """The backend named by the URL scheme: sqlite:///path.db, sqlite:// (in memory), postgresql://..., memory://."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        from adapters.storage.sqlite import SQLiteRepository

        return SQLiteRepository(url)
    if scheme in ("postgresql", "postgres"):
        from adapters.storage.postgresql import PostgreSQLRepository

        return PostgreSQLRepository(url)
    if scheme == "memory":
        from adapters.storage.memory import MemoryRepository

        return MemoryRepository()
    raise ValueError(
        f"unknown database URL scheme in '{url}': use sqlite:///path.db, sqlite://, postgresql://host/db or memory://"
    )
