"""Scheduling (SIU), documents (MDM), problems (PPR), finance (DFT, BAR) and referrals (REF).

Each test states the IG row (or, where the IG has no sheet, the v2.5 field definition) it
checks. The golden Bundles for these structures live in tests/data/golden/{SIU_S12,MDM_T02,
PPR_PC1,REF_I12,BAR_P01} and run in test_corpus_and_golden.py; the messages there were written
for this project.
"""
from __future__ import annotations

import base64
from pathlib import Path

import pytest

from adapters.hl7v2.errors import DataTypeError
from mapper_helpers import er7, only, resources, validation_errors
from mappers import convert

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "golden"
CORPUS = ROOT.parent / "shared" / "corpus" / "ms-fhir-converter" / "hl7v2"
FAMILY_PREFIXES = ("SIU", "MDM", "PC1", "DFT", "BAR", "REF")
FAMILY_CORPUS = sorted(p for p in CORPUS.glob("*.hl7") if p.name.startswith(FAMILY_PREFIXES)) if CORPUS.is_dir() else []


def _golden(structure: str, name: str) -> dict:
    bundle, _ = convert((GOLDEN / structure / f"{name}.hl7").read_bytes())
    assert validation_errors(bundle) == []
    return bundle


def _ref(resource: dict) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


# --- SIU ------------------------------------------------------------------------------------


def test_siu_appointment_follows_sch_and_resource_segments() -> None:
    bundle = _golden("SIU_S12", "siu-s15-cancel")
    appt = only(bundle, "Appointment")
    patient = only(bundle, "Patient")
    # SCH-25 -> status via FillerStatusCodes[Appointment] (Cancelled -> cancelled)
    assert appt["status"] == "cancelled"
    # SCH-1 / SCH-2 -> identifier[1] / identifier[2]
    assert [i["value"] for i in appt["identifier"]] == ["APT-77", "FAPT-77"]
    # SCH-7 with CWE.3 HL70276 -> reasonCode; SCH-8 with HL70277 -> appointmentType
    assert any(c.get("code") == "ROUTINE" for c in appt["reasonCode"][0]["coding"])
    assert any(c.get("code") == "Normal" for c in appt["appointmentType"]["coding"])
    # SCH-9/SCH-10 -> minutesDuration; TQ1-7/8 -> start/end
    assert appt["minutesDuration"] == 30
    assert (appt["start"], appt["end"]) == ("2024-05-12T09:00:00+08:00", "2024-05-12T09:30:00+08:00")
    # AIS-3 -> serviceType
    assert appt["serviceType"][0]["coding"][0]["code"] == "71651007"
    actors = {p["actor"]["reference"]: p for p in appt["participant"]}
    # PID[Appointment]: the patient as participant and the R5 subject extension
    assert _ref(patient) in actors
    subject = [e for e in appt["extension"] if e["url"].endswith("extension-Appointment.subject")]
    assert subject == [{"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.subject", "valueReference": {"reference": _ref(patient)}}]
    # AIP-3 -> actor Practitioner, AIP-4 -> type, AIP-6 + AIP-9 (min) -> period, AIP-12 -> status
    radiologist = next(p for p in appt["participant"] if p.get("type") and p["type"][0].get("coding", [{}])[0].get("code") == "RAD")
    assert radiologist["period"] == {"start": "2024-05-12T09:00:00+08:00", "end": "2024-05-12T09:30:00+08:00"}
    assert radiologist["status"] == "declined"
    # AIL-3 -> actor Location
    assert any(ref.startswith("Location/") for ref in actors)
    # SCH-26 valued -> ServiceRequest, Appointment.basedOn
    order = only(bundle, "ServiceRequest")
    assert appt["basedOn"] == [{"reference": _ref(order)}]
    assert order["subject"] == {"reference": _ref(patient)} and order["status"] == "revoked"
    # NTEs after SCH and after AIS -> comment (joined); the NTE after AIL has no IG map
    assert appt["comment"] == "Patient asked to cancel\nBring prior films"
    assert "Room prepared" not in str(appt)


