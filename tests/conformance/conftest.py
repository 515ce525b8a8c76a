"""Fixtures for the conformance tests: a transaction Bundle shaped like the mapper output (PUT Type/id entries,
references by Type/id), and the official R4 examples under tests/data/fhir-examples (CC0)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "fhir-examples"


def entry(resource: dict[str, Any]) -> dict[str, Any]:
    """A transaction entry that PUTs `resource` at its deterministic Type/id (http.html#update)."""
    type_id = f"{resource['resourceType']}/{resource['id']}"
    return {"fullUrl": f"urn:uuid:{_uuid(type_id)}", "resource": resource, "request": {"method": "PUT", "url": type_id}}


def _uuid(text: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, text))


def admission_bundle(observations: int = 25) -> dict[str, Any]:
    """Patient, Encounter, Practitioner, Organization, Observations and a Provenance: an ADT/ORU-like Bundle."""
    patient = {
        "resourceType": "Patient", "id": "pat-1",
        "identifier": [{"use": "official", "system": "urn:oid:2.16.840.1.113883.2.4.6.3", "value": "110101199003074477"}],
        "name": [{"use": "official", "family": "王", "given": ["小红"]}],
        "telecom": [{"system": "phone", "value": "+86 10 1234 5678", "use": "home"}],
        "gender": "female", "birthDate": "1990-03-07",
        "address": [{"use": "home", "type": "physical", "city": "北京", "country": "CN"}],
        "managingOrganization": {"reference": "Organization/org-1"},
        "text": {"status": "generated",
                 "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>王小红, female, born 1990-03-07</p></div>'},
    }
    organization = {"resourceType": "Organization", "id": "org-1", "name": "Peking Union Medical College Hospital"}
    practitioner = {"resourceType": "Practitioner", "id": "prac-1", "name": [{"family": "李", "given": ["明"]}]}
    encounter = {
        "resourceType": "Encounter", "id": "enc-1", "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": "Patient/pat-1"},
        "participant": [{"individual": {"reference": "Practitioner/prac-1"}}],
        "period": {"start": "2024-05-01T08:30:00+08:00"},
        "serviceProvider": {"reference": "Organization/org-1"},
    }
    resources: list[dict[str, Any]] = [patient, organization, practitioner, encounter]
    for index in range(observations):
        resources.append({
            "resourceType": "Observation", "id": f"obs-{index}", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
            "subject": {"reference": "Patient/pat-1"}, "encounter": {"reference": "Encounter/enc-1"},
            "effectiveDateTime": "2024-05-01T09:00:00+08:00", "issued": "2024-05-01T10:00:00+08:00",
            "performer": [{"reference": "Practitioner/prac-1"}],
            "valueQuantity": {"value": 5.4 + index, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                              "code": "mmol/L"},
            "referenceRange": [{"low": {"value": 3.9, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                                        "code": "mmol/L"},
                                "high": {"value": 6.1, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                                         "code": "mmol/L"}}],
        })
    resources.append({
        "resourceType": "Provenance", "id": "prov-1", "recorded": "2024-05-01T10:00:01+08:00",
        "target": [{"reference": f"{r['resourceType']}/{r['id']}"} for r in resources],
        "agent": [{"who": {"reference": "Organization/org-1"}}],
        "entity": [{"role": "source", "what": {"display": "HL7 v2 ORU^R01 control id 42"}}],
    })
    return {"resourceType": "Bundle", "type": "transaction", "entry": [entry(r) for r in resources]}


@pytest.fixture
def bundle() -> dict[str, Any]:
    """A fresh valid transaction Bundle of 30 resources (tests mutate it)."""
    return admission_bundle()


@pytest.fixture
def example():
    """Load an official R4 example by file name."""
    def load(name: str) -> dict[str, Any]:
        return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return load
