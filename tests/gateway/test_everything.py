"""Patient/$everything (FHIR R4 patient-operation-everything.html) over a journey ingested as HL7 v2 through POST /hl7/v2."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from gateway.fhir.compartment import compartment_parameters, referenced_types, references

FHIR = {"Accept": "application/fhir+json"}


def segment(name: str, fields: dict[int, str]) -> str:
    """An ER7 segment with each field at its HL7 v2 position (so no pipe is ever miscounted)."""
    values = [""] * (max(fields) + 1)
    for position, value in fields.items():
        values[position] = value
    return name + "|" + "|".join(values[1:])


def message(control_id: str, message_type: str, event_time: str, *segments: str, sender: str = "HIS") -> bytes:
    header = f"MSH|^~\\&|{sender}|H1|PB|HOSP|{event_time}||{message_type}|{control_id}|P|2.5.1"
    return "\r".join([header, *segments]).encode() + b"\r"


def pid(mrn: str, family: str = "DOE", given: str = "JANE", authority: str = "HOSP") -> str:
    return segment("PID", {1: "1", 3: f"{mrn}^^^{authority}^MR", 5: f"{family}^{given}", 7: "19800101", 8: "F"})


def pv1(patient_class: str = "I", visit: str = "V100", admit: str = "", discharge: str = "") -> str:
    return segment("PV1", {1: "1", 2: patient_class, 3: "W1^101^1", 7: "D1^SMITH^ANN", 19: f"{visit}^^^HOSP^VN",
                           44: admit, 45: discharge})


def obx(set_id: int, code: str, text: str, value: str, unit: str, when: str, *, range_: str = "", flag: str = "N") -> str:
    return segment("OBX", {1: str(set_id), 2: "NM", 3: f"{code}^{text}^LN", 5: value, 6: f"{unit}^{unit}^UCUM",
                           7: range_, 8: flag, 11: "F", 14: when})


def journey(patient: str | None = None, *, follow_up: str = "20260120090000+0800^20260120093000+0800",
            lab_extra: tuple[str, ...] = ()) -> list[bytes]:
    """Admission with allergy and diagnoses, labs and vital signs, discharge, a follow-up appointment.

    `patient` replaces the PID (default MRN1), `follow_up` the appointment's start^end, `lab_extra` ends the lab message."""
    patient = patient or pid("MRN1")
    admit_time = "20260101080000+0800"
    reason = segment("PV2", {3: "^Chest pain <script>alert(1)</script> \\T\\ dizziness"})
    return [
        message("ADM1", "ADT^A01^ADT_A01", "20260101080500+0800", segment("EVN", {1: "A01", 2: admit_time}),
                patient, pv1(admit=admit_time), reason,
                segment("AL1", {1: "1", 2: "DA", 3: "70618^Penicillin <b>G</b>^RXNORM", 4: "SV", 5: "Hives \\T\\ rash"}),
                segment("DG1", {1: "1", 3: "I10^Essential hypertension^I10", 6: "A"}),
                segment("DG1", {1: "2", 3: "E11.9^Type 2 diabetes^I10", 6: "A"})),
        message("LAB1", "ORU^R01^ORU_R01", "20260102090000+0800", patient, pv1(),
                segment("ORC", {1: "RE", 2: "PO1", 3: "FO1"}),
                segment("OBR", {1: "1", 2: "PO1", 3: "FO1", 4: "24331-1^Lipid panel^LN", 7: "20260102080000+0800",
                                22: "20260102085000+0800", 24: "CH", 25: "F"}),
                obx(1, "2093-3", "Cholesterol <i>total</i>", "5.2", "mmol/L", "20260102080000+0800", range_="3.0-5.2"),
                obx(2, "2571-8", "Triglyceride", "2.9", "mmol/L", "20260102080000+0800", range_="0.4-1.7", flag="H"),
                *lab_extra, sender="LIS"),
        message("VIT1", "ORU^R01^ORU_R01", "20260102100000+0800", patient, pv1(),
                segment("OBR", {1: "1", 2: "PO2", 3: "FO2", 4: "85353-1^Vital signs panel^LN", 7: "20260102095000+0800", 25: "F"}),
                obx(1, "8480-6", "Systolic blood pressure", "158", "mm[Hg]", "20260102095000+0800", flag="H"),
                obx(2, "8867-4", "Heart rate", "72", "/min", "20260102095000+0800"),
                sender="MON"),
        message("DIS1", "ADT^A03^ADT_A03", "20260104120000+0800", segment("EVN", {1: "A03", 2: "20260104113000+0800"}),
                patient, pv1(admit=admit_time, discharge="20260104113000+0800"), reason),
        message("SIU1", "SIU^S12^SIU_S12", "20260104120500+0800",
                segment("SCH", {1: "AP1", 2: "FA1", 7: "^Follow-up <u>visit</u>", 11: f"^^30^{follow_up}",
                                25: "Booked"}),
                patient, segment("RGS", {1: "1"}), segment("AIP", {1: "1", 3: "D1^SMITH^ANN", 4: "ATT"}),
                sender="SCH"),
    ]


