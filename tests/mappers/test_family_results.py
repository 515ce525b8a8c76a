"""Lab result, order and referral mappings added for issue 3 (OUL, REF, OML, ORM, ORU, OMG recall):
each test converts a small message and checks the elements the IG row it names gives (or, where the
IG has no sheet, the v2 field definition cited), plus the deliberate-difference classes that name
IG rows contradicting the peer converter."""
from __future__ import annotations

from typing import Any

import peer_differences as differences

from mapper_helpers import er7, only, resources, validation_errors
from mappers import convert
from terminology.units import to_ucum


def seg(name: str, fields: dict[int, str]) -> str:
    """One ER7 segment with the given fields (1-based, MSH excepted) and the rest empty."""
    values = [""] * max(fields)
    for number, value in fields.items():
        values[number - 1] = value
    return "|".join([name, *values])


ORU = "MSH|^~\\&|LIS|LAB|EHR|HOSP|20240501120000+0800||ORU^R01^ORU_R01|M1|P|2.8"
OML = "MSH|^~\\&|EHR|HOSP|LIS|LAB|20240501120000+0800||OML^O21^OML_O21|M2|P|2.8"
REF = "MSH|^~\\&|EHR|CLINIC|SPEC|HOSP|20240507140000+0800||REF^I12^REF_I12|M3|P|2.8"
PID = "PID|1||P1^^^HOSP^MR||DOE^JANE||19800101|F"


def _convert(*segments: str) -> dict[str, Any]:
    bundle, _ = convert(er7(*segments))
    assert validation_errors(bundle) == []
    return bundle


def _identifiers(resource: dict[str, Any]) -> dict[str, str]:
    """type code -> value of each identifier."""
    return {i["type"]["coding"][0]["code"]: i["value"] for i in resource.get("identifier", []) if "type" in i}


def _by_reference(bundle: dict[str, Any], reference: str) -> dict[str, Any]:
    rtype, rid = reference.split("/")
    return next(r for r in resources(bundle, rtype) if r["id"] == rid)


def test_report_takes_order_numbers_and_group_numbers_from_its_orc() -> None:
    # IG ORC[DiagnosticReport] (ORU_R01 4.2.1.1): ORC-2/ORC-3 -> identifier PLAC/FILL (OBR-2/3 empty),
    # ORC-4 (EIP) -> EIP[Identifier-PlacerAssignedIdentifier] PGN and -FillerAssignedIdentifier FGN
    bundle = _convert(ORU, PID, "ORC|RE|PL-1|FL-1|PG-1^FG-1",
                      seg("OBR", {1: "1", 4: "24356-8^Urinalysis complete^LN", 7: "20240501080000+0800", 25: "F"}),
                      "OBX|1|ST|5778-6^Color of Urine^LN||Yellow||||||F")
    report = only(bundle, "DiagnosticReport")
    assert _identifiers(report) == {"FILL": "FL-1", "PLAC": "PL-1", "FGN": "FG-1", "PGN": "PG-1"}


def test_report_keeps_obr_numbers_over_orc_numbers() -> None:
    bundle = _convert(ORU, PID, "ORC|RE|PL-ORC|FL-ORC",
                      seg("OBR", {1: "1", 2: "PL-OBR", 3: "FL-OBR", 4: "24356-8^Urinalysis complete^LN", 25: "F"}))
    assert _identifiers(only(bundle, "DiagnosticReport")) == {"FILL": "FL-OBR", "PLAC": "PL-OBR"}


