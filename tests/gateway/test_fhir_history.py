"""Instance, type and system history (FHIR R4 http.html#history)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from fhir_requests import created, observation, patient, send

from gateway.app import create_app
from gateway.fhir.context import REPOSITORY_KEY


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """System history counts every resource, AuditEvents too: here the audit trail is off (tests/gateway/test_audit_trail.py covers it)."""
    app = create_app({"TESTING": True, "AUDIT": False, "DB": f"sqlite:///{tmp_path / 'api.db'}"})
    yield app
    app.extensions[REPOSITORY_KEY].close()


def test_instance_history_lists_versions_newest_first_with_requests(client: FlaskClient) -> None:
    first = created(client, patient())
    pid = first["id"]
    send(client, "PUT", f"/fhir/Patient/{pid}", {**first, "gender": "male"})
    client.delete(f"/fhir/Patient/{pid}")
    bundle = client.get(f"/fhir/Patient/{pid}/_history").get_json()
    assert bundle["type"] == "history" and bundle["total"] == 3
    methods = [entry["request"]["method"] for entry in bundle["entry"]]
    assert methods == ["DELETE", "PUT", "POST"]
    assert "resource" not in bundle["entry"][0]
    assert bundle["entry"][1]["resource"]["gender"] == "male"
    assert [entry["response"]["etag"] for entry in bundle["entry"]] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert bundle["entry"][2]["request"]["url"] == "Patient"
    assert bundle["entry"][1]["fullUrl"] == f"http://localhost/fhir/Patient/{pid}"


def test_history_of_an_unknown_instance_is_404(client: FlaskClient) -> None:
    assert client.get("/fhir/Patient/nobody/_history").status_code == 404


def test_type_and_system_history_with_paging_and_since(client: FlaskClient) -> None:
    pid = created(client, patient())["id"]
    for _ in range(3):
        created(client, observation(pid))
    assert client.get("/fhir/Observation/_history").get_json()["total"] == 3
    system = client.get("/fhir/_history?_count=2").get_json()
    assert system["total"] == 4 and len(system["entry"]) == 2
    next_url = next(item["url"] for item in system["link"] if item["relation"] == "next")
    rest = client.get(next_url.removeprefix("http://localhost")).get_json()
    assert len(rest["entry"]) == 2
    assert {entry["fullUrl"] for entry in system["entry"]}.isdisjoint(entry["fullUrl"] for entry in rest["entry"])
    assert client.get("/fhir/_history?_since=2999-01-01T00:00:00Z").get_json()["total"] == 0
    assert client.get("/fhir/_history?_since=2000-01-01T00:00:00%2B08:00").get_json()["total"] == 4
