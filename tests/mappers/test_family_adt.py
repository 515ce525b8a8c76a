"""ADT-family IG rows added for issue 3 part A, each checked against the IG sheet it cites:
DG1[Encounter]/DG1[EpisodeOfCare] (through the message spec's link `with`), CX[RelatedPerson-Mother],
PID-19/PID-15/PID-6, XPN.15, XAD.9, PV1-43, MSH-17, the PrimaryLanguage ISO 639 sources, FT1 as a
ChargeItem (no IG sheet: v2.5 6.5.1)."""
from __future__ import annotations

from mapper_helpers import only, resources, validation_errors

MSH = "MSH|^~\\&|HIS|GHH|GW|PB|20240305143000+0800||ADT^A01^ADT_A01|C1|P|2.5.1|||||USA"


def segment(name: str, fields: dict[int, str]) -> str:
    """A segment with the given fields (by number) valued, the others empty."""
    return "|".join([name] + [fields.get(n, "") for n in range(1, max(fields) + 1)])


PATIENT = {1: "1", 3: "1^^^GHH^MR", 5: "Doe^John^^^^^L^^^^^^^^Johnny", 6: "Smith^Mary^Ann", 7: "19800101", 8: "M",
           11: "1 Main St^^Town^^1^USA^H^^&Kent", 15: "ara^^HL70296^eng^^HL70296", 18: "A1^^^GHH^AN", 19: "123-45-6789"}
PID = segment("PID", PATIENT)


def test_dg1_is_a_diagnosis_of_the_visit_and_episode_with_use_and_rank(convert_er7) -> None:
    """IG DG1[Encounter] DG1-6 -> diagnosis.use (DiagnosisType A -> AD), DG1-15 -> diagnosis.rank; DG1[EpisodeOfCare] role/rank."""
    pv1 = segment("PV1", {1: "1", 2: "I", 3: "W1^1^1", 19: "V1^^^GHH^VN", 54: "EP1^^^GHH"})
    bundle, report = convert_er7(MSH, PID, pv1, "DG1|1||J18.9^Pneumonia^I10||20240305|A|||||||||2")
    condition = only(bundle, "Condition")
    ref = {"reference": f"Condition/{condition['id']}"}
    diagnosis = only(bundle, "Encounter")["diagnosis"][0]
    assert diagnosis["condition"] == ref and diagnosis["rank"] == 2
    assert diagnosis["use"]["coding"][0] == {"system": "http://terminology.hl7.org/CodeSystem/diagnosis-role", "code": "AD", "display": "Admission Diagnosis"}
    episode = only(bundle, "EpisodeOfCare")["diagnosis"][0]
    assert episode["condition"] == ref and episode["rank"] == 2 and episode["role"]["coding"][0]["code"] == "AD"
    assert not any(u["element"] in ("DG1-6", "DG1-15") for u in report.as_dict()["unmapped"])
    assert validation_errors(bundle) == []


def test_pid_rows_added_for_the_patient(convert_er7) -> None:
    bundle, _ = convert_er7(MSH, PID)
    patient = only(bundle, "Patient")
    ssn = next(i for i in patient["identifier"] if i["value"] == "123-45-6789")
    assert [c["code"] for c in ssn["type"]["coding"]] == ["SS", "SB"]  # IG PID-19
    language = patient["communication"][0]
    assert language["preferred"] is True  # IG PID-15 note
    # ISO 639-2 ara/eng -> the IG PrimaryLanguage targets (BCP 47), each before the sender's coding
    assert [(c.get("system"), c["code"]) for c in language["language"]["coding"]][:2] == [("urn:ietf:bcp:47", "ar"), ("urn:ietf:bcp:47", "en")]
    maiden = next(e for e in patient["extension"] if e["url"].endswith("patient-mothersMaidenName"))
    assert maiden["valueString"] == "Mary Ann Smith"  # IG XPN[string]: assembled per XPN.11
    assert {"given": ["Johnny"], "use": "nickname"} in patient["name"]  # IG XPN.15
    assert patient["address"][0]["district"] == "Kent"  # IG XAD.9 via CWE[string]


def test_mother_identifier_is_a_related_person(convert_er7) -> None:
    """IG CX[RelatedPerson-Mother]: PID-21 -> RelatedPerson.identifier, relationship MTH, patient."""
    bundle, _ = convert_er7(MSH, segment("PID", {**PATIENT, 21: "M77^^^GHH^MR"}))
    mother = only(bundle, "RelatedPerson")
    assert mother["identifier"][0]["value"] == "M77"
    assert mother["relationship"][0]["coding"][0]["code"] == "MTH"
    assert mother["patient"]["reference"] == f"Patient/{only(bundle, 'Patient')['id']}"
    assert validation_errors(bundle) == []