def test_order_document_between_orc_and_obr_keeps_one_order() -> None:
    # IG ORU_R01 4.2.1 COMMON_ORDER: ORC, [{PRT}], [ORDER_DOCUMENT: OBX, [{PRT}], TXA], then the OBR
    # (4.2.2), all one ORDER_OBSERVATION: ORC-2/ORC-3 (ORC[ServiceRequest]) and the OBR make one
    # ServiceRequest, the report's basedOn; ORDER_DOCUMENT (4.2.1.3.1-3) maps no resource. A patient
    # OBX (PATIENT_OBSERVATION 4.1.7) before the visit does not end the PATIENT_RESULT group.
    bundle = _convert(ORU, PID, "OBX|1|ST|8302-2^Body height^LN||tall||||||F",
                      seg("PV1", {1: "1", 2: "O", 19: "V-1"}),
                      "ORC|RE|PL-1^EHR|FL-1^LIS", seg("PRT", {1: "1", 2: "AD", 4: "OP", 5: "D-1^ORDERING^ANN"}),
                      "OBX|1|ED|||^TEXT^^Base64^SGVsbG8=||||||F", seg("PRT", {1: "1", 2: "AD", 4: "EQ", 10: "DEV-DOC^^1.2.3^ISO"}),
                      seg("TXA", {1: "1", 2: "DS", 3: "TX", 12: "DOC-1", 17: "AU"}),
                      seg("OBR", {1: "1", 4: "24356-8^Urinalysis complete^LN", 25: "F"}),
                      "OBX|1|ST|5778-6^Color of Urine^LN||Yellow||||||F", seg("PRT", {1: "1", 2: "AD", 4: "EQ", 10: "DEV-RES^^1.2.3^ISO"}))
    order = only(bundle, "ServiceRequest")
    assert _identifiers(order) == {"PLAC": "PL-1", "FILL": "FL-1"}
    assert order["code"]["coding"][0]["code"] == "24356-8"
    assert _by_reference(bundle, order["requester"]["reference"])["resourceType"] == "PractitionerRole"
    report = only(bundle, "DiagnosticReport")
    assert report["basedOn"] == [{"reference": f"ServiceRequest/{order['id']}"}]
    (result,) = [_by_reference(bundle, r["reference"]) for r in report["result"]]
    assert result["valueString"] == "Yellow" and result["basedOn"] == report["basedOn"]
    vital = next(o for o in resources(bundle, "Observation") if o is not result)
    assert vital["valueString"] == "tall" and "basedOn" not in vital
    assert vital["encounter"] == result["encounter"] == {"reference": f"Encounter/{only(bundle, 'Encounter')['id']}"}
    assert len(resources(bundle, "Observation")) == 2
    participants = [i["value"] for d in resources(bundle, "Device") for i in d.get("identifier", []) if i.get("system") == "urn:oid:1.2.3"]
    assert participants == ["DEV-RES"]


def test_obr_after_orc_prts_and_a_patient_observation_merges_into_the_orc_order() -> None:
    # as above without ORDER_DOCUMENT: the ORC's numbers reach the OBR's ServiceRequest
    bundle = _convert(ORU, PID, "OBX|1|ST|8302-2^Body height^LN||tall||||||F", "ORC|RE|PL-2|FL-2",
                      seg("PRT", {1: "1", 2: "AD", 4: "OP", 5: "D-1^ORDERING^ANN"}),
                      seg("OBR", {1: "1", 4: "24356-8^Urinalysis complete^LN", 25: "F"}))
    assert _identifiers(only(bundle, "ServiceRequest")) == {"PLAC": "PL-2", "FILL": "FL-2"}


def test_alternate_placer_order_number_is_a_placer_identifier() -> None:
    # IG OBR[ServiceRequest] OBR-53 -> identifier (CX[Identifier]) typed PLAC; ORC-33 only IF OBR-53 NOT VALUED
    obr = seg("OBR", {1: "1", 4: "24356-8^Urinalysis complete^LN", 25: "F", 53: "ALT-53^^^HOSP"})
    orc = seg("ORC", {1: "RE", 2: "PL-1", 33: "ALT-33^^^HOSP"})
    order = only(_convert(ORU, PID, orc, obr), "ServiceRequest")
    placers = [i["value"] for i in order["identifier"] if i["type"]["coding"][0]["code"] == "PLAC"]
    assert placers == ["PL-1", "ALT-53"]
    order = only(_convert(ORU, PID, orc, seg("OBR", {1: "1", 4: "24356-8^Urinalysis complete^LN", 25: "F"})), "ServiceRequest")
    assert [i["value"] for i in order["identifier"] if i["type"]["coding"][0]["code"] == "PLAC"] == ["PL-1", "ALT-33"]