@pytest.mark.parametrize("event,status", [("S12", "booked"), ("S15", "cancelled"), ("S17", "entered-in-error"), ("S26", "noshow")])
def test_siu_status_from_event_when_sch25_is_empty(event: str, status: str) -> None:
    bundle, _ = convert(er7(
        f"MSH|^~\\&|S|F|R|F|20240101120000+0000||SIU^{event}^SIU_S12|1|P|2.5.1",
        "SCH|A1|F1|||||||||^^^20240102090000+0000^20240102100000+0000",
        "PID|1||P1^^^F^MR||Doe^Jo",
        "RGS|1",
    ))
    assert only(bundle, "Appointment")["status"] == status
    assert validation_errors(bundle) == []


def test_siu_participant_end_is_start_plus_duration_in_its_units() -> None:
    bundle, _ = convert(er7(
        "MSH|^~\\&|S|F|R|F|20240101120000+0000||SIU^S12^SIU_S12|1|P|2.5.1",
        "SCH|A1|F1|||||||90|s|^^^20240102090000+0100^20240102100000+0100" + "|" * 14 + "Booked",
        "PID|1||P1^^^F^MR||Doe^Jo",
        "RGS|1",
        "AIP|1||7^Kim^Lee|||20240102093000+0100|||2|h^hours^ISO+||Booked",
    ))
    appt = only(bundle, "Appointment")
    assert appt["minutesDuration"] == 2  # 90 s rounded to whole minutes
    person = next(p for p in appt["participant"] if "period" in p)
    assert person["period"] == {"start": "2024-01-02T09:30:00+01:00", "end": "2024-01-02T11:30:00+01:00"}
    assert person["status"] == "accepted"


@pytest.mark.parametrize(("sch9", "start", "aip9", "where"), [
    ("99999999999999999999", "20240102093000+0100", "2", "SCH-9"),  # no positiveInt holds it (R4 Appointment.minutesDuration)
    ("90", "20240102093000+0100", "99999999999999999999", "AIP-9"),
    ("90", "99991231230000+0000", "2", "AIP-9"),  # its end would lie past the year 9999
])
def test_a_duration_too_long_for_fhir_is_an_error_at_its_field(sch9: str, start: str, aip9: str, where: str) -> None:
    with pytest.raises(DataTypeError, match=where):
        convert(er7(
            "MSH|^~\\&|S|F|R|F|20240101120000+0000||SIU^S12^SIU_S12|1|P|2.5.1",
            f"SCH|A1|F1|||||||{sch9}|s|^^^20240102090000+0100^20240102100000+0100",  # a booked appointment has both (app-3)
            "PID|1||P1^^^F^MR||Doe^Jo",
            "RGS|1",
            f"AIP|1||7^Kim^Lee|||{start}|||{aip9}|h^hours^ISO+||Booked",
        ))


# --- MDM ------------------------------------------------------------------------------------


def test_mdm_document_reference_from_txa_and_obx() -> None:
    bundle = _golden("MDM_T02", "mdm-t02-consult-note")
    doc = only(bundle, "DocumentReference")
    order = only(bundle, "ServiceRequest")
    # TXA-12 -> masterIdentifier, TXA-16 -> identifier, TXA-2 -> type
    assert doc["masterIdentifier"]["value"] == "DOC-42"
    assert doc["identifier"] == [{"value": "note-42.txt"}]
    assert doc["type"]["coding"][0]["code"] == "CN"
    # TXA-19 AV -> current; TXA-17 LA (legally authenticated) -> final; TXA-18 -> securityLabel
    assert (doc["status"], doc["docStatus"]) == ("current", "final")
    assert doc["securityLabel"][0]["coding"][0] == {"system": "http://terminology.hl7.org/CodeSystem/v2-0272", "code": "R", "display": "Restricted"}
    # TXA-6 -> date; TXA-9 -> author; TXA-10 -> authenticator
    assert doc["date"] == "2024-05-11T10:00:00+08:00"
    assert doc["author"][0]["reference"].startswith("Practitioner/")
    assert doc["authenticator"] == doc["author"][0]
    # IG message sheet: context.related -> the ServiceRequest of the order
    assert doc["context"]["related"] == [{"reference": _ref(order)}]
    # OBX TX: every repetition and every OBX is a line of one text attachment
    text = next(c for c in doc["content"] if c["attachment"]["contentType"] == "text/plain")
    assert base64.b64decode(text["attachment"]["data"]).decode() == "Patient seen in clinic.\nPlan: follow up in 2 weeks.\nSigned electronically."
    # NTE after an OBX -> the text/hl7v2 content (NTE[DocumentReference]); NTE after OBR -> ServiceRequest.note
    note = next(c for c in doc["content"] if c["attachment"]["contentType"] == "text/hl7v2")
    assert base64.b64decode(note["attachment"]["data"]).decode() == "Copy sent to GP"
    assert order["note"] == [{"text": "Requested by ward 5"}]
    # OBX ED -> content.attachment (ED[Attachment])
    pdf = next(c for c in doc["content"] if c["attachment"]["contentType"] == "application/pdf")
    assert pdf["attachment"]["data"] == "SGVsbG8gUERG"


