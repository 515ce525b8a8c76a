"""Order, pharmacy and immunization families (specs/messages ORM, OML, OMG, OUL_R22-24, RDE, RDS,
RAS, VXU; specs/segments/orders.yaml): every corpus message of these structures converts to a
valid Bundle (goldens under tests/data/golden/{VXU_V04,RDE_O11,RDS_O13} run in
test_corpus_and_golden.py), and the
element-level expectations below come from the IG sheets each test names."""
from __future__ import annotations

from pathlib import Path

import pytest

from mapper_helpers import only, resources, validation_errors
from mappers import convert

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "ms-fhir-converter" / "hl7v2"
CORPUS_FILES = sorted(
    p.name
    for pattern in ("LAB-ORM*", "ORM-O01*", "OML-O21*", "MDHHS-OML-O21*", "OMG-O19*", "OUL-R2*", "RDE-O*", "RDS-O13*", "VXU*", "IZ_1_1.1*")
    for p in CORPUS.glob(pattern + ".hl7")
)
SPEC_OF = {"LAB-ORM": "ORM", "ORM-O01": "ORM", "OML-O21-02": "ORM", "OML-O21": "OML", "MDHHS-OML": "OML", "OMG-O19": "OMG",
           "OUL-R22": "OUL_R22", "OUL-R23": "OUL_R23", "OUL-R24": "OUL_R24", "RDE": "RDE", "RDS": "RDS", "VXU": "VXU", "IZ_1": "VXU"}
