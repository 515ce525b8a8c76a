"""Index rows from real-shaped resources (R4 search.html#ptypes), the FHIRPath subset and date ranges."""
from __future__ import annotations

import pytest

from adapters.storage.dates import MAX_INSTANT, InvalidDate, date_range, format_instant
from adapters.storage.fhirpath import AsType, Child, FieldEquals, ResolvesTo, evaluate, parse, reference_type
from adapters.storage.indexing import index_resource, normalise, reference_view
from adapters.storage.search_parameters import parameter, parameters, resource_types, summary_elements


def rows_of(rows: list[tuple], key: str) -> list[tuple]:
    return [r[1:] for r in rows if r[0] == key]


def test_parse_covers_the_subset() -> None:
    assert parse("(Observation.value as CodeableConcept).text") == (
        (Child("value"), AsType("CodeableConcept"), Child("text")),
    )
    assert parse("Observation.subject.where(resolve() is Patient) | Observation.focus") == (
        (Child("subject"), ResolvesTo("Patient")), (Child("focus"),)
    )
    assert parse("Patient.telecom.where(system='email')") == ((Child("telecom"), FieldEquals("system", "email")),)
    assert parse("Condition.onset.as(dateTime)") == ((Child("onset"), AsType("dateTime")),)


def test_evaluate_choice_and_resolve(samples: dict) -> None:
    obs = {**samples["heart_rate"], "subject": {"reference": "Patient/p1"}}
    nodes = evaluate(parse("(Observation.value as Quantity)"), obs)
    assert [n.value["value"] for n in nodes] == [72] and nodes[0].fhir_type == "Quantity"
    assert evaluate(parse("(Observation.value as CodeableConcept)"), obs) == []
    assert len(evaluate(parse("Observation.subject.where(resolve() is Patient)"), obs)) == 1
    assert evaluate(parse("Observation.subject.where(resolve() is Group)"), obs) == []


def test_reference_type_forms() -> None:
    assert reference_type("Patient/1") == "Patient"
    assert reference_type("https://h.example/fhir/Patient/1/_history/3") == "Patient"
    assert reference_type("#med1", {"contained": [{"resourceType": "Medication", "id": "med1"}]}) == "Medication"
    assert reference_type("urn:uuid:0c3e5b84-0000-4000-8000-000000000000") is None


def test_date_ranges_follow_precision_and_offsets() -> None:
    low, high = date_range("2024")
    assert format_instant(low) == "2024-01-01T00:00:00.000Z" and format_instant(high) == "2024-12-31T23:59:59.999Z"
    low, high = date_range("2024-02")
    assert format_instant(high) == "2024-02-29T23:59:59.999Z"
    low, high = date_range("2024-03-05T10:00:00+08:00")
    assert format_instant(low) == "2024-03-05T02:00:00.000Z" and high - low == 999_999
    low, high = date_range("2024-03-05T10:00:00.25Z")
    assert high - low == 9_999
    assert date_range("2024-03-05T10:00:00") == date_range("2024-03-05T10:00:00Z")  # no offset: UTC
    with pytest.raises(InvalidDate):
        date_range("05/03/2024")


def test_normalise_folds_case_and_accents() -> None:
    assert normalise("Müller") == "muller"
    assert normalise("GARCÍA") == "garcia"
    assert normalise("Straße") == "strasse"
    assert normalise("张伟") == "张伟"


def test_patient_rows(samples: dict) -> None:
    rows = index_resource({**samples["patient_mueller"], "id": "p1"})
    assert sorted(rows_of(rows.string, "Patient.name")) == sorted(
        [("muller", "Müller"), ("hans", "Hans"), ("peter", "Peter")]
    )
    assert rows_of(rows.token, "Patient.identifier") == [
        ("urn:oid:1.2.36.146.595.217.0.1", "MRN-1001", "medical record number")
    ]
    assert rows_of(rows.token, "Patient.email") == [("email", "hans@example.org", None)]
    assert rows_of(rows.token, "Patient.phone") == [("phone", "+49 30 1234", None)]
    assert rows_of(rows.token, "Patient.active") == [(None, "true", None)]
    assert rows_of(rows.reference, "Patient.organization") == [("Organization", "org-charite", None)]
    assert rows_of(rows.string, "Patient.address-city") == [("berlin", "Berlin")]
    (low, high), = rows_of(rows.date, "Patient.birthdate")
    assert format_instant(low) == "1970-05-02T00:00:00.000Z" and format_instant(high) == "1970-05-02T23:59:59.999Z"


