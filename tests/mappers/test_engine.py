"""The spec interpreter end to end on small messages (mappers.engine, specs/*): ids, groups, references,
value types, errors with locations, the unmapped report. Expected values come from the IG sheets
named in each test."""
from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from adapters.hl7v2.errors import DataTypeError
from mappers import convert
from mapper_helpers import er7, only, resources, validation_errors

MSH = "MSH|^~\\&|HIS|GHH|GW|PB|20240305143000+0800||ADT^A01^ADT_A01|C1|P|2.5.1"


def test_patient_from_pid_follows_pid_patient_sheet(convert_er7) -> None:
    bundle, _ = convert_er7(MSH, "PID|1||12345^^^GHH&1.2.3&ISO^MR||王^小红^^^^^L||19900307|F|||1 Main St^^Beijing^^100020^CHN^H||^PRN^PH^^86^10^88886666")
    patient = only(bundle, "Patient")
    assert patient["name"] == [{"family": "王", "given": ["小红"], "use": "official"}]
    assert patient["identifier"][0]["value"] == "12345"
    assert patient["identifier"][0]["system"] == "urn:oid:1.2.3"
    assert patient["identifier"][0]["type"]["coding"][0]["code"] == "MR"
    assert patient["gender"] == "female" and patient["birthDate"] == "1990-03-07"
    assert patient["telecom"][0] == {
        "value": "+86 10 88886666",
        "use": "home",
        "system": "phone",
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/contactpoint-country", "valueString": "86"},
            {"url": "http://hl7.org/fhir/StructureDefinition/contactpoint-area", "valueString": "10"},
            {"url": "http://hl7.org/fhir/StructureDefinition/contactpoint-local", "valueString": "88886666"},
        ],
    }
    assert validation_errors(bundle) == []


def test_ids_are_deterministic_and_requests_are_puts(convert_er7) -> None:
    first, _ = convert_er7(MSH, "PID|1||12345^^^GHH^MR||Doe^John", "PV1|1|I|W1^1^1")
    again, _ = convert_er7(MSH.replace("C1", "C2").replace("20240305143000", "20240306090000"), "PID|1||12345^^^GHH^MR||Doe^Johnny")
    assert only(first, "Patient")["id"] == only(again, "Patient")["id"]
    for entry in first["entry"]:
        rid = entry["resource"]["id"]
        assert entry["fullUrl"] == f"urn:uuid:{rid}"
        assert entry["request"] == {"method": "PUT", "url": f"{entry['resource']['resourceType']}/{rid}"}
    assert convert(er7(MSH, "PID|1||12345^^^GHH^MR||Doe^John", "PV1|1|I|W1^1^1"))[0] == first


def test_encounter_refers_to_patient_and_practitioners_dedupe(convert_er7) -> None:
    bundle, _ = convert_er7(MSH, "PID|1||1^^^GHH^MR||Doe^John", "PV1|1|I|||||D1^Who^Doc|||MED|||||||D1^Who^Doc||V9^^^GHH^VN")
    enc = only(bundle, "Encounter")
    assert enc["subject"]["reference"] == f"Patient/{only(bundle, 'Patient')['id']}"
    assert enc["class"]["code"] == "IMP" and enc["status"] == "in-progress"
    assert [p["type"][0]["coding"][0]["code"] for p in enc["participant"]] == ["ATND", "ADM"]
    assert len(resources(bundle, "Practitioner")) == 1  # same XCN twice -> one Practitioner
    assert enc["identifier"][0]["value"] == "V9"


def test_a17_swap_keeps_each_visit_with_its_patient(convert_er7) -> None:
    bundle, _ = convert_er7(
        MSH.replace("ADT^A01^ADT_A01", "ADT^A17^ADT_A17"),
        "PID|1||A1^^^GHH^MR||One^Pat", "PV1|1|I|W1^1^1",
        "PID|2||B2^^^GHH^MR||Two^Pat", "PV1|1|I|W1^1^2",
    )
    patients = {p["identifier"][0]["value"]: p["id"] for p in resources(bundle, "Patient")}
    subjects = sorted(e["subject"]["reference"] for e in resources(bundle, "Encounter"))
    assert subjects == sorted(f"Patient/{pid}" for pid in patients.values())


