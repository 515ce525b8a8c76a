"""One person's journey through the real ingest path (gateway.ingest.Ingestor, HL7 v2 bytes) and the record it leaves:
Patient/$everything, Encounter/$summary and Patient/$summary checked item by item (FHIR R4 patient-operation-everything.html,
documents.html; IPS Composition-uv-ips).

The journey: an old registration at the HIS (MRN0) with a creatinine result; test_everything's journey for MRN1 (with a
resident ID): admission with an allergy and two diagnoses, labs (here with an NTE comment and a text result), vital signs,
discharge, a follow-up appointment; a discharge note (MDM^T02); a second source system (CLINIC) registering the same resident ID with a glucose
result; and the HIS merging MRN0 into MRN1 (A40). Names, notes and values carry markup that must stay text.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask
from flask.testing import FlaskClient

from conformance.validation import validate_bundle
from gateway.fhir.context import REPOSITORY_KEY
from gateway.ingest import Ingestor
from tests.gateway.test_everything import FHIR, follow_pages, journey, message, obx, only, pv1, segment

RESIDENT_ID = "11010119800101002X"
HOSTILE_FAMILY = "王<script>alert(1)</script>"
HOSTILE_GIVEN = '" onmouseover="alert(2)'
HOSTILE_NOTE = 'Fasting? " onmouseover="alert(4) <b>recheck</b>'
HOSTILE_VALUE = "<img src=x onerror=alert(3)>"
DISCHARGE_NOTE = "Discharged home. <script>steal()</script> Review in clinic."


def _pid(mrn: str, *, authority: str = "HOSP", resident: bool = True, family: str = HOSTILE_FAMILY) -> str:
    ids = f"{mrn}^^^{authority}^MR" + (f"~{RESIDENT_ID}^^^CHN^NNCHN" if resident else "")
    return segment("PID", {1: "1", 3: ids, 5: f"{family}^{HOSTILE_GIVEN}", 7: "19800101", 8: "F"})


def _follow_up_time() -> str:
    """The follow-up is booked 30 days from today (09:00-09:30), so the patient summary's plan of care still holds it."""
    day = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y%m%d")
    return f"{day}090000+0000^{day}093000+0000"


def journey_messages() -> list[bytes]:
    """test_everything's admission-to-follow-up journey for a patient with a resident ID, with an NTE and a text result in
    the labs, then a discharge note, the old record, the second source system and the merge."""
    lab_extra = (segment("NTE", {1: "1", 3: HOSTILE_NOTE}),
                 segment("OBX", {1: "3", 2: "ST", 3: "5778-6^Color of Urine^LN", 5: HOSTILE_VALUE, 11: "F", 14: "20260102080000+0800"}))
    old = _pid("MRN0", resident=False, family="王")
    clinic = _pid("C55", authority="CLINIC")
    return [
        message("OLD1", "ADT^A04^ADT_A01", "20250601090000+0800", segment("EVN", {1: "A04", 2: "20250601090000+0800"}),
                old, pv1("O", visit="V050")),
        message("OLDLAB", "ORU^R01^ORU_R01", "20250601100000+0800", old,
                segment("OBR", {1: "1", 2: "PO0", 3: "FO0", 4: "2160-0^Creatinine^LN", 7: "20250601093000+0800", 25: "F"}),
                obx(1, "2160-0", "Creatinine", "88", "umol/L", "20250601093000+0800", range_="45-84", flag="H"), sender="LIS"),
        *journey(_pid("MRN1"), follow_up=_follow_up_time(), lab_extra=lab_extra),
        # The note was written before the A03 (EVN-2 11:00 < 11:30): its sparse PV1 is older than the stay and not applied.
        message("DOC1", "MDM^T02^MDM_T02", "20260104110000+0800", segment("EVN", {1: "T02", 2: "20260104110000+0800"}),
                _pid("MRN1"), pv1(),
                segment("TXA", {1: "1", 2: "DS^Discharge summary^HL70270", 3: "TX", 4: "20260104110000+0800",
                                12: "DOC-77^HIS", 17: "AU", 19: "AV"}),
                segment("OBX", {1: "1", 2: "TX", 3: "18842-5^Discharge summary^LN", 5: DISCHARGE_NOTE, 11: "F"}), sender="HIS"),
        message("CL1", "ADT^A04^ADT_A01", "20260110090000+0800", segment("EVN", {1: "A04", 2: "20260110090000+0800"}),
                clinic, pv1("O", visit="C-V1"), sender="CLINIC"),
        message("CL2", "ORU^R01^ORU_R01", "20260110100000+0800", clinic,
                segment("OBR", {1: "1", 2: "PC1", 3: "FC1", 4: "2345-7^Glucose^LN", 7: "20260110093000+0800", 25: "F"}),
                obx(1, "2345-7", "Glucose", "7.9", "mmol/L", "20260110093000+0800", range_="3.9-6.1", flag="H"), sender="CLINIC"),
        message("MRG1", "ADT^A40^ADT_A39", "20260111090000+0800", segment("EVN", {1: "A40", 2: "20260111090000+0800"}),
                _pid("MRN1"), segment("MRG", {1: "MRN0^^^HOSP^MR"})),
    ]


