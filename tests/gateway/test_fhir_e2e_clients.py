"""End to end: the real `pulsebridge serve` process driven by the PyPI FHIR clients fhirclient (SMART) and fhirpy."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the server on a free loopback port and a fresh SQLite file; stop it afterwards."""
    port = _free_port()
    db = tmp_path_factory.mktemp("e2e") / "e2e.db"
    log = tmp_path_factory.mktemp("e2e-log") / "server.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--http", f"127.0.0.1:{port}", "--db", f"sqlite:///{db}"],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/fhir"
    try:
        _wait_until_up(base, server, log)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_up(base: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"server exited with {server.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if requests.get(f"{base}/metadata", timeout=1).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # a worker still booting holds the request past the 1 s timeout
            pass
        time.sleep(0.1)
    pytest.fail(f"server did not answer /fhir/metadata within 20 s:\n{log.read_text(errors='replace')[-3000:]}")


# --- fhirclient (the SMART on FHIR Python client) ---------------------------------------------


@pytest.fixture(scope="module")
def smart(base_url: str):  # noqa: ANN201
    from fhirclient import client

    return client.FHIRClient(settings={"app_id": "pulsebridge-e2e", "api_base": base_url + "/"})


def test_fhirclient_reads_the_capability_statement(smart) -> None:  # noqa: ANN001
    statement = smart.server.capabilityStatement
    assert statement.fhirVersion == "4.0.1"
    assert "Observation" in {resource.type for resource in statement.rest[0].resource}


def test_fhirclient_create_read_update_search(smart) -> None:  # noqa: ANN001
    from fhirclient.models.observation import Observation
    from fhirclient.models.patient import Patient

    made = Patient({"name": [{"family": "王", "given": ["小明"]}], "gender": "male", "birthDate": "1990-03-07"}).create(smart.server)
    pid = made["id"]
    patient = Patient.read(pid, smart.server)
    assert patient.name[0].family == "王" and patient.meta.versionId == "1"
    patient.gender = "other"
    patient.update(smart.server)
    assert Patient.read(pid, smart.server).gender == "other"
    for day in range(1, 13):
        Observation(
            {
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": f"Patient/{pid}"},
                "effectiveDateTime": f"2024-05-{day:02d}T09:00:00+08:00",
                "valueQuantity": {"value": 60 + day, "unit": "/min"},
            }
        ).create(smart.server)
    search = Observation.where(struct={"subject": f"Patient/{pid}", "code": "http://loinc.org|8867-4", "_count": "5"})
    pages = list(search.perform_iter(smart.server))
    assert len(pages) == 3 and pages[0].total == 12
    found = [resource.id for page in pages for resource in (entry.resource for entry in page.entry or [])]
    assert len(set(found)) == 12


# --- fhirpy --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fhirpy_client(base_url: str):  # noqa: ANN201
    from fhirpy import SyncFHIRClient

    return SyncFHIRClient(base_url)


def test_fhirpy_create_read_update_refresh(fhirpy_client) -> None:  # noqa: ANN001
    patient = fhirpy_client.resource("Patient", name=[{"family": "Fhirpy", "given": ["Ann"]}], gender="female")
    patient.save()
    assert patient.id and patient["meta"]["versionId"] == "1"
    read = fhirpy_client.reference("Patient", patient.id).to_resource()
    assert read["name"][0]["family"] == "Fhirpy"
    read["gender"] = "male"
    read.save()
    assert read["meta"]["versionId"] == "2"
    patient.refresh()  # sends If-None-Match with the stale version: gets the new one
    assert patient["gender"] == "male" and patient["meta"]["versionId"] == "2"
    patient.refresh()  # now current: the server answers 304 and fhirpy keeps what it has
    assert patient["meta"]["versionId"] == "2"


def test_fhirpy_search_pages_to_the_last_page(fhirpy_client) -> None:  # noqa: ANN001
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": {"resourceType": "Patient", "name": [{"family": "Paging", "given": [f"P{n}"]}]}, "request": {"method": "POST", "url": "Patient"}}
            for n in range(23)
        ],
    }
    response = fhirpy_client.execute("", method="post", data=bundle)
    assert response["type"] == "transaction-response" and len(response["entry"]) == 23
    search = fhirpy_client.resources("Patient").search(family="Paging").limit(10)
    assert search.fetch_raw()["total"] == 23
    everyone = search.fetch_all()
    assert len(everyone) == 23 and len({patient.id for patient in everyone}) == 23
    from fhirpy import SyncFHIRClient

    # fhirpy's count() adds a vendor parameter (_totalMethod); lenient handling ignores it (search.html#errors).
    lenient = SyncFHIRClient(fhirpy_client.url, extra_headers={"Prefer": "handling=lenient"})
    assert lenient.resources("Patient").search(family="Paging").count() == 23


def test_fhirpy_conditional_create_and_get_or_create(fhirpy_client) -> None:  # noqa: ANN001
    identifier = [{"system": "urn:oid:1.2.156.112604.1.2.1", "value": "440301199001011234"}]
    first = fhirpy_client.resource("Patient", identifier=identifier, name=[{"family": "Li"}])
    first.create(identifier="urn:oid:1.2.156.112604.1.2.1|440301199001011234")
    again = fhirpy_client.resource("Patient", identifier=identifier, name=[{"family": "Li"}])
    again.create(identifier="urn:oid:1.2.156.112604.1.2.1|440301199001011234")
    assert again.id == first.id

    searchset = fhirpy_client.resources("Patient").search(identifier="urn:oid:1.2.156.112604.1.2.1|440301199001011234")
    found, created = searchset.get_or_create(fhirpy_client.resource("Patient", identifier=identifier))
    assert not created and found.id == first.id
    fresh = fhirpy_client.resources("Patient").search(identifier="urn:mrn|NEW-1")
    made, created = fresh.get_or_create(fhirpy_client.resource("Patient", identifier=[{"system": "urn:mrn", "value": "NEW-1"}]))
    assert created and made.id

    updated, created = fresh.update(fhirpy_client.resource("Patient", identifier=[{"system": "urn:mrn", "value": "NEW-1"}], gender="female"))
    assert not created and updated.id == made.id and updated["gender"] == "female"


def test_errors_reach_clients_as_operation_outcomes(base_url: str, fhirpy_client) -> None:  # noqa: ANN001
    from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound

    with pytest.raises(ResourceNotFound):
        fhirpy_client.reference("Patient", "nobody").to_resource()
    with pytest.raises(OperationOutcome):
        fhirpy_client.resource("Patient", birthDate="not-a-date").save()
    html = requests.get(f"{base_url}/Patient/x/y/z", timeout=5)
    assert html.status_code == 404 and html.json()["resourceType"] == "OperationOutcome"
