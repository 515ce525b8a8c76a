"""The access rules one by one: principal on every request, patient binding details, the last-line check,
SMART configuration and CapabilityStatement security (gateway.security.access, gateway.security.smart)."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, Response, g
from flask.testing import FlaskClient

from adapters.storage import open_repository
from adapters.storage.query import parse_search
from gateway.app import create_app
from gateway.fhir.context import REPOSITORY_KEY
from gateway.fhir.representation import fhir_response
from gateway.fhir.routes import ROUTES
from gateway.security.confinement import ConfinedRepository, Forbidden, confine, confine_criteria
from gateway.security.principal import Principal
from tests.gateway.auth_records import A, A2, SECRET, bearer, observation, seed
from tests.gateway.test_tokens import public_jwk, write_jwks

OWN = frozenset({A, A2})


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    store = open_repository(f"sqlite:///{tmp_path / 'rules.db'}")
    seed(store)
    app = create_app({"TESTING": True, "REPOSITORY": store, "AUTH_SECRET": SECRET, "AUDIT": False})
    seen: list[Principal] = []
    app.after_request(lambda response: seen.append(g.principal) or response)
    app.config["SEEN"] = seen
    yield app
    store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _ids(response: Response) -> list[str]:
    return sorted(entry["resource"]["id"] for entry in response.get_json().get("entry", []) if "resource" in entry)


# --- the principal ----------------------------------------------------------------------------


def test_every_request_leaves_a_principal_for_the_audit_trail(app: Flask, client: FlaskClient) -> None:
    client.get("/fhir/Patient")
    client.get("/fhir/Patient", headers={"Authorization": "Bearer nonsense"})
    client.get("/fhir/Patient", headers=bearer("user/*.rs"))
    client.get("/admin/deadletters", headers=bearer("user/*.rs"))
    client.get("/healthz")
    missing, unknown, user, refused, health = app.config["SEEN"]
    assert (missing.subject, missing.authenticated) == ("unknown", False)
    assert (unknown.subject, unknown.authenticated) == ("unknown", False)
    assert (user.subject, user.authenticated, user.scopes) == ("tester", True, ("user/*.rs",))
    assert refused.subject == "tester" and refused.address == "127.0.0.1"
    assert (health.subject, health.authenticated) == ("anonymous", False)


def test_without_authentication_the_caller_is_anonymous_local(tmp_path: Path) -> None:
    app = create_app({"TESTING": True, "DB": f"sqlite:///{tmp_path / 'open.db'}", "AUDIT": False})
    seen: list[Principal] = []
    app.after_request(lambda response: seen.append(g.principal) or response)
    assert app.test_client().get("/fhir/Patient").status_code == 200
    assert seen[0].subject == "anonymous" and seen[0].address == "127.0.0.1" and seen[0].scopes == ("system/*.cruds",)
    assert not isinstance(app.extensions[REPOSITORY_KEY], ConfinedRepository)
    app.extensions[REPOSITORY_KEY].close()


def test_401_names_the_reason_and_the_bearer_scheme(client: FlaskClient) -> None:
    response = client.get("/fhir/Patient", headers=bearer("user/*.rs", now=time.time() - 7200))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert "expired" in response.get_json()["issue"][0]["diagnostics"]
    basic = client.get("/fhir/Patient", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert basic.status_code == 401 and basic.headers["WWW-Authenticate"] == 'Bearer realm="pulsebridge"'


def test_a_malformed_resource_scope_makes_the_token_invalid(client: FlaskClient) -> None:
    response = client.get("/fhir/Patient", headers=bearer("user/Patient.sr"))
    assert response.status_code == 401 and "permissions" in response.get_json()["issue"][0]["diagnostics"]


def test_403_carries_insufficient_scope_and_the_scopes_that_would_do(client: FlaskClient) -> None:
    response = client.post("/hl7/v2", data=b"MSH|", headers=bearer("user/*.cruds"))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert 'scope="system/Bundle.c"' in response.headers["WWW-Authenticate"]


def test_patient_scopes_without_a_patient_claim_grant_nothing(client: FlaskClient) -> None:
    assert client.get("/fhir/Observation", headers=bearer("patient/*.rs")).status_code == 403


def test_a_query_restricted_scope_is_refused_by_name(client: FlaskClient) -> None:
    response = client.get("/fhir/Observation", headers=bearer("patient/Observation.rs?category=laboratory", A))
    assert response.status_code == 403
    assert "query restriction" in response.get_json()["issue"][0]["diagnostics"]


def test_rs256_tokens_from_a_jwks_file_are_accepted(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwks = write_jwks(tmp_path / "keys.json", public_jwk(key, "k1"))
    app = create_app({"TESTING": True, "DB": "memory://", "AUTH_JWKS": jwks, "AUDIT": False})
    token = jwt.encode({"sub": "ehr", "scope": "system/*.rs", "exp": int(time.time()) + 60}, key, algorithm="ES256", headers={"kid": "k1"})
    client = app.test_client()
    assert client.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    hs = jwt.encode({"sub": "x", "scope": "system/*.rs", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    assert client.get("/fhir/Patient", headers={"Authorization": f"Bearer {hs}"}).status_code == 401


def test_bad_configuration_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        create_app({"DB": "memory://", "AUTH_SECRET": "short"})
    with pytest.raises(ValueError, match="AUTH_JWKS: .* is not a readable file"):
        create_app({"DB": "memory://", "AUTH_JWKS": str(tmp_path / "none.json")})


# --- patient binding --------------------------------------------------------------------------


def test_searches_are_confined_by_an_added_compartment_filter() -> None:
    query = parse_search("Observation", [("code", "8867-4")])
    confined = confine(query, OWN)
    added = confined.filters[-1]
    assert added.name == "subject" and {value.raw for value in added.values} == {"Patient/pat-a", "Patient/pat-a2"}
    own = parse_search("Observation", [("subject", "Patient/pat-a")])
    assert confine(own, OWN) is own  # already confined: nothing added
    other = parse_search("Observation", [("subject", "Patient/pat-b")])
    assert len(confine(other, OWN).filters) == 2  # AND-ed: nothing of B can match
    patients = confine(parse_search("Patient", []), OWN)
    assert patients.filters[0].name == "_id"
    assert confine(parse_search("Practitioner", [("name", "Chen")]), OWN).filters[0].name == "name"  # outside the compartment


def test_chains_that_could_reach_another_patient_are_refused() -> None:
    with pytest.raises(Forbidden, match="performer"):
        confine(parse_search("Observation", [("performer:Patient.name", "x")]), OWN)
    with pytest.raises(Forbidden):
        confine(parse_search("Patient", [("link.name", "x")]), OWN)
    assert confine(parse_search("Observation", [("subject.name", "x")]), OWN).filters[-1].name == "subject"


def test_entry_criteria_are_confined_in_the_url() -> None:
    assert confine_criteria("Observation", "code=8867-4", OWN) == "code=8867-4&subject=Patient%2Fpat-a%2CPatient%2Fpat-a2"
    assert confine_criteria("Observation", "subject=Patient/pat-a", OWN) == "subject=Patient/pat-a"


def test_batch_entries_are_checked_one_by_one(client: FlaskClient) -> None:
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation/obs-b"}},
        {"request": {"method": "GET", "url": "Observation/obs-a"}},
        {"request": {"method": "GET", "url": "Observation?code=8867-4"}},
        {"resource": observation("obs-x", "pat-b"), "request": {"method": "PUT", "url": "Observation/obs-x"}},
        {"request": {"method": "GET", "url": "Practitioner/doc-1"}},
    ]}
    response = client.post("/fhir", json=batch, headers=bearer("patient/Observation.cruds", A))
    entries = response.get_json()["entry"]
    assert [entry["response"]["status"][:3] for entry in entries] == ["404", "200", "200", "403", "403"]
    assert sorted(item["resource"]["id"] for item in entries[2]["resource"]["entry"]) == ["obs-a", "obs-a2", "obs-del"]


def test_conditional_create_matches_only_within_the_compartment(client: FlaskClient) -> None:
    """If-None-Exist must not find (and hand back) another patient's resource."""
    body = {key: value for key, value in observation("x", A).items() if key != "id"}
    response = client.post("/fhir/Observation", json=body, headers={**bearer("patient/*.cruds", A), "If-None-Exist": "subject=Patient/pat-b"})
    assert response.status_code == 201 and response.get_json()["subject"]["reference"] == "Patient/pat-a"