def ingest(client: FlaskClient, messages: list[bytes]) -> None:
    for raw in messages:
        response = client.post("/hl7/v2", data=raw, content_type="application/hl7-v2")
        assert response.status_code == 200, response.get_data(as_text=True)


def only(client: FlaskClient, path: str) -> dict:
    bundle = client.get(f"/fhir/{path}", headers=FHIR).get_json()
    assert bundle.get("total") == 1, bundle
    return bundle["entry"][0]["resource"]


def follow_pages(client: FlaskClient, url: str) -> list[dict]:
    resources: list[dict] = []
    pages = 0
    while url:
        parts = urlsplit(url)
        response = client.get(f"{parts.path}?{parts.query}" if parts.query else parts.path, headers=FHIR)
        assert response.status_code == 200, response.get_data(as_text=True)
        bundle = response.get_json()
        resources += [entry["resource"] for entry in bundle.get("entry", [])]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), "")
        pages += 1
        assert pages < 100
    return resources


@pytest.fixture
def patient_id(client: FlaskClient) -> str:
    ingest(client, journey())
    return only(client, "Patient?identifier=MRN1")["id"]


def test_compartment_definition_is_the_official_one() -> None:
    members = compartment_parameters()
    assert members["Observation"] == ("subject", "performer")
    assert members["Encounter"] == ("patient",)
    assert "Practitioner" not in members and "Organization" not in members


def test_everything_returns_patient_compartment_and_referenced_resources(client: FlaskClient, patient_id: str) -> None:
    record = follow_pages(client, f"http://localhost/fhir/Patient/{patient_id}/$everything?_count=1000")
    keys = [(r["resourceType"], r["id"]) for r in record]
    assert len(keys) == len(set(keys))
    # Page order: compartment members by (type, id), then the referenced Practitioners, Locations ... by (type, id).
    breaks = [i for i in range(1, len(keys)) if keys[i] < keys[i - 1]]
    assert len(breaks) == 1
    members, referenced = keys[:breaks[0]], keys[breaks[0]:]
    assert members == sorted(members) and referenced == sorted(referenced)
    assert {kind for kind, _ in referenced} <= referenced_types()
    types = {r["resourceType"] for r in record}
    assert {"Patient", "Encounter", "AllergyIntolerance", "Condition", "Observation", "DiagnosticReport",
            "Appointment", "Practitioner", "Organization", "Location"} <= types
    # Every reference to a Practitioner/Organization/Location/Device from the record resolves inside it.
    present = set(keys)
    for resource in record:
        for target in references(resource):
            if target[0] in ("Practitioner", "Organization", "Location", "Device"):
                assert target in present, (resource["resourceType"], target)
    observations = [r for r in record if r["resourceType"] == "Observation"]
    assert len(observations) == 4


def test_everything_pages_to_the_last_page_without_repeats_or_gaps(client: FlaskClient, patient_id: str) -> None:
    everything = follow_pages(client, f"http://localhost/fhir/Patient/{patient_id}/$everything?_count=1000")
    first = client.get(f"/fhir/Patient/{patient_id}/$everything?_count=3", headers=FHIR).get_json()
    # A first page reads only the types it shows: it does not know the record's size.
    assert "total" not in first and len(first["entry"]) == 3
    assert {link["relation"] for link in first["link"]} == {"self", "first", "next"}
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert next_url.startswith("http://localhost/fhir/Patient/") and "_count=3" in next_url
    paged = follow_pages(client, f"http://localhost/fhir/Patient/{patient_id}/$everything?_count=3")
    assert [(r["resourceType"], r["id"]) for r in paged] == [(r["resourceType"], r["id"]) for r in everything]
    last_offset = (len(everything) - 1) // 3 * 3
    last = client.get(f"/fhir/Patient/{patient_id}/$everything?_count=3&_offset={last_offset}", headers=FHIR).get_json()
    assert last["total"] == len(everything) and "next" not in {link["relation"] for link in last["link"]}
    assert any(link["relation"] == "last" and link["url"].endswith(f"_offset={last_offset}") for link in last["link"])


def test_everything_type_filter_is_kept_in_paging_links(client: FlaskClient, patient_id: str) -> None:
    record = follow_pages(client, f"http://localhost/fhir/Patient/{patient_id}/$everything?_type=Observation,Condition&_count=2")
    assert sorted({r["resourceType"] for r in record}) == ["Condition", "Observation"]
    assert len(record) == 6


def test_everything_start_end_select_care_dates(client: FlaskClient, patient_id: str) -> None:
    day_two = follow_pages(client, f"http://localhost/fhir/Patient/{patient_id}/$everything?_type=Observation&start=2026-01-02&end=2026-01-02")
    assert len(day_two) == 4
    later = follow_pages(client, f"http://localhost/fhir/Patient/{patient_id}/$everything?_type=Observation&start=2026-01-03")
    assert later == []


def test_everything_since_selects_by_last_updated(client: FlaskClient, patient_id: str) -> None:
    assert follow_pages(client, f"http://localhost/fhir/Patient/{patient_id}/$everything?_since=2999-01-01T00:00:00Z") == []
    assert follow_pages(client, f"http://localhost/fhir/Patient/{patient_id}/$everything?_since=2000-01-01T00:00:00%2B08:00")