def test_observation_rows(samples: dict) -> None:
    obs = {**samples["glucose"], "subject": {"reference": "https://other.example/fhir/Patient/p9/_history/2"},
           "meta": {"lastUpdated": "2024-03-06T10:00:00.000Z", "tag": [{"system": "urn:t", "code": "x"}]}}
    rows = index_resource(obs)
    assert rows_of(rows.token, "Observation.code") == [("http://loinc.org", "2339-0", "glucose [mass/volume] in blood")]
    assert rows_of(rows.reference, "Observation.subject") == [
        ("Patient", "p9", "https://other.example/fhir/Patient/p9")
    ]
    assert rows_of(rows.reference, "Observation.patient") == []  # patient reads subject rows (reference_view)
    assert reference_view("Observation", "patient") == ("Observation.subject", "Patient")
    (low, high), = rows_of(rows.date, "Observation.date")
    assert format_instant(low) == "2024-03-06T08:00:00.000Z" and format_instant(high) == "2024-03-06T09:00:00.999Z"
    assert rows_of(rows.quantity, "Observation.value-quantity") == [
        (5.4, 5.4, "http://unitsofmeasure.org", "mmol/L", "mmol/L")
    ]
    assert rows_of(rows.token, "Observation._tag") == [("urn:t", "x", None)]
    assert rows_of(rows.date, "Observation._lastUpdated") == []  # answered by resources.last_updated
    assert rows_of(rows.token, "Observation.value-concept") == []


def test_open_period_timing_comparator_and_contained() -> None:
    encounter = {"resourceType": "Encounter", "status": "in-progress", "period": {"start": "2024-03-01"}}
    (low, high), = rows_of(index_resource(encounter).date, "Encounter.date")
    assert high == MAX_INSTANT and format_instant(low) == "2024-03-01T00:00:00.000Z"
    request = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
               "medicationReference": {"reference": "#m1"},
               "contained": [{"resourceType": "Medication", "id": "m1"}],
               "subject": {"reference": "Patient/p1"},
               "dosageInstruction": [{"timing": {"event": ["2024-03-01T08:00:00Z", "2024-03-03T08:00:00Z"]}}]}
    rows = index_resource(request)
    assert rows_of(rows.reference, "MedicationRequest.medication") == [("Medication", "#m1", None)]
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "eGFR"},
           "valueQuantity": {"value": 60, "comparator": ">", "unit": "mL/min"}}
    (row,) = rows_of(index_resource(obs).quantity, "Observation.value-quantity")
    assert row[0] == 60 and row[1] == float("inf")
    assert rows_of(index_resource(obs).token, "Observation.code") == [(None, None, "egfr")]


def test_search_parameter_data_is_complete() -> None:
    types = resource_types()
    for wanted in ("Patient", "Observation", "Provenance", "ClinicalImpression", "Slot", "Account"):
        assert wanted in types
    assert parameter("Observation", "patient").targets == ("Group", "Patient")
    assert parameter("Observation", "date").element_types == (("dateTime", "Period", "Timing", "instant"),)
    assert {"_id", "_lastUpdated"} <= set(parameters("Encounter"))
    assert parameter("Patient", "name").expression == "Patient.name"
    assert parameter("Resource", "_id") is None
    assert "value[x]" in summary_elements("Observation")
    # every indexed expression parses and names the resource it belongs to
    for resource_type in types:
        for param in parameters(resource_type).values():
            assert param.branches, param.key
