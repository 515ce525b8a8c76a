"""Request and resource builders shared by the FHIR API tests."""
from __future__ import annotations

import orjson
from flask.testing import FlaskClient

FHIR_JSON = "application/fhir+json"


def send(client: FlaskClient, method: str, url: str, body: dict | None = None, **headers: str):  # noqa: ANN201
    """One FHIR JSON request; header names with underscores become dashes (If_Match -> If-Match)."""
    wire = {name.replace("_", "-"): value for name, value in headers.items()}
    data = orjson.dumps(body) if body is not None else None
    return client.open(url, method=method, data=data, headers={"Content-Type": FHIR_JSON, **wire} if data else wire)


def patient(family: str = "Chen", given: str = "Wei", **extra: object) -> dict:
    return {"resourceType": "Patient", "name": [{"family": family, "given": [given]}], "gender": "female", "birthDate": "1980-04-02", **extra}


def observation(patient_id: str, code: str = "8867-4", value: float = 72, when: str = "2024-03-01T08:00:00+08:00") -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }


def created(client: FlaskClient, resource: dict) -> dict:
    """POST a resource and return the stored representation."""
    response = send(client, "POST", f"/fhir/{resource['resourceType']}", resource)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()
