"""Search through the API: parameters, paging links, _summary, _elements, _include/_revinclude, POST _search (FHIR R4 search.html)."""
from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from fhir_requests import created, observation, patient, send

from gateway.settings import SETTINGS_KEY


@pytest.fixture
def ward(client: FlaskClient) -> dict[str, list[str]]:
    """Two patients; seven heart-rate observations for the first, one body-weight observation for the second."""
    first = created(client, patient("Chen", "Wei"))["id"]
    second = created(client, patient("Smith", "Anna", gender="male"))["id"]
    observations = [created(client, observation(first, value=60 + day, when=f"2024-03-0{day}T08:00:00+08:00"))["id"] for day in range(1, 8)]
    observations.append(created(client, observation(second, code="29463-7", value=81.5))["id"])
    return {"patients": [first, second], "observations": observations}


def link(bundle: dict, relation: str) -> str | None:
    return next((item["url"] for item in bundle["link"] if item["relation"] == relation), None)


def test_search_by_patient_code_and_date(client: FlaskClient, ward: dict) -> None:
    first = ward["patients"][0]
    bundle = client.get(f"/fhir/Observation?patient={first}&code=http://loinc.org|8867-4&date=ge2024-03-04&date=lt2024-03-07").get_json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == 3
    assert {entry["search"]["mode"] for entry in bundle["entry"]} == {"match"}
    assert all(entry["fullUrl"].startswith("http://localhost/fhir/Observation/") for entry in bundle["entry"])


def test_paging_links_are_absolute_and_walk_every_page(client: FlaskClient, ward: dict) -> None:
    url = f"/fhir/Observation?subject=Patient/{ward['patients'][0]}&_count=3&_sort=date"
    seen: list[str] = []
    page = client.get(url).get_json()
    assert page["total"] == 7 and link(page, "previous") is None
    last = link(page, "last")
    assert last and parse_qs(urlsplit(last).query)["_offset"] == ["6"]
    while True:
        seen += [entry["resource"]["id"] for entry in page.get("entry", [])]
        next_url = link(page, "next")
        if next_url is None:
            break
        assert next_url.startswith("http://localhost/fhir/Observation?")
        page = client.get(next_url.removeprefix("http://localhost")).get_json()
    assert link(page, "self") == last and link(page, "previous")
    assert len(seen) == 7 and len(set(seen)) == 7
    values = [client.get(f"/fhir/Observation/{oid}").get_json()["effectiveDateTime"] for oid in seen]
    assert values == sorted(values)


def test_links_use_the_host_the_client_called(client: FlaskClient, ward: dict) -> None:
    bundle = client.get("/fhir/Patient?_count=1", base_url="https://fhir.example.org:8443").get_json()
    assert link(bundle, "next").startswith("https://fhir.example.org:8443/fhir/Patient?")
    assert bundle["entry"][0]["fullUrl"].startswith("https://fhir.example.org:8443/fhir/Patient/")


def test_forwarded_host_is_honoured_only_with_the_setting() -> None:
    from adapters.storage.memory import MemoryRepository
    from gateway.app import create_app

    forwarded = {"X-Forwarded-Host": "proxy.example.org", "X-Forwarded-Proto": "https"}
    for trust, expected in ((False, "http://localhost/"), (True, "https://proxy.example.org/")):
        app = create_app({"REPOSITORY": MemoryRepository(), "TRUST_PROXY": trust})
        bundle = app.test_client().get("/fhir/Patient", headers=forwarded).get_json()
        assert link(bundle, "self").startswith(expected + "fhir/Patient")


def test_summary_count_gives_only_the_total(client: FlaskClient, ward: dict) -> None:
    bundle = client.get("/fhir/Observation?_summary=count").get_json()
    assert bundle["total"] == 8 and "entry" not in bundle


def test_summary_true_and_elements_are_subsetted(client: FlaskClient, ward: dict) -> None:
    summary = client.get("/fhir/Observation?_summary=true&_count=1").get_json()["entry"][0]["resource"]
    assert summary["meta"]["tag"][-1]["code"] == "SUBSETTED"
    assert "valueQuantity" in summary and "subject" in summary  # value[x] and subject are summary elements
    elements = client.get("/fhir/Observation?_elements=code,value[x]&_count=1").get_json()["entry"][0]["resource"]
    assert set(elements) == {"resourceType", "id", "meta", "code", "valueQuantity"}
    assert elements["meta"]["tag"][-1]["code"] == "SUBSETTED"


def test_total_none_omits_the_total(client: FlaskClient, ward: dict) -> None:
    assert "total" not in client.get("/fhir/Observation?_total=none").get_json()


def test_include_and_revinclude_are_marked_include(client: FlaskClient, ward: dict) -> None:
    first = ward["patients"][0]
    bundle = client.get(f"/fhir/Observation?subject=Patient/{first}&_include=Observation:subject").get_json()
    modes = [(entry["resource"]["resourceType"], entry["search"]["mode"]) for entry in bundle["entry"]]
    assert ("Patient", "include") in modes and modes.count(("Observation", "match")) == 7
    rev = client.get(f"/fhir/Patient?_id={first}&_revinclude=Observation:subject").get_json()
    assert [entry["search"]["mode"] for entry in rev["entry"]].count("include") == 7


def test_post_search_equals_get_search(client: FlaskClient, ward: dict) -> None:
    by_get = client.get("/fhir/Patient?family=chen").get_json()
    by_post = client.post("/fhir/Patient/_search", data={"family": "chen"})
    assert by_post.status_code == 200
    assert [e["resource"]["id"] for e in by_post.get_json()["entry"]] == [e["resource"]["id"] for e in by_get["entry"]]
    assert link(by_post.get_json(), "self").startswith("http://localhost/fhir/Patient?family=chen")
    assert send(client, "POST", "/fhir/Patient/_search", {"family": "chen"}).status_code == 415


def test_modifiers_and_chains(client: FlaskClient, ward: dict) -> None:
    assert client.get("/fhir/Patient?family:exact=Chen").get_json()["total"] == 1
    assert client.get("/fhir/Patient?family:exact=chen").get_json()["total"] == 0
    assert client.get("/fhir/Patient?name:contains=mit").get_json()["total"] == 1
    assert client.get("/fhir/Patient?gender:not=male").get_json()["total"] == 1
    assert client.get("/fhir/Observation?subject:Patient.family=Smith").get_json()["total"] == 1
    assert client.get("/fhir/Observation?value-quantity=gt80").get_json()["total"] == 1


def test_count_is_capped_and_defaulted(client: FlaskClient, ward: dict) -> None:
    settings = client.application.extensions[SETTINGS_KEY]
    client.application.extensions[SETTINGS_KEY] = replace(settings, page_size=2)
    assert len(client.get("/fhir/Observation").get_json()["entry"]) == 2
    assert len(client.get("/fhir/Observation?_count=5").get_json()["entry"]) == 5


def test_prefer_handling_lenient_ignores_unknown_parameters(client: FlaskClient, ward: dict) -> None:
    assert client.get("/fhir/Patient?family=chen&_totalMethod=count").status_code == 400
    lenient = client.get("/fhir/Patient?family=chen&_totalMethod=count", headers={"Prefer": "handling=lenient"}).get_json()
    assert lenient["total"] == 1 and "_totalMethod" not in link(lenient, "self")
