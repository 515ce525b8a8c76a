"""A PostgreSQL schema of a test's own on PULSEBRIDGE_TEST_PG, dropped afterwards (so parallel runs never collide)."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from adapters.storage.base import Repository

PG_URL = os.environ.get("PULSEBRIDGE_TEST_PG")


@contextmanager
def own_schema(prefix: str) -> Iterator[str]:
    """Create a uniquely named schema, yield its name, drop it with everything in it; skip without a server."""
    if not PG_URL:
        pytest.skip("needs PULSEBRIDGE_TEST_PG (e.g. postgresql://127.0.0.1:5432/test)")
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def schema_url(schema: str) -> str:
    """PULSEBRIDGE_TEST_PG with `schema` first on the search path (libpq `options`), for a server process."""
    assert PG_URL
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"


@contextmanager
def sql_store(backend: str, tmp_path: Path, prefix: str) -> Iterator[Repository]:
    """A store on `backend`: a SQLite file under tmp_path, or PostgreSQL in a schema of its own."""
    if backend == "sqlite":
        from adapters.storage import open_repository

        repository = open_repository(f"sqlite:///{tmp_path / (prefix + '.db')}")
        yield repository
        repository.close()
        return
    from adapters.storage.postgresql import PostgreSQLRepository

    with own_schema(prefix) as schema:
        repository = PostgreSQLRepository(PG_URL, schema=schema)  # type: ignore[arg-type]
        yield repository
        repository.close()
