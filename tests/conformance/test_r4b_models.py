"""conformance.r4b_models: the fhir.resources R4B pass and its error locations."""
from __future__ import annotations

from conformance.r4b_models import location_expression, model_class, model_issues


def test_location_expression():
    assert location_expression("Patient", ("name", 0, "given", 1)) == "Patient.name[0].given[1]"
    assert location_expression("Bundle.entry[2].resource", ("_birthDate", "root")) == "Bundle.entry[2].resource.birthDate"
    assert location_expression("Encounter", ("class", "code")) == "Encounter.class.code"


def test_model_issues_are_located_per_bundle_entry():
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "ok"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "effectiveDateTime": "2024-13"}},
    ]}
    issues = model_issues(bundle, "Bundle")
    assert [issue.expression for issue in issues] == ["Bundle.entry[1].resource.effectiveDateTime"]


def test_r4_only_types_have_no_r4b_model_and_are_skipped():
    assert model_class("MedicinalProduct") is None
    assert model_issues({"resourceType": "MedicinalProduct", "bogus": 1}, "MedicinalProduct") == []


def test_r4_authoritative_errors_are_left_to_the_r4_walk():
    # extra_forbidden, missing and string_pattern_mismatch: judged against the R4 definitions instead.
    assert model_issues({"resourceType": "Observation", "nickname": "x", "status": "final "}, "Observation") == []
