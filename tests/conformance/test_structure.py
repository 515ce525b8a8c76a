"""conformance.structure: the R4 walk (json.html empty values, element names, cardinality, primitive formats)."""
from __future__ import annotations

import pytest

from conformance.validation import validate_resource


def _found(resource, **options):
    return {(issue.code, issue.expression) for issue in validate_resource(resource, **options) if issue.is_error}


@pytest.mark.parametrize("value, expression", [
    ({"name": [{"family": ""}]}, "Patient.name[0].family"),           # empty string
    ({"name": [{}]}, "Patient.name[0]"),                               # empty object
    ({"name": []}, "Patient.name"),                                     # empty array
    ({"name": [{"given": []}]}, "Patient.name[0].given"),
    ({"name": [{"given": ["A", None]}]}, "Patient.name[0].given[1]"),  # null not paired with _given
    ({"gender": None}, "Patient.gender"),                               # null
    ({"maritalStatus": {"id": "x"}}, "Patient.maritalStatus"),          # only an id: ele-1
])
def test_empty_elements_and_arrays_are_errors(value, expression):
    issues = validate_resource({"resourceType": "Patient", **value})
    assert expression in {issue.expression for issue in issues if issue.is_error}
    assert any(issue.rule == "ele-1" for issue in issues)


def test_null_in_a_primitive_array_paired_with_its_extension_is_valid():
    patient = {"resourceType": "Patient", "name": [{"given": ["A", None],
                                                    "_given": [None, {"extension": [{"url": "http://x.org/e",
                                                                                     "valueString": "B"}]}]}]}
    assert validate_resource(patient) == []


def test_a_resource_with_only_a_resource_type_is_empty():
    assert ("structure", "Patient") in _found({"resourceType": "Patient"})


def test_unknown_element_and_primitive_extension_of_a_complex_element():
    found = _found({"resourceType": "Patient", "nickname": "Bob", "_name": {"id": "a"}})
    assert ("structure", "Patient.nickname") in found
    assert ("structure", "Patient.name") in found


def test_array_and_single_cardinality():
    found = _found({"resourceType": "Patient", "name": {"family": "X"}, "gender": ["male"]})
    assert {("structure", "Patient.name"), ("structure", "Patient.gender")} <= found


def test_missing_required_elements_including_choice_and_backbone():
    found = _found({"resourceType": "Observation", "code": {"text": "x"},
                    "component": [{"valueString": "a"}]}, models=False)
    assert found == {("required", "Observation.status"), ("required", "Observation.component[0].code")}
    found = _found({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                    "subject": {"reference": "Patient/p"}}, models=False)
    assert found == {("required", "MedicationRequest.medication[x]")}


def test_two_values_of_one_choice_element():
    found = _found({"resourceType": "Patient", "deceasedBoolean": True, "deceasedDateTime": "2020-01-01"},
                   models=False)
    assert found == {("structure", "Patient.deceasedDateTime")}


@pytest.mark.parametrize("resource, expression", [
    ({"resourceType": "Patient", "id": "a b"}, "Patient.id"),
    ({"resourceType": "Patient", "id": "x" * 65}, "Patient.id"),
    ({"resourceType": "Patient", "id": "p", "meta": {"lastUpdated": "2024-05-01"}}, "Patient.meta.lastUpdated"),
    ({"resourceType": "Patient", "birthDate": "2024-02-30T"}, "Patient.birthDate"),
    ({"resourceType": "Patient", "birthDate": "1990-3-7"}, "Patient.birthDate"),
    ({"resourceType": "Patient", "deceasedDateTime": "2024-05-01T08:30:00"}, "Patient.deceasedDateTime"),  # no zone
    ({"resourceType": "Patient", "gender": "male "}, "Patient.gender"),                       # code whitespace
    ({"resourceType": "Patient", "active": "true"}, "Patient.active"),                        # JSON type
    ({"resourceType": "Patient", "multipleBirthInteger": "2"}, "Patient.multipleBirthInteger"),
    ({"resourceType": "Patient", "multipleBirthInteger": 2**31}, "Patient.multipleBirthInteger"),
    ({"resourceType": "Patient", "photo": [{"size": -1}]}, "Patient.photo[0].size"),          # unsignedInt
    ({"resourceType": "Patient", "identifier": [{"system": "urn:uuid:NOT-A-UUID", "value": "1"}]}, None),
    ({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueTime": "25:00:00"},
     "Observation.valueTime"),
])
def test_primitive_formats(resource, expression):
    found = {e for _, e in _found(resource, models=False)}
    assert found == ({expression} if expression else set())


def test_a_valid_instant_and_datetime_with_offset():
    patient = {"resourceType": "Patient", "id": "p", "meta": {"lastUpdated": "2024-05-01T08:30:00.123+08:00"},
               "deceasedDateTime": "2024-05-01T08:30:00+08:00", "birthDate": "1990"}
    assert validate_resource(patient) == []


def test_unknown_and_r4b_only_resource_types():
    assert _found({"resourceType": "Patients"}) == {("structure", "Patients")}
    # SubscriptionStatus exists in R4B but not in R4.
    assert _found({"resourceType": "SubscriptionStatus", "status": "active", "type": "heartbeat",
                   "subscription": {"reference": "Subscription/s"}}) == {("structure", "SubscriptionStatus")}


def test_r4_type_without_r4b_model_is_checked_by_the_r4_walk():
    assert validate_resource({"resourceType": "MedicinalProduct", "name": [{"productName": "Aspirin"}]}) == []
    assert _found({"resourceType": "MedicinalProduct", "name": [{}]}) == {("structure", "MedicinalProduct.name[0]")}


def test_unknown_resource_inside_a_bundle_is_named_and_other_entries_still_checked():
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Foo", "id": "1"}},
        {"resource": {"resourceType": "Patient", "gender": "F"}},
    ]}
    found = _found(bundle)
    assert ("structure", "Bundle.entry[0].resource") in found
    assert ("code-invalid", "Bundle.entry[1].resource.gender") in found


def test_contained_resources_are_walked():
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                   "subject": {"reference": "#p"}, "contained": [{"resourceType": "Patient", "id": "p", "gender": "F"}]}
    assert _found(observation) == {("code-invalid", "Observation.contained[0].gender")}
