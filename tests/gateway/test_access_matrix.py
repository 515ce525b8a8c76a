"""Tokens x routes: each request allowed or refused as SMART v2 scopes and patient binding say (issue 7, "Proof").

Each cell is one request with one token against one app holding two patients' records (tests/gateway/auth_records.py).
Cells answered 2xx to a patient-bound token are also checked to hold nothing of patient B.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from adapters.storage import open_repository
from gateway.app import create_app
from tests.gateway.auth_records import A, B_MARKERS, SECRET, bearer, encounter, observation, seed

SAMPLE = Path(__file__).resolve().parents[2] / "gateway" / "samples" / "adt-a01-zh.hl7"


def _expired() -> dict[str, str]:
    return bearer("system/*.cruds", now=time.time() - 7200)


def _bad_signature() -> dict[str, str]:
    token = jwt.encode({"sub": "x", "scope": "system/*.cruds", "exp": int(time.time()) + 600}, "another-secret-of-thirty-two-bytes!!", algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def _alg_none() -> dict[str, str]:
    token = jwt.encode({"sub": "x", "scope": "system/*.cruds", "exp": int(time.time()) + 600}, None, algorithm="none")
    return {"Authorization": f"Bearer {token}"}


TOKENS = {
    "anonymous": lambda: {},
    "expired": _expired,
    "bad-signature": _bad_signature,
    "alg-none": _alg_none,
    "patient/*.rs A": lambda: bearer("patient/*.rs", A),
    "patient/Observation.rs A": lambda: bearer("patient/Observation.rs", A),
    "patient/*.cruds A": lambda: bearer("patient/*.cruds", A),
    "user/*.rs": lambda: bearer("user/*.rs"),
    "user/*.cruds": lambda: bearer("user/*.cruds"),
    "system/*.cruds": lambda: bearer("system/*.cruds"),
    "system/Bundle.c": lambda: bearer("system/Bundle.c"),
    "user/AuditEvent.rs": lambda: bearer("user/AuditEvent.rs"),
}
PATIENT_TOKENS = ("patient/*.rs A", "patient/Observation.rs A", "patient/*.cruds A")
INVALID = ("anonymous", "expired", "bad-signature", "alg-none")
VALID = tuple(name for name in TOKENS if name not in INVALID)


def _transaction(kind: str, entry: dict) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": [entry]}


def _put_entry(resource: dict) -> dict:
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


NEW_OBSERVATION = {key: value for key, value in observation("ignored", A).items() if key != "id"}
# route name -> (method, url, body)
ROUTES: dict[str, tuple[str, str, object]] = {
    "read own Patient": ("GET", f"/fhir/Patient/{A}", None),
    "read linked Patient": ("GET", "/fhir/Patient/pat-a2", None),
    "read other Patient": ("GET", "/fhir/Patient/pat-b", None),
    "read own Observation": ("GET", "/fhir/Observation/obs-a", None),
    "read other Observation": ("GET", "/fhir/Observation/obs-b", None),
    "vread other Observation": ("GET", "/fhir/Observation/obs-b/_history/1", None),
    "read Practitioner": ("GET", "/fhir/Practitioner/doc-1", None),
    "search Observation": ("GET", "/fhir/Observation", None),
    "search Patient": ("GET", "/fhir/Patient", None),
    "search with _include": ("GET", "/fhir/Observation?_include=Observation:subject&_include=Observation:performer", None),
    "search with _revinclude": ("GET", "/fhir/Practitioner?_revinclude=Observation:performer", None),
    "chained through subject": ("GET", "/fhir/Observation?subject:Patient.name=Bra", None),
    "chained through performer": ("GET", "/fhir/Observation?performer:Patient.name=Alp", None),
    "history own instance": ("GET", "/fhir/Observation/obs-a/_history", None),
    "history other instance": ("GET", "/fhir/Observation/obs-b/_history", None),
    "history type": ("GET", "/fhir/Observation/_history", None),
    "history system": ("GET", "/fhir/_history", None),
    "$everything own": ("GET", f"/fhir/Patient/{A}/$everything", None),
    "$everything other": ("GET", "/fhir/Patient/pat-b/$everything", None),
    "$summary own encounter": ("GET", "/fhir/Encounter/enc-a/$summary", None),
    "$summary other encounter": ("GET", "/fhir/Encounter/enc-b/$summary", None),
    "$summary own patient": ("GET", f"/fhir/Patient/{A}/$summary", None),
    "$summary other patient": ("GET", "/fhir/Patient/pat-b/$summary", None),
    "transaction write own": ("POST", "/fhir", _transaction("transaction", _put_entry(observation("obs-tx", A)))),
    "transaction read other": ("POST", "/fhir", _transaction("transaction", {"request": {"method": "GET", "url": "Observation/obs-b"}})),
    "create own Observation": ("POST", "/fhir/Observation", NEW_OBSERVATION),
    "update own Observation": ("PUT", "/fhir/Observation/obs-a", observation("obs-a", A, performer="Practitioner/doc-1")),
    "update to other patient": ("PUT", "/fhir/Observation/obs-new", observation("obs-new", "pat-b")),
    "delete own Observation": ("DELETE", "/fhir/Observation/obs-del", None),
    "create Encounter for other": ("POST", "/fhir/Encounter", {k: v for k, v in encounter("x", "pat-b").items() if k != "id"}),
    "search AuditEvent": ("GET", "/fhir/AuditEvent", None),
    "HL7 v2 POST": ("POST", "/hl7/v2", SAMPLE.read_bytes()),
    "admin dead letters": ("GET", "/admin/deadletters", None),
    "metadata": ("GET", "/fhir/metadata", None),
    "smart configuration": ("GET", "/fhir/.well-known/smart-configuration", None),
}

OPEN = ("metadata", "smart configuration")
# route -> expected status for each valid token, in VALID order:
#   pat*.rs  patObs.rs pat*.cruds user*.rs user*.cruds sys*.cruds sysBundle.c userAudit.rs
EXPECTED: dict[str, tuple[int, ...]] = {
    "read own Patient":            (200, 403, 200, 200, 200, 200, 403, 403),
    "read linked Patient":         (200, 403, 200, 200, 200, 200, 403, 403),
    "read other Patient":          (404, 403, 404, 200, 200, 200, 403, 403),
    "read own Observation":        (200, 200, 200, 200, 200, 200, 403, 403),
    "read other Observation":      (404, 404, 404, 200, 200, 200, 403, 403),
    "vread other Observation":     (404, 404, 404, 200, 200, 200, 403, 403),
    "read Practitioner":           (200, 403, 200, 200, 200, 200, 403, 403),
    "search Observation":          (200, 200, 200, 200, 200, 200, 403, 403),
    "search Patient":              (200, 403, 200, 200, 200, 200, 403, 403),
    "search with _include":        (200, 200, 200, 200, 200, 200, 403, 403),
    "search with _revinclude":     (200, 403, 200, 200, 200, 200, 403, 403),
    "chained through subject":     (200, 200, 200, 200, 200, 200, 403, 403),
    "chained through performer":   (403, 403, 403, 200, 200, 200, 403, 403),
    "history own instance":        (200, 200, 200, 200, 200, 200, 403, 403),
    "history other instance":      (404, 404, 404, 200, 200, 200, 403, 403),
    "history type":                (403, 403, 403, 200, 200, 200, 403, 403),
    "history system":              (403, 403, 403, 200, 200, 200, 403, 403),
    "$everything own":             (200, 403, 200, 200, 200, 200, 403, 403),
    "$everything other":           (404, 403, 404, 200, 200, 200, 403, 403),
    "$summary own encounter":      (200, 403, 200, 200, 200, 200, 403, 403),
    "$summary other encounter":    (404, 403, 404, 200, 200, 200, 403, 403),
    "$summary own patient":        (200, 403, 200, 200, 200, 200, 403, 403),
    "$summary other patient":      (404, 403, 404, 200, 200, 200, 403, 403),
    "transaction write own":       (403, 403, 200, 403, 200, 200, 403, 403),
    "transaction read other":      (404, 404, 404, 200, 200, 200, 403, 403),
    "create own Observation":      (403, 403, 201, 403, 201, 201, 403, 403),
    "update own Observation":      (403, 403, 200, 403, 200, 200, 403, 403),
    "update to other patient":     (403, 403, 403, 403, 201, 201, 403, 403),
    "delete own Observation":      (403, 403, 200, 403, 200, 200, 403, 403),
    "create Encounter for other":  (403, 403, 403, 403, 201, 201, 403, 403),
    "search AuditEvent":           (403, 403, 403, 403, 403, 403, 403, 200),
    "HL7 v2 POST":                 (403, 403, 403, 403, 403, 200, 200, 403),
    "admin dead letters":          (403, 403, 403, 403, 403, 200, 403, 403),
}


def _expected(route: str, token: str) -> tuple[int, ...]:
    """Allowed statuses; a PUT that creates (201) or updates (200) is the same success."""
    if route in OPEN:
        return (200,)
    if token in INVALID:
        return (401,)
    status = EXPECTED[route][VALID.index(token)]
    return (200, 201) if status in (200, 201) and ROUTES[route][0] == "PUT" else (status,)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    store = open_repository(f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'matrix.db'}")
    seed(store)
    app: Flask = create_app({"TESTING": True, "REPOSITORY": store, "AUTH_SECRET": SECRET, "AUDIT": False})
    yield app.test_client()
    store.close()


@pytest.mark.parametrize("token", list(TOKENS))
@pytest.mark.parametrize("route", list(ROUTES))
def test_cell(client: FlaskClient, route: str, token: str) -> None:
    method, url, body = ROUTES[route]
    headers = TOKENS[token]()
    if isinstance(body, bytes):
        response = client.open(url, method=method, data=body, headers=headers)
    else:
        response = client.open(url, method=method, json=body, headers=headers)
    assert response.status_code in _expected(route, token), response.get_data(as_text=True)[:400]
    if response.status_code == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    if response.status_code in (401, 403):
        assert response.get_json()["resourceType"] == "OperationOutcome"
        assert response.get_json()["issue"][0]["code"] == ("login" if response.status_code == 401 else "forbidden")
    if token in PATIENT_TOKENS and response.status_code < 300:
        text = response.get_data(as_text=True)
        assert not [marker for marker in B_MARKERS if marker in text], text[:400]


def test_matrix_covers_every_route_and_token() -> None:
    assert set(EXPECTED) | set(OPEN) == set(ROUTES)
    assert all(len(row) == len(VALID) for row in EXPECTED.values())
