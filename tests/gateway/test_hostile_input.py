"""Bad and hostile input over HTTP (issue 7, part 3): body limits, deep or broken JSON, control characters,
SQL/JSON injection in search parameters (SQLite and PostgreSQL), and a hypothesis fuzz of search strings.

Every case gets a clear 4xx OperationOutcome or is neutralised (a normal answer about nothing); never a 500,
never another patient's data.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.fhir.context import REPOSITORY_KEY
from gateway.fhir.representation import MAX_JSON_DEPTH
from tests.gateway.pg_schema import PG_URL, own_schema
FHIR_JSON = "application/fhir+json"
SEEDED = {"alpha": ("Alpha", "A-1"), "beta": ("Beta", "B-2")}


def _seed(client: FlaskClient) -> None:
    for rid, (family, mrn) in SEEDED.items():
        patient = {"resourceType": "Patient", "id": rid, "name": [{"family": family}],
                   "identifier": [{"system": "urn:oid:1.2.3", "value": mrn}]}
        assert client.put(f"/fhir/Patient/{rid}", json=patient).status_code in (200, 201)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FlaskClient]:
    """A test client on SQLite or PostgreSQL (its own schema), holding the two SEEDED patients."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            app = create_app({"TESTING": True, "DB": f"sqlite:///{tmp_path / 'hostile.db'}"})
        else:
            from adapters.storage.postgresql import PostgreSQLRepository

            schema = stack.enter_context(own_schema("pb_hostile"))
            app = create_app({"TESTING": True, "REPOSITORY": PostgreSQLRepository(PG_URL, schema=schema)})
        stack.callback(app.extensions[REPOSITORY_KEY].close)
        client = app.test_client()
        _seed(client)
        yield client


def _issue(response) -> dict:  # noqa: ANN001 - a werkzeug TestResponse
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"][0]


def _ids(response) -> set[str]:  # noqa: ANN001
    assert response.status_code == 200, response.get_data(as_text=True)
    return {entry["resource"]["id"] for entry in response.get_json().get("entry", []) if entry["search"]["mode"] == "match"}


# -- request bodies ---------------------------------------------------------------------------------


@pytest.fixture
def small_app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "DB": f"sqlite:///{tmp_path / 'small.db'}", "MAX_BODY_BYTES": "2K"})
    yield app
    app.extensions[REPOSITORY_KEY].close()


@pytest.mark.parametrize(("path", "content_type"), [
    ("/fhir/Patient", FHIR_JSON), ("/fhir", FHIR_JSON), ("/hl7/v2", "application/hl7-v2"),
    ("/fhir/Patient/_search", "application/x-www-form-urlencoded"),
])
def test_a_body_over_max_body_bytes_gets_413(small_app: Flask, path: str, content_type: str) -> None:
    client = small_app.test_client()
    body = b'{"resourceType":"Patient","text":"' + b"x" * 3000 + b'"}'
    if content_type.endswith("urlencoded"):
        body = b"name=" + b"x" * 3000
    response = client.post(path, data=body, content_type=content_type)
    assert response.status_code == 413
    assert _issue(response)["code"] == "too-costly"
    small = client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "female"})
    assert small.status_code == 201


def _nested_extensions(levels: int) -> bytes:
    """A Patient whose extension nests `levels` extensions deep (2 JSON levels each), as JSON text."""
    head = b'{"url":"http://example.org/nest","extension":['
    leaf = b'{"url":"http://example.org/leaf","valueString":"x"}'
    return b'{"resourceType":"Patient","extension":[' + head * levels + leaf + b"]}" * levels + b"]}"


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH // 2 + 1, 400, 3000])
def test_json_nested_beyond_the_limit_is_400_never_a_recursion_error(client: FlaskClient, levels: int) -> None:
    response = client.post("/fhir/Patient", data=_nested_extensions(levels), content_type=FHIR_JSON)
    assert response.status_code == 400
    assert "levels deep" in _issue(response)["diagnostics"] or "depth" in _issue(response)["diagnostics"]