def test_everything_follows_patient_links_transitively(client: FlaskClient, patient_id: str) -> None:
    ingest(client, [message("OTHER1", "ORU^R01^ORU_R01", "20260103090000+0800", pid("X77", authority="CLINIC"),
                            segment("OBR", {1: "1", 2: "PX", 3: "FX", 4: "2345-7^Glucose^LN", 25: "F"}),
                            obx(1, "2345-7", "Glucose", "6.1", "mmol/L", "20260103080000+0800"), sender="CLINIC"),
                    message("THIRD1", "ADT^A08^ADT_A01", "20260103090000+0800", segment("EVN", {1: "A08"}),
                            pid("Z9", authority="REGION"), sender="REGION")])
    other = only(client, "Patient?identifier=X77")
    third = only(client, "Patient?identifier=Z9")
    # A seealso link one way from the first patient, a replaced-by link the other way from the third.
    first = client.get(f"/fhir/Patient/{patient_id}", headers=FHIR).get_json()
    first["link"] = [{"other": {"reference": f"Patient/{other['id']}"}, "type": "seealso"}]
    assert client.put(f"/fhir/Patient/{patient_id}", json=first, headers=FHIR).status_code == 200
    third["link"] = [{"other": {"reference": f"Patient/{other['id']}"}, "type": "replaced-by"}]
    assert client.put(f"/fhir/Patient/{third['id']}", json=third, headers=FHIR).status_code == 200
    record = follow_pages(client, f"http://localhost/fhir/Patient/{patient_id}/$everything?_count=1000")
    patients = {r["id"] for r in record if r["resourceType"] == "Patient"}
    assert patients == {patient_id, other["id"], third["id"]}
    glucose = [r for r in record if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "2345-7"]
    assert len(glucose) == 1


def test_everything_unknown_patient_is_404_outcome(client: FlaskClient) -> None:
    response = client.get("/fhir/Patient/nope/$everything", headers=FHIR)
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("query", ["_type=Nonsense", "start=2026-13-01", "_since=yesterday", "_count=0"])
def test_everything_bad_parameters_are_400(client: FlaskClient, patient_id: str, query: str) -> None:
    response = client.get(f"/fhir/Patient/{patient_id}/$everything?{query}", headers=FHIR)
    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_capability_statement_declares_the_operations(client: FlaskClient) -> None:
    statement = client.get("/fhir/metadata", headers=FHIR).get_json()
    by_type = {entry["type"]: entry for entry in statement["rest"][0]["resource"]}
    assert by_type["Patient"]["operation"] == [
        {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
        {"name": "summary", "definition": "http://hl7.org/fhir/uv/ips/OperationDefinition/summary"}]
    assert [op["name"] for op in by_type["Encounter"]["operation"]] == ["summary"]
    assert "operation" not in by_type["Observation"]


def test_everything_pages_a_union_when_the_patient_is_also_a_performer(client: FlaskClient, patient_id: str) -> None:
    from tests.gateway.fhir_requests import created, observation

    own = observation(patient_id, "29463-7", 61, "2026-01-03T08:00:00+08:00")
    own["performer"] = [{"reference": f"Patient/{patient_id}"}]  # a home reading: in the compartment twice over
    created(client, own)
    other = created(client, {"resourceType": "Patient", "name": [{"family": "Other"}]})
    helped = observation(other["id"], "8867-4", 66, "2026-01-03T09:00:00+08:00")
    helped["performer"] = [{"reference": f"Patient/{patient_id}"}]  # performed by our patient: a member through performer only
    created(client, helped)
    one_by_one = follow_pages(client, f"http://localhost/fhir/Patient/{patient_id}/$everything?_type=Observation&_count=1")
    ids = [r["id"] for r in one_by_one]
    assert len(ids) == len(set(ids)) == 6 and ids == sorted(ids)


def test_everything_of_referenced_types_only_knows_its_total_at_once(client: FlaskClient, patient_id: str) -> None:
    first = client.get(f"/fhir/Patient/{patient_id}/$everything?_type=Practitioner,Location&_count=2", headers=FHIR).get_json()
    record = follow_pages(client, f"http://localhost/fhir/Patient/{patient_id}/$everything?_type=Practitioner,Location&_count=2")
    assert first["total"] == len(record) >= 2
    assert {r["resourceType"] for r in record} == {"Practitioner", "Location"}


def test_everything_since_is_applied_in_the_store_and_on_the_tail_alike(client: FlaskClient, patient_id: str) -> None:
    record = follow_pages(client, f"http://localhost/fhir/Patient/{patient_id}/$everything?_count=1000")
    latest = max(r["meta"]["lastUpdated"] for r in record)
    newest = follow_pages(client, f"http://localhost/fhir/Patient/{patient_id}/$everything?_count=2&_since={latest.replace('+', '%2B')}")
    assert newest and all(r["meta"]["lastUpdated"] >= latest for r in newest)
    assert len(newest) < len(record)
