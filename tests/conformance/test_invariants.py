"""conformance.invariants: R4 invariants the models do not enforce (keys and texts from the R4 definitions)."""
from __future__ import annotations

import pytest

from conformance.invariants import compare_date_times
from conformance.validation import validate_resource


def _rules(resource):
    return {(issue.rule, issue.expression) for issue in validate_resource(resource) if issue.rule and "-" in issue.rule}


OBS = {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org",
                                                                              "code": "85354-9"}]}}


def test_obs_6_data_absent_reason_only_without_value():
    assert _rules({**OBS, "valueString": "x", "dataAbsentReason": {"text": "lost"}}) \
        == {("obs-6", "Observation.dataAbsentReason")}
    component = {"code": {"text": "a"}, "valueString": "x", "dataAbsentReason": {"text": "lost"}}
    assert _rules({**OBS, "component": [component]}) == {("obs-6", "Observation.component[0].dataAbsentReason")}
    assert _rules({**OBS, "dataAbsentReason": {"text": "lost"}}) == set()


def test_obs_7_component_code_equal_to_observation_code_with_a_value():
    component = {"code": OBS["code"], "valueString": "y"}
    assert _rules({**OBS, "valueString": "x", "component": [component]}) == {("obs-7", "Observation.component[0].code")}
    assert _rules({**OBS, "component": [component]}) == set()


def test_obs_3_reference_range_needs_content():
    assert _rules({**OBS, "referenceRange": [{"type": {"text": "normal"}}]}) == {("obs-3", "Observation.referenceRange[0]")}


@pytest.mark.parametrize("period, broken", [
    ({"start": "2024-05-02", "end": "2024-05-01"}, True),
    ({"start": "2024-05-01T10:00:00+08:00", "end": "2024-05-01T03:00:00Z"}, False),  # same instant
    ({"start": "2024-05-01T10:00:00+08:00", "end": "2024-05-01T01:59:59Z"}, True),
    ({"start": "2024-05", "end": "2024-05-01"}, False),                                # incomparable precision
    ({"start": "2025", "end": "2024-12-31T23:00:00Z"}, True),
])
def test_per_1_start_not_after_end(period, broken):
    encounter = {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}, "period": period}
    assert _rules(encounter) == ({("per-1", "Encounter.period")} if broken else set())


def test_compare_date_times():
    assert compare_date_times("2024-05-01", "2024-05-01T00:00:00Z") is None
    assert compare_date_times("2024", "2025-01") == -1
    assert compare_date_times("2024-05-01T08:00:00+08:00", "2024-05-01T00:00:00Z") == 0
    assert compare_date_times("not a date", "2024") is None


def test_datatype_invariants_wherever_the_type_occurs():
    patient = {"resourceType": "Patient",
               "telecom": [{"value": "13800000000"}],
               "contact": [{"relationship": [{"text": "mother"}]},
                           {"telecom": [{"value": "x@example.org"}]}],
               "photo": [{"data": "aGVsbG8="}],
               "extension": [{"url": "http://example.org/a", "valueString": "x",
                              "extension": [{"url": "b", "valueString": "y"}]}]}
    assert _rules(patient) == {
        ("cpt-2", "Patient.telecom[0]"), ("cpt-2", "Patient.contact[1].telecom[0]"), ("pat-1", "Patient.contact[0]"),
        ("att-1", "Patient.photo[0]"), ("ext-1", "Patient.extension[0]")}


def test_qty_3_and_rng_2():
    observation = {**OBS, "valueQuantity": {"value": 5, "code": "mmol/L"},
                   "referenceRange": [{"low": {"value": 6, "unit": "mmol/L"}, "high": {"value": 3, "unit": "mmol/L"}}]}
    assert _rules(observation) == {("qty-3", "Observation.valueQuantity")}
    observation = {**OBS, "valueRange": {"low": {"value": 6, "unit": "mmol/L"}, "high": {"value": 3, "unit": "mmol/L"}}}
    assert _rules(observation) == {("rng-2", "Observation.valueRange")}


def test_allergy_and_condition_status_rules():
    verification = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
    clinical = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                            "code": "active"}]}
    base = {"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p"}}
    assert _rules(base) == {("ait-1", "AllergyIntolerance")}
    assert _rules({**base, "clinicalStatus": clinical,
                   "verificationStatus": {"coding": [{"system": verification, "code": "entered-in-error"}]}}) \
        == {("ait-2", "AllergyIntolerance.clinicalStatus")}
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/p"},
                 "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                "code": "active"}]},
                 "abatementDateTime": "2024-01-01"}
    assert _rules(condition) == {("con-4", "Condition.clinicalStatus")}
    problem = {"resourceType": "Condition", "subject": {"reference": "Patient/p"}, "category": [{"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}]}]}
    issues = [issue for issue in validate_resource(problem) if issue.rule == "con-3"]
    assert [(issue.severity, issue.expression) for issue in issues] == [("warning", "Condition")]


def test_appointment_start_and_end():
    appointment = {"resourceType": "Appointment", "status": "booked", "start": "2024-05-01T09:00:00+08:00",
                   "participant": [{"actor": {"reference": "Patient/p"}, "status": "accepted"}]}
    assert _rules(appointment) == {("app-2", "Appointment"), ("app-3", "Appointment")}
    appointment = {**appointment, "status": "proposed"}
    del appointment["start"]
    assert _rules(appointment) == set()


def test_contained_resource_rules_dom_2_to_dom_5():
    observation = {**OBS, "subject": {"reference": "#p"}, "contained": [
        {"resourceType": "Patient", "id": "p", "meta": {"versionId": "1", "security": [{"code": "R"}]},
         "contained": [{"resourceType": "Organization", "id": "o"}]},
        {"resourceType": "Practitioner", "id": "unused"},
    ]}
    assert _rules(observation) >= {
        ("dom-2", "Observation.contained[0].contained"), ("dom-4", "Observation.contained[0].meta"),
        ("dom-5", "Observation.contained[0].meta.security"), ("dom-3", "Observation.contained[1]")}


def test_dom_3_accepts_a_contained_resource_that_refers_to_its_container_or_is_named_by_a_uri():
    observation = {**OBS, "contained": [
        {"resourceType": "Provenance", "id": "prov", "recorded": "2024-05-01T10:00:00Z",
         "target": [{"reference": "#"}], "agent": [{"who": {"display": "lab"}}]},
        {"resourceType": "Patient", "id": "p"}],
        "extension": [{"url": "http://example.org/source", "valueUri": "#p"}]}
    assert {rule for rule, _ in _rules(observation)} == set()