def test_another_patients_deleted_record_is_not_known_rather_than_gone(client: FlaskClient) -> None:
    system = bearer("system/*.cruds")
    assert client.delete("/fhir/Observation/obs-b", headers=system).status_code == 200
    assert client.delete("/fhir/Observation/obs-del", headers=system).status_code == 200
    patient = bearer("patient/*.rs", A)
    assert client.get("/fhir/Observation/obs-b", headers=patient).status_code == 404
    assert client.get("/fhir/Observation/obs-del", headers=patient).status_code == 410


def test_user_scopes_are_not_bound_even_with_a_patient_claim(client: FlaskClient) -> None:
    response = client.get("/fhir/Observation", headers=bearer("user/*.rs", A))
    assert "obs-b" in _ids(response)


def test_the_last_line_refuses_an_answer_with_another_patients_record(app: Flask) -> None:
    """A handler that (by some bug) answers with B's record: the guarded wrapper turns it into a 403."""
    from gateway.security.access import _guarded

    leaky = fhir_response({"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": observation("obs-a", A)}, {"resource": observation("obs-b", "pat-b")}]})
    store = app.extensions[REPOSITORY_KEY].inner
    view = _guarded(lambda: leaky, ROUTES[0], store)
    with app.test_request_context("/fhir/Observation"):
        g.principal = Principal("tester", scopes=("patient/*.rs",), patient=A, authenticated=True)
        with pytest.raises(Forbidden, match="outside what this token may see"):
            view()
        g.principal = Principal("tester", scopes=("user/*.rs",), authenticated=True)
        assert view() is leaky


