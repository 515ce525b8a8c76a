"""Instance interactions through Flask's test client: create, read, vread, update, delete and their HTTP headers (FHIR R4 http.html)."""
from __future__ import annotations

from flask.testing import FlaskClient
from fhir_requests import created, observation, patient, send


def test_create_returns_201_with_versioned_location_etag_and_the_stored_resource(client: FlaskClient) -> None:
    response = send(client, "POST", "/fhir/Patient", patient(id="client-chosen"))
    assert response.status_code == 201
    body = response.get_json()
    assert response.content_type.startswith("application/fhir+json")
    assert body["id"] != "client-chosen"  # http.html#create: the server assigns the id
    assert body["meta"]["versionId"] == "1" and body["meta"]["lastUpdated"]
    assert response.headers["Location"] == f"http://localhost/fhir/Patient/{body['id']}/_history/1"
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Last-Modified"].endswith("GMT")


def test_application_json_is_accepted_for_bodies_and_answers(client: FlaskClient) -> None:
    response = send(client, "POST", "/fhir/Patient", patient(), Content_Type="application/json", Accept="application/json")
    assert response.status_code == 201
    assert client.get(f"/fhir/Patient/{response.get_json()['id']}", headers={"Accept": "application/json"}).status_code == 200


def test_read_and_vread(client: FlaskClient) -> None:
    first = created(client, patient())
    pid = first["id"]
    updated = send(client, "PUT", f"/fhir/Patient/{pid}", {**first, "gender": "male"})
    assert updated.status_code == 200 and updated.headers["ETag"] == 'W/"2"'
    read = client.get(f"/fhir/Patient/{pid}")
    assert read.status_code == 200 and read.get_json()["gender"] == "male" and read.headers["ETag"] == 'W/"2"'
    old = client.get(f"/fhir/Patient/{pid}/_history/1")
    assert old.status_code == 200 and old.get_json()["gender"] == "female" and old.headers["ETag"] == 'W/"1"'
    assert client.get(f"/fhir/Patient/{pid}/_history/9").status_code == 404
    assert client.get(f"/fhir/Patient/{pid}/_history/abc").status_code == 404


def test_if_none_match_and_if_modified_since_give_304(client: FlaskClient) -> None:
    pid = created(client, patient())["id"]
    response = client.get(f"/fhir/Patient/{pid}", headers={"If-None-Match": 'W/"1"'})
    assert response.status_code == 304 and response.data == b""
    assert client.get(f"/fhir/Patient/{pid}", headers={"If-None-Match": 'W/"7"'}).status_code == 200
    last_modified = client.get(f"/fhir/Patient/{pid}").headers["Last-Modified"]
    assert client.get(f"/fhir/Patient/{pid}", headers={"If-Modified-Since": last_modified}).status_code == 304


def test_update_as_create_gives_201_at_the_client_id(client: FlaskClient) -> None:
    response = send(client, "PUT", "/fhir/Patient/pat-001", patient(id="pat-001"))
    assert response.status_code == 201
    assert response.headers["Location"].endswith("/fhir/Patient/pat-001/_history/1")
    assert client.get("/fhir/Patient/pat-001").get_json()["name"][0]["family"] == "Chen"


def test_if_match_version_aware_update(client: FlaskClient) -> None:
    current = created(client, patient())
    pid = current["id"]
    assert send(client, "PUT", f"/fhir/Patient/{pid}", {**current, "gender": "male"}, If_Match='W/"1"').status_code == 200
    stale = send(client, "PUT", f"/fhir/Patient/{pid}", {**current, "gender": "other"}, If_Match='W/"1"')
    assert stale.status_code == 412
    assert stale.get_json()["resourceType"] == "OperationOutcome"


def test_prefer_return_minimal_representation_and_operation_outcome(client: FlaskClient) -> None:
    minimal = send(client, "POST", "/fhir/Patient", patient(), Prefer="return=minimal")
    assert minimal.status_code == 201 and minimal.data == b"" and minimal.headers["Location"]
    assert "Content-Type" not in minimal.headers
    as_outcome = send(client, "POST", "/fhir/Patient", patient(), Prefer="return=OperationOutcome")
    assert as_outcome.get_json()["resourceType"] == "OperationOutcome"
    assert as_outcome.get_json()["issue"][0]["severity"] == "information"
    full = send(client, "POST", "/fhir/Patient", patient(), Prefer="return=representation")
    assert full.get_json()["resourceType"] == "Patient"


