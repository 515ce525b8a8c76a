"""AuditEvent builders (conformance/audit.py): R4-valid BALP shapes, and no clinical content ever (R4 auditevent.html)."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from flask import Flask

from adapters.storage.query import parse_search
from conformance.audit import (
    MessageFacts, Requester, Sender, admin_event, http_outcome, ingest_event, issue_description, observer_device, rest_event,
)
from conformance.validation import has_errors, validate_resource
from gateway.app import create_app
from gateway.fhir.context import REPOSITORY_KEY
from gateway.hl7_http import ingestor

SAMPLE = Path(__file__).resolve().parents[2] / "gateway" / "samples" / "adt-a01-zh.hl7"
WHEN = datetime(2026, 12, 3, 20, 15, 30, 123456, tzinfo=timezone(timedelta(hours=8)))
CLINICIAN = Requester("dr-li", "ward-app", "10.0.0.7", "https://idp.example", "Practitioner/p1")


def _valid(event: dict) -> dict:
    issues = validate_resource(event)
    assert not has_errors(issues), [str(issue) for issue in issues]
    return event


@pytest.mark.parametrize("event", [
    rest_event(interaction="read", status=200, recorded=WHEN, requester=CLINICIAN, resource_type="Patient",
               resources=["Patient/p1"], patients=["Patient/p1"]),
    rest_event(interaction="search-type", status=200, recorded=WHEN, requester=Requester("anonymous"), resource_type="Observation",
               resources=["Observation/o1", "Observation/o2"], patients=["Patient/p1"], parameter_names=["patient", "code:not"]),
    rest_event(interaction="create", status=422, recorded=WHEN, requester=CLINICIAN,
               outcome_issues=[{"severity": "error", "code": "structure", "diagnostics": "x", "expression": ["Patient.birthDate"]}]),
    rest_event(interaction="operation", status=200, recorded=WHEN, requester=CLINICIAN, resources=["Patient/p1"],
               patients=["Patient/p1"], operation="everything"),
    admin_event(action="R", status=200, recorded=WHEN, requester=CLINICIAN, message_id=7),
    ingest_event(message=MessageFacts(7, "MSG-1", "ADT^A01", "mllp", "AA"), sender=Sender("HIS", "HOSP", "10.1.1.1:50123"),
                 recorded=WHEN, resources=["Patient/p1", "Encounter/e1"], patients=["Patient/p1"]),
    ingest_event(message=MessageFacts(None, "", "", "file", "AR", "100"), sender=Sender("", ""), recorded=WHEN),
    observer_device(),
], ids=["read", "search", "create-422", "everything", "admin", "ingest", "ingest-unparseable", "observer"])
def test_every_builder_makes_a_valid_r4_resource(event: dict) -> None:
    _valid(event)


def test_rest_event_follows_balp() -> None:
    event = rest_event(interaction="read", status=200, recorded=WHEN, requester=CLINICIAN, resource_type="Patient",
                       resources=["Patient/p1"], patients=["Patient/p1"])
    assert event["type"]["code"] == "rest" and event["subtype"][0] == {
        "system": "http://hl7.org/fhir/restful-interaction", "code": "read", "display": "read"}
    assert (event["action"], event["outcome"], event["recorded"]) == ("R", "0", "2026-12-03T12:15:30.123Z")
    user, app = event["agent"]
    assert user["requestor"] and user["who"] == {"identifier": {"system": "https://idp.example", "value": "dr-li"},
                                                 "reference": "Practitioner/p1"}
    assert user["network"] == {"address": "10.0.0.7", "type": "2"}
    assert not app["requestor"] and app["who"]["identifier"]["value"] == "ward-app"
    [entity] = event["entity"]  # a patient is listed once, as the patient
    assert entity["what"] == {"reference": "Patient/p1"} and (entity["type"]["code"], entity["role"]["code"]) == ("1", "1")


@pytest.mark.parametrize(("interaction", "action"), [
    ("read", "R"), ("vread", "R"), ("search-type", "E"), ("history-instance", "R"), ("create", "C"), ("update", "U"),
    ("delete", "D"), ("transaction", "E"), ("operation", "E"),
])
def test_action_follows_the_interaction(interaction: str, action: str) -> None:
    assert rest_event(interaction=interaction, status=200, recorded=WHEN, requester=CLINICIAN)["action"] == action


@pytest.mark.parametrize(("status", "outcome"), [(200, "0"), (201, "0"), (304, "0"), (400, "4"), (404, "4"), (500, "8"), (503, "8")])
def test_outcome_follows_the_http_status(status: int, outcome: str) -> None:
    assert http_outcome(status) == outcome


def test_outcome_description_keeps_codes_and_paths_never_diagnostics() -> None:
    issues = [{"severity": "error", "code": "invalid", "diagnostics": "birthdate '1985-03-14' of 王小红", "expression": ["birthdate"]},
              {"severity": "error", "code": "value", "expression": ["王小红", "Patient.name[0].family"]}]
    assert issue_description(400, issues) == "HTTP 400: invalid at birthdate; value at Patient.name[0].family"


def test_query_entity_names_parameters_never_values() -> None:
    event = rest_event(interaction="search-type", status=200, recorded=WHEN, requester=CLINICIAN, resource_type="Patient",
                       parameter_names=["name", "birthdate", "identifier", "王小红"])
    [query] = event["entity"]
    assert query["role"]["code"] == "24" and "query" not in query
    assert query["detail"] == [{"type": "parameters", "valueString": "birthdate,identifier,name"}]


def test_ingest_event_carries_ids_and_codes_of_the_message() -> None:
    event = ingest_event(message=MessageFacts(7, "MSG-1", "ADT^A01", "mllp", "AE", "102", "PID-7"),
                         sender=Sender("HIS", "HOSP", "10.1.1.1:50123"), recorded=WHEN, resources=["Patient/p1"], patients=["Patient/p1"])
    assert (event["type"]["code"], event["subtype"][0]["code"], event["action"], event["outcome"]) == ("110107", "A01", "C", "8")
    assert event["outcomeDesc"] == "ACK AE: HL7 error 102 at PID-7"
    [sender] = event["agent"]
    assert sender["requestor"] and sender["altId"] == "HIS^HOSP" and sender["network"] == {"address": "10.1.1.1", "type": "2"}
    message, patient = event["entity"]
    assert message["what"]["identifier"]["value"] == "7"
    assert {d["type"]: d["valueString"] for d in message["detail"]} == {"MSH-9": "ADT^A01", "MSH-10": "MSG-1", "transport": "mllp"}
    assert patient["what"] == {"reference": "Patient/p1"} and patient["role"]["code"] == "1"


# -- no clinical content, end to end ---------------------------------------------------------------

# What the requests and messages below carry: the sample's name, resident ID, MRN, phone, address, birth
# date, allergy, diagnosis and vital signs, and a second patient's name, birth date and MRN.
PHI = ("王", "小红", "110105198503142123", "MRN100234", "13800138000", "65881234", "朝阳区", "建国路", "19850314", "1985-03-14",
       "青霉素", "荨麻疹", "高血压", "收缩压", "Zhangsanfeng", "ZHANGSANFENG", "1979-11-02", "20231399", "MRN-77341")


@pytest.fixture
def audited_app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "DB": f"sqlite:///{tmp_path / 'phi.db'}"})
    yield app
    app.extensions[REPOSITORY_KEY].close()


def test_no_audit_event_holds_clinical_content(audited_app: Flask) -> None:
    client = audited_app.test_client()
    assert client.post("/hl7/v2", data=SAMPLE.read_bytes(), content_type="application/hl7-v2").status_code == 200
    bad = SAMPLE.read_bytes().replace(b"ZH-ADT-0001", b"ZH-ADT-0002").replace(b"|19850314|", b"|20231399|")
    assert client.post("/hl7/v2", data=bad, content_type="application/hl7-v2").status_code == 422
    ingestor(audited_app).ingest(b"MSH|^~\\&|HIS|HOSP|" + "王小红 13800138000".encode(), peer="10.0.0.9:4000", transport="mllp")
    person = {"resourceType": "Patient", "name": [{"family": "Zhangsanfeng", "given": ["Li"]}], "birthDate": "1979-11-02",
              "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-77341"}]}
    headers = {"Content-Type": "application/fhir+json"}
    created = client.post("/fhir/Patient", data=orjson.dumps(person), headers=headers).get_json()
    assert client.post("/fhir/Patient", data=orjson.dumps({**person, "birthDate": "1979-11-02x"}), headers=headers).status_code in (400, 422)
    pid = client.get("/fhir/Patient?identifier=MRN100234").get_json()["entry"][0]["resource"]["id"]
    for url in (
        "/fhir/Patient?name=王小红&birthdate=1985-03-14", "/fhir/Patient?identifier=urn:oid:1.2.3|MRN-77341",
        "/fhir/Patient?family=Zhangsanfeng", "/fhir/Patient?phone=13800138000", "/fhir/Patient?王小红=1",
        f"/fhir/Patient/{pid}", f"/fhir/Patient/{pid}/$everything", f"/fhir/Observation?subject.name=王小红&patient={pid}",
        f"/fhir/Patient/{created['id']}/_history", "/fhir/Patient?birthdate=1985-03-14x",
    ):
        client.get(url)
    assert client.post("/fhir/Patient/_search", data={"name": "Zhangsanfeng"}).status_code == 200
    repository = audited_app.extensions[REPOSITORY_KEY]
    events = repository.search(parse_search("AuditEvent", [("_count", "1000")])).matches
    assert len(events) == 17
    trail = orjson.dumps(events).decode()
    assert [value for value in PHI if value in trail] == []
    assert f"Patient/{pid}" in trail and f"Patient/{created['id']}" in trail  # who was touched is recorded, by reference