def test_observation_device_carries_its_udi_carriers() -> None:
    # IG PRT[Device]: PRT-10 -> identifier and udiCarrier[1], PRT-16 -> udiCarrier[2]
    # (EI[Device-udiCarrier]: EI.1 deviceIdentifier; EI.2-4 have no named target)
    prt = seg("PRT", {1: "1", 2: "AD", 4: "EQ", 10: "DEV-7^^1.2.3.4^ISO", 16: "00643169001763^^2.51.1.1^ISO", 19: "LOT-9"})
    bundle = _convert(ORU, PID, "ORC|RE|PL-1", seg("OBR", {1: "1", 4: "24356-8^Urinalysis complete^LN", 25: "F"}),
                      "OBX|1|ST|5778-6^Color of Urine^LN||Yellow||||||F", prt)
    device = next(d for d in resources(bundle, "Device") if d.get("lotNumber") == "LOT-9")
    assert device["identifier"] == [{"value": "DEV-7", "system": "urn:oid:1.2.3.4"}]
    assert device["udiCarrier"] == [{"deviceIdentifier": "DEV-7"}, {"deviceIdentifier": "00643169001763"}]
    assert only(bundle, "Observation")["device"]["reference"] == f"Device/{device['id']}"


def test_spm_specimen_takes_the_orders_collection_data_it_does_not_send() -> None:
    # IG ORU_R01 4.2.2 OBR[Specimen]: OBR-7 collected, OBR-10 collector (XCN[Practitioner]), OBR-14
    # received; with an SPM that is the SPM's Specimen, whose own SPM-17/SPM-18 win
    obr = seg("OBR", {1: "1", 4: "24356-8^Urinalysis complete^LN", 7: "20240501080000+0800",
                      10: "C-1^COLLECT^JOHN", 14: "20240501090000+0800", 25: "F"})
    bundle = _convert(ORU, PID, "ORC|RE|PL-1", obr, "OBX|1|ST|5778-6^Color of Urine^LN||Yellow||||||F",
                      seg("SPM", {1: "1", 2: "S-1", 4: "UR^Urine^HL70487"}))
    specimen = only(bundle, "Specimen")
    assert specimen["collection"]["collectedDateTime"] == "2024-05-01T08:00:00+08:00"
    assert specimen["receivedTime"] == "2024-05-01T09:00:00+08:00"
    collector = _by_reference(bundle, specimen["collection"]["collector"]["reference"])
    assert collector["name"][0]["family"] == "COLLECT" and collector["identifier"][0]["value"] == "C-1"

    sent = seg("SPM", {1: "1", 2: "S-1", 4: "UR^Urine^HL70487", 17: "20240501073000+0800", 18: "20240501100000+0800"})
    bundle = _convert(ORU, PID, "ORC|RE|PL-1", obr, "OBX|1|ST|5778-6^Color of Urine^LN||Yellow||||||F", sent)
    specimen = only(bundle, "Specimen")
    assert specimen["collection"]["collectedDateTime"] == "2024-05-01T07:30:00+08:00"
    assert specimen["receivedTime"] == "2024-05-01T10:00:00+08:00"


def test_order_names_the_specimen_of_its_obr() -> None:
    # IG ORU_R01 4.2.2 OBR[Specimen] (no SPM): the report's specimen, and the order's as for an SPM
    obr = seg("OBR", {1: "1", 4: "24356-8^Urinalysis complete^LN", 7: "20240501080000+0800", 25: "F"})
    bundle = _convert(ORU, PID, "ORC|RE|PL-1", obr, "OBX|1|ST|5778-6^Color of Urine^LN||Yellow||||||F")
    specimen = only(bundle, "Specimen")
    assert specimen["collection"]["collectedDateTime"] == "2024-05-01T08:00:00+08:00"
    reference = [{"reference": f"Specimen/{specimen['id']}"}]
    assert only(bundle, "ServiceRequest")["specimen"] == reference == only(bundle, "DiagnosticReport")["specimen"]


