"""SQLite search plans do not depend on planner statistics (no ANALYZE after a bulk load).

Without sqlite_stat1, SQLite prefers the index with the most equality columns; the search SQL
guides it (adapters.storage.sql._Sql) so Observation?patient=&code=&date= starts from the
patient's reference rows and probes the other filters per resource, instead of scanning every
Observation. These are plan assertions (EXPLAIN QUERY PLAN), not timings.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.storage.base import BundleEntryRequest
from adapters.storage.query import parse_search
from adapters.storage.sqlite import SQLiteRepository

PATIENTS = 40
PER_PATIENT = 100
CODES = ("8867-4", "8480-6", "8462-4", "2339-0", "718-7")


def _observation(n: int, i: int) -> dict:
    return {
        "resourceType": "Observation", "id": f"obs-{n}-{i}", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": CODES[i % len(CODES)]}]},
        "subject": {"reference": f"Patient/pat-{n}"},
        "effectiveDateTime": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T08:00:00Z",
        "valueQuantity": {"value": i, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }


@pytest.fixture(scope="module")
def bulk_loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteRepository]:
    repo = SQLiteRepository(f"sqlite:///{tmp_path_factory.mktemp('plan') / 'store.db'}")
    for n in range(PATIENTS):
        entries = [BundleEntryRequest("PUT", f"Patient/pat-{n}", {"resourceType": "Patient", "id": f"pat-{n}"})]
        entries += [
            BundleEntryRequest("PUT", f"Observation/obs-{n}-{i}", _observation(n, i)) for i in range(PER_PATIENT)
        ]
        repo.transaction(entries)
    yield repo
    repo.close()


def _plan(repo: SQLiteRepository, sql: str, params: list) -> list[str]:
    return [row[3] for row in repo._connection().execute("EXPLAIN QUERY PLAN " + sql, params)]


def _query():
    return parse_search("Observation", [
        ("patient", "Patient/pat-7"), ("code", "http://loinc.org|8480-6"),
        ("date", "ge2024-03-01"), ("date", "lt2024-07-01"),
    ])


def test_store_has_no_statistics(bulk_loaded: SQLiteRepository) -> None:
    conn = bulk_loaded._connection()
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "sqlite_stat1" not in tables or conn.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0] == 0


@pytest.mark.parametrize("statement", ["page_sql", "count_sql"])
def test_patient_code_date_search_starts_from_the_reference_index(
    bulk_loaded: SQLiteRepository, statement: str
) -> None:
    plan = _plan(bulk_loaded, *getattr(bulk_loaded, statement)(_query()))
    assert not [step for step in plan if step.startswith("SCAN")], plan
    assert "SEARCH r USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    assert any(s.startswith("SEARCH x0 USING INDEX idx_reference_value (param=? AND") for s in plan), plan
    probes = [s for s in plan if s.startswith("SEARCH x") and not s.startswith("SEARCH x0")]
    assert probes and all("_rid (rid=? AND param=?)" in s for s in probes), plan
    assert not [s for s in plan if "sqlite_autoindex_resources_1 (resource_type=?)" in s], plan


def test_a_token_only_search_reads_the_token_value_index(bulk_loaded: SQLiteRepository) -> None:
    query = parse_search("Observation", [("code", "http://loinc.org|718-7"), ("status", "final")])
    plan = _plan(bulk_loaded, *bulk_loaded.page_sql(query))
    assert not [step for step in plan if step.startswith("SCAN")], plan
    assert any("idx_token_value (param=? AND code=?" in s for s in plan), plan


def test_the_guided_plan_finds_exactly_the_matches(bulk_loaded: SQLiteRepository) -> None:
    result = bulk_loaded.search(_query())
    expected = {
        f"obs-7-{i}" for i in range(PER_PATIENT)
        if CODES[i % len(CODES)] == "8480-6" and 3 <= 1 + i % 12 < 7
    }
    assert expected and {m["id"] for m in result.matches} == expected and result.total == len(expected)
