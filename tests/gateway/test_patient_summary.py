"""Patient/$summary: the International Patient Summary document (IPS Composition-uv-ips, Bundle-uv-ips) section by
section, from resources written over the FHIR API; the HL7 v2 journey is in test_record_journey.py."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask.testing import FlaskClient

from tests.gateway.fhir_requests import created, observation, patient
from tests.gateway.test_everything import FHIR
from tests.gateway.test_record_journey import summary_document

CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
SNOMED = "http://snomed.info/sct"


def _summary(client: FlaskClient, patient_id: str, **headers: str) -> tuple[dict, dict[str, dict], dict[str, dict]]:
    return summary_document(client, f"/fhir/Patient/{patient_id}/$summary", **headers)


def _texts(section: dict, resources: dict[str, dict]) -> list[str]:
    """The item of each entry (its code's text), in section order."""
    found = []
    for entry in section.get("entry", []):
        resource = resources[entry["reference"]]
        concept = next(resource[key] for key in ("code", "vaccineCode", "medicationCodeableConcept", "type", "description") if key in resource)
        found.append(concept if isinstance(concept, str) else concept["text"])
    return found


def _concept(text: str, code: str = "1") -> dict:
    return {"coding": [{"system": SNOMED, "code": code}], "text": text}


def _condition(patient_id: str, text: str, code: str, status: str, verification: str = "confirmed") -> dict:
    return {"resourceType": "Condition", "subject": {"reference": f"Patient/{patient_id}"}, "code": _concept(text, code),
            "clinicalStatus": {"coding": [{"system": CLINICAL, "code": status}]},
            "verificationStatus": {"coding": [{"system": VERIFICATION, "code": verification}]}}


def test_a_patient_with_nothing_recorded_gets_the_three_required_sections_unavailable(client: FlaskClient) -> None:
    patient_id = created(client, patient())["id"]
    document, sections, _ = _summary(client, patient_id)
    composition = document["entry"][0]["resource"]
    assert composition["type"]["coding"][0]["code"] == "60591-5" and composition["title"] == "Patient summary"
    assert document["type"] == "document" and document["identifier"]["value"].startswith("urn:uuid:") and document["timestamp"]
    assert list(sections) == ["11450-4", "48765-2", "10160-0"]
    for section in sections.values():
        assert "entry" not in section
        assert section["emptyReason"]["coding"] == [
            {"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason", "code": "unavailable", "display": "Unavailable"}]
        assert "Information not available." in section["text"]["div"]


def test_each_fact_once_in_its_ips_section(client: FlaskClient) -> None:
    patient_id = created(client, patient())["id"]
    me = {"reference": f"Patient/{patient_id}"}
    created(client, _condition(patient_id, "Asthma", "195967001", "active"))
    created(client, _condition(patient_id, "Appendicitis", "74400008", "resolved"))
    created(client, _condition(patient_id, "Gout", "90560007", "active", verification="refuted"))
    typo = _condition(patient_id, "Typo", "1234", "active", verification="entered-in-error")
    del typo["clinicalStatus"]  # con-5: no clinical status on an entry made in error
    created(client, typo)
    created(client, {"resourceType": "AllergyIntolerance", "patient": me, "code": _concept("Peanut", "91935009"),
                     "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                                    "code": "active"}]}})
    for day, status in (("2026-01-01", "completed"), ("2026-03-01", "active")):
        created(client, {"resourceType": "MedicationRequest", "status": status, "intent": "order", "subject": me,
                         "medicationCodeableConcept": _concept("Metformin 500 mg", "860975"), "authoredOn": day})
    created(client, {"resourceType": "Immunization", "status": "completed", "patient": me,
                     "vaccineCode": _concept("Influenza vaccine", "86198006"), "occurrenceDateTime": "2025-10-01"})
    created(client, {"resourceType": "Procedure", "status": "completed", "subject": me, "code": _concept("Appendectomy", "80146002"),
                     "performedDateTime": "2010-05-05"})
    created(client, {"resourceType": "Device", "patient": me, "type": _concept("Insulin pump", "69805005")})
    created(client, observation(patient_id, "8867-4", 70, "2026-01-01T08:00:00+08:00"))
    created(client, observation(patient_id, "8867-4", 88, "2026-02-01T08:00:00+08:00"))
    lab = observation(patient_id, "2345-7", 6.1, "2026-02-01T08:00:00+08:00")
    lab["category"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}]
    created(client, lab)
    soon = (datetime.now(timezone.utc) + timedelta(days=7)).replace(microsecond=0)
    for start, text in ((soon, "Asthma review"), (soon - timedelta(days=400), "Old visit")):
        created(client, {"resourceType": "Appointment", "status": "booked", "description": text,
                         "start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat(),
                         "participant": [{"actor": me, "status": "accepted"}]})
    _, sections, resources = _summary(client, patient_id)
    assert list(sections) == ["11450-4", "48765-2", "10160-0", "11369-6", "30954-2", "47519-4", "46264-8", "8716-3", "11348-0", "18776-5"]
    assert _texts(sections["11450-4"], resources) == ["Asthma"]  # refuted and entered-in-error left out
    assert _texts(sections["11348-0"], resources) == ["Appendicitis"]  # resolved: history of past illness
    assert _texts(sections["48765-2"], resources) == ["Peanut"]
    medications = sections["10160-0"]["entry"]
    assert len(medications) == 1 and resources[medications[0]["reference"]]["status"] == "active"  # the latest order
    assert _texts(sections["11369-6"], resources) == ["Influenza vaccine"]
    assert _texts(sections["47519-4"], resources) == ["Appendectomy"]
    assert _texts(sections["46264-8"], resources) == ["Insulin pump"]
    vitals = [resources[entry["reference"]] for entry in sections["8716-3"]["entry"]]
    assert [v["valueQuantity"]["value"] for v in vitals] == [88]  # the latest heart rate
    assert [resources[e["reference"]]["code"]["coding"][0]["code"] for e in sections["30954-2"]["entry"]] == ["2345-7"]
    assert _texts(sections["18776-5"], resources) == ["Asthma review"]  # the past appointment is no plan
    everywhere = [entry["reference"] for section in sections.values() for entry in section.get("entry", [])]
    assert len(everywhere) == len(set(everywhere))


def test_patient_summary_language_follows_accept_language(client: FlaskClient) -> None:
    patient_id = created(client, patient(family="李", given="雷"))["id"]
    document, sections, _ = _summary(client, patient_id, **{"Accept-Language": "zh-CN,zh;q=0.9"})
    composition = document["entry"][0]["resource"]
    assert composition["language"] == "zh-CN" and document["language"] == "zh-CN"
    assert composition["title"] == "患者健康摘要" and sections["48765-2"]["title"] == "过敏与不耐受"
    assert "李 雷" in composition["text"]["div"] and "暂无信息" in sections["11450-4"]["text"]["div"]
    english, english_sections, _ = _summary(client, patient_id, **{"Accept-Language": "fr, en;q=0.5"})
    assert english["entry"][0]["resource"]["title"] == "Patient summary"
    assert english_sections["48765-2"]["title"] == "Allergies and intolerances"


def test_unknown_patient_is_404_and_the_operation_is_declared(client: FlaskClient) -> None:
    response = client.get("/fhir/Patient/nope/$summary", headers=FHIR)
    assert response.status_code == 404 and response.get_json()["resourceType"] == "OperationOutcome"
    statement = client.get("/fhir/metadata", headers=FHIR).get_json()
    patient_type = next(entry for entry in statement["rest"][0]["resource"] if entry["type"] == "Patient")
    assert {"name": "summary", "definition": "http://hl7.org/fhir/uv/ips/OperationDefinition/summary"} in patient_type["operation"]