# --- discovery ----------------------------------------------------------------------------------


def test_smart_configuration_says_what_is_supported(client: FlaskClient) -> None:
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        response = client.get(path)
        assert response.status_code == 200 and response.mimetype == "application/json"
        document = response.get_json()
        assert "permission-v2" in document["capabilities"] and "patient/*.rs" in document["scopes_supported"]
        assert "token_endpoint" not in document and "token_endpoint" in document["pulsebridge_absent_fields"]
        assert document["pulsebridge_access_token_algorithms"] == ["HS256"]


def test_capability_statement_declares_smart_security_only_when_on(client: FlaskClient, tmp_path: Path) -> None:
    security = client.get("/fhir/metadata").get_json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    open_app = create_app({"TESTING": True, "DB": "memory://", "AUDIT": False})
    assert "security" not in open_app.test_client().get("/fhir/metadata").get_json()["rest"][0]
    assert open_app.test_client().get("/.well-known/smart-configuration").status_code == 404


def test_open_endpoints_answer_without_a_token(client: FlaskClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/fhir/metadata").status_code == 200
    assert client.get("/fhir/no-such-type/x/y/z").status_code == 401  # unknown paths still need a token
    assert json.loads(client.get("/fhir/metadata", headers={"Authorization": "Bearer junk"}).get_data())["resourceType"] == "CapabilityStatement"


def test_conditional_update_cannot_overwrite_another_patients_record(client: FlaskClient) -> None:
    body = {key: value for key, value in observation("x", A).items() if key != "id"}
    response = client.put("/fhir/Observation?_id=obs-b", json=body, headers=bearer("patient/*.cruds", A))
    assert response.status_code == 201 and response.get_json()["id"] != "obs-b"  # no match inside A's record: a new one
    untouched = client.get("/fhir/Observation/obs-b", headers=bearer("system/*.cruds")).get_json()
    assert untouched["subject"]["reference"] == "Patient/pat-b" and untouched["meta"]["versionId"] == "1"


def test_store_helpers_outside_the_interface_are_refused_to_patient_tokens(app: Flask) -> None:
    from gateway.security.access import grants_of
    from gateway.security.confinement import Guard

    confined = app.extensions[REPOSITORY_KEY]
    with app.test_request_context("/fhir/Observation"):
        bound = Principal("tester", scopes=("patient/*.rs",), patient=A, authenticated=True)
        g.access_guard = Guard(grants_of(bound), A, confined.inner)
        with pytest.raises(Forbidden, match="'dialect'"):
            confined.dialect  # noqa: B018 - the attribute access is the test
        g.access_guard = Guard(grants_of(Principal("ehr", scopes=("system/*.rs",), authenticated=True)), None, confined.inner)
        assert confined.dialect == confined.inner.dialect


def test_the_html_view_of_a_summary_is_confined_like_the_document(client: FlaskClient) -> None:
    token = bearer("patient/*.rs", patient=A)
    own = client.get("/fhir/Encounter/enc-a/$summary?_format=html", headers=token)
    assert own.status_code == 200 and own.mimetype == "text/html"
    for path in ("/fhir/Encounter/enc-b/$summary", "/fhir/Patient/pat-b/$summary"):
        refused = client.get(path, headers={**token, "Accept": "text/html"})
        assert refused.status_code == 404
        assert "Bravo" not in refused.get_data(as_text=True)
