"""The compiled indexer agrees with the FHIRPath interpreter, and union parameters share rows.

index_resource walks compiled closures and writes the rows of a union parameter such as
Observation combo-code (= code | component-code, R4 observation.html#search) only under its
parts' keys; searches on the union read those keys, on every backend.
"""
from __future__ import annotations

from adapters.storage.base import Repository
from adapters.storage.indexing import RESOURCE_COLUMNS, IndexRows, index_parameter, index_resource, stored_keys
from adapters.storage.query import parse_search
from adapters.storage.search_parameters import parameters

BLOOD_PRESSURE = {
    "resourceType": "Observation", "id": "bp", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]},
    "subject": {"reference": "Patient/p1"},
    "effectivePeriod": {"start": "2024-03-05T10:00:00Z"},
    "component": [
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
         "valueQuantity": {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
         "valueQuantity": {"value": 80, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
    ],
    "meta": {"lastUpdated": "2024-03-05T10:00:01.000Z", "tag": [{"system": "urn:t", "code": "x"}]},
}


def _rows(rows: IndexRows) -> set[tuple]:
    return {(table, *row) for table, table_rows in rows.tables().items() for row in table_rows}


def _interpreted(resource: dict) -> set[tuple]:
    """The rows the FHIRPath interpreter gives for every parameter index_resource writes itself."""
    rows = IndexRows()
    for param in parameters(resource["resourceType"]).values():
        if param.name not in RESOURCE_COLUMNS and stored_keys(resource["resourceType"], param.name) == (param.key,):
            index_parameter(param, resource, rows)
    return _rows(rows)


def test_compiled_rows_equal_interpreted_rows(samples: dict) -> None:
    resources = [{**r, "id": name} for name, r in samples.items()] + [BLOOD_PRESSURE]
    for resource in resources:
        assert _rows(index_resource(resource)) == _interpreted(resource), resource["id"]


def test_union_parameters_are_answered_by_their_parts() -> None:
    assert stored_keys("Observation", "combo-code") == ("Observation.code", "Observation.component-code")
    assert stored_keys("Observation", "combo-value-quantity") == (
        "Observation.component-value-quantity", "Observation.value-quantity"
    )
    assert stored_keys("Observation", "code") == ("Observation.code",)
    assert stored_keys("Patient", "phonetic") == ("Patient.phonetic",)  # same expression as name: not a union
    keys = {row[0] for table_rows in index_resource(BLOOD_PRESSURE).tables().values() for row in table_rows}
    assert "Observation.combo-code" not in keys and {"Observation.code", "Observation.component-code"} <= keys


def test_union_parameter_search_on_every_backend(repo: Repository, samples: dict) -> None:
    repo.update(BLOOD_PRESSURE)
    repo.update({**samples["glucose"], "id": "glu", "subject": {"reference": "Patient/p1"}})

    def ids(*params: tuple[str, str]) -> list[str]:
        return sorted(m["id"] for m in repo.search(parse_search("Observation", list(params))).matches)

    assert ids(("combo-code", "http://loinc.org|8480-6")) == ["bp"]  # a component's code
    assert ids(("combo-code", "http://loinc.org|85354-9")) == ["bp"]  # the observation's own code
    assert ids(("combo-code", "2339-0")) == ["glu"]
    assert ids(("code", "8480-6")) == []
    assert ids(("combo-value-quantity", "gt100|http://unitsofmeasure.org|mm[Hg]")) == ["bp"]
    assert ids(("combo-value-quantity", "5.4")) == ["glu"]
    assert ids(("combo-code:not", "2339-0")) == ["bp"]
    assert ids(("combo-value-quantity:missing", "true")) == []
    ordered = repo.search(parse_search("Observation", [("_sort", "-combo-code")])).matches
    assert [m["id"] for m in ordered] == ["bp", "glu"]  # descending: each resource's highest code, as text


SHAPES = [
    {"resourceType": "Observation", "id": "s1", "status": "final", "code": {"text": "Mood"},
     "meta": {"versionId": "2", "lastUpdated": "2024-03-05T10:00:01.000Z", "profile": ["http://example.org/p"],
              "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
              "source": "urn:oid:1.2.3"},
     "valueString": "Cheerful", "subject": {"reference": "http://example.org/fhir/Patient/p9/_history/3"},
     "effectivePeriod": {"start": "2024-03-05", "end": "2024-03-05T10:00:00.250Z"},
     "performer": [{"reference": "pr1", "type": "Practitioner"}, {"reference": "Practitioner/pr2"}]},
    {"resourceType": "Observation", "id": "s2", "status": "amended", "meta": {"versionId": "1"},
     "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "260385009"}], "text": "Negative"},
     "component": [{"code": {"coding": [{"code": "a"}]}, "valueCodeableConcept": {"text": "x"}},
                   {"code": {"coding": [{"code": "b"}]}, "valueQuantity": {"value": 3, "comparator": "<"}}]},
    {"resourceType": "Patient", "id": "s3", "meta": {"lastUpdated": "2024-03-05T10:00:01.000Z", "tag": [{"code": "t"}]},
     "name": [{"family": "Ärzteschaft", "given": ["Zoë"]}], "birthDate": "1970",
     "telecom": [{"system": "email", "value": "z@example.org"}]},
]


def test_compiled_rows_equal_interpreted_rows_for_other_shapes() -> None:
    """Elements whose indexed children are absent, choice names under as-type steps, references of every form."""
    for resource in SHAPES:
        interpreted = _interpreted(resource)
        assert _rows(index_resource(resource)) == interpreted, resource["id"]
        ids = {p.key: n for n, p in enumerate(parameters(resource["resourceType"]).values(), start=1)}
        by_id = {(table, ids[key], *rest) for table, key, *rest in interpreted}
        assert _rows(index_resource(resource, ids)) == by_id, resource["id"]
