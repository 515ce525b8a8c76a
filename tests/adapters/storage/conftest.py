"""Fixtures for the storage contract suite: one `repo` per backend, and hand-written R4 resources."""
from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Iterator

import pytest

from adapters.storage.base import Repository

PG_URL = os.environ.get("PULSEBRIDGE_TEST_PG")
PG_TABLES = "resources, versions, idx_token, idx_string, idx_date, idx_reference, idx_quantity, idx_number, idx_uri"


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    """A schema unique to this test session, dropped at the end, so parallel runs do not collide."""
    import psycopg
    from psycopg import sql

    name = f"pb_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(PG_URL, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def repo(request: pytest.FixtureRequest, tmp_path) -> Iterator[Repository]:
    if request.param == "memory":
        from adapters.storage.memory import MemoryRepository

        store: Repository = MemoryRepository()
    elif request.param == "sqlite":
        from adapters.storage.sqlite import SQLiteRepository

        store = SQLiteRepository(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL contract tests need PULSEBRIDGE_TEST_PG (e.g. postgresql://127.0.0.1:5432/test)")
        from adapters.storage.postgresql import PostgreSQLRepository

        schema = request.getfixturevalue("pg_schema")
        store = PostgreSQLRepository(PG_URL, schema=schema)
        store._connection().execute(f"TRUNCATE {PG_TABLES} RESTART IDENTITY")
    yield store
    store.close()


_SAMPLES: dict[str, dict] = {
    "patient_mueller": {
        "resourceType": "Patient",
        "identifier": [
            {"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "MRN-1001", "type": {"text": "Medical record number"}}
        ],
        "active": True,
        "name": [{"use": "official", "family": "Müller", "given": ["Hans", "Peter"]}],
        "telecom": [{"system": "email", "value": "hans@example.org"}, {"system": "phone", "value": "+49 30 1234"}],
        "gender": "male",
        "birthDate": "1970-05-02",
        "address": [{"line": ["Hauptstraße 5"], "city": "Berlin", "postalCode": "10115", "country": "DE"}],
        "managingOrganization": {"reference": "Organization/org-charite"},
    },
    "patient_zhang": {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": "11010519491231002X"}],
        "active": False,
        "name": [{"text": "张伟", "family": "张", "given": ["伟"]}],
        "gender": "male",
        "birthDate": "1949-12-31",
        "address": [{"city": "北京", "country": "CN"}],
    },
    "patient_garcia": {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "MRN-1002"}],
        "name": [{"family": "García", "given": ["María José"]}],
        "gender": "female",
        "birthDate": "1985",
    },
    "org_charite": {
        "resourceType": "Organization",
        "id": "org-charite",
        "name": "Charité Universitätsmedizin",
        "identifier": [{"system": "http://example.org/org", "value": "CH"}],
    },
    "heart_rate": {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}], "text": "Pulse"},
        "effectiveDateTime": "2024-03-05T10:00:00+08:00",
        "valueQuantity": {"value": 72, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"},
    },
    "glucose": {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose [Mass/volume] in Blood"}]},
        "effectivePeriod": {"start": "2024-03-06T08:00:00Z", "end": "2024-03-06T09:00:00Z"},
        "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "N"}]}],
    },
    "encounter": {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "period": {"start": "2024-03-01T08:00:00+01:00", "end": "2024-03-07T12:00:00+01:00"},
        "serviceProvider": {"reference": "Organization/org-charite"},
    },
}


@pytest.fixture
def samples() -> dict[str, dict]:
    """Fresh copies of realistic R4 resources (hand-written after the spec's examples)."""
    return copy.deepcopy(_SAMPLES)