def _spec_for(name: str) -> str:
    return next(spec for prefix, spec in SPEC_OF.items() if name.startswith(prefix))


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_message_converts_with_its_family_spec_and_validates(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    bundle, report = convert(raw)
    assert report.message_spec == f"messages/{_spec_for(name)}.yaml"
    assert validation_errors(bundle) == []  # also where OBX share an OBX-21 (OMG-O19, OUL): one Observation each


VXU = "MSH|^~\\&|EHR|CLINIC|IIS|STATE|20240410093000+0800||VXU^V04^VXU_V04|V1|P|2.5.1"
PID = "PID|1||P777^^^CLINIC^MR||Li^Ming||20230105|M"


def test_vxu_rxa_rxr_orc_make_one_immunization_per_ig_rxa_sheet(convert_er7) -> None:
    bundle, _ = convert_er7(
        VXU, PID,
        "ORC|RE|ORD-1^CLINIC|FIL-1^CLINIC|||||||||D900^Wang^Fang",
        "RXA|0|1|20240410090000+0800||08^Hep B^CVX|0.5|mL^mL^UCUM||00^New^NIP001|N100^Zhao^Lei|||||LOT42|20250101|MSD^Merck^MVX|||CP|A",
        "RXR|C28161^Intramuscular^NCIT|LT^Left Thigh^HL70163",
        "OBX|1|CE|64994-7^Eligibility^LN|1|V02^VFC eligible - Medicaid^HL70064||||||F",
    )
    imm = only(bundle, "Immunization")
    assert imm["status"] == "completed"  # RXA-20 CP via CompletionStatus
    assert imm["occurrenceDateTime"] == "2024-04-10T09:00:00+08:00"
    assert imm["vaccineCode"]["coding"][0] == {"code": "08", "display": "Hep B", "system": "http://hl7.org/fhir/sid/cvx"}
    assert imm["doseQuantity"] == {"value": 0.5, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}
    assert imm["lotNumber"] == "LOT42" and imm["expirationDate"] == "2025-01-01" and imm["primarySource"] is True
    assert [p["function"]["coding"][0]["code"] for p in imm["performer"]] == ["OP", "AP"]
    assert [i["type"]["coding"][0]["code"] for i in imm["identifier"]] == ["PLAC", "FILL"]
    assert imm["patient"]["reference"] == f"Patient/{only(bundle, 'Patient')['id']}"
    assert imm["programEligibility"][0]["coding"][0]["code"] == "V02"
    assert "route" in imm and imm["site"]["coding"][-1]["code"] == "LT"
    manufacturer = only(bundle, "Organization") if len(resources(bundle, "Organization")) == 1 else None
    assert imm["manufacturer"]["reference"].startswith("Organization/")
    if manufacturer is not None:
        assert manufacturer["name"] == "Merck"
    obs = only(bundle, "Observation")
    assert obs["partOf"] == [{"reference": f"Immunization/{imm['id']}"}]  # IG VXU_V04 12.6.1
    assert only(bundle, "ServiceRequest")["status"] == "unknown"  # ORC-1 RE has no request status
    assert validation_errors(bundle) == []


def test_vxu_entered_in_error_and_historical_dose(convert_er7) -> None:
    bundle, _ = convert_er7(VXU, PID, "ORC|RE||F2^CLINIC", "RXA|0|1|20230601||08^Hep B^CVX|999|||01^Historical^NIP001|||||||||||CP|D")
    imm = only(bundle, "Immunization")
    assert imm["status"] == "entered-in-error"  # IG RXA-21 = D
    assert imm["primarySource"] is False and imm["reportOrigin"]["coding"][0]["code"] == "01"


RDE = "MSH|^~\\&|PHARM|HOSP|EHR|HOSP|20240411080000+0800||RDE^O11^RDE_O11|R1|P|2.5.1"


def test_rde_encoded_order_is_based_on_the_placer_order(convert_er7) -> None:
    bundle, _ = convert_er7(
        RDE, PID,
        "ORC|NW|PL-77^HOSP|FL-88^PHARM||SC||||20240411075500+0800",
        "RXO|123^Drug A^NDC|250||mg^mg^UCUM",
        "RXR|PO^Oral^HL70162",
        "RXE||123^Drug A^NDC|250||mg^mg^UCUM|CAP^Capsule^L|||G|28|CAP^Capsule^L|2|||RX-5001",
        "TQ1|1||BID^^^^12^h^^ACM||||20240411080000+0800|20240418080000+0800|R",
        "RXR|IV^Intravenous^HL70162",
    )
    requests = {r["intent"]: r for r in resources(bundle, "MedicationRequest")}
    placer, order = requests["original-order"], requests["order"]  # IG RXO[MedicationRequest] intent
    assert order["basedOn"] == [{"reference": f"MedicationRequest/{placer['id']}"}]
    assert order["status"] == "active" and placer["status"] == "active"  # ORC-5 SC via OrderStatus
    assert placer["dosageInstruction"][0]["doseAndRate"][0]["doseRange"]["low"]["value"] == 250  # IG RXO-2
    assert placer["dosageInstruction"][0]["route"]["coding"][-1]["code"] == "PO"
    dosage = order["dosageInstruction"][-1]
    assert dosage["route"]["coding"][-1]["code"] == "IV"  # the RXR after RXE belongs to the encoded order
    assert dosage["timing"]["repeat"]["boundsPeriod"]["start"] == "2024-04-11T08:00:00+08:00"
    assert dosage["timing"]["repeat"]["period"] == 12 and dosage["timing"]["repeat"]["periodUnit"] == "h"
    assert dosage["timing"]["repeat"]["when"] == ["ACM"]
    assert order["dispenseRequest"]["quantity"]["value"] == 28 and order["dispenseRequest"]["numberOfRepeatsAllowed"] == 2
    assert order["priority"] == "routine"
    meds = {m["id"]: m for m in resources(bundle, "Medication")}
    assert meds[order["medicationReference"]["reference"].split("/")[1]]["form"]["coding"][0]["code"] == "CAP"
    assert placer["medicationReference"]["reference"] != order["medicationReference"]["reference"]
    assert validation_errors(bundle) == []


@pytest.mark.parametrize(("orc5", "status"), [("CA", "cancelled"), ("DC", "stopped"), ("HD", "on-hold"), ("CM", "completed")])
def test_medication_request_status_from_orc5(convert_er7, orc5: str, status: str) -> None:
    """IG OrderStatus map, with request-status revoked as R4 medicationrequest-status cancelled/stopped."""
    bundle, _ = convert_er7(RDE, PID, f"ORC|XO|PL-1^HOSP|||{orc5}", "RXE||123^Drug A^NDC|1||TAB^Tablet^L")
    assert only(bundle, "MedicationRequest")["status"] == status


def test_rds_dispense_is_authorized_by_the_order(convert_er7) -> None:
    bundle, _ = convert_er7(
        RDE.replace("RDE^O11^RDE_O11", "RDS^O13^RDS_O13"), PID,
        "ORC|RE|PL-77^HOSP|FL-88^PHARM||CM",
        "RXE||123^Drug A^NDC|250||mg^mg^UCUM",
        "RXD|1|123^Drug A^NDC|20240412094500+0800|28|CAP^Capsule^L||RX-5001",
        "RXR|PO^Oral^HL70162",
    )
    dispense = only(bundle, "MedicationDispense")
    order = only(bundle, "MedicationRequest")
    assert dispense["authorizingPrescription"] == [{"reference": f"MedicationRequest/{order['id']}"}]
    assert dispense["status"] == "completed" and dispense["whenHandedOver"] == "2024-04-12T09:45:00+08:00"
    assert dispense["quantity"]["value"] == 28
    assert dispense["dosageInstruction"][0]["route"]["coding"][-1]["code"] == "PO"
    assert all("route" not in d for d in order["dosageInstruction"])  # the RXR after RXD is the dispense's
    assert validation_errors(bundle) == []


def test_ras_administration_of_the_order(convert_er7) -> None:
    bundle, report = convert_er7(
        RDE.replace("RDE^O11^RDE_O11", "RAS^O17^RAS_O17"), PID,
        "ORC|RE|PL-77^HOSP",
        "RXE||123^Drug A^NDC|250||mg^mg^UCUM",
        "RXA|0|1|20240412100000+0800|20240412101500+0800|123^Drug A^NDC|250|mg^mg^UCUM|||||||||||||CP",
        "RXR|PO^Oral^HL70162",
    )
    assert report.message_spec == "messages/RAS.yaml"
    admin = only(bundle, "MedicationAdministration")
    assert admin["request"]["reference"] == f"MedicationRequest/{only(bundle, 'MedicationRequest')['id']}"
    assert admin["status"] == "completed" and admin["effectivePeriod"]["end"] == "2024-04-12T10:15:00+08:00"
    assert admin["dosage"]["dose"]["value"] == 250 and admin["dosage"]["route"]["coding"][-1]["code"] == "PO"
    assert validation_errors(bundle) == []


ORM = "MSH|^~\\&|ORD|HOSP|LIS|LAB|20240413080000+0800||ORM^O01^ORM_O01|O1|P|2.5.1"


def test_orm_order_with_diagnosis_and_observation_per_ig_orm_sheet(convert_er7) -> None:
    bundle, _ = convert_er7(
        ORM, PID,
        "ORC|NW|PL-9^HOSP|||SC",
        "OBR|1|PL-9^HOSP||24317-0^Hemogram^LN",
        "NTE|1||Fasting sample",
        "DG1|1||E11.9^Type 2 diabetes^I10",
        "OBX|1|NM|2339-0^Glucose^LN||5.4|mmol/L^mmol/L^UCUM|||||F",
        "NTE|1||Sent by patient",
    )
    request = only(bundle, "ServiceRequest")
    condition, observation = only(bundle, "Condition"), only(bundle, "Observation")
    assert request["code"]["coding"][0]["code"] == "24317-0" and request["status"] == "active"
    assert request["reasonReference"] == [{"reference": f"Condition/{condition['id']}"}]  # IG ORM 4.2.4
    assert request["supportingInfo"] == [{"reference": f"Observation/{observation['id']}"}]  # IG ORM 4.2.5.1
    assert request["note"] == [{"text": "Fasting sample"}] and observation["note"] == [{"text": "Sent by patient"}]
    assert validation_errors(bundle) == []


OUL = "MSH|^~\\&|LIS|LAB|EHR|HOSP|20240414080000+0800||OUL^R22^OUL_R22|U1|P|2.5.1"


def test_oul_r22_results_belong_to_their_specimen(convert_er7) -> None:
    bundle, report = convert_er7(
        OUL, PID,
        "SPM|1|S-1&LAB||119297000^Blood specimen^SCT",
        "SAC|||C-1^LAB",
        "OBR|1|PL-1^HOSP|FL-1^LAB|2339-0^Glucose^LN",
        "ORC|SC|PL-1^HOSP|FL-1^LAB||CM",
        "OBX|1|NM|2339-0^Glucose^LN||5.4|mmol/L^mmol/L^UCUM|||||F",
        "SPM|2|S-2&LAB||122575003^Urine specimen^SCT",
        "OBR|2|PL-2^HOSP|FL-2^LAB|5778-6^Color of urine^LN",
        "OBX|1|ST|5778-6^Color of urine^LN||Yellow||||||F",
    )
    assert report.message_spec == "messages/OUL_R22.yaml"
    specimens = {s["type"]["coding"][-1]["code"]: s for s in resources(bundle, "Specimen")}
    by_code = {o["code"]["coding"][0]["code"]: o for o in resources(bundle, "Observation")}
    assert by_code["2339-0"]["specimen"]["reference"] == f"Specimen/{specimens['119297000']['id']}"
    assert by_code["5778-6"]["specimen"]["reference"] == f"Specimen/{specimens['122575003']['id']}"
    assert specimens["119297000"]["container"][0]["identifier"][0]["value"] == "C-1"
    reports = resources(bundle, "DiagnosticReport")
    assert len(reports) == 2 and len(resources(bundle, "ServiceRequest")) == 2
    glucose_request = next(r for r in resources(bundle, "ServiceRequest") if r["code"]["coding"][0]["code"] == "2339-0")
    # the ORC after its OBR (OUL grammar) merges into the OBR's request: its order numbers
    assert [i["type"]["coding"][0]["code"] for i in glucose_request["identifier"]] == ["PLAC", "FILL"]
    assert validation_errors(bundle) == []


def test_orm_tq1_timing_and_ordering_provider_role_per_ig_tq1_and_orc_sheets(convert_er7) -> None:
    bundle, _ = convert_er7(
        ORM, PID,
        "ORC|NW|PL-10^HOSP|||SC||||20240413080000+0800|||DOC-7^WANG^LI|||||||||Ward Clinic^L^^^^HOSP&1.2.3&ISO^XX^^^77|1 Main St^^Shanghai^^200000^CHN",
        "TQ1|1|2^tablet&tablet|Q6H&Every 6 hours&HL70335^^^^6^h^^AC^30^min|08:00:00~1400|||20240413090000+0800|20240420090000+0800|R^Routine^HL70485||Take with water||15^min|20",
        "OBR|1|PL-10^HOSP||24317-0^Hemogram^LN|||||||||||||||||||||||||PL-1^FL-1",
    )
    request = only(bundle, "ServiceRequest")
    timing = request["occurrenceTiming"]
    # IG TQ1[ServiceRequest]: TQ1-2 quantity, TQ1-3 RPT[Timing], TQ1-4 timeOfDay, TQ1-7/8 boundsPeriod, TQ1-13 duration
    assert request["quantityQuantity"]["value"] == 2 and "occurrenceDateTime" not in request
    assert timing["code"]["coding"][0]["code"] == "Q6H"
    repeat = timing["repeat"]
    assert (repeat["period"], repeat["periodUnit"], repeat["when"], repeat["offset"]) == (6, "h", ["AC"], 30)
    assert repeat["timeOfDay"] == ["08:00:00", "14:00:00"]
    assert repeat["boundsPeriod"] == {"start": "2024-04-13T09:00:00+08:00", "end": "2024-04-20T09:00:00+08:00"}
    assert (repeat["duration"], repeat["durationUnit"], repeat["count"]) == (15, "min", 20)
    assert request["priority"] == "routine" and request["note"] == [{"text": "Take with water"}]
    # IG ORC-12/21/22: requester is a PractitionerRole of the ordering provider in the ordering facility
    role = only(bundle, "PractitionerRole")
    assert request["requester"] == {"reference": f"PractitionerRole/{role['id']}"}
    practitioner = only(bundle, "Practitioner")
    assert role["practitioner"] == {"reference": f"Practitioner/{practitioner['id']}"}
    facility = next(o for o in resources(bundle, "Organization") if role["organization"] == {"reference": f"Organization/{o['id']}"})
    assert facility["name"] == "Ward Clinic" and facility["address"][0]["city"] == "Shanghai"
    # IG OBR-29: the parent order by its placer and filler numbers
    assert [b["identifier"]["value"] for b in request["basedOn"]] == ["PL-1", "FL-1"]
    assert all(b["type"] == "ServiceRequest" for b in request["basedOn"])
    assert validation_errors(bundle) == []


def test_orc7_quantity_timing_when_no_tq1_per_ig_tq_service_request(convert_er7) -> None:
    bundle, _ = convert_er7(
        ORM, PID,
        "ORC|NW|PL-11^HOSP|||SC||1&tablet^BID&0900,2100^D3^^^R^^Before meals^^^^6",
        "OBR|1|PL-11^HOSP||24317-0^Hemogram^LN",
    )
    request = only(bundle, "ServiceRequest")
    timing = request["occurrenceTiming"]
    assert timing["code"]["coding"][0]["code"] == "BID"
    # IG TQ.3 duration -> boundsDuration (no TQ.4/TQ.5 here); TQ.12 -> count
    assert timing["repeat"]["boundsDuration"] == {"value": 3, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}
    assert timing["repeat"]["count"] == 6
    assert request["priority"] == "routine" and request["note"] == [{"text": "Before meals"}]
    assert validation_errors(bundle) == []


def test_obr6_stays_the_occurrence_without_a_tq1_timing(convert_er7) -> None:
    bundle, _ = convert_er7(
        ORM, PID,
        "ORC|NW|PL-12^HOSP|||SC",
        "TQ1|1||||||||S",
        "OBR|1|PL-12^HOSP||24317-0^Hemogram^LN||20240413100000+0800",
    )
    request = only(bundle, "ServiceRequest")
    assert request["occurrenceDateTime"] == "2024-04-13T10:00:00+08:00" and "occurrenceTiming" not in request
    assert request["priority"] == "stat"


ORU = "MSH|^~\\&|LIS|LAB|EHR|HOSP|20240415080000+0800||ORU^R01^ORU_R01|R1|P|2.5.1"


def test_oru_order_specimen_and_responsible_observer_per_ig_oru_sheet(convert_er7) -> None:
    bundle, _ = convert_er7(
        ORU, PID,
        "OBR|1|PL-20^HOSP|FL-20^LAB|24317-0^Hemogram^LN|||20240415070000+0800",
        "OBX|1|NM|718-7^Hemoglobin^LN||13.2|g/dL^g/dL^UCUM|||||F|||||OBS-1^LI^NA",
        "OBR|2|PL-21^HOSP|FL-21^LAB|2345-7^Glucose^LN|||20240415071000+0800",
        "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L^mmol/L^UCUM|||||F",
        "SPM|1|SP-21&HOSP||BLD^Blood^HL70487|||||||||||||20240415071000+0800|||Y",
    )
    reports = {r["code"]["coding"][0]["code"]: r for r in resources(bundle, "DiagnosticReport")}
    requests = {r["code"]["coding"][0]["code"]: r for r in resources(bundle, "ServiceRequest")}
    specimens = {s.get("accessionIdentifier", {}).get("value") or s["identifier"][0]["value"]: s for s in resources(bundle, "Specimen")}
    # IG ORU_R01 4.2.2 OBR[Specimen]: the first order names no SPM, so its OBR is the specimen (OBR-2 accession, OBR-7 collected)
    from_obr = specimens["PL-20"]
    assert from_obr["collection"]["collectedDateTime"] == "2024-04-15T07:00:00+08:00"
    assert reports["24317-0"]["specimen"] == [{"reference": f"Specimen/{from_obr['id']}"}]
    # the second order has an SPM: only that Specimen (IG 4.2.7.1), also the order's specimen (IG OML_O21 6.4.8.1)
    from_spm = specimens["SP-21"]
    assert len(specimens) == 2 and from_spm["status"] == "available"  # IG SPM-20 Y
    assert reports["2345-7"]["specimen"] == [{"reference": f"Specimen/{from_spm['id']}"}]
    assert requests["2345-7"]["specimen"] == [{"reference": f"Specimen/{from_spm['id']}"}]
    # IG OBX-16: the responsible observer is a PractitionerRole (code responsibleObserver)
    role = only(bundle, "PractitionerRole")
    assert role["code"][0]["coding"][0]["code"] == "responsibleObserver"
    hemoglobin = next(o for o in resources(bundle, "Observation") if o["code"]["coding"][0]["code"] == "718-7")
    assert {"reference": f"PractitionerRole/{role['id']}"} in hemoglobin["performer"]
    assert validation_errors(bundle) == []


VISIT = "PV1|1|O|CLINIC^^^HOSP"


def _ref(resource: dict) -> dict:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def test_ft1_of_a_pharmacy_order_is_a_charge_item_supported_by_the_order(convert_er7) -> None:
    """FT1 has no IG sheet: as in DFT (segments/encounters.yaml FT1[ChargeItem]), of the patient and visit, its order as supporting information."""
    bundle, _ = convert_er7(
        RDE, PID, VISIT,
        "ORC|NW|PL-9^HOSP||||||||20240411075500+0800",
        "RXE||123^Drug A^NDC|250||mg^mg^UCUM",
        "FT1|1|TX-1||20240411|20240411|CG|71045^Xray exam chest 1 view^C4|||2|100&USD",
    )
    charge, order = only(bundle, "ChargeItem"), only(bundle, "MedicationRequest")
    assert charge["status"] == "billable" and charge["code"]["coding"][0]["code"] == "71045"
    assert charge["subject"] == _ref(only(bundle, "Patient")) and charge["context"] == _ref(only(bundle, "Encounter"))
    assert charge["supportingInformation"] == [_ref(order)]
    assert charge["quantity"]["value"] == 2 and charge["priceOverride"] == {"value": 100, "currency": "USD"}
    assert validation_errors(bundle) == []


def test_prt_participations_per_ig_oru_sheet(convert_er7) -> None:
    bundle, report = convert_er7(
        ORU, PID,
        "PRT|1|AD||PP^Primary Care Provider^HL70443|1001^Family^Doc",  # IG ORU_R01 4.1.3: PP -> generalPractitioner
        "PV1|1|I|WARD^1^A^HOSP",
        "PRT|2|AD||AT^Attending^HL70443|1002^Visit^Doc",  # 4.1.8.3: Encounter.participant
        "ORC|RE|PL-30^HOSP|FL-30^LAB",
        "PRT|3|AD||AD^Admitting^HL70912|1003^Order^Doc",  # a role the IG maps nothing for after ORC
        "PRT|5|AD||OP^Ordering Provider^HL70443|1005^Orderer^Doc",  # 4.2.1.2: OP -> the order's requester
        "OBR|1|PL-30^HOSP|FL-30^LAB|718-7^Hemoglobin^LN",
        "OBX|1|NM|718-7^Hemoglobin^LN||13.2|g/dL^g/dL^UCUM|||||F",
        "PRT|4|AD||EQUIP^Equipment^HL70443|1004^Tech^Nick||||LAB-ROOM^^^LAB|PD-1^LAB||||||||20220712|LOT-7|SN-9",  # 4.2.4.3.2
    )
    roles = {r["practitioner"]["reference"]: r for r in resources(bundle, "PractitionerRole") if "practitioner" in r}
    by_id = {p["identifier"][0]["value"]: _ref(p) for p in resources(bundle, "Practitioner")}
    assert "1003" not in by_id  # no IG row for an admitting PRT of the order
    gp, visit, performer = (roles[by_id[n]["reference"]] for n in ("1001", "1002", "1004"))
    assert only(bundle, "Patient")["generalPractitioner"] == [_ref(gp)]
    assert gp["code"][0]["coding"][0]["code"] == "PP"
    assert only(bundle, "Encounter")["participant"] == [{"individual": _ref(visit)}]
    assert only(bundle, "ServiceRequest")["requester"] == _ref(roles[by_id["1005"]["reference"]])
    observation = only(bundle, "Observation")
    device = next(d for d in resources(bundle, "Device") if d.get("lotNumber") == "LOT-7")
    assert observation["device"] == _ref(device) and _ref(performer) in observation["performer"]
    assert device["identifier"][0]["value"] == "PD-1" and device["lotNumber"] == "LOT-7" and device["serialNumber"] == "SN-9"
    assert device["expirationDate"] == "2022-07-12"
    location = next(loc for loc in resources(bundle, "Location") if loc.get("name") == "LAB-ROOM")
    assert observation["extension"] == [{"url": "http://hl7.org/fhir/StructureDefinition/event-location", "valueReference": _ref(location)}]
    assert validation_errors(bundle) == []


DISPENSED_TO_WARD_PHARMACY = "RXE||123^Drug A^NDC|1||TAB^Tablet^L" + "|" * 35 + "PH-1^Ward pharmacy^L|1 Main St^^Springfield||||555-0100^WPN^PH"


def test_ordering_facility_without_ordering_provider_is_the_requester_per_ig_orc21(convert_er7) -> None:
    """IG ORC[ServiceRequest] ORC-21/22/23: requester(PractitionerRole.organization), also when ORC-12 is empty."""
    facility = "ORC|NW|PL-40^HOSP|||||||20240413075500+0800||||||||||||LAKE FOREST HOSPITAL|1000 N WESTMORELAND RD^^LAKE FOREST^IL|(847)234-5600^WPN^PH"
    for header, resource in ((ORM, "ServiceRequest"), (RDE, "MedicationRequest")):
        tail = ("OBR|1|PL-40^HOSP||24317-0^Hemogram^LN",) if header == ORM else (DISPENSED_TO_WARD_PHARMACY,)
        bundle, _ = convert_er7(header, PID, facility, *tail)
        request = only(bundle, resource)
        organization = next(o for o in resources(bundle, "Organization") if o.get("name") == "LAKE FOREST HOSPITAL")
        assert request["requester"] == _ref(only(bundle, "PractitionerRole"))
        assert only(bundle, "PractitionerRole")["organization"] == _ref(organization)
        assert organization["address"][0]["city"] == "LAKE FOREST" and organization["telecom"][0]["value"] == "(847)234-5600"
        if header == RDE:  # the dispenser is RXE-40, with its address (RXE-41) and phone (RXE-45)
            pharmacy = next(o for o in resources(bundle, "Organization") if o.get("name") == "Ward pharmacy")
            assert request["dispenseRequest"]["performer"] == _ref(pharmacy)
            assert pharmacy["address"][0]["city"] == "Springfield" and pharmacy["telecom"][0]["value"] == "555-0100"
        assert validation_errors(bundle) == []


def test_oul_order_document_is_a_document_reference_of_the_order(convert_er7) -> None:
    """No IG OUL sheet: the order's TXA by IG TXA[DocumentReference], related to the order it follows."""
    bundle, _ = convert_er7(
        OUL, PID, VISIT,
        "SPM|1|S-1&LAB|P-0&LAB|119297000^Blood specimen^SCT",
        "OBR|1|PL-1^HOSP|FL-1^LAB|2339-0^Glucose^LN",
        "ORC|SC|PL-1^HOSP|FL-1^LAB||CM",
        "TXA|1|DS^Discharge summary^HL70270|TX|20240414070000+0800||||||||DOC-1^LAB|||||AU||AV",
        "OBX|1|NM|2339-0^Glucose^LN||5.4|mmol/L^mmol/L^UCUM|||||F",
    )
    document, request = only(bundle, "DocumentReference"), only(bundle, "ServiceRequest")
    assert document["masterIdentifier"]["value"] == "DOC-1" and document["status"] == "current" and document["docStatus"] == "final"
    assert document["subject"] == _ref(only(bundle, "Patient"))
    assert document["context"]["related"] == [_ref(request)] and document["context"]["encounter"] == [_ref(only(bundle, "Encounter"))]
    assert request["status"] == "completed"  # IG ORC-5 CM, though the ORC follows its OBR here
    # IG SPM-3: the parent specimen, by its placer id
    specimens = {s["identifier"][0]["value"]: s for s in resources(bundle, "Specimen")}
    assert specimens["S-1"]["parent"] == [_ref(specimens["P-0"])]
    assert validation_errors(bundle) == []


def test_patient_prt_interpreter_locations_and_next_of_kin_organization(convert_er7) -> None:
    bundle, _ = convert_er7(
        ORU, PID,
        # IG ORU_R01 4.1.3: a patient PRT whose role is not PP -> PRT[RelatedPerson]
        "PRT|1|AD||AD^Admitting^HL70912|2001^Kin^Kate||||||20210223093000|||6547 Drums St^^Flint^MI^48507|^PRN^PH^^^810^4502369",
        # IG NK1[Patient] NK1-13 with NK1-30/31/32: the organization and its contact person
        "|".join(["NK1", "1", "DOE^MARY", "MTH^MOTHER^HL70063"] + [""] * 9 + ["Bull Run Practice"] + [""] * 16
                 + ["Smith^John", "^^PH^^^542^6387999", "115 MAIN^^GOODTOWN^KY"]),
        "|".join(["OBR", "1", "PL-31^HOSP", "FL-31^LAB", "718-7^Hemoglobin^LN"] + [""] * 27 + ["005454&MARK^^^LAB1^R2^^GHH"]),  # OBR-32
        "OBX|1|NM|718-7^Hemoglobin^LN||13.2|g/dL^g/dL^UCUM|||||F",
    )
    person = next(r for r in resources(bundle, "RelatedPerson") if r.get("name", [{}])[0].get("family") == "Kin")
    assert person["patient"] == _ref(only(bundle, "Patient")) and person["relationship"][0]["coding"][0]["code"] == "AD"
    assert person["identifier"][0]["value"] == "2001" and person["address"][0]["city"] == "Flint"
    assert person["period"]["start"].startswith("2021-02-23") and person["telecom"]
    assert "2001" not in {p.get("identifier", [{}])[0].get("value") for p in resources(bundle, "Practitioner")}
    organization = next(o for o in resources(bundle, "Organization") if o.get("name") == "Bull Run Practice")
    assert only(bundle, "Patient")["contact"][0]["organization"] == _ref(organization)
    contact = organization["contact"][0]
    assert contact["name"]["family"] == "Smith" and contact["address"]["city"] == "GOODTOWN" and contact["telecom"]
    # IG NDL[PractitionerRole] NDL.4/5/7: point of care, room, facility as the interpreter's Locations
    interpreter = next(r for r in resources(bundle, "PractitionerRole") if r.get("location"))
    assert _ref(interpreter) in only(bundle, "DiagnosticReport")["resultsInterpreter"]
    locations = {_ref(loc)["reference"]: loc for loc in resources(bundle, "Location")}
    room = locations[interpreter["location"][0]["reference"]]
    care = locations[room["partOf"]["reference"]]
    facility = locations[care["partOf"]["reference"]]
    assert (room["name"], care["name"], facility["name"]) == ("R2", "LAB1", "GHH")
    assert [loc["physicalType"]["coding"][0]["code"] for loc in (room, care, facility)] == ["ro", "wa", "si"]
    assert validation_errors(bundle) == []