def test_specimen_container_type_and_additive() -> None:
    # IG SPM[Specimen] SPM-6 container.additiveCodeableConcept (Additive/Preservative, table 0371),
    # SPM-27 container.type (ContainerType); one container
    spm = seg("SPM", {1: "1", 2: "S-1", 4: "BLD^Whole blood^HL70487", 6: "F10^10% Formalin^HL70371", 27: "TUBE^Tube^L"})
    bundle = _convert(ORU, PID, "ORC|RE|PL-1", seg("OBR", {1: "1", 4: "24356-8^Urinalysis complete^LN", 25: "F"}), spm)
    (container,) = only(bundle, "Specimen")["container"]
    assert {"system": "http://terminology.hl7.org/CodeSystem/v2-0371", "code": "F10", "display": "10% Formalin"} in container["additiveCodeableConcept"]["coding"]
    assert container["type"]["coding"][0]["code"] == "TUBE"


def test_container_accession_and_volumes() -> None:
    # SAC (v2.5 13.4.3): SAC-2 accession identifier -> Specimen.accessionIdentifier (SPM-30 not sent),
    # SAC-21 container volume / SAC-22 available volume in SAC-24 units (ML: UCUM mL, case-insensitive form)
    sac = seg("SAC", {1: "1", 2: "ACC-77", 3: "CONT-1", 21: "10", 22: "5", 23: "7", 24: "ML"})
    obr = seg("OBR", {1: "1", 4: "24356-8^Urinalysis complete^LN"})
    bundle = _convert(OML, PID, "ORC|NW|PL-1", obr, seg("SPM", {1: "1", 2: "S-1", 4: "UR^Urine^HL70487"}), sac)
    specimen = only(bundle, "Specimen")
    assert specimen["accessionIdentifier"]["value"] == "ACC-77"
    container = next(c for c in specimen["container"] if c.get("identifier"))
    assert container["capacity"] == {"value": 10, "unit": "ML", "system": "http://unitsofmeasure.org", "code": "mL"}
    assert container["specimenQuantity"]["value"] == 5 and container["specimenQuantity"]["code"] == "mL"

    with_spm30 = seg("SPM", {1: "1", 2: "S-1", 4: "UR^Urine^HL70487", 30: "LAB-ACC-1"})
    specimen = only(_convert(OML, PID, "ORC|NW|PL-1", obr, with_spm30, sac), "Specimen")
    assert specimen["accessionIdentifier"]["value"] == "LAB-ACC-1"
    assert _identifiers(specimen)["ACSN"] == "ACC-77"


def test_unit_ml_is_millilitre() -> None:
    assert to_ucum("ML") == "mL" and to_ucum("ml") == "mL"


def test_referral_performers_and_the_order_of_its_results() -> None:
    # RF1-19 authorized provider (XON) and RF1-20 authorized health professional (XCN), v2.7+ 11.6.1
    rf1 = seg("RF1", {1: "P^Pending^HL70283", 2: "R^Routine^HL70280", 6: "R-1^GHHREF", 7: "20240507",
                      19: "Radiant Health Hospital", 20: "12131^McWilliams^Paul^^^Dr^^^^^^^DN"})
    bundle = _convert(REF, rf1, PID, seg("OBR", {1: "1", 4: "24356-8^Urinalysis complete^LN", 7: "20240506", 25: "F"}),
                      "OBX|1|ST|5778-6^Color of Urine^LN||Yellow||||||F")
    requests = resources(bundle, "ServiceRequest")
    referral = next(r for r in requests if "category" in r)
    performers = [_by_reference(bundle, p["reference"]) for p in referral["performer"]]
    assert [p["resourceType"] for p in performers] == ["Organization", "Practitioner"]
    assert performers[0]["name"] == "Radiant Health Hospital"
    assert performers[1]["name"][0]["family"] == "McWilliams" and performers[1]["identifier"][0]["value"] == "12131"
    # as IG ORU_R01 4.2.2: the OBR is also an order, which its report and results are based on
    order = next(r for r in requests if "category" not in r)
    assert order["code"]["coding"][0]["code"] == "24356-8"
    for rtype in ("DiagnosticReport", "Observation"):
        assert only(bundle, rtype)["basedOn"] == [{"reference": f"ServiceRequest/{order['id']}"}]


