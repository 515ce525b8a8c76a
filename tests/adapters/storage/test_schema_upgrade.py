"""A database created by schema 1-2 (parameter keys as text) upgrades to schema 3 (parameter ids) with its data.

The old layout is built from migrations 0001-0002 and filled by hand with index rows named by key,
exactly as the schema-2 store wrote them; opening the current store migrates it, and search must
still find every resource by its index rows.
"""
from __future__ import annotations

import os
import sqlite3
import uuid
from typing import Any

import orjson
import pytest

from adapters.storage.base import Repository
from adapters.storage.indexing import index_resource
from adapters.storage.plan import COLUMNS
from adapters.storage.query import parse_search
from adapters.storage.sql import migration_files, split_statements

PG_URL = os.environ.get("PULSEBRIDGE_TEST_PG")
LAST_UPDATED = 1_709_632_800_000_000  # 2024-03-05T10:00:00Z in UTC microseconds


def _old_layout(dialect: str, samples: dict[str, dict]) -> list[tuple[str, list[Any]]]:
    """Schema 1-2 DDL, then two resources with key-named index rows, as `?` statements."""
    statements: list[tuple[str, list[Any]]] = [
        ("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)", [])
    ]
    for version, script in migration_files(dialect):
        if version <= 2:
            statements += [(statement, []) for statement in split_statements(script)]
            statements.append(("INSERT INTO schema_version VALUES (?, '2024-03-05')", [version]))
    patient = {**samples["patient_mueller"], "id": "p1"}
    observation = {**samples["heart_rate"], "id": "o1", "subject": {"reference": "Patient/p1"}}
    for rid, resource in ((1, patient), (2, observation)):
        stamped = {**resource, "meta": {"versionId": "1", "lastUpdated": "2024-03-05T10:00:00.000Z"}}
        statements.append((
            "INSERT INTO resources (rid, resource_type, id, version_id, last_updated, deleted) VALUES (?, ?, ?, 1, ?, 0)",
            [rid, resource["resourceType"], resource["id"], LAST_UPDATED],
        ))
        statements.append((
            "INSERT INTO versions (rid, resource_type, id, version_id, last_updated, method, resource) "
            "VALUES (?, ?, ?, 1, ?, 'PUT', ?)",
            [rid, resource["resourceType"], resource["id"], LAST_UPDATED, orjson.dumps(stamped).decode()],
        ))
        for table, rows in index_resource(stamped).tables().items():
            columns = ", ".join(("rid", "param", *COLUMNS[table]))
            for row in rows:
                statements.append((f"INSERT INTO idx_{table} ({columns}) VALUES ({', '.join('?' * (len(row) + 1))})",
                                   [rid, *row]))
    if dialect == "postgresql":  # the schema-2 store took rids from the identity sequence
        statements.append(("SELECT setval(pg_get_serial_sequence('resources', 'rid'), 2)", []))
    return statements


def _assert_found(repo: Repository) -> None:
    def ids(resource_type: str, params: list[tuple[str, str]]) -> list[str]:
        return [m["id"] for m in repo.search(parse_search(resource_type, params)).matches]

    assert ids("Patient", [("family", "muller")]) == ["p1"]
    assert ids("Patient", [("identifier", "urn:oid:1.2.36.146.595.217.0.1|MRN-1001")]) == ["p1"]
    assert ids("Observation", [("patient", "p1"), ("code", "http://loinc.org|8867-4"), ("date", "ge2024-03-01")]) == ["o1"]
    assert ids("Observation", [("value-quantity", "gt70")]) == ["o1"]
    assert ids("Observation", [("code", "http://loinc.org|2339-0")]) == []
    bundle = repo.search(parse_search("Observation", [("_id", "o1"), ("_include", "Observation:patient")]))
    assert [r["id"] for r in bundle.included] == ["p1"]
    # a write after the upgrade indexes with parameter ids beside the carried-over rows
    repo.update({"resourceType": "Patient", "id": "p2", "name": [{"family": "Mulligan"}]})
    assert sorted(ids("Patient", [("family", "mul")])) == ["p1", "p2"]


def test_sqlite_schema_2_database_upgrades(tmp_path, samples: dict[str, dict]) -> None:
    from adapters.storage.sqlite import SQLiteRepository

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for sql, params in _old_layout("sqlite", samples):
        conn.execute(sql, params)
    conn.execute("COMMIT")
    conn.close()
    repo = SQLiteRepository(f"sqlite:///{path}")
    try:
        assert repo.schema_version() == 3
        kinds = dict(repo._connection().execute("SELECT DISTINCT typeof(param), 1 FROM idx_token").fetchall())
        assert kinds == {"integer": 1}
        _assert_found(repo)
    finally:
        repo.close()


@pytest.mark.postgres
def test_postgresql_schema_2_database_upgrades(samples: dict[str, dict]) -> None:
    if not PG_URL:
        pytest.skip("needs PULSEBRIDGE_TEST_PG (e.g. postgresql://127.0.0.1:5432/test)")
    import psycopg
    from psycopg import sql

    from adapters.storage.postgresql import PostgreSQLRepository

    schema = f"pb_upgrade_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        with conn.transaction():
            for statement, params in _old_layout("postgresql", samples):
                if params:
                    conn.execute(statement.replace("?", "%s").encode(), params)
                else:  # DDL: no placeholders (0002 has a LIKE '%...' pattern)
                    conn.execute(statement.encode())
    repo = PostgreSQLRepository(PG_URL, schema=schema)
    try:
        assert repo.schema_version() == 3
        _assert_found(repo)
    finally:
        repo.close()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