def test_prior_temporary_location_and_sender_country(convert_er7) -> None:
    """IG PV1-43 (EncounterHistory.location, complete, temporary) and MSH[MessageHeader] MSH-17 sender country."""
    bundle, _ = convert_er7(MSH, PID, segment("PV1", {1: "1", 2: "I", 3: "W1^1^1", 43: "ER^^^GHH"}))
    prior = only(bundle, "Encounter")["location"][1]
    assert prior["status"] == "completed"
    assert prior["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "temporary"
    sender = next(o for o in resources(bundle, "Organization") if o.get("name") == "GHH")
    assert sender["address"] == [{"country": "USA"}]
    assert validation_errors(bundle) == []


def test_a_null_pl_level_names_no_location(convert_er7) -> None:
    """PV1-3 W1^""^B2^FAC: the room sent as "" (v2 2.5.3 null) is no level; the bed is part of the ward."""
    bundle, _ = convert_er7(MSH, PID, segment("PV1", {1: "1", 2: "I", 3: 'W1^""^B2^FAC^^^^^""'}))
    by_name = {location["name"]: location for location in resources(bundle, "Location")}
    assert set(by_name) == {"W1", "B2", "FAC"}
    assert by_name["B2"]["partOf"] == {"reference": f"Location/{by_name['W1']['id']}"}
    assert "description" not in by_name["B2"]
    assert validation_errors(bundle) == []


def test_ft1_is_a_charge_item_of_the_patient_and_visit(convert_er7) -> None:
    msh = MSH.replace("ADT^A01^ADT_A01", "DFT^P03^DFT_P03")
    ft1 = segment("FT1", {1: "1", 2: "T1", 4: "20191122", 5: "20191122", 6: "CG", 7: "71045^Xray chest^C4", 10: "2", 11: "100&USD"})
    bundle, _ = convert_er7(msh, PID, "PV1|1|O|W1", ft1, "PR1|1||71045^Xray chest^C4||20191122")
    charge = only(bundle, "ChargeItem")
    assert charge["status"] == "billable" and charge["code"]["coding"][0]["code"] == "71045"
    assert charge["quantity"] == {"value": 2} and charge["priceOverride"] == {"value": 100, "currency": "USD"}
    assert charge["occurrenceDateTime"] == "2019-11-22"
    assert charge["subject"]["reference"] == f"Patient/{only(bundle, 'Patient')['id']}"
    assert charge["context"]["reference"] == f"Encounter/{only(bundle, 'Encounter')['id']}"
    assert charge["service"] == [{"reference": f"Procedure/{only(bundle, 'Procedure')['id']}"}]
    assert validation_errors(bundle) == []


def test_prt_after_the_patient_is_a_care_team_participant_or_the_gp(convert_er7) -> None:
    """IG ADT_A01 row 14: PRT-4 PP -> Patient.generalPractitioner; care roles -> one CareTeam of the patient (PRT[CareTeam])."""
    admitting = segment("PRT", {1: "1", 2: "AD", 4: "AD^Admitting Provider^HL70912", 5: "D1^Who^Doc", 8: "GHH Hospital", 11: "20240301", 12: "20240310"})
    gp = segment("PRT", {1: "2", 2: "AD", 4: "PP^Primary Care Provider^HL70912", 5: "D2^Gee^Pee"})
    after_visit = segment("PRT", {1: "3", 2: "AD", 4: "AD^Admitting Provider^HL70912", 5: "D3^Not^Mapped"})
    bundle, _ = convert_er7(MSH, PID, admitting, gp, segment("PV1", {1: "1", 2: "I"}), after_visit)
    team = only(bundle, "CareTeam")
    assert team["subject"]["reference"] == f"Patient/{only(bundle, 'Patient')['id']}"
    first, second = team["participant"]
    assert first["role"][0]["coding"][0]["code"] == "AD" and first["period"] == {"start": "2024-03-01", "end": "2024-03-10"}
    assert first["onBehalfOf"]["reference"].startswith("Organization/") and second["role"][0]["coding"][0]["code"] == "PP"
    gps = only(bundle, "Patient")["generalPractitioner"]
    assert gps == [second["member"]]
    assert len(resources(bundle, "Practitioner")) == 2  # the PRT after PV1 has no IG map
    assert validation_errors(bundle) == []


def test_parent_procedure_and_parent_diagnosis_are_referenced_by_identifier(convert_er7) -> None:
    """IG PR1[Procedure] PR1-25 -> partOf (EI[Procedure]); IG DG1[Condition] DG1-22 -> extension
    condition-dueTo (EI[Condition]). A parent sent in the message (PR1-19 = PR1-25) is that resource."""
    pv1 = segment("PV1", {1: "1", 2: "I", 19: "V1^^^GHH^VN"})
    parent = segment("PR1", {1: "1", 3: "0DTJ4ZZ^Resection^I10P", 5: "20240305090000+0800", 19: "PR-1"})
    child = segment("PR1", {1: "2", 3: "0DBJ4ZZ^Excision^I10P", 5: "20240305100000+0800", 19: "PR-2", 25: "PR-1"})
    dg1 = segment("DG1", {1: "1", 3: "K35.80^Appendicitis^I10", 6: "F", 20: "DG-2", 22: "DG-1"})
    bundle, report = convert_er7(MSH, PID, pv1, dg1, parent, child)
    procedures = {p["identifier"][0]["value"]: p for p in resources(bundle, "Procedure")}
    assert set(procedures) == {"PR-1", "PR-2"}
    assert procedures["PR-2"]["partOf"] == [{"reference": f"Procedure/{procedures['PR-1']['id']}"}]
    assert procedures["PR-1"]["code"]["coding"][0]["code"] == "0DTJ4ZZ" and "partOf" not in procedures["PR-1"]
    conditions = {c["identifier"][0]["value"]: c for c in resources(bundle, "Condition")}
    due_to = {"url": "http://hl7.org/fhir/StructureDefinition/condition-dueTo", "valueReference": {"reference": f"Condition/{conditions['DG-1']['id']}"}}
    assert due_to in conditions["DG-2"]["extension"]
    assert conditions["DG-1"]["subject"] == conditions["DG-2"]["subject"]
    assert not any(u["element"] in ("PR1-25", "DG1-22") for u in report.as_dict()["unmapped"])
    assert validation_errors(bundle) == []

    lone, _ = convert_er7(MSH, PID, pv1, child)  # a parent not sent: a Procedure known by its identifier only
    stub = next(p for p in resources(lone, "Procedure") if p["identifier"][0]["value"] == "PR-1")
    assert stub["status"] == "unknown" and stub["subject"]["reference"].startswith("Patient/")
    assert validation_errors(lone) == []


def test_iam_allergy_with_its_reporter(convert_er7) -> None:
    """IG IAM[AllergyIntolerance]: IAM-2 category/type, IAM-3 code, IAM-4 criticality (and reaction
    severity with IAM-5), IAM-7 identifier, IAM-11 onset, IAM-13 recordedDate; IAM-14/IAM-15 recorder
    (a RelatedPerson with the relationship; a Practitioner when IAM-15 is empty; the Patient when SEL)."""
    msh = MSH.replace("ADT^A01^ADT_A01", "ADT^A60^ADT_A60")
    iam = segment("IAM", {1: "1", 2: "FA^Food allergy^HL70127", 3: "91935009^Allergy to peanuts^SCT", 4: "SV^Severe^HL70128",
                          5: "39579001^Anaphylaxis^SCT", 6: "A", 7: "AL-7^^1.2.3.4^ISO", 11: "201805", 13: "20201005160000+0800",
                          14: "Doe^Rosa", 15: "SPO^Spouse^HL70063"})
    bundle, report = convert_er7(msh, PID, iam)
    allergy = only(bundle, "AllergyIntolerance")
    assert allergy["category"] == ["food"] and allergy["type"] == "allergy" and allergy["criticality"] == "high"
    assert allergy["code"]["coding"][0]["code"] == "91935009" and allergy["identifier"][0]["value"] == "AL-7"
    assert allergy["reaction"][0]["manifestation"][0]["coding"][0]["code"] == "39579001" and allergy["reaction"][0]["severity"] == "severe"
    assert allergy["onsetDateTime"] == "2018-05" and allergy["recordedDate"] == "2020-10-05T16:00:00+08:00"
    reporter = only(bundle, "RelatedPerson")
    assert allergy["recorder"] == {"reference": f"RelatedPerson/{reporter['id']}"}
    assert reporter["name"][0]["family"] == "Doe" and reporter["relationship"][0]["coding"][0]["code"] == "SPS"
    assert reporter["patient"] == allergy["patient"]
    assert validation_errors(bundle) == []

    clinician, _ = convert_er7(msh, PID, iam.replace("|SPO^Spouse^HL70063", "|"))
    recorder = only(clinician, "AllergyIntolerance")["recorder"]["reference"]
    assert recorder == f"Practitioner/{next(p['id'] for p in resources(clinician, 'Practitioner') if p['name'][0]['family'] == 'Doe')}"

    by_self, _ = convert_er7(msh, PID, iam.replace("|SPO^Spouse^HL70063", "|SEL^Self^HL70063"))
    assert only(by_self, "AllergyIntolerance")["recorder"] == {"reference": f"Patient/{only(by_self, 'Patient')['id']}"}
    assert resources(by_self, "RelatedPerson") == [] and validation_errors(by_self) == []


def test_next_of_kin_organization_contact_takes_every_telephone(convert_er7) -> None:
    """IG NK1[Patient] NK1-30/31: one contact person (Organization.contact.name is 0..1, so the first
    NK1-30 name) with every NK1-31 telephone; a datatype map reading another segment's repeating
    field appends each repetition, as a segment map does."""
    nk1 = segment("NK1", {1: "1", 2: "DOE^MARY", 3: "MTH^MOTHER^HL70063", 13: "Bull Run Practice",
                          30: "Smith^John~Smyth^Jon", 31: "898989^^FX~555123^^CP~^NET^Internet^js@example.org"})
    bundle, _ = convert_er7(MSH, PID, nk1)
    (contact,) = next(o for o in resources(bundle, "Organization") if o.get("name") == "Bull Run Practice")["contact"]
    assert contact["name"]["family"] == "Smith"
    assert [(t["system"], t["value"]) for t in contact["telecom"]] == [("fax", "898989"), ("phone", "555123"), ("email", "js@example.org")]
    assert validation_errors(bundle) == []
