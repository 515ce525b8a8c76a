"""conformance.bindings: required bindings from the R4 ValueSets (data/r4-required-bindings.json)."""
from __future__ import annotations

import pytest

from conformance.definitions import required_binding
from conformance.validation import validate_resource

BINDING_PATHS = [
    "Patient.gender", "Observation.status", "Encounter.status", "Bundle.type", "Bundle.entry.request.method",
    "Identifier.use", "HumanName.use", "ContactPoint.system", "ContactPoint.use", "Address.use", "Address.type",
    "AllergyIntolerance.clinicalStatus", "AllergyIntolerance.verificationStatus", "Condition.clinicalStatus",
    "Condition.verificationStatus", "DiagnosticReport.status", "MedicationRequest.status", "MedicationRequest.intent",
    "Immunization.status", "Appointment.status", "ServiceRequest.status", "ServiceRequest.intent",
    "Provenance.entity.role", "DocumentReference.status", "Specimen.status", "Narrative.status",
]


@pytest.mark.parametrize("path", BINDING_PATHS)
def test_the_common_required_bindings_are_enumerated(path):
    binding = required_binding(path)
    assert binding is not None and all(binding[1].values())


def _codes(resource):
    return {(issue.code, issue.expression) for issue in validate_resource(resource) if issue.is_error}


def test_code_elements_in_resources_and_datatypes():
    patient = {"resourceType": "Patient", "gender": "M",
               "identifier": [{"use": "primary", "value": "1"}],
               "name": [{"use": "legal", "family": "X"}],
               "telecom": [{"system": "mobile", "value": "1", "use": "cell"}],
               "address": [{"use": "home", "type": "street", "city": "X"}]}
    assert _codes(patient) == {("code-invalid", e) for e in (
        "Patient.gender", "Patient.identifier[0].use", "Patient.name[0].use", "Patient.telecom[0].system",
        "Patient.telecom[0].use", "Patient.address[0].type")}


def test_codeable_concept_needs_one_coding_from_the_value_set():
    allergy = {"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p"},
               "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                              "code": "current"}]},
               "verificationStatus": {"coding": [{"system": "http://local", "code": "C"},
                                                 {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                                                  "code": "confirmed"}]}}
    assert _codes(allergy) == {("code-invalid", "AllergyIntolerance.clinicalStatus")}
    allergy["clinicalStatus"] = {"text": "active"}  # no coding at all
    assert _codes(allergy) == {("code-invalid", "AllergyIntolerance.clinicalStatus")}


def test_backbone_and_bundle_paths():
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"request": {"method": "UPSERT", "url": "Patient/1"}}]}
    assert ("code-invalid", "Bundle.entry[0].request.method") in _codes(bundle)
    assert ("code-invalid", "Bundle.type") in _codes({"resourceType": "Bundle", "type": "message-batch"})


def test_status_and_intent_of_orders_and_events():
    assert _codes({"resourceType": "ServiceRequest", "status": "complete", "intent": "order",
                   "subject": {"reference": "Patient/p"}}) == {("code-invalid", "ServiceRequest.status")}
    assert _codes({"resourceType": "MedicationRequest", "status": "active", "intent": "prescription",
                   "medicationCodeableConcept": {"text": "x"}, "subject": {"reference": "Patient/p"}}) \
        == {("code-invalid", "MedicationRequest.intent")}
    assert _codes({"resourceType": "Provenance", "recorded": "2024-05-01T10:00:00Z",
                   "target": [{"reference": "Patient/p"}], "agent": [{"who": {"reference": "Patient/p"}}],
                   "entity": [{"role": "origin", "what": {"display": "x"}}]}) \
        == {("code-invalid", "Provenance.entity[0].role")}
