"""The audit trail through the app: one AuditEvent per request and per ingested message, searchable (R4 auditevent.html, IHE BALP)."""
from __future__ import annotations

import asyncio
import http.client
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import hl7.client
import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from fhir_requests import created, observation, patient, send

from adapters.storage.base import Repository
from adapters.storage.query import parse_search
from gateway.app import create_app
from gateway.audit_trail import BackgroundWriter, capture_request, writer
from gateway.fhir.context import REPOSITORY_KEY
from gateway.hl7_http import ingestor
from gateway.mllp_server import MLLPServer
from gateway.security.principal import Principal
from gateway.settings import Settings, SettingsError
from tests.gateway.ingest_messages import GARBAGE, UNMAPPABLE_BIRTH_DATE, adt


def _repository(app: Flask) -> Repository:
    return app.extensions[REPOSITORY_KEY]


def audit_events(app: Flask, *pairs: tuple[str, str]) -> list[dict]:
    """AuditEvents straight from the store (reading them over HTTP would add one)."""
    result = _repository(app).search(parse_search("AuditEvent", [*pairs, ("_count", "1000")]))
    return list(result.matches)


class Trail:
    """Which AuditEvents appeared since the last call."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.seen = {event["id"] for event in audit_events(app)}

    def new(self) -> list[dict]:
        found = [event for event in audit_events(self.app) if event["id"] not in self.seen]
        self.seen |= {event["id"] for event in found}
        return found

    def one(self) -> dict:
        found = self.new()
        assert len(found) == 1, [event.get("subtype") for event in found]
        return found[0]


def _entities(event: dict, role: str | None = None) -> list[str]:
    return [e["what"]["reference"] for e in event.get("entity", [])
            if "reference" in e.get("what", {}) and (role is None or e["role"]["code"] == role)]


def _subtype(event: dict) -> str:
    return event["subtype"][0]["code"]


@pytest.fixture
def trail(app: Flask) -> Trail:
    return Trail(app)


@pytest.fixture
def stored(client: FlaskClient) -> dict[str, str]:
    """A Patient and one Observation about her."""
    pid = created(client, patient())["id"]
    oid = created(client, observation(pid))["id"]
    return {"patient": pid, "observation": oid}


def test_read_leaves_one_event_naming_the_patient_and_the_caller(client: FlaskClient, stored: dict, trail: Trail) -> None:
    assert client.get(f"/fhir/Patient/{stored['patient']}").status_code == 200
    event = trail.one()
    assert (event["type"]["code"], _subtype(event), event["action"], event["outcome"]) == ("rest", "read", "R", "0")
    assert _entities(event, role="1") == [f"Patient/{stored['patient']}"]
    [user] = [agent for agent in event["agent"] if agent["requestor"]]
    assert user["altId"] == "anonymous" and user["network"] == {"address": "127.0.0.1", "type": "2"}
    assert event["source"]["site"] == "PULSEBRIDGE" and event["source"]["observer"]["reference"] == "Device/pulsebridge"


def test_search_records_matches_and_parameter_names_only(client: FlaskClient, stored: dict, trail: Trail) -> None:
    response = client.get(f"/fhir/Observation?patient={stored['patient']}&code=http://loinc.org|8867-4&date=ge2024-01-01")
    assert response.status_code == 200 and response.get_json()["total"] == 1
    event = trail.one()
    assert (_subtype(event), event["action"]) == ("search-type", "E")
    assert set(_entities(event)) == {f"Patient/{stored['patient']}", f"Observation/{stored['observation']}"}
    [query] = [e for e in event["entity"] if e["role"]["code"] == "24"]
    assert query["detail"] == [{"type": "parameters", "valueString": "code,date,patient"}]
    assert "8867-4" not in str(event) and "2024-01-01" not in str(event)


@pytest.mark.parametrize(("method", "interaction", "action"), [("PUT", "update", "U"), ("DELETE", "delete", "D")])
def test_writes_leave_their_interaction(client: FlaskClient, stored: dict, trail: Trail, method: str, interaction: str, action: str) -> None:
    pid = stored["patient"]
    body = {**patient(), "id": pid, "gender": "male"} if method == "PUT" else None
    assert send(client, method, f"/fhir/Patient/{pid}", body).status_code in (200, 204)
    event = trail.one()
    assert (_subtype(event), event["action"], event["outcome"]) == (interaction, action, "0")
    assert _entities(event, role="1") == [f"Patient/{pid}"]


def test_create_names_the_new_resource(client: FlaskClient, stored: dict, trail: Trail) -> None:
    new = created(client, observation(stored["patient"]))
    event = trail.one()
    assert (_subtype(event), event["action"]) == ("create", "C")
    assert set(_entities(event)) == {f"Observation/{new['id']}", f"Patient/{stored['patient']}"}


def test_everything_is_an_operation_on_the_patient(client: FlaskClient, stored: dict, trail: Trail) -> None:
    bundle = client.get(f"/fhir/Patient/{stored['patient']}/$everything").get_json()
    assert "AuditEvent" not in {entry["resource"]["resourceType"] for entry in bundle["entry"]}  # the trail is no part of the record
    event = trail.one()
    assert (_subtype(event), event["action"]) == ("operation", "E")
    assert _entities(event, role="1") == [f"Patient/{stored['patient']}"]
    assert f"Observation/{stored['observation']}" in _entities(event)
    assert {"description": "$everything"}.items() <= next(e for e in event["entity"] if e["role"]["code"] == "24").items()


def test_transaction_names_what_it_wrote(client: FlaskClient, trail: Trail) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:7f0c8f7e-4c5e-4d1a-9c55-2d1a7a4b6f01", "resource": patient(),
         "request": {"method": "POST", "url": "Patient"}},
    ]}
    response = send(client, "POST", "/fhir", bundle)
    assert response.status_code == 200
    location = response.get_json()["entry"][0]["response"]["location"]
    event = trail.one()
    assert (_subtype(event), event["action"]) == ("transaction", "E")
    assert _entities(event) == ["/".join(location.split("/")[:2])]


def test_failures_are_minor_failures_with_codes_not_diagnostics(client: FlaskClient, trail: Trail) -> None:
    assert client.get("/fhir/Patient/nobody").status_code == 404
    missing = trail.one()
    assert (missing["outcome"], missing["outcomeDesc"]) == ("4", "HTTP 404: not-found")
    assert _entities(missing) == ["Patient/nobody"]
    assert client.get("/fhir/Patient?birthdate=notadate").status_code == 400
    bad = trail.one()
    assert bad["outcome"] == "4" and bad["outcomeDesc"].startswith("HTTP 400: ") and "notadate" not in str(bad)


def test_reading_the_trail_adds_exactly_one_event(client: FlaskClient, stored: dict, trail: Trail) -> None:
    trail.new()
    response = client.get(f"/fhir/AuditEvent?patient=Patient/{stored['patient']}")
    assert response.status_code == 200 and response.get_json()["total"] == 2  # the two creates
    event = trail.one()
    assert _subtype(event) == "search-type"
    assert sorted(ref.split("/")[0] for ref in _entities(event)) == ["AuditEvent", "AuditEvent", "Patient"]  # the two read, the patient asked about


def test_message_over_http_leaves_one_import_event(app: Flask, client: FlaskClient, trail: Trail) -> None:
    response = client.post("/hl7/v2", data=adt("AUD1"), content_type="application/hl7-v2")
    assert response.status_code == 200
    event = trail.one()
    assert (event["type"]["code"], event["subtype"][0]["code"], event["action"], event["outcome"]) == ("110107", "A08", "C", "0")
    sender, caller = event["agent"]
    assert sender["altId"] == "HIS^H1" and not sender["requestor"]
    assert caller["altId"] == "anonymous" and caller["requestor"]
    message = event["entity"][0]
    assert {d["type"]: d["valueString"] for d in message["detail"]} == {"MSH-9": "ADT^A08", "MSH-10": "AUD1", "transport": "http"}
    assert [ref.split("/")[0] for ref in _entities(event, role="1")] == ["Patient"]
    assert "Encounter" in {ref.split("/")[0] for ref in _entities(event)}


def test_failed_and_rejected_messages_are_audited_with_codes(app: Flask, trail: Trail) -> None:
    failed = ingestor(app).ingest(adt("AUD2", birth=UNMAPPABLE_BIRTH_DATE), peer="10.1.2.3", transport="file")
    assert failed.ack_code == "AE"
    event = trail.one()
    assert event["outcome"] == "8" and event["outcomeDesc"].startswith("ACK AE: HL7 error 102")
    assert UNMAPPABLE_BIRTH_DATE not in str(event)
    ingestor(app).ingest(GARBAGE, peer="10.1.2.3", transport="file")
    rejected = trail.one()
    assert rejected["outcome"] == "4" and rejected["agent"][0]["network"]["address"] == "10.1.2.3"


def test_message_over_mllp_leaves_one_event_from_the_sender(app: Flask, trail: Trail) -> None:
    loop = asyncio.new_event_loop()
    server = MLLPServer(ingestor(app), "127.0.0.1", 0)
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        with hl7.client.MLLPClient("127.0.0.1", server.port) as mllp:
            ack = mllp.send_message(adt("AUD3").decode())
        assert b"|AA|AUD3" in ack
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(grace=5), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
    event = trail.one()
    [sender] = event["agent"]
    assert sender["requestor"] and sender["network"]["address"] == "127.0.0.1" and event["outcome"] == "0"


@pytest.fixture
def signed_in_app(tmp_path: Path) -> Iterator[Flask]:
    """An app whose callers are a signed-in clinician, as the access layer names them (gateway/security/principal.py contract)."""
    app = create_app({"TESTING": True, "DB": f"sqlite:///{tmp_path / 'signed-in.db'}"})

    @app.before_request
    def authenticated() -> None:
        g.principal = Principal("dr-li", "ward-app", ("user/*.rs",), address="10.0.0.7", authenticated=True,
                                claims={"iss": "https://idp.example", "fhirUser": "https://fhir.example/Practitioner/p1"})

    yield app
    _repository(app).close()


def test_events_are_searchable_by_patient_date_agent_and_outcome(signed_in_app: Flask) -> None:
    app, client = signed_in_app, signed_in_app.test_client()
    stored = {"patient": created(client, patient())["id"]}
    client.get(f"/fhir/Patient/{stored['patient']}")
    client.get("/fhir/Patient/nobody")

    def found(query: str) -> int:
        return len(audit_events(app, *parse_qsl(query)))  # from the store: a search over HTTP is itself audited

    pid = stored["patient"]
    assert found(f"patient=Patient/{pid}&agent=Practitioner/p1") == 2  # the create and the read
    assert found("agent=Practitioner/p1") == 3 and found("altid=dr-li") == 3 and found("address=10.0.0.7") == 3
    assert found("agent=Practitioner/p1&outcome=4") == 1
    assert found("agent=Practitioner/p1&date=ge2000-01-01&subtype=read&action=R&type=rest") == 2
    assert found("date=lt2000-01-01") == 0
    assert found(f"entity=Patient/{pid}&site=PULSEBRIDGE&source=Device/pulsebridge&subtype=read") == 1
    response = client.get(f"/fhir/AuditEvent?patient=Patient/{pid}&agent=Practitioner/p1&outcome=0")
    assert response.status_code == 200 and response.get_json()["total"] == 2
    [client_app] = [a for a in audit_events(app, ("altid", "dr-li"))[0]["agent"] if not a["requestor"]]
    assert client_app["who"]["identifier"]["value"] == "ward-app"


def test_admin_requests_are_audited(client: FlaskClient, trail: Trail) -> None:
    assert client.get("/admin/deadletters").status_code == 200
    event = trail.one()
    assert (event["type"]["code"], event["action"]) == ("110112", "E")


def test_a_failing_audit_store_never_fails_a_read(app: Flask, client: FlaskClient, stored: dict,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    database = app.config["DB"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON resources WHEN NEW.resource_type = 'AuditEvent' "
                     "BEGIN SELECT RAISE(ABORT, 'audit store refused'); END")
    with caplog.at_level(logging.ERROR, logger="gateway.audit_trail"):
        response = client.get(f"/fhir/Patient/{stored['patient']}")
    assert response.status_code == 200 and response.get_json()["name"][0]["family"] == "Chen"
    assert any("audit event lost" in record.getMessage() for record in caplog.records)
    assert not any("Chen" in record.getMessage() or stored["patient"] in record.getMessage() for record in caplog.records)


def test_background_writer_batches_and_flushes(tmp_path: Path) -> None:
    app = create_app({"TESTING": True, "AUDIT_WRITER": "background", "DB": f"sqlite:///{tmp_path / 'bg.db'}"})
    try:
        client = app.test_client()
        for _ in range(25):
            assert client.get("/fhir/Patient/nobody").status_code == 404
        audit_writer = writer(app)
        assert audit_writer is not None
        audit_writer.flush()
        assert len(audit_events(app, ("subtype", "read"))) == 25
    finally:
        _repository(app).close()


def test_audit_setting_turns_the_trail_off(tmp_path: Path) -> None:
    app = create_app({"TESTING": True, "AUDIT": False, "DB": f"sqlite:///{tmp_path / 'off.db'}"})
    try:
        app.test_client().get("/fhir/Patient/nobody")
        assert writer(app) is None and audit_events(app) == []
    finally:
        _repository(app).close()
    assert Settings.from_env({"PULSEBRIDGE_AUDIT": "off"}).audit is False
    assert Settings.from_env({}).audit is True
    with pytest.raises(SettingsError, match="PULSEBRIDGE_AUDIT"):
        Settings.from_env({"PULSEBRIDGE_AUDIT": "sometimes"})



def test_a_full_queue_waits_and_an_idle_writer_restarts(tmp_path: Path) -> None:
    app = create_app({"TESTING": True, "AUDIT": False, "DB": f"sqlite:///{tmp_path / 'queue.db'}"})
    try:
        audit_writer = BackgroundWriter(_repository(app), interval=0.01, capacity=1, idle_rounds=1)
        with app.test_request_context("/fhir/Patient/nobody"):
            capture = capture_request(app.response_class(status=404))
        assert capture is not None
        for _ in range(20):
            audit_writer.submit(capture)  # capacity 1: each waits for room, none is dropped
        audit_writer.flush()
        assert len(audit_events(app)) == 20
        deadline = time.monotonic() + 10
        while audit_writer._thread is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert audit_writer._thread is None  # idle: the thread ended
        audit_writer.submit(capture)
        audit_writer.flush()
        assert len(audit_events(app)) == 21
    finally:
        _repository(app).close()


def test_the_server_flushes_its_trail_when_stopped(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'served.db'}"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--http", f"127.0.0.1:{port}", "--mllp", "off", "--db", database, "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline and server.poll() is None, "server did not start"
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                if response.read() and response.status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        for _ in range(30):
            connection.request("GET", "/fhir/Patient/nobody")
            assert connection.getresponse().read()
        connection.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    from adapters.storage import open_repository

    repository = open_repository(database)
    try:
        stored = repository.search(parse_search("AuditEvent", [("subtype", "read"), ("_count", "100")])).matches
        assert len(stored) == 30
    finally:
        repository.close()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_store_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The app on each backend: the trail must be written and searched the same way on all of them."""
    if request.param == "memory":
        from adapters.storage.memory import MemoryRepository

        store: Repository = MemoryRepository()
    elif request.param == "sqlite":
        from adapters.storage.sqlite import SQLiteRepository

        store = SQLiteRepository(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        url = os.environ.get("PULSEBRIDGE_TEST_PG")
        if not url:
            pytest.skip("needs PULSEBRIDGE_TEST_PG (e.g. postgresql://127.0.0.1:5432/test)")
        import psycopg
        from psycopg import sql

        from adapters.storage.postgresql import PostgreSQLRepository

        schema = f"pb_audit_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        store = PostgreSQLRepository(url, schema=schema)
        request.addfinalizer(lambda: _drop_schema(psycopg, sql, url, schema))
    app = create_app({"TESTING": True, "REPOSITORY": store})
    yield app
    store.close()


def _drop_schema(psycopg: Any, sql: Any, url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_every_backend_stores_and_searches_the_trail(any_store_app: Flask) -> None:
    client = any_store_app.test_client()
    assert client.post("/hl7/v2", data=adt("AUD9"), content_type="application/hl7-v2").status_code == 200
    [imported] = audit_events(any_store_app, ("type", "http://dicom.nema.org/resources/ontology/DCM|110107"))
    [patient_ref] = _entities(imported, role="1")
    assert client.get(f"/fhir/{patient_ref}").status_code == 200
    assert client.get("/fhir/Patient/nobody").status_code == 404
    assert len(audit_events(any_store_app, ("patient", patient_ref))) == 2
    assert len(audit_events(any_store_app, ("outcome", "4"), ("date", "ge2000-01-01"), ("altid", "anonymous"))) == 1
    assert len(audit_events(any_store_app, ("source", "Device/pulsebridge"), ("site", "PULSEBRIDGE"))) == 3


def test_bearer_token_callers_and_refusals_are_named(tmp_path: Path) -> None:
    from gateway.security.access import token_settings
    from gateway.settings import SETTINGS_KEY
    from gateway.security.tokens import mint

    secret = "audit-trail-test-secret-0123456789abcdef"
    app = create_app({"TESTING": True, "AUTH_SECRET": secret, "DB": f"sqlite:///{tmp_path / 'auth.db'}"})
    try:
        client = app.test_client()
        settings = token_settings(app.extensions[SETTINGS_KEY])
        writer_token = mint(settings, "system/*.cruds system/AuditEvent.rs", subject="integration-engine")
        bearer = {"Authorization": f"Bearer {writer_token}"}
        pid = send(client, "POST", "/fhir/Patient", patient(), **bearer).get_json()["id"]
        patient_token = mint(settings, "patient/*.rs", subject="patient-app-user", patient=pid)
        assert client.get(f"/fhir/Patient/{pid}", headers={"Authorization": f"Bearer {patient_token}"}).status_code == 200
        assert client.get(f"/fhir/Patient/{pid}").status_code == 401
        assert client.get("/fhir/AuditEvent", headers={"Authorization": f"Bearer {patient_token}"}).status_code == 403
        by_subject = {event["agent"][0]["altId"]: event for event in audit_events(app, ("patient", f"Patient/{pid}"))}
        assert set(by_subject) == {"integration-engine", "patient-app-user", "unknown"}
        assert (_subtype(by_subject["unknown"]), by_subject["unknown"]["outcome"]) == ("read", "4")
        assert by_subject["patient-app-user"]["outcome"] == "0"
        [refused] = audit_events(app, ("altid", "patient-app-user"), ("outcome", "4"))
        assert _subtype(refused) == "search-type" and refused["outcomeDesc"].startswith("HTTP 403")
        trail = client.get(f"/fhir/AuditEvent?patient=Patient/{pid}", headers=bearer)
        assert trail.status_code == 200 and trail.get_json()["total"] == 3
    finally:
        _repository(app).close()


def test_the_trail_is_append_only_through_the_api(app: Flask, client: FlaskClient, stored: dict) -> None:
    event = audit_events(app)[0]
    path = f"/fhir/AuditEvent/{event['id']}"
    refused = [
        client.delete(path),
        client.put(path, json=event, content_type="application/fhir+json"),
        client.post("/fhir/AuditEvent", json=event, content_type="application/fhir+json"),
        client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                   "entry": [{"request": {"method": "DELETE", "url": path.removeprefix("/fhir/")}}]}),
    ]
    assert [response.status_code for response in refused] == [405, 405, 405, 405]
    assert refused[0].get_json()["issue"][0]["code"] == "not-supported"
    assert client.get(path).status_code == 200
    declared = next(r for r in client.get("/fhir/metadata").get_json()["rest"][0]["resource"] if r["type"] == "AuditEvent")
    assert {i["code"] for i in declared["interaction"]} == {"read", "vread", "search-type", "history-instance", "history-type"}