def test_delete_then_read_is_410_and_history_keeps_the_deletion(client: FlaskClient) -> None:
    pid = created(client, patient())["id"]
    deleted = client.delete(f"/fhir/Patient/{pid}")
    assert deleted.status_code == 200
    assert deleted.get_json()["resourceType"] == "OperationOutcome"
    gone = client.get(f"/fhir/Patient/{pid}")
    assert gone.status_code == 410 and gone.get_json()["issue"][0]["code"] == "deleted"
    assert client.get(f"/fhir/Patient/{pid}/_history/2").status_code == 410
    assert client.get(f"/fhir/Patient/{pid}/_history/1").status_code == 200
    minimal = client.delete(f"/fhir/Patient/{created(client, patient())['id']}", headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 204 and minimal.data == b""


def test_update_after_delete_revives_the_resource(client: FlaskClient) -> None:
    pid = created(client, patient())["id"]
    client.delete(f"/fhir/Patient/{pid}")
    revived = send(client, "PUT", f"/fhir/Patient/{pid}", patient(id=pid))
    assert revived.status_code in (200, 201)
    assert client.get(f"/fhir/Patient/{pid}").status_code == 200


def test_conditional_create_if_none_exist(client: FlaskClient) -> None:
    resource = patient(identifier=[{"system": "urn:oid:2.16.840.1.113883.2.4.6.3", "value": "110101199003070011"}])
    condition = "identifier=urn:oid:2.16.840.1.113883.2.4.6.3|110101199003070011"
    first = send(client, "POST", "/fhir/Patient", resource, If_None_Exist=condition)
    assert first.status_code == 201
    again = send(client, "POST", "/fhir/Patient", resource, If_None_Exist=condition)
    assert again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    send(client, "POST", "/fhir/Patient", resource)  # a second match makes the condition ambiguous
    assert send(client, "POST", "/fhir/Patient", resource, If_None_Exist=condition).status_code == 412
    assert send(client, "POST", "/fhir/Patient", resource, If_None_Exist="nonsense=1").status_code == 400


def test_conditional_update(client: FlaskClient) -> None:
    resource = patient(identifier=[{"system": "urn:mrn", "value": "M-77"}])
    made = send(client, "PUT", "/fhir/Patient?identifier=urn:mrn|M-77", resource)
    assert made.status_code == 201
    pid = made.get_json()["id"]
    changed = send(client, "PUT", "/fhir/Patient?identifier=urn:mrn|M-77", {**resource, "gender": "male"})
    assert changed.status_code == 200 and changed.get_json()["id"] == pid
    assert changed.get_json()["meta"]["versionId"] == "2"
    wrong_id = send(client, "PUT", "/fhir/Patient?identifier=urn:mrn|M-77", {**resource, "id": "other"})
    assert wrong_id.status_code == 400
    created(client, resource)
    assert send(client, "PUT", "/fhir/Patient?identifier=urn:mrn|M-77", resource).status_code == 412
    assert send(client, "PUT", "/fhir/Patient", resource).status_code == 400


def test_format_and_pretty(client: FlaskClient) -> None:
    pid = created(client, patient())["id"]
    for value in ("json", "application/fhir+json", "application/json"):
        assert client.get(f"/fhir/Patient/{pid}", query_string={"_format": value}).status_code == 200
    pretty = client.get(f"/fhir/Patient/{pid}?_pretty=true")
    assert b'\n  "resourceType"' in pretty.data
    assert b"\n" not in client.get(f"/fhir/Patient/{pid}").data


def test_read_with_summary_and_elements_is_subsetted(client: FlaskClient) -> None:
    pid = created(client, patient(text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Chen Wei</div>'}))["id"]
    summary = client.get(f"/fhir/Patient/{pid}?_summary=true").get_json()
    assert "text" not in summary and summary["name"] and summary["meta"]["tag"][0]["code"] == "SUBSETTED"
    elements = client.get(f"/fhir/Patient/{pid}?_elements=gender").get_json()
    assert set(elements) == {"resourceType", "id", "meta", "gender"}


def test_observation_round_trip_keeps_choice_elements(client: FlaskClient) -> None:
    pid = created(client, patient())["id"]
    obs = created(client, observation(pid))
    read = client.get(f"/fhir/Observation/{obs['id']}").get_json()
    assert read["valueQuantity"]["value"] == 72 and read["effectiveDateTime"] == "2024-03-01T08:00:00+08:00"
