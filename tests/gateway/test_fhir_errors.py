"""Every error is an OperationOutcome with the status FHIR R4 http.html prescribes; never HTML, never a stack trace."""
from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from fhir_requests import created, observation, patient, send

from adapters.storage.base import Repository


def outcome_of(response) -> dict:  # noqa: ANN001
    assert response.content_type.startswith("application/fhir+json"), response.data[:200]
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["severity"] in ("error", "fatal")
    return body


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("GET", "/fhir/Patient/does-not-exist", 404),
        ("GET", "/fhir/NoSuchType/1", 404),
        ("GET", "/fhir/NoSuchType", 404),
        ("GET", "/fhir/Patient?unknown-param=1", 400),
        ("GET", "/fhir/Observation?date=not-a-date", 400),
        ("GET", "/fhir/Patient?_count=-1", 400),
        ("GET", "/fhir/Patient?_sort=nonsense", 400),
        ("GET", "/fhir/Patient?_include=Nope:x", 400),
        ("GET", "/fhir/Patient/_history?_since=yesterday", 400),
        ("GET", "/fhir/Patient/1/x/y/z", 404),
        ("GET", "/nowhere", 404),
        ("PATCH", "/fhir/Patient/1", 405),
        ("DELETE", "/fhir/Patient", 405),
        ("GET", "/fhir/Patient/1?_format=xml", 406),
        ("GET", "/fhir/metadata?_format=application/fhir%2Bxml", 406),
    ],
)
def test_error_statuses(client: FlaskClient, method: str, url: str, status: int) -> None:
    response = client.open(url, method=method)
    assert response.status_code == status
    outcome_of(response)


def test_405_names_the_allowed_methods(client: FlaskClient) -> None:
    response = client.open("/fhir/Patient/1", method="PATCH")
    assert {"GET", "PUT", "DELETE"} <= {method.strip() for method in response.headers["Allow"].split(",")}


def test_accept_xml_only_is_406_but_browsers_get_json(client: FlaskClient) -> None:
    assert client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"}).status_code == 406
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert client.get("/fhir/metadata", headers={"Accept": browser}).status_code == 200


def test_xml_body_is_415(client: FlaskClient) -> None:
    response = client.post("/fhir/Patient", data="<Patient xmlns='http://hl7.org/fhir'/>", headers={"Content-Type": "application/fhir+xml"})
    assert response.status_code == 415
    outcome_of(response)


def test_malformed_json_and_non_object_are_400(client: FlaskClient) -> None:
    assert client.post("/fhir/Patient", data="{not json", headers={"Content-Type": "application/fhir+json"}).status_code == 400
    assert client.post("/fhir/Patient", data="[1, 2]", headers={"Content-Type": "application/fhir+json"}).status_code == 400
    assert client.post("/fhir/Patient", headers={"Content-Type": "application/fhir+json"}).status_code == 400


def test_invalid_resource_is_422_naming_the_element(client: FlaskClient) -> None:
    bad = patient(birthDate="1980-13-45")
    bad["name"][0]["given"] = "Wei"  # must be a list
    response = send(client, "POST", "/fhir/Patient", bad)
    assert response.status_code == 422
    issue = outcome_of(response)["issue"][0]
    assert "Patient.birthDate" in issue["expression"] and "Patient.name[0].given" in issue["expression"]
    unknown = send(client, "POST", "/fhir/Patient", patient(favouriteColour="blue"))
    assert unknown.status_code == 422 and outcome_of(unknown)["issue"][0]["expression"] == ["Patient.favouriteColour"]
    missing = send(client, "POST", "/fhir/Observation", {"resourceType": "Observation", "status": "final"})
    assert missing.status_code == 422 and "Observation.code" in outcome_of(missing)["issue"][0]["expression"]


def test_resource_type_and_id_mismatches_are_400(client: FlaskClient) -> None:
    assert send(client, "POST", "/fhir/Patient", observation("x")).status_code == 400
    assert send(client, "PUT", "/fhir/Patient/a", patient(id="b")).status_code == 400
    assert send(client, "PUT", "/fhir/Patient/a", patient()).status_code == 400
    assert send(client, "PUT", "/fhir/Observation/a", patient(id="a")).status_code == 400


def test_bad_if_match_is_400(client: FlaskClient) -> None:
    pid = created(client, patient())["id"]
    assert send(client, "PUT", f"/fhir/Patient/{pid}", patient(id=pid), If_Match="yesterday").status_code == 400


class _Exploding(Repository):
    """A repository whose every call fails the way a broken database would."""

    def _fail(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("disk I/O error at /var/lib/secret/path.db")

    create = read = vread = update = delete = history = search = transaction = _fail  # type: ignore[assignment]


def test_unexpected_errors_are_a_generic_500_outcome_without_internals(tmp_path) -> None:  # noqa: ANN001
    from gateway.app import create_app

    app: Flask = create_app({"REPOSITORY": _Exploding()})
    response = app.test_client().get("/fhir/Patient/1")
    assert response.status_code == 500
    body = outcome_of(response)
    assert "secret" not in response.get_data(as_text=True) and "Traceback" not in response.get_data(as_text=True)
    assert body["issue"][0]["code"] == "exception"
