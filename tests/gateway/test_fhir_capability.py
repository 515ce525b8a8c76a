"""The CapabilityStatement is valid R4 and everything it declares is served (FHIR R4 capabilitystatement.html)."""
from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from gateway.fhir.capability import SERVER_RECORDED_TYPES, WRITE_INTERACTIONS
from gateway.fhir.routes import ROUTES

# A well-formed value for each search parameter type (search.html#ptypes).
SAMPLE_VALUES = {
    "token": "http://loinc.org|8867-4",
    "string": "chen",
    "date": "ge2024-01-01",
    "reference": "Patient/p1",
    "quantity": "gt5.4|http://unitsofmeasure.org|mg",
    "number": "lt100",
    "uri": "http://example.org/fhir/StructureDefinition/x",
}


@pytest.fixture
def statement(client: FlaskClient) -> dict:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    return response.get_json()


def test_statement_is_valid_r4_and_json_only(statement: dict) -> None:
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance" and statement["implementation"]["url"] == "http://localhost/fhir"
    assert not any("xml" in fmt for fmt in statement["format"])


def test_declared_interactions_are_exactly_the_route_table(statement: dict) -> None:
    rest = statement["rest"][0]
    declared_system = {item["code"] for item in rest["interaction"]}
    assert declared_system == {"transaction", "batch", "history-system"}
    routed = {code for route in ROUTES if route.level != "system" for code in route.interactions}
    for resource in rest["resource"]:
        expected = routed - WRITE_INTERACTIONS if resource["type"] in SERVER_RECORDED_TYPES else routed
        assert {item["code"] for item in resource["interaction"]} == expected
    patient = next(resource for resource in rest["resource"] if resource["type"] == "Patient")
    assert patient["conditionalCreate"] and patient["conditionalUpdate"] and patient["conditionalDelete"] == "not-supported"


def test_every_declared_type_is_served(client: FlaskClient, statement: dict) -> None:
    for resource in statement["rest"][0]["resource"]:
        response = client.get(f"/fhir/{resource['type']}/no-such-id")
        assert response.status_code == 404 and response.get_json()["issue"][0]["code"] == "not-found", resource["type"]


def test_every_declared_search_parameter_works(client: FlaskClient, statement: dict) -> None:
    failures = []
    for resource in statement["rest"][0]["resource"]:
        for param in resource["searchParam"]:
            value = SAMPLE_VALUES[param["type"]]
            for name, raw in ((param["name"], value), (f"{param['name']}:missing", "true")):
                response = client.get(f"/fhir/{resource['type']}", query_string={name: raw})
                if response.status_code != 200:
                    failures.append(f"{resource['type']}?{name}={raw}: {response.status_code} {response.get_json()}")
    assert not failures, "\n".join(failures[:20])


def test_every_declared_include_and_revinclude_works(client: FlaskClient, statement: dict) -> None:
    failures = []
    for resource in statement["rest"][0]["resource"]:
        for kind in ("searchInclude", "searchRevInclude"):
            for spec in resource.get(kind, []):
                parameter = "_include" if kind == "searchInclude" else "_revinclude"
                response = client.get(f"/fhir/{resource['type']}", query_string={parameter: spec})
                if response.status_code != 200:
                    failures.append(f"{resource['type']}?{parameter}={spec}: {response.status_code}")
    assert not failures, "\n".join(failures[:20])
