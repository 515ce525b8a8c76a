"""Encounter/$summary (FHIR R4 documents.html) over a journey ingested as HL7 v2 through POST /hl7/v2."""
from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from conformance.validation import validate_bundle
from gateway.summary.language import negotiate
from tests.gateway.test_everything import FHIR, ingest, journey, only

SECTION_CODES = ["29299-5", "11450-4", "48765-2", "8716-3", "30954-2", "10160-0", "47519-4", "11369-6", "18776-5", "34109-9"]


@pytest.fixture
def encounter_id(client: FlaskClient) -> str:
    ingest(client, journey())
    return only(client, "Encounter?identifier=V100")["id"]


def summary(client: FlaskClient, encounter_id: str, **headers: str) -> tuple[dict, dict[str, dict], dict[str, dict]]:
    """The document, its sections by LOINC code and its resources by 'Type/id'."""
    query = headers.pop("query", "")
    response = client.get(f"/fhir/Encounter/{encounter_id}/$summary{query}", headers={**FHIR, **headers})
    assert response.status_code == 200, response.get_data(as_text=True)
    document = response.get_json()
    composition = document["entry"][0]["resource"]
    sections = {section["code"]["coding"][0]["code"]: section for section in composition["section"]}
    resources = {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"] for e in document["entry"][1:]}
    return document, sections, resources


def entry_codes(section: dict, resources: dict[str, dict]) -> list[str]:
    found = []
    for entry in section.get("entry", []):
        resource = resources[entry["reference"]]
        concept = resource.get("code") or {"coding": [{"code": resource["resourceType"]}]}
        found.append(concept["coding"][0]["code"])
    return found


def test_summary_is_a_valid_document_bundle(client: FlaskClient, encounter_id: str) -> None:
    document, sections, resources = summary(client, encounter_id)
    assert document["type"] == "document" and document["timestamp"] and document["identifier"]["value"].startswith("urn:uuid:")
    composition = document["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition"
    # A finished inpatient stay (A01 ... A03): a discharge summary.
    assert composition["type"]["coding"][0]["code"] == "18842-5"
    assert list(sections) == SECTION_CODES
    issues = [issue for issue in validate_bundle(document, strict_references=True) if issue.is_error]
    assert issues == []
    # Every entry is referenced by the Composition or by another entry.
    referenced = {ref for resource in [composition, *resources.values()] for ref in _references(resource)}
    assert set(resources) <= referenced


def _references(value: object) -> set[str]:
    from gateway.fhir.compartment import references

    return {f"{kind}/{rid}" for kind, rid in references(value)}


def test_each_fact_once_in_its_section(client: FlaskClient, encounter_id: str) -> None:
    _, sections, resources = summary(client, encounter_id)
    assert [entry["reference"] for entry in sections["29299-5"]["entry"]] == [f"Encounter/{encounter_id}"]
    assert sorted(entry_codes(sections["11450-4"], resources)) == ["E11.9", "I10"]
    assert entry_codes(sections["48765-2"], resources) == ["70618"]
    assert sorted(entry_codes(sections["8716-3"], resources)) == ["8480-6", "8867-4"]
    assert entry_codes(sections["30954-2"], resources) == ["24331-1", "2093-3", "2571-8"]
    assert [entry["reference"].split("/")[0] for entry in sections["18776-5"]["entry"]] == ["Appointment"]
    for code in ("10160-0", "47519-4", "11369-6"):
        assert "entry" not in sections[code]
        assert sections[code]["emptyReason"]["coding"][0]["code"] == "nilknown"
    all_entries = [entry["reference"] for section in sections.values() for entry in section.get("entry", [])]
    assert len(all_entries) == len(set(all_entries))


def test_narrative_escapes_markup_from_hl7(client: FlaskClient, encounter_id: str) -> None:
    _, sections, _ = summary(client, encounter_id)
    reason = sections["29299-5"]["text"]["div"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; dizziness" in reason and "<script" not in reason
    assert "Penicillin &lt;b&gt;G&lt;/b&gt;" in sections["48765-2"]["text"]["div"]
    assert "Cholesterol &lt;i&gt;total&lt;/i&gt;" in sections["30954-2"]["text"]["div"]
    assert "Follow-up &lt;u&gt;visit&lt;/u&gt;" in sections["18776-5"]["text"]["div"]


def test_narrative_in_english_and_chinese(client: FlaskClient, encounter_id: str) -> None:
    document, sections, _ = summary(client, encounter_id, **{"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    composition = document["entry"][0]["resource"]
    assert composition["language"] == "zh-CN" and composition["title"] == "出院小结"
    assert sections["8716-3"]["title"] == "生命体征" and "偏高" in sections["8716-3"]["text"]["div"]
    assert "无已知信息" in sections["10160-0"]["text"]["div"]
    assert 'lang="zh-CN"' in sections["48765-2"]["text"]["div"]
    english, english_sections, _ = summary(client, encounter_id, query="?_language=en", **{"Accept-Language": "zh-CN"})
    assert english["entry"][0]["resource"]["title"] == "Discharge summary"
    assert english_sections["8716-3"]["title"] == "Vital signs" and ">high<" in english_sections["8716-3"]["text"]["div"]
    assert [issue for issue in validate_bundle(document, strict_references=True) if issue.is_error] == []


def test_open_outpatient_visit_is_a_summary_of_episode(client: FlaskClient) -> None:
    from tests.gateway.test_everything import message, pid, pv1, segment

    ingest(client, [message("OP1", "ADT^A04^ADT_A01", "20260201090000+0800", segment("EVN", {1: "A04"}),
                            pid("MRN2"), pv1("O", visit="V200"))])
    _, sections, _ = summary(client, only(client, "Encounter?identifier=V200")["id"])
    assert all(section.get("emptyReason") for section in sections.values())


def test_unknown_encounter_is_404(client: FlaskClient) -> None:
    response = client.get("/fhir/Encounter/nope/$summary", headers=FHIR)
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(("explicit", "header", "default", "expected"), [
    (None, "zh-CN,en;q=0.5", "en", "zh-CN"),
    (None, "zh-Hans-CN", "en", "zh-CN"),
    (None, "fr, en;q=0.1", "zh-CN", "en"),
    (None, "zh;q=0, en", "zh-CN", "en"),
    (None, None, "zh-CN", "zh-CN"),
    ("en", "zh-CN", "zh-CN", "en"),
    ("fr", None, "xx", "en"),
])
def test_language_negotiation(explicit: str | None, header: str | None, default: str, expected: str) -> None:
    assert negotiate(explicit, header, default) == expected
