"""Pharmacy-family rows added for issue 3 (recall of RDE/RDS): IG RXO[MedicationRequest] row 23
(total daily dose), IG TQ1[MedicationRequest] TQ1-13 with an ISO+ year unit, units whose code is a
concept of another system (SNOMED CT dose forms), R4 rat-1 for ingredient strengths sent without a
volume, and RXD-30/31 dispense-to location (no IG RXD sheet; v2.8 4A.3.5) as
MedicationDispense.destination."""
from __future__ import annotations

from mapper_helpers import only, resources, validation_errors

MSH_RDE = "MSH|^~\\&|PHARM|HOSP|EHR|HOSP|20240412100000+0800||RDE^O11^RDE_O11|RX1|P|2.5.1"
MSH_RDS = "MSH|^~\\&|PHARM|HOSP|EHR|HOSP|20240412100000+0800||RDS^O13^RDS_O13|RX2|P|2.5.1"
PID = "PID|1||P888^^^HOSP^MR||Chen^Yu||19700101|F"
ORC = "ORC|NW|PL-77^HOSP|FL-88^PHARM||||||20240412095500+0800"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"


def segment(name: str, fields: dict[int, str]) -> str:
    """A segment with the given fields (by number) valued, the others empty."""
    return "|".join([name] + [fields.get(n, "") for n in range(1, max(fields) + 1)])


def placer_request(bundle: dict) -> dict:
    return next(r for r in resources(bundle, "MedicationRequest") if r["intent"] == "original-order")


def test_rxo_total_daily_dose_is_the_maximum_dose_per_day(convert_er7) -> None:
    """IG RXO[MedicationRequest] row 23 (RXO-23 Total Daily Dose, CQ): maxDosePerPeriod numerator, per 1 d."""
    rxo = segment("RXO", {1: "00047040230^Ampicillin 250 mg caps^NDC", 2: "1", 4: "CAP^Capsule^L", 23: "4^CAP&Capsule&L"})
    rxe = "RXE||00047040230^Ampicillin 250 mg caps^NDC|1||CAP^Capsule^L"
    bundle, report = convert_er7(MSH_RDE, PID, ORC, rxo, rxe)
    dose = placer_request(bundle)["dosageInstruction"][0]["maxDosePerPeriod"]
    assert dose["numerator"]["value"] == 4 and dose["numerator"]["unit"] == "Capsule"
    assert dose["denominator"] == {"value": 1, "unit": "d", "system": UCUM, "code": "d"}
    assert not any(u["element"] == "RXO-23" for u in report.as_dict()["unmapped"])
    assert validation_errors(bundle) == []


def test_tq1_occurrence_duration_in_iso_years(convert_er7) -> None:
    """IG TQ1[MedicationRequest] TQ1-13 -> timing.repeat.duration/durationUnit; ISO+ `ann` is UCUM `a`."""
    tq1 = segment("TQ1", {1: "1", 3: "TID", 13: "1^ann"})
    bundle, _ = convert_er7(MSH_RDE, PID, ORC, tq1, "RXE||00047040230^Ampicillin 250 mg caps^NDC|1||CAP^Capsule^L")
    repeat = only(bundle, "MedicationRequest")["dosageInstruction"][0]["timing"]["repeat"]
    assert (repeat["duration"], repeat["durationUnit"]) == (1, "a")
    assert validation_errors(bundle) == []