def _classify(fact: tuple[str, str], structure: str, message: bytes, ours: set[tuple[str, str]] = frozenset()) -> str | None:
    found = differences.classify(fact, differences.load_classes(), structure, set(ours), differences.MessageLeaves(message))
    return found.name if found else None


def test_difference_classes_of_the_lab_families() -> None:
    message = er7(ORU, PID, "ORC|RE|PL-ORC", seg("OBR", {1: "1", 2: "PL-OBR", 4: "24356-8^UA^LN"}),
                  "OBX|1|ST|5778-6^Color^LN||Yellow||||||F||||||||||||MD-25^Atchinson",
                  seg("PRT", {1: "1", 2: "AD", 4: "AD", 8: "Birla Org"}))
    # IG: an OBX's PRT makes a PractitionerRole only IF PRT-5 VALUED
    assert _classify(("Organization.name", "Birla Org"), "ORU_R01", message) == "participant-organization-without-person"
    assert _classify(("Organization.name", "Yellow"), "ORU_R01", message) is None
    # IG OBR-2 -> identifier only IF ORC-2 NOT VALUED
    assert _classify(("ServiceRequest.identifier.value", "PL-OBR"), "ORU_R01", message) == "order-number-from-orc-first"
    assert _classify(("ServiceRequest.identifier.value", "PL-ORC"), "ORU_R01", message) is None
    # XCN.1 is the identifier value: a type code equal to it counts only when we carry the value
    fact = ("Practitioner.identifier.type.coding.code", "MD-25")
    assert _classify(fact, "ORU_R01", message, {("Practitioner.identifier.value", "MD-25")}) == "person-id-number-as-identifier-type"
    assert _classify(fact, "ORU_R01", message) is None
    # IG OBX-11 is Observation.status: the converter's Observation_Status extension, in any family
    status = ("Observation.extension.valueCodeableConcept.coding.system", "http://terminology.hl7.org/CodeSystem/v2-0085")
    assert _classify(status, "ADT_A01", message) == "result-status-in-converter-extension"
    assert _classify(("Observation.extension.valueCodeableConcept.coding.code", "F"), "ADT_A01", message) == "result-status-in-converter-extension"
    assert _classify(("Observation.code.coding.code", "F"), "ADT_A01", message) is None
    # IG SCH[Appointment] SCH-7 (table 0276) is a reason; IG TQ[Appointment] maps no priority
    siu = er7("MSH|^~\\&|S|F|R|F|20240101||SIU^S12^SIU_S12|1|P|2.5", "SCH|1|2||||Add|CHECKUP|Normal|60|min|2^^60^20240102")
    reason = {("Appointment.reasonCode.coding.code", "CHECKUP")}
    assert _classify(("Appointment.appointmentType.coding.code", "CHECKUP"), "SIU_S12", siu, reason) == "appointment-reason-as-appointment-type"
    assert _classify(("Appointment.appointmentType.coding.code", "CHECKUP"), "SIU_S12", siu) is None
    assert _classify(("Appointment.priority", "2.0"), "SIU_S12", siu) == "appointment-priority-from-timing-quantity"
    # IG CWE[Quantity]: a bare ISO names no unit system; the unit is UCUM when UCUM knows it
    ucum = {("Observation.component.valueQuantity.code", "/min")}
    fact = ("Observation.component.valueQuantity.system", "urn:iso:std:iso:3986")
    assert _classify(fact, "ADT_A01", message, ucum | {("Observation.component.valueQuantity.system", "http://unitsofmeasure.org")}) == "quantity-unit-iso-as-uri-standard"
    assert _classify(fact, "ADT_A01", message) is None
    # EIP.1 subcomponents: the converter keeps value&namespace
    assert _classify(("ServiceRequest.identifier.value", "9adf&L"), "OUL_R22", message) == "entity-identifier-subcomponents-unsplit"