@pytest.mark.parametrize("event,code", [("T06", "appends"), ("T10", "replaces")])
def test_mdm_addendum_and_replacement_point_at_the_parent_document(event: str, code: str) -> None:
    bundle, _ = convert(er7(
        f"MSH|^~\\&|S|F|R|F|20240101120000+0000||MDM^{event}^MDM_{event}|1|P|2.5.1",
        "PID|1||P1^^^F^MR||Doe^Jo",
        "PV1|1|O",
        "TXA|1|CN|TX|||||||||DOC-2|DOC-1||||DO||AV",
        "OBX|1|TX|x^y^L||Line one||||||F",
    ))
    doc = only(bundle, "DocumentReference")
    assert doc["relatesTo"] == [{"code": code, "target": {"identifier": {"value": "DOC-1"}}}]
    assert doc["docStatus"] == "preliminary"
    assert validation_errors(bundle) == []


def test_mdm_notification_without_content_still_has_content() -> None:
    bundle, _ = convert(er7(
        "MSH|^~\\&|S|F|R|F|20240101120000+0000||MDM^T01^MDM_T01|1|P|2.5.1",
        "PID|1||P1^^^F^MR||Doe^Jo",
        "PV1|1|O",
        "TXA|1|CN|TX|||||||||DOC-3|||||AU||OB",
    ))
    doc = only(bundle, "DocumentReference")
    assert doc["content"] == [{"attachment": {"contentType": "text/plain"}}]
    assert doc["status"] == "superseded"
    assert doc["_status"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "OB"
    assert validation_errors(bundle) == []


# --- PPR ------------------------------------------------------------------------------------


def test_ppr_problem_update_resolves_the_condition() -> None:
    bundle = _golden("PPR_PC1", "ppr-pc2-problem-resolved")
    problem = only(bundle, "Condition")
    obs = only(bundle, "Observation")
    assert problem["category"][0]["coding"][0]["code"] == "problem-list-item"
    assert problem["identifier"][0]["value"] == "PRB-1"
    assert problem["code"]["coding"][0]["code"] == "I10"
    assert problem["clinicalStatus"]["coding"][0]["code"] == "resolved"  # PRB-14
    assert problem["abatementDateTime"] == "2024-05-08"  # PRB-9
    assert problem["onsetDateTime"] == "2023-01-15"  # PRB-16
    assert problem["recordedDate"] == "2024-05-01"  # PRB-7
    assert problem["note"] == [{"text": "Controlled with diet"}]
    assert problem["evidence"] == [{"detail": [{"reference": _ref(obs)}]}]


@pytest.mark.skipif(not (CORPUS / "PC1-Problem-Delete-v2.3.1.hl7").exists(), reason="corpus not found")
def test_ppr_problem_delete_is_entered_in_error_without_clinical_status() -> None:
    # corpus PC1-Problem-Delete-v2.3.1.hl7: PPR^PC3, PRB-1 DE
    bundle, _ = convert((CORPUS / "PC1-Problem-Delete-v2.3.1.hl7").read_bytes())
    problem = only(bundle, "Condition")
    assert problem["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert "clinicalStatus" not in problem  # con-5
    assert problem["note"][0]["text"] == "Patient reported problem was a mistake."


# --- BAR / DFT ------------------------------------------------------------------------------


def test_bar_account_from_pid18_with_guarantor_and_encounter() -> None:
    bundle = _golden("BAR_P01", "bar-p01-new-account")
    account = only(bundle, "Account")
    patient = only(bundle, "Patient")
    encounter = only(bundle, "Encounter")
    guarantor = only(bundle, "RelatedPerson")
    # IG PID[Account]: PID-18 -> identifier, status active
    assert account["identifier"][0]["value"] == "ACC-778" and account["status"] == "active"
    assert account["subject"] == [{"reference": _ref(patient)}]
    assert account["guarantor"] == [{"party": {"reference": _ref(guarantor)}}]
    assert account["coverage"] == [{"coverage": {"reference": _ref(only(bundle, "Coverage"))}}]
    assert encounter["account"] == [{"reference": _ref(account)}]
    # GT1-3 name, GT1-11 relationship, GT1-13/14 period
    assert guarantor["name"][0]["family"] == "王" and guarantor["patient"] == {"reference": _ref(patient)}
    assert any(c.get("code") == "FTH" for c in guarantor["relationship"][0]["coding"])
    assert guarantor["period"] == {"start": "2024-01-01", "end": "2024-12-31"}


def test_dft_ft1_is_a_charge_item_and_its_unread_fields_are_reported() -> None:
    # the IG has no FT1 map: FT1 follows v2.5 6.5.1 onto FHIR ChargeItem; what it does not read is reported
    bundle, report = convert(er7(
        "MSH|^~\\&|S|F|R|F|20240101120000+0000||DFT^P03^DFT_P03|1|P|2.5.1",
        "EVN|P03|20240101120000+0000",
        "PID|1||P1^^^F^MR||Doe^Jo|||||||||||||AC-1^^^F^AN",
        "PV1|1|O|||||||||||||||||V-1^^^F^VN",
        "FT1|1|T-1||20240101|20240101|CG|71045^Xray chest^C4|||1|100&USD|40&USD",
        "PR1|1||71045^Xray chest^C4||20240101",
    ))
    charge = only(bundle, "ChargeItem")
    assert charge["account"][0]["reference"].startswith("Account/")
    assert only(bundle, "Procedure")["subject"]["reference"].startswith("Patient/")
    assert only(bundle, "Encounter")["account"][0]["reference"].startswith("Account/")
    unmapped = {u["location"] for u in report.as_dict(with_ig=False)["unmapped"]}
    assert "FT1-12" in unmapped and not {"FT1-2", "FT1-6", "FT1-7"} & unmapped
    assert validation_errors(bundle) == []


def test_dft_ft1_facilities_vip_and_episode_of_care() -> None:
    # FT1-32/33 (v2.6 6.5.1.32/33) -> ChargeItem.performingOrganization / requestingOrganization;
    # as IG ADT_A01: PV1-16 -> patient-importance, PV1-54 -> EpisodeOfCare of the visit
    bundle, _ = convert(er7(
        "MSH|^~\\&|S|F|R|F|20240101120000+0000||DFT^P03^DFT_P03|1|P|2.6",
        "EVN|P03|20240101120000+0000",
        "PID|1||P1^^^F^MR||Doe^Jo",
        "PV1|1|O||||||||||||||VIP^Very important^L|||V-1^^^F^VN" + "|" * 35 + "EOC-9^^^F^MR",
        "FT1|1|T-1||20240101|20240101|CG|71045^Xray chest^C4|||1" + "|" * 22 + "Lab Inc^^^^^^^^^L-7|Ward Clinic",
    ))
    charge, patient = only(bundle, "ChargeItem"), only(bundle, "Patient")
    orgs = {o["name"]: o for o in resources(bundle, "Organization")}
    assert charge["performingOrganization"] == {"reference": _ref(orgs["Lab Inc"])}
    assert orgs["Lab Inc"]["identifier"][0]["value"] == "L-7"
    assert charge["requestingOrganization"] == {"reference": _ref(orgs["Ward Clinic"])}
    importance = [e for e in patient["extension"] if e["url"].endswith("patient-importance")]
    assert importance[0]["valueCodeableConcept"]["coding"][0]["code"] == "VIP"
    episode = only(bundle, "EpisodeOfCare")
    assert episode["identifier"][0]["value"] == "EOC-9" and episode["patient"] == {"reference": _ref(patient)}
    assert only(bundle, "Encounter")["episodeOfCare"] == [{"reference": _ref(episode)}]
    assert validation_errors(bundle) == []


# --- REF ------------------------------------------------------------------------------------


def test_ref_referral_service_request_with_providers() -> None:
    bundle = _golden("REF_I12", "ref-i12-gi-referral")
    referral = next(r for r in resources(bundle, "ServiceRequest") if any(c["coding"][0].get("code") == "3457005" for c in r.get("category", [])))
    roles = {r["code"][0]["coding"][0]["code"]: r for r in resources(bundle, "PractitionerRole")}
    condition = only(bundle, "Condition")
    report = only(bundle, "DiagnosticReport")
    # RF1-1 P -> active; RF1-2 A -> asap; RF1-6 -> identifier; RF1-7/8 -> authoredOn / occurrencePeriod
    assert (referral["status"], referral["intent"], referral["priority"]) == ("active", "order", "asap")
    assert referral["identifier"][0]["value"] == "R-555"
    assert referral["authoredOn"] == "2024-05-07"
    assert referral["occurrencePeriod"] == {"start": "2024-05-07", "end": "2024-08-07"}
    # PRD-1 RP -> requester, RT -> performer; PRD-2 -> Practitioner.name
    assert referral["requester"] == {"reference": _ref(roles["RP"])}
    assert referral["performer"] == [{"reference": _ref(roles["RT"])}]
    practitioner = next(p for p in resources(bundle, "Practitioner") if _ref(p) == roles["RP"]["practitioner"]["reference"])
    assert practitioner["name"][0]["family"] == "Wang"
    assert practitioner["identifier"][0]["value"] == "LIC-1001"
    assert referral["reasonReference"] == [{"reference": _ref(condition)}]
    assert referral["supportingInfo"] == [{"reference": _ref(report)}]
    assert only(bundle, "Observation")["note"] == [{"text": "Please see before end of month"}]


def test_ref_provider_organization_and_observation_participation() -> None:
    # PRD-10/11/13 (v2.7 11.6.3) -> PractitionerRole.organization with address and phone;
    # as IG ORU_R01 4.2.4.3.2: a PRT of an OBX -> the Observation's performer
    bundle, _ = convert(er7(
        "MSH|^~\\&|S|F|R|F|20240101120000+0000||REF^I12^REF_I12|1|P|2.7",
        "RF1|P^Pending^HL70283|R^Routine^HL70280|||||20240101||||R-1",
        "PRD|RP^Referring Provider^HL70286|Wang^Li|||||LIC-1^SL|||Good Clinic|1 Main St^^Ann Arbor^MI||^WPN^PH^^^^^^^^^(555)555-1234",
        "PID|1||P1^^^F^MR||Doe^Jo",
        "OBR|1|||1234-5^Test^LN",
        "OBX|1|ST|1234-5^Test^LN||fine||||||F",
        "PRT|1|AD||RO^Responsible Observer^HL70912|77^Observer^Ann",
    ))
    role = next(r for r in resources(bundle, "PractitionerRole") if r.get("organization"))
    org = next(o for o in resources(bundle, "Organization") if _ref(o) == role["organization"]["reference"])
    assert org["name"] == "Good Clinic" and org["address"][0]["city"] == "Ann Arbor"
    assert org["telecom"][0]["value"] == "(555)555-1234"
    performer = only(bundle, "Observation")["performer"]
    assert any(p["reference"].startswith("PractitionerRole/") for p in performer)
    assert validation_errors(bundle) == []


# --- corpus ---------------------------------------------------------------------------------


@pytest.mark.skipif(not FAMILY_CORPUS, reason=f"corpus not found at {CORPUS}")
@pytest.mark.parametrize("path", FAMILY_CORPUS, ids=lambda p: p.stem)
def test_family_corpus_message_converts_and_validates(path: Path) -> None:
    bundle, _ = convert(path.read_bytes())
    assert validation_errors(bundle) == []
    expected = {"SIU": "Appointment", "MDM": "DocumentReference", "PC1": "Condition", "REF": "ServiceRequest", "BAR": "Account", "DFT": "Account"}
    declared = path.read_bytes().split(b"|")[8]  # MSH-9: SIU_12.hl7 and MDM_01.hl7 are really ADT messages
    if declared.startswith(path.name[:3].encode()) or path.name.startswith("PC1"):
        assert resources(bundle, expected[path.name[:3]])