def test_a_numeric_unit_code_keeps_its_own_system(convert_er7) -> None:
    """A unit sent as a concept of another system (385055001^Tablet^SCT) is not a UCUM term, though a
    bare number parses as one; a numeric code with no system falls back to the unit text (R4 2.24.0.11)."""
    rxe = segment("RXE", {2: "01151327^Doxycycline^NDC", 3: "1", 5: "385055001^Tablet^SCT", 10: "6",
                          11: "385055001^Tablet^SCT", 25: "150", 26: "3^mg"})
    bundle, _ = convert_er7(MSH_RDE, PID, ORC, rxe)
    request = only(bundle, "MedicationRequest")
    assert request["dispenseRequest"]["quantity"] == {"value": 6, "unit": "Tablet", "system": SNOMED, "code": "385055001"}
    assert request["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["system"] == SNOMED
    numerator = only(bundle, "Medication")["ingredient"][0]["strength"]["numerator"]
    assert numerator == {"value": 150, "unit": "mg", "system": UCUM, "code": "mg"}
    assert validation_errors(bundle) == []


def test_strength_without_a_volume_is_per_one_unit(convert_er7) -> None:
    """R4 rat-1 (a Ratio has both terms): RXE-25 without RXE-33, RXC-3 without RXC-5/RXC-8 and RXD-16
    get denominator 1; a volume sent (RXC-8) stays the denominator."""
    rxe = segment("RXE", {2: "00047040230^Ampicillin^NDC", 3: "1", 5: "CAP^Capsule^L", 25: "250", 26: "mg^mg^UCUM"})
    rxc_amount = segment("RXC", {1: "B", 2: "0338-0049^Saline^NDC", 3: "100", 4: "mL^mL^UCUM"})
    rxc_volume = segment("RXC", {1: "A", 2: "0143-9634^Nicardipine^NDC", 3: "1", 4: "BG^Bag^L", 5: "40", 6: "mg^mg^UCUM",
                                 8: "200", 9: "mL^mL^UCUM"})
    bundle, _ = convert_er7(MSH_RDE, PID, ORC, rxe, rxc_amount, rxc_volume)
    strengths = [i["strength"] for i in only(bundle, "Medication")["ingredient"]]
    assert [(s["numerator"]["value"], s["denominator"].get("value"), s["denominator"].get("code")) for s in strengths] == [
        (250, 1, None), (100, 1, None), (40, 200, "mL")]
    assert validation_errors(bundle) == []


def test_dispense_to_location_is_the_dispense_destination(convert_er7) -> None:
    """RXD-30 dispense-to location and RXD-31 its address (v2.8 4A.3.5; no IG RXD sheet) ->
    MedicationDispense.destination, a Location (R4: where the medication was sent)."""
    rxd = segment("RXD", {1: "1", 2: "01151327^Doxycycline^NDC", 3: "20240412094500+0800", 4: "10",
                          5: "385055001^Tablet^SCT", 16: "100", 17: "mg^mg^UCUM",
                          30: "UNITY^Unity Ward^L", 31: "3857 Velvet Terrace^^Midnight^NC^27878^US"})
    rxe = "RXE||01151327^Doxycycline^NDC|1||385055001^Tablet^SCT"
    bundle, report = convert_er7(MSH_RDS, PID, ORC.replace("NW", "RE"), rxe, rxd)
    dispense = only(bundle, "MedicationDispense")
    location = only(bundle, "Location")
    assert dispense["destination"] == {"reference": f"Location/{location['id']}"}
    assert location["name"] == "Unity Ward" and location["identifier"][0]["value"] == "UNITY"
    assert location["address"]["city"] == "Midnight" and location["address"]["postalCode"] == "27878"
    strength = resources(bundle, "Medication")[-1]["ingredient"][0]["strength"]
    assert strength["numerator"]["value"] == 100 and strength["denominator"] == {"value": 1}
    assert not any(u["element"] in ("RXD-30", "RXD-31") for u in report.as_dict()["unmapped"])
    assert validation_errors(bundle) == []



def test_administered_at_address_is_the_address_of_the_administered_at_location(convert_er7) -> None:
    """IG RXA[Immunization] RXA-27 location[1](Location) through PL[Location], RXA-28
    location[1](Location.address) through XAD[Address]: the most specific level gets the address."""
    msh = "MSH|^~\\&|IZ|CLINIC|IIS|STATE|20240410090000+0800||VXU^V04^VXU_V04|IZ1|P|2.5.1"
    rxa = segment("RXA", {1: "0", 2: "1", 3: "20240410090000+0800", 5: "08^Hep B^CVX", 6: "0.5", 7: "mL^mL^UCUM",
                          20: "CP", 21: "A", 27: "R1^^^CLINIC", 28: "12 Harbour Rd^^Ningbo^ZJ^315000^CHN"})
    bundle, report = convert_er7(msh, PID, "ORC|RE||F1^CLINIC", rxa)
    reference = only(bundle, "Immunization")["location"]["reference"]
    place = next(r for r in resources(bundle, "Location") if f"Location/{r['id']}" == reference)
    assert place["name"] == "R1" and place["partOf"]["reference"].startswith("Location/")
    assert place["address"] == {"line": ["12 Harbour Rd"], "city": "Ningbo", "state": "ZJ", "postalCode": "315000", "country": "CHN"}
    assert all("address" not in r for r in resources(bundle, "Location") if r is not place)
    assert not any(u["element"] in ("RXA-27", "RXA-28") for u in report.as_dict()["unmapped"])
    assert validation_errors(bundle) == []
