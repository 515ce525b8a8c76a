"""parse_search: R4 search.html syntax to SearchQuery, and 400s that name the parameter."""
from __future__ import annotations

import pytest

from adapters import storage
from adapters.storage.base import InvalidSearch
from adapters.storage.query import IncludeSpec, SearchValue, SortKey, parse_search


def test_prefixes_modifiers_and_values() -> None:
    q = parse_search("Observation", [("date", "ge2024-01-01,lt2023"), ("code:not", "http://loinc.org|8867-4"),
                                     ("value-quantity", "5.4|http://unitsofmeasure.org|mg"), ("_format", "json"),
                                     ("status", "")])
    date, code, quantity = q.filters
    assert date.values == (SearchValue("2024-01-01", "ge"), SearchValue("2023", "lt"))
    assert code.modifier == "not" and code.param_type == "token"
    assert quantity.values == (SearchValue("5.4|http://unitsofmeasure.org|mg", "eq"),)
    assert len(q.filters) == 3  # _format ignored, empty value ignored


def test_escaped_comma_and_string_prefix_is_not_a_prefix() -> None:
    q = parse_search("Patient", [("family", "ge\\,ne"), ("name", "eberhard")])
    assert q.filters[0].values == (SearchValue("ge,ne"),)
    assert q.filters[1].values == (SearchValue("eberhard"),)


def test_chains_and_reference_types() -> None:
    q = parse_search("Observation", [("subject:Patient.identifier", "urn:mrn|1"), ("patient.organization.name", "x")])
    first, second = q.filters
    assert (first.name, first.target_type, first.chain) == ("subject", "Patient", ("identifier",))
    assert (second.name, second.target_type, second.chain) == ("patient", None, ("organization", "name"))


def test_result_parameters() -> None:
    q = parse_search("Observation", [
        ("_sort", "-date,code"), ("_count", "5000"), ("_offset", "20"), ("_include", "Observation:patient"),
        ("_include:iterate", "Patient:organization:Organization"), ("_revinclude", "Provenance:target"),
        ("_summary", "count"), ("_elements", "status, code"), ("_total", "none"),
    ])
    assert q.sort == (SortKey("date", True), SortKey("code"))
    assert q.count == 1000 and q.offset == 20
    assert q.include == (IncludeSpec("Observation", "patient"), IncludeSpec("Patient", "organization", "Organization", True))
    assert q.revinclude == (IncludeSpec("Provenance", "target"),)
    assert (q.summary, q.elements, q.total) == ("count", ("status", "code"), "none")


@pytest.mark.parametrize(
    ("pairs", "named"),
    [
        ([("shoe-size", "42")], "shoe-size"),
        ([("date", "2024-13-45")], "date"),
        ([("date", "yesterday")], "date"),
        ([("value-quantity", "lots")], "value-quantity"),
        ([("code:exact", "x")], "code:exact"),
        ([("value-string:below", "x")], "value-string:below"),
        ([("status:missing", "maybe")], "status:missing"),
        ([("_count", "ten")], "_count"),
        ([("_offset", "-1")], "_offset"),
        ([("_sort", "colour")], "_sort"),
        ([("_include", "Observation:code")], "_include"),
        ([("_summary", "short")], "_summary"),
        ([("_total", "all")], "_total"),
        ([("code.name", "x")], "code"),
        ([("subject:Patient.shoe", "x")], "subject"),
        ([("patient.birthdate", "notadate")], "birthdate"),
        ([("subject:Medication", "1")], "subject:Medication"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(pairs: list[tuple[str, str]], named: str) -> None:
    with pytest.raises(InvalidSearch) as err:
        parse_search("Observation", pairs)
    assert err.value.http_status == 400
    assert named in str(err.value)


def test_unsupported_type() -> None:
    with pytest.raises(InvalidSearch, match="Basic"):
        parse_search("Basic", [])


def test_open_repository_by_scheme(tmp_path) -> None:
    from adapters.storage.memory import MemoryRepository
    from adapters.storage.sqlite import SQLiteRepository

    assert isinstance(storage.open_repository("memory://"), MemoryRepository)
    from adapters.storage.sql import migration_files

    latest = migration_files("sqlite")[-1][0]
    repo = storage.open_repository(f"sqlite:///{tmp_path / 'x.db'}")
    assert isinstance(repo, SQLiteRepository) and repo.schema_version() == latest >= 2
    repo.close()
    again = SQLiteRepository(f"sqlite:///{tmp_path / 'x.db'}")  # reopening does not re-run migrations
    assert again.schema_version() == latest
    again.close()
    memory = storage.open_repository("sqlite://")
    assert isinstance(memory, SQLiteRepository) and memory.memory
    memory.close()
    with pytest.raises(ValueError, match="mysql"):
        storage.open_repository("mysql://localhost/db")
