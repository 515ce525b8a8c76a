"""Transaction and batch Bundles posted to the base URL (FHIR R4 http.html#transaction)."""
from __future__ import annotations

from flask.testing import FlaskClient
from fhir_requests import created, observation, patient, send


def _transaction(kind: str, entries: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def test_transaction_resolves_urn_uuid_references_and_answers_in_order(client: FlaskClient) -> None:
    obs = observation("placeholder")
    obs["subject"] = {"reference": "urn:uuid:7b3c1c8e-3b9a-4d7e-9a51-2f1f7d3f0a11"}
    existing = created(client, patient("Old", "One"))
    bundle = _transaction(
        "transaction",
        [
            {"fullUrl": "urn:uuid:7b3c1c8e-3b9a-4d7e-9a51-2f1f7d3f0a11", "resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": obs, "request": {"method": "POST", "url": "Observation"}},
            {"resource": patient(id="fixed-1"), "request": {"method": "PUT", "url": "Patient/fixed-1"}},
            {"request": {"method": "GET", "url": f"Patient/{existing['id']}"}},
            {"request": {"method": "GET", "url": "Patient?family=old"}},
        ],
    )
    response = send(client, "POST", "/fhir", bundle)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["type"] == "transaction-response" and len(body["entry"]) == 5
    statuses = [entry["response"]["status"] for entry in body["entry"]]
    assert statuses[:3] == ["201 Created", "201 Created", "201 Created"] and statuses[3].startswith("200")
    patient_location = body["entry"][0]["response"]["location"]
    assert patient_location.startswith("Patient/") and patient_location.endswith("/_history/1")
    stored_obs = client.get("/fhir/" + body["entry"][1]["response"]["location"].split("/_history")[0]).get_json()
    assert stored_obs["subject"]["reference"] == patient_location.split("/_history")[0]
    assert body["entry"][3]["resource"]["id"] == existing["id"]
    assert body["entry"][4]["resource"]["type"] == "searchset" and body["entry"][4]["resource"]["total"] == 1


def test_transaction_is_all_or_nothing(client: FlaskClient) -> None:
    pid = created(client, patient())["id"]
    bundle = _transaction(
        "transaction",
        [
            {"resource": patient("Never", "Stored"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": patient(id=pid), "request": {"method": "PUT", "url": f"Patient/{pid}", "ifMatch": 'W/"9"'}},
        ],
    )
    response = send(client, "POST", "/fhir", bundle)
    assert response.status_code == 412
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient?family=never").get_json()["total"] == 0


def test_invalid_entry_fails_the_transaction_with_422_naming_the_entry(client: FlaskClient) -> None:
    bundle = _transaction(
        "transaction",
        [
            {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": patient(birthDate="yesterday"), "request": {"method": "POST", "url": "Patient"}},
        ],
    )
    response = send(client, "POST", "/fhir", bundle)
    assert response.status_code == 422
    assert response.get_json()["issue"][0]["expression"] == ["Bundle.entry[1].resource.birthDate"]
    assert client.get("/fhir/Patient?_summary=count").get_json()["total"] == 0


def test_batch_entries_succeed_or_fail_on_their_own(client: FlaskClient) -> None:
    pid = created(client, patient())["id"]
    bundle = _transaction(
        "batch",
        [
            {"resource": patient("Batch", "Ok"), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient/missing"}},
            {"resource": patient(birthDate="yesterday"), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "DELETE", "url": f"Patient/{pid}"}},
            {"request": {"method": "GET", "url": "Nope/1"}},
            {"request": {"method": "GET", "url": "Patient?unknown=1"}},
        ],
    )
    response = send(client, "POST", "/fhir", bundle)
    assert response.status_code == 200
    entries = response.get_json()["entry"]
    assert response.get_json()["type"] == "batch-response"
    codes = [entry["response"]["status"].split()[0] for entry in entries]
    assert codes == ["201", "404", "422", "204", "404", "400"]
    assert entries[1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient?family=batch").get_json()["total"] == 1
    assert client.get(f"/fhir/Patient/{pid}").status_code == 410


def test_bundle_type_and_shape_are_checked(client: FlaskClient) -> None:
    assert send(client, "POST", "/fhir", {"resourceType": "Bundle", "type": "collection"}).status_code == 400
    assert send(client, "POST", "/fhir", patient()).status_code == 400
    no_request = _transaction("transaction", [{"resource": patient()}])
    assert send(client, "POST", "/fhir", no_request).status_code == 400
    mismatch = _transaction("transaction", [{"resource": patient(id="a"), "request": {"method": "PUT", "url": "Patient/b"}}])
    assert send(client, "POST", "/fhir", mismatch).status_code == 400


def test_transaction_prefer_minimal_leaves_out_resources(client: FlaskClient) -> None:
    bundle = _transaction("transaction", [{"resource": patient(), "request": {"method": "POST", "url": "Patient"}}])
    entry = send(client, "POST", "/fhir", bundle, Prefer="return=minimal").get_json()["entry"][0]
    assert "resource" not in entry and entry["response"]["status"] == "201 Created"