def test_a40_merge_links_prior_patient(convert_er7) -> None:
    bundle, _ = convert_er7(MSH.replace("ADT^A01^ADT_A01", "ADT^A40^ADT_A39"), "EVN|A40", "PID|1||NEW1^^^GHH^MR||Doe^John", "MRG|OLD1^^^GHH^MR")
    by_value = {p["identifier"][0]["value"]: p for p in resources(bundle, "Patient")}
    old, new = by_value["OLD1"], by_value["NEW1"]
    assert old["link"] == [{"other": {"reference": f"Patient/{new['id']}"}, "type": "replaced-by"}] and old["active"] is False
    assert new["link"] == [{"other": {"reference": f"Patient/{old['id']}"}, "type": "replaces"}]
    # the prior patient has the id a message naming OLD1 in PID-3 gives it
    earlier, _ = convert_er7(MSH, "PID|1||OLD1^^^GHH^MR||Doe^John")
    assert only(earlier, "Patient")["id"] == old["id"]


ORU = "MSH|^~\\&|LIS|LAB|GW|PB|20240307101500-0500||ORU^R01^ORU_R01|L1|P|2.5.1"


def _obs(bundle: dict, code: str) -> dict:
    return next(o for o in resources(bundle, "Observation") if o["code"]["coding"][0]["code"] == code)


@pytest.mark.parametrize(
    ("obx2", "obx5", "obx6", "expected"),
    [
        ("NM", "7.5", "mmol/L^^UCUM", {"valueQuantity": {"value": 7.5, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}}),
        ("NM", "see note", "", {"valueString": "see note"}),
        ("ST", "positive", "", {"valueString": "positive"}),
        ("FT", "a\\.br\\b", "", {"valueString": "a\nb"}),
        ("SN", ">=^10", "", {"valueQuantity": {"comparator": ">=", "value": 10}}),
        ("SN", "^1^/^64", "", {"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 64}}}),
        ("SN", "^2^-^4", "", {"valueRange": {"low": {"value": 2}, "high": {"value": 4}}}),
        ("SN", "^2^+", "", {"valueString": "2 +"}),
        ("CWE", "POS^Positive^HL70078", "", {"valueCodeableConcept": {"coding": [{"code": "POS", "display": "Positive", "system": "http://terminology.hl7.org/CodeSystem/v2-0078"}]}}),
        ("DTM", "202403071015+0100", "", {"valueDateTime": "2024-03-07T10:15:00+01:00"}),
        ("TM", "1015", "", {"valueTime": "10:15:00"}),
        ("CQ", "5^mL&milliliter&UCUM", "", {"valueQuantity": {"value": 5, "unit": "milliliter", "system": "http://unitsofmeasure.org", "code": "mL"}}),
        ("NR", "1^9", "", {"valueRange": {"low": {"value": 1}, "high": {"value": 9}}}),
        ("DR", "20240101^20240102", "", {"valuePeriod": {"start": "2024-01-01", "end": "2024-01-02"}}),
    ],
)
def test_obx_value_types(convert_er7, obx2: str, obx5: str, obx6: str, expected: dict) -> None:
    bundle, _ = convert_er7(ORU, "PID|1||P1^^^LAB^MR", "OBR|1||F1|X^Panel^L", f"OBX|1|{obx2}|C1^Test^L||{obx5}|{obx6}|||||F")
    obs = _obs(bundle, "C1")
    assert {k: v for k, v in obs.items() if k.startswith("value")} == expected
    assert obs["status"] == "final"
    assert validation_errors(bundle) == []


def test_oru_groups_results_notes_and_specimens(convert_er7) -> None:
    bundle, _ = convert_er7(
        ORU,
        "PID|1||P1^^^LAB^MR||Doe^Jane",
        "ORC|RE|PL1|FL1",
        "OBR|1|PL1|FL1|A^Panel A^L|||20240307080000-0500",
        "OBX|1|NM|A1^a1^L||1|||||F",
        "NTE|1||note on a1",
        "SPM|1|S1&LAB^S1F&LAB||BLD^Blood^HL70487",
        "OBX|2|NM|A2^a2^L||2|||||F",
        "OBR|2|PL2|FL2|B^Panel B^L",
        "NTE|1||note on order B",
        "OBX|1|NM|B1^b1^L||3|||||F",
    )
    reports = {r["code"]["coding"][0]["code"]: r for r in resources(bundle, "DiagnosticReport")}
    ids = {o["code"]["coding"][0]["code"]: o["id"] for o in resources(bundle, "Observation")}
    assert [r["reference"] for r in reports["A"]["result"]] == [f"Observation/{ids['A1']}", f"Observation/{ids['A2']}"]
    assert [r["reference"] for r in reports["B"]["result"]] == [f"Observation/{ids['B1']}"]
    assert _obs(bundle, "A1")["note"] == [{"text": "note on a1"}]
    specimen = only(bundle, "Specimen")
    assert reports["A"]["specimen"] == [{"reference": f"Specimen/{specimen['id']}"}] and "specimen" not in reports["B"]
    assert _obs(bundle, "A1")["specimen"]["reference"] == f"Specimen/{specimen['id']}"
    assert "specimen" not in _obs(bundle, "B1")
    orders = {s["code"]["coding"][0]["code"]: s for s in resources(bundle, "ServiceRequest")}
    assert orders["B"]["note"] == [{"text": "note on order B"}]
    assert reports["B"]["basedOn"] == [{"reference": f"ServiceRequest/{orders['B']['id']}"}]
    assert validation_errors(bundle) == []


def test_impossible_date_is_an_error_with_its_location(convert_er7) -> None:
    with pytest.raises(DataTypeError) as caught:
        convert_er7(MSH, "PID|1||1^^^GHH^MR||Doe^John||20230230")
    assert str(caught.value.location) == "PID-7"
    with pytest.raises(DataTypeError) as caught:
        convert_er7(MSH, "PID|1||1^^^GHH^MR||Doe^John", "PV1|1|I|||||D1^Who^Doc^^^^^^^^^^^^^^^^20231301")
    assert str(caught.value.location) == "PV1-7.19"


def test_provenance_targets_everything_and_hashes_the_message() -> None:
    import base64
    import hashlib

    raw = er7(MSH, "EVN|A01|20240305142500+0800", "PID|1||1^^^GHH^MR||Doe^John", "PV1|1|I")
    bundle, _ = convert(raw)
    prov = only(bundle, "Provenance")
    others = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]} - {f"Provenance/{prov['id']}"}
    assert {t["reference"] for t in prov["target"]} == others
    digest = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    assert prov["entity"][0]["what"]["identifier"]["value"] == f"ni:///sha-256;{digest}"
    assert prov["recorded"] == "2024-03-05T14:30:00+08:00"
    assert prov["activity"]["coding"][0]["code"] == "A01"


