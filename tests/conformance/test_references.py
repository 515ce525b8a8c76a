"""conformance.references: literal references, target types, contained (ref-1), resolution in Bundles."""
from __future__ import annotations

import pytest

from conformance.validation import validate_bundle, validate_resource


def _refs(issues):
    return {(issue.severity, issue.rule, issue.expression) for issue in issues
            if issue.rule in ("ref-1", "bundle-reference", "reference-format", "reference-target", "reference-type")}


def test_unresolved_reference_in_a_transaction_is_an_error_only_when_strict(bundle):
    bundle["entry"][4]["resource"]["subject"] = {"reference": "Patient/unknown"}
    where = "Bundle.entry[4].resource.subject.reference"
    assert _refs(validate_bundle(bundle, strict_references=True)) == {("error", "bundle-reference", where)}
    assert _refs(validate_bundle(bundle)) == {("warning", "bundle-reference", where)}


def test_references_resolve_by_full_url_resource_id_and_put_url(bundle):
    entries = bundle["entry"]
    entries[4]["resource"]["subject"] = {"reference": entries[0]["fullUrl"]}      # urn:uuid fullUrl
    entries[1]["resource"]["id"] = "renamed"                                          # still found by PUT url
    entries[1]["request"]["url"] = "Organization/renamed"
    for resource in (e["resource"] for e in entries):
        for key in ("managingOrganization", "serviceProvider"):
            if key in resource:
                resource[key] = {"reference": "Organization/renamed"}
    entries[-1]["resource"]["agent"][0]["who"] = {"reference": "Organization/renamed"}
    entries[-1]["resource"]["target"][1] = {"reference": "Organization/renamed"}
    assert validate_bundle(bundle, strict_references=True) == []


def test_conditional_reference_in_a_transaction_resolves_by_identifier(bundle):
    bundle["entry"][4]["resource"]["subject"] = {
        "reference": "Patient?identifier=urn:oid:2.16.840.1.113883.2.4.6.3|110101199003074477"}
    assert validate_bundle(bundle, strict_references=True) == []
    bundle["entry"][4]["resource"]["subject"] = {"reference": "Patient?identifier=urn:oid:1.2|nope"}
    assert _refs(validate_bundle(bundle, strict_references=True)) == {
        ("error", "bundle-reference", "Bundle.entry[4].resource.subject.reference")}


def test_relative_reference_resolves_against_the_base_of_the_referring_entry(example):
    # The spec's own reference example: two references deliberately point outside the Bundle.
    issues = validate_bundle(example("Bundle-bundle-references.json"), strict_references=True)
    assert _refs(issues) == {("warning", "bundle-reference", "Bundle.entry[5].resource.subject.reference"),
                             ("warning", "bundle-reference", "Bundle.entry[6].resource.subject.reference")}


def test_document_bundle_references_must_resolve_when_strict(example):
    document = example("Bundle-father.json")
    document["entry"][0]["resource"]["subject"] = {"reference": "Patient/not-in-the-document"}
    assert ("error", "bundle-reference", "Bundle.entry[0].resource.subject.reference") in \
        _refs(validate_bundle(document, strict_references=True))


def test_reference_target_type_and_reference_type():
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                   "subject": {"reference": "Practitioner/1"},
                   "encounter": {"reference": "Encounter/1", "type": "Patient"}}
    assert _refs(validate_resource(observation)) == {("error", "reference-target", "Observation.subject.reference"),
                                                     ("error", "reference-type", "Observation.encounter.type")}


@pytest.mark.parametrize("reference", ["Patient/", "patient/1", "Patient/a b", "Patients/1", "Patient?name=x"])
def test_malformed_literal_references(reference):
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                   "subject": {"reference": reference}}
    assert _refs(validate_resource(observation)) == {("error", "reference-format", "Observation.subject.reference")}


def test_contained_reference_must_resolve_ref_1():
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                   "subject": {"reference": "#missing"}}
    assert _refs(validate_resource(observation)) == {("error", "ref-1", "Observation.subject.reference")}
    observation["contained"] = [{"resourceType": "Patient", "id": "missing"}]
    assert validate_resource(observation) == []
    observation["contained"] = [{"resourceType": "Patient", "id": "missing"}, {"resourceType": "Device", "id": "d"}]
    observation["performer"] = [{"reference": "#d"}]  # a Device cannot be an Observation.performer
    assert {rule for _, rule, _ in _refs(validate_resource(observation))} == {"reference-target"}