def test_json_nested_just_within_the_limit_gets_an_ordinary_answer(client: FlaskClient) -> None:
    response = client.post("/fhir/Patient", data=_nested_extensions(MAX_JSON_DEPTH // 2 - 2), content_type=FHIR_JSON)
    assert response.status_code in (201, 422), response.get_data(as_text=True)[:300]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": orjson.loads(_nested_extensions(MAX_JSON_DEPTH // 2 - 4)), "request": {"method": "POST", "url": "Patient"}}]}
    response = client.post("/fhir", data=orjson.dumps(bundle), content_type=FHIR_JSON)
    assert 200 <= response.status_code < 500, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize(("body", "expected"), [
    (b"\xff\xfe{}", "not valid JSON"), (b'{"resourceType":"Patient","gender":"\xed\xa0\x80"}', "not valid JSON"),
    (b"[1, 2]", "not a JSON object"), (b'"Patient"', "not a JSON object"), (b"null", "not a JSON object"),
    (b"", "no body"), (b'{"resourceType":"Patient",', "not valid JSON"), (b"NaN", "not valid JSON"),
])
def test_broken_or_non_object_json_is_400(client: FlaskClient, body: bytes, expected: str) -> None:
    response = client.post("/fhir/Patient", data=body, content_type=FHIR_JSON)
    assert response.status_code == 400
    assert expected in _issue(response)["diagnostics"]


def test_control_characters_in_a_resource_are_422_and_an_escaped_backslash_is_fine(seeded: FlaskClient) -> None:
    for text in ("a\u0000b", "bell\u0007", "esc\u001b[31m"):
        body = orjson.dumps({"resourceType": "Patient", "name": [{"family": text}]})
        response = seeded.post("/fhir/Patient", data=body, content_type=FHIR_JSON)
        assert response.status_code == 422, response.get_data(as_text=True)
        assert "control character" in _issue(response)["diagnostics"]
    fine = seeded.post("/fhir/Patient", data=rb'{"resourceType":"Patient","name":[{"family":"back\\u0000slash","given":["tab\tok"]}]}',
                       content_type=FHIR_JSON)
    assert fine.status_code == 201, fine.get_data(as_text=True)
    assert fine.get_json()["name"][0]["family"] == "back\\u0000slash"


# -- search parameters ------------------------------------------------------------------------------

NEUTRAL = [
    "name=' OR 1=1--", "name=%' OR '%'='", "name:contains=%", "name:contains=_", "name=*", "name=\\", "family=Alpha' --",
    "identifier=urn:oid:1.2.3|' OR '1'='1", "identifier=|A-1' OR 1=1", "_id=alpha' OR '1'='1", "_id=*",
    'name={"$gt":""}', 'name=["Alpha","Beta"]', "name=\u202eahplA", "name=\ufeffAlpha",
    "given=%22%3B%20DROP%20TABLE%20resources%3B--", "address=%u0000",
]
REFUSED = [
    "_sort=id;DROP TABLE resources", "_sort=name);--", "_count=-1", "_count=1e9", "_count=1;DROP", "birthdate=ge' OR 1=1",
    "_lastUpdated=gt9999-99-99", "name=%00", "name:exact=Al%00pha", "identifier=%00|x", "_id=%00", "organization.name=%00",
    "_include=Patient:organization;DROP", "_summary=true;--", "_total=accurate'", "name%00=Alpha", "_has:x:y:z=1",
]


@pytest.mark.parametrize("query", NEUTRAL)
def test_injection_attempts_in_search_values_match_nothing(seeded: FlaskClient, query: str) -> None:
    name, _, value = query.partition("=")
    response = seeded.get(f"/fhir/Patient?{name}={quote(value, safe='%')}")
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    if response.status_code == 200:
        assert _ids(response) == set(), query
    else:
        assert _issue(response)["code"] in ("invalid", "not-supported")


@pytest.mark.parametrize("query", REFUSED)
def test_malformed_or_hostile_parameters_get_400_and_the_store_is_intact(seeded: FlaskClient, query: str) -> None:
    name, _, value = query.partition("=")
    response = seeded.get(f"/fhir/Patient?{name}={quote(value, safe='%')}")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert _issue(response)["severity"] == "error"
    assert _ids(seeded.get("/fhir/Patient")) == set(SEEDED)


@pytest.mark.parametrize("elements", ["name,(select 1)", "*", "name,identifier;--", "resourceType,meta,../../etc"])
def test_elements_only_narrows_what_is_returned(seeded: FlaskClient, elements: str) -> None:
    response = seeded.get(f"/fhir/Patient?_elements={quote(elements)}")
    found = [entry["resource"] for entry in response.get_json()["entry"]]
    assert response.status_code == 200 and {patient["id"] for patient in found} == set(SEEDED)
    assert all(set(patient) <= {"resourceType", "id", "meta", "name", "identifier", "implicitRules"} for patient in found)


def test_a_huge_count_is_capped_and_control_characters_in_paths_are_400(seeded: FlaskClient) -> None:
    response = seeded.get(f"/fhir/Patient?_count={10**30}")
    assert _ids(response) == set(SEEDED)
    assert "_count=1000" in response.get_json()["link"][0]["url"]
    for path in ("/fhir/Patient/al%00pha", "/fhir/Patient/alpha/_history/%001", "/fhir/Patient/alpha%0A"):
        assert seeded.get(path).status_code in (400, 404)
    assert seeded.post("/fhir/Patient/_search", data={"name": "Al\x00pha"}).status_code == 400
    assert _ids(seeded.post("/fhir/Patient/_search", data={"name": "Alpha"})) == {"alpha"}


def test_real_values_still_find_their_patient(seeded: FlaskClient) -> None:
    assert _ids(seeded.get("/fhir/Patient?name=alp")) == {"alpha"}
    assert _ids(seeded.get("/fhir/Patient?name=Ａｌｐｈａ")) == {"alpha"}  # compatibility forms fold (search.html#string)
    assert _ids(seeded.get("/fhir/Patient?identifier=urn:oid:1.2.3|B-2")) == {"beta"}


PATIENT_PARAMETERS = ["name", "family", "given", "identifier", "birthdate", "gender", "_id", "_lastUpdated", "address",
                      "telecom", "organization", "_sort", "_count", "_elements", "_include", "_summary", "_total",
                      "name:exact", "name:contains", "identifier:text", "birthdate:missing", "general-practitioner.name"]
_names = st.one_of(st.sampled_from(PATIENT_PARAMETERS), st.text(min_size=1, max_size=20))
_values = st.one_of(st.text(max_size=40), st.sampled_from(["' OR 1=1--", "%", "_", "\\", "eq", "ge2020", "|", "a|b|c", "$", "*"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.lists(st.tuples(_names, _values), min_size=1, max_size=4))
def test_fuzzed_search_parameters_never_get_a_5xx(client: FlaskClient, params: list[tuple[str, str]]) -> None:
    query = "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in params)
    response = client.get(f"/fhir/Patient?{query}")
    assert response.status_code < 500, (query, response.get_data(as_text=True)[:300])
    assert response.get_json()["resourceType"] in ("Bundle", "OperationOutcome")


# -- the same against the running server ------------------------------------------------------------


@pytest.mark.e2e
def test_hostile_requests_against_the_running_server(tmp_path: Path) -> None:
    import requests

    from tests.gateway.served_gateway import ServedGateway

    gateway = ServedGateway(tmp_path, env={"PULSEBRIDGE_MAX_BODY_BYTES": "4K"})
    fhir = f"{gateway.base}/fhir"
    headers = {"Content-Type": FHIR_JSON}
    try:
        assert requests.put(f"{fhir}/Patient/alpha", json={"resourceType": "Patient", "id": "alpha", "name": [{"family": "Alpha"}]},
                            timeout=10).status_code == 201
        big = b'{"resourceType":"Patient","gender":"' + b"x" * 8192 + b'"}'
        sized = requests.post(f"{fhir}/Patient", data=big, headers=headers, timeout=10)
        assert sized.status_code == 413 and sized.json()["issue"][0]["code"] == "too-costly"
        chunked = requests.post(f"{fhir}/Patient", data=iter([big[:4000], big[4000:]]), headers=headers, timeout=10)
        assert chunked.status_code == 413
        assert requests.post(f"{gateway.base}/hl7/v2", data=b"MSH|" + b"x" * 8192, timeout=10).status_code == 413
        deep = requests.post(f"{fhir}/Patient", data=_nested_extensions(60), headers=headers, timeout=10)
        assert deep.status_code == 400 and deep.json()["resourceType"] == "OperationOutcome"
        for query, status in (("name=' OR 1=1--", 200), ("_sort=id;DROP TABLE resources", 400), ("name=Al%00pha", 400),
                              (f"_count={10**40}", 200), ("_elements=name,(select 1)", 200)):
            name, _, value = query.partition("=")
            response = requests.get(f"{fhir}/Patient?{name}={quote(value, safe='%')}", timeout=10)
            assert response.status_code == status, (query, response.text)
            assert response.headers["Content-Type"].startswith(FHIR_JSON)
        assert requests.get(f"{fhir}/Patient", params={"name": "' OR 1=1--"}, timeout=10).json()["total"] == 0
        traversal = requests.get(f"{gateway.base}/fhir/..%2F..%2F..%2Fetc%2Fpasswd", timeout=10)
        assert traversal.status_code in (400, 404) and "root:" not in traversal.text
        assert requests.get(f"{fhir}/Patient", timeout=10).json()["total"] == 1
        assert gateway.alive()
    finally:
        output = gateway.stop()
    assert "Traceback" not in output