@pytest.fixture
def journey_app(app: Flask) -> Iterator[Flask]:
    ingestor = Ingestor(app.extensions[REPOSITORY_KEY])
    for raw in journey_messages():
        result = ingestor.ingest(raw, peer="journey", transport="test")
        assert result.ack_code == "AA", (result.control_id, result.error)
    yield app


@pytest.fixture
def ids(journey_app: Flask, client: FlaskClient) -> dict[str, str]:
    return {"MRN1": only(client, "Patient?identifier=MRN1")["id"], "MRN0": only(client, "Patient?identifier=MRN0")["id"],
            "C55": only(client, "Patient?identifier=C55")["id"], "V100": only(client, "Encounter?identifier=V100")["id"]}


def _code(resource: dict) -> str:
    concept = resource.get("code") or resource.get("type") or {}
    return concept["coding"][0]["code"] if concept.get("coding") else resource["resourceType"]


def _document(client: FlaskClient, path: str, language: str = "en") -> tuple[dict, dict[str, dict], dict[str, dict]]:
    return summary_document(client, f"/fhir/{path}?_language={language}")


def summary_document(client: FlaskClient, url: str, **headers: str) -> tuple[dict, dict[str, dict], dict[str, dict]]:
    """A summary document checked as a strict document Bundle, its sections by LOINC code and its resources by 'Type/id'."""
    response = client.get(url, headers={**FHIR, **headers})
    assert response.status_code == 200, response.get_data(as_text=True)
    document = response.get_json()
    assert [issue for issue in validate_bundle(document, strict_references=True) if issue.is_error] == []
    composition = document["entry"][0]["resource"]
    sections = {section["code"]["coding"][0]["code"]: section for section in composition["section"]}
    resources = {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"] for e in document["entry"][1:]}
    return document, sections, resources


def _entries(section: dict, resources: dict[str, dict]) -> list[str]:
    return [_code(resources[entry["reference"]]) for entry in section.get("entry", [])]


def test_the_merge_and_the_second_source_are_one_record(client: FlaskClient, ids: dict[str, str]) -> None:
    prior = client.get(f"/fhir/Patient/{ids['MRN0']}", headers=FHIR).get_json()
    assert prior["active"] is False
    assert {"other": {"reference": f"Patient/{ids['MRN1']}"}, "type": "replaced-by"} in prior["link"]
    clinic = client.get(f"/fhir/Patient/{ids['C55']}", headers=FHIR).get_json()
    assert {"other": {"reference": f"Patient/{ids['MRN1']}"}, "type": "seealso"} in clinic["link"]
    record = follow_pages(client, f"http://localhost/fhir/Patient/{ids['MRN1']}/$everything?_count=7")
    keys = [(r["resourceType"], r["id"]) for r in record]
    assert len(keys) == len(set(keys))
    assert {r["id"] for r in record if r["resourceType"] == "Patient"} == {ids["MRN1"], ids["MRN0"], ids["C55"]}
    observations = sorted(_code(r) for r in record if r["resourceType"] == "Observation")
    assert observations == ["2093-3", "2160-0", "2345-7", "2571-8", "5778-6", "8480-6", "8867-4"]
    assert [_code(r) for r in record if r["resourceType"] == "AllergyIntolerance"] == ["70618"]
    assert sorted(_code(r) for r in record if r["resourceType"] == "Condition") == ["E11.9", "I10"]
    assert [_code(r) for r in record if r["resourceType"] == "DocumentReference"] == ["DS"]
    assert len([r for r in record if r["resourceType"] == "Appointment"]) == 1
    assert {r["resourceType"] for r in record} >= {"Encounter", "DiagnosticReport", "Practitioner", "Organization"}
    # The same record from the merged-away side: the link works both ways.
    assert {(r["resourceType"], r["id"]) for r in follow_pages(client, f"http://localhost/fhir/Patient/{ids['MRN0']}/$everything")} == set(keys)


def test_the_visit_summary_item_by_item(client: FlaskClient, ids: dict[str, str]) -> None:
    _, sections, resources = _document(client, f"Encounter/{ids['V100']}/$summary")
    assert list(sections) == ["29299-5", "11450-4", "48765-2", "8716-3", "30954-2", "10160-0", "47519-4", "11369-6", "18776-5", "34109-9"]
    assert sorted(_entries(sections["11450-4"], resources)) == ["E11.9", "I10"]
    assert _entries(sections["48765-2"], resources) == ["70618"]
    assert sorted(_entries(sections["8716-3"], resources)) == ["8480-6", "8867-4"]
    # Only this visit's results: not the old creatinine of MRN0, not the clinic's glucose.
    assert _entries(sections["30954-2"], resources) == ["24331-1", "2093-3", "2571-8", "5778-6"]
    assert _entries(sections["18776-5"], resources) == ["Appointment"]
    notes = sections["34109-9"]
    assert _entries(notes, resources) == ["DS"]
    div = notes["text"]["div"]
    assert "Discharged home. &lt;script&gt;steal()&lt;/script&gt; Review in clinic." in div
    # The NTE comment is quoted from the triglyceride (entered under results), not entered twice.
    assert "&quot; onmouseover=&quot;alert(4) &lt;b&gt;recheck&lt;/b&gt;" in div and "Triglyceride" in div
    everywhere = [entry["reference"] for section in sections.values() for entry in section.get("entry", [])]
    assert len(everywhere) == len(set(everywhere))


def test_the_patient_summary_item_by_item(client: FlaskClient, ids: dict[str, str]) -> None:
    document, sections, resources = _document(client, f"Patient/{ids['MRN1']}/$summary")
    composition = document["entry"][0]["resource"]
    assert composition["type"]["coding"][0] == {"system": "http://loinc.org", "code": "60591-5", "display": "Patient summary Document"}
    assert composition["subject"] == {"reference": f"Patient/{ids['MRN1']}"}
    # Required sections first; optional ones only with entries (no procedures, immunizations, devices, past illness here).
    assert list(sections) == ["11450-4", "48765-2", "10160-0", "30954-2", "8716-3", "18776-5"]
    assert sorted(_entries(sections["11450-4"], resources)) == ["E11.9", "I10"]
    assert _entries(sections["48765-2"], resources) == ["70618"]
    medications = sections["10160-0"]
    assert "entry" not in medications and medications["emptyReason"]["coding"][0]["code"] == "unavailable"
    # Results from every linked record: MRN0's creatinine (merged) and the clinic's glucose (same resident ID).
    results = _entries(sections["30954-2"], resources)
    assert sorted(results) == sorted(["2160-0", "2160-0", "24331-1", "2093-3", "2571-8", "5778-6", "2345-7", "2345-7"])
    assert sorted(_entries(sections["8716-3"], resources)) == ["8480-6", "8867-4"]
    assert _entries(sections["18776-5"], resources) == ["Appointment"]
    everywhere = [entry["reference"] for section in sections.values() for entry in section.get("entry", [])]
    assert len(everywhere) == len(set(everywhere))


def test_the_patient_summary_in_chinese(client: FlaskClient, ids: dict[str, str]) -> None:
    document, sections, _ = _document(client, f"Patient/{ids['MRN1']}/$summary", "zh-CN")
    composition = document["entry"][0]["resource"]
    assert composition["language"] == "zh-CN" and composition["title"] == "患者健康摘要"
    assert [section["title"] for section in composition["section"]] == ["问题与诊断", "过敏与不耐受", "用药", "检查检验结果", "生命体征", "诊疗计划与随访"]
    assert "暂无信息" in sections["10160-0"]["text"]["div"] and "偏高" in sections["8716-3"]["text"]["div"]
    header = composition["text"]["div"]
    assert "王&lt;script&gt;alert(1)&lt;/script&gt; &quot; onmouseover=&quot;alert(2)" in header and "<script" not in header
    assert "出生日期" in header and "女" in header