def test_unmapped_report_lists_fields_with_ig_rows(convert_er7) -> None:
    pid = "PID|1||1^^^GHH^MR||Doe^John" + "|" * 27 + "AL^Alias^HL70445"  # PID-32: IG row, no FHIR target
    _, report = convert_er7(MSH, pid, "ZXY|1|custom")
    found = {u["element"]: u for u in report.as_dict()["unmapped"]}
    assert "PID-32" in found and any(row["map"] == "PID[Patient]" for row in found["PID-32"]["ig"])
    assert "ZXY-1" in found and "ZXY-2" in found
    assert "PID-5" not in found


def test_unknown_structures_still_give_patient_and_encounter(convert_er7) -> None:
    bundle, report = convert_er7(MSH.replace("ADT^A01^ADT_A01", "ZZZ^Z01"), "PID|1||1^^^GHH^MR||Doe^John", "PV1|1|O", "ZZ1|x")
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} >= {"Patient", "Encounter", "Provenance"}
    assert report.message_spec == "messages/DEFAULT.yaml"


def test_times_without_offset_are_read_in_the_callers_zone() -> None:
    pv1 = "PV1|1|I|W1^1^1" + "|" * 41 + "20240705083000"  # PV1-44 admit time, no offset
    utc, _ = convert(er7(MSH, "PID|1||12345^^^GHH^MR||Doe^John", pv1))
    local, _ = convert(er7(MSH, "PID|1||12345^^^GHH^MR||Doe^John", pv1), zone=ZoneInfo("America/New_York"))
    assert only(utc, "Encounter")["period"]["start"] == "2024-07-05T08:30:00+00:00"
    assert only(local, "Encounter")["period"]["start"] == "2024-07-05T08:30:00-04:00"
