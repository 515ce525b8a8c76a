"""REST writes are refused by the full R4 validator (bindings, invariants), not only the models (R4 http.html#create: 422)."""
from __future__ import annotations

from flask.testing import FlaskClient
from fhir_requests import created, observation, patient, send


def _issue(response) -> dict:  # noqa: ANN001
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["severity"] == "error"
    return body["issue"][0]


def test_required_binding_violation_is_422_naming_the_element(client: FlaskClient) -> None:
    issue = _issue(send(client, "POST", "/fhir/Patient", patient(gender="bogus")))
    assert issue["expression"] == ["Patient.gender"] and "bogus" in issue["diagnostics"]
    stored = created(client, patient())
    update = send(client, "PUT", f"/fhir/Patient/{stored['id']}", {**patient(gender="bogus"), "id": stored["id"]})
    assert _issue(update)["expression"] == ["Patient.gender"]
    assert client.get(f"/fhir/Patient/{stored['id']}").get_json()["gender"] == "female"
    assert client.get("/fhir/Patient?_summary=count").get_json()["total"] == 1


def test_invariant_violation_is_422_naming_the_invariant(client: FlaskClient) -> None:
    pid = created(client, patient())["id"]
    bad = {**observation(pid), "dataAbsentReason": {"text": "device off"}}  # obs-6: not together with value[x]
    issue = _issue(send(client, "POST", "/fhir/Observation", bad))
    assert issue["expression"] == ["Observation.dataAbsentReason"] and "obs-6" in issue["diagnostics"]
    assert send(client, "POST", "/fhir/Observation", observation(pid)).status_code == 201


def test_transaction_entry_expressions_carry_the_entry_path(client: FlaskClient) -> None:
    pid = created(client, patient())["id"]
    bad = {**observation(pid), "dataAbsentReason": {"text": "device off"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": patient(gender="bogus"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": bad, "request": {"method": "POST", "url": "Observation"}},
    ]}
    issue = _issue(send(client, "POST", "/fhir", bundle))
    assert issue["expression"] == ["Bundle.entry[1].resource.gender"]
    assert client.get("/fhir/Patient?_summary=count").get_json()["total"] == 1
    bundle["type"] = "batch"
    entries = send(client, "POST", "/fhir", bundle).get_json()["entry"]
    assert [e["response"]["status"].split()[0] for e in entries] == ["201", "422", "422"]
    assert entries[2]["response"]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[2].resource.dataAbsentReason"]


def test_conditional_references_in_a_transaction_are_not_format_errors(client: FlaskClient) -> None:
    created(client, patient(identifier=[{"system": "urn:mrn", "value": "M1"}]))
    obs = observation("placeholder")
    obs["subject"] = {"reference": "Patient?identifier=urn:mrn|M1"}
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": obs, "request": {"method": "POST", "url": "Observation"}}]}
    response = send(client, "POST", "/fhir", bundle)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert send(client, "POST", "/fhir/Observation", obs).status_code == 422  # outside a transaction it is not a reference
