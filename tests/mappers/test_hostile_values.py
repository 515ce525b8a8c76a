"""Values that would reach FHIR as invalid primitives: each is a DataTypeError naming the field, or the
element is left out where FHIR lets it go (never an invalid Bundle)."""
from __future__ import annotations

import pytest

from adapters.hl7v2.errors import DataTypeError
from mapper_helpers import er7, only, validation_errors
from mappers import convert

ADT = "MSH|^~\\&|S|F|R|F|20240101120000+0000||ADT^A01^ADT_A01|1|P|2.5.1"
ORU = "MSH|^~\\&|LIS|LAB|EHR|HOSP|20240415080000+0800||ORU^R01^ORU_R01|R1|P|2.5.1"
MDM = "MSH|^~\\&|S|F|R|F|20240101120000+0000||MDM^T02^MDM_T02|1|P|2.5.1"
PID = "PID|1||P1^^^F^MR||Doe^Jo"
OBR = "OBR|1|PL-20^HOSP|FL-20^LAB|24317-0^Hemogram^LN|||20240415070000+0800"


@pytest.mark.parametrize("sent", ["0000", "00000101", "000001011200", "00000101120000", "00000101120000+0100"])
def test_year_0000_is_an_error_naming_the_field(sent: str) -> None:
    # FHIR R4 date/dateTime (datatypes.html#date) admit years 0001-9999; every fast path agrees with the parser
    with pytest.raises(DataTypeError, match=r"year 0000.*PID-7"):
        convert(er7(ADT, f"PID|1||P1^^^F^MR||Doe^Jo||{sent}", "PV1|1|I"))


def test_year_0001_is_a_date() -> None:
    bundle, _ = convert(er7(ADT, "PID|1||P1^^^F^MR||Doe^Jo||00010101", "PV1|1|I"))
    assert only(bundle, "Patient")["birthDate"] == "0001-01-01"


def _sn(value: str) -> dict:
    bundle, _ = convert(er7(ORU, PID, OBR, f"OBX|1|SN|2345-7^Glucose^LN||{value}|mmol/L^mmol/L^UCUM|||||F"))
    assert validation_errors(bundle) == []
    return only(bundle, "Observation")["valueQuantity"]


@pytest.mark.parametrize(("sent", "comparator"), [("<^5.4", "<"), (">=^5.4", ">="), ("=^5.4", None), ("^5.4", None)])
def test_sn_comparator_is_a_fhir_comparator_or_none(sent: str, comparator: str | None) -> None:
    # v2.5 2.A.72 SN.1: "=" (or blank) is no comparator; R4 Quantity.comparator binds < <= > >= (required)
    assert _sn(sent).get("comparator") == comparator


@pytest.mark.parametrize("sent", ["ST^5.4", "@^5.4", "00000000^5.4"])
def test_any_other_sn_comparator_is_an_error_naming_the_field(sent: str) -> None:
    with pytest.raises(DataTypeError, match=r"OBX-5"):
        _sn(sent)


def test_an_rp_pointer_with_whitespace_is_an_error_naming_the_field() -> None:
    # R4 url/uri (datatypes.html#uri) holds no whitespace: no address FHIR could keep, so the sender's error
    def document(pointer: str) -> tuple[dict, object]:
        return convert(er7(MDM, PID, "PV1|1|O", "TXA|1|CN|TX|||||||||DOC-3|||||AU||OB",
                           f"OBX|1|RP|x^y^L||{pointer}^^TEXT^PLAIN||||||F"))
    bundle, _ = document("http://docs.example/d1")
    assert only(bundle, "DocumentReference")["content"][0]["attachment"]["url"] == "http://docs.example/d1"
    assert validation_errors(bundle) == []
    with pytest.raises(DataTypeError, match=r"OBX-5"):
        document("Vinyl people junk skiing")


def test_a_negative_appointment_duration_is_an_error_naming_the_field() -> None:
    # IG AIP-9: participant.period.end = AIP-6 + duration; a negative one would end before the start (R4 per-1)
    def appointment(minutes: str) -> tuple[dict, object]:
        return convert(er7(
            "MSH|^~\\&|SCHED|GHH|PB|GHH|20240510083000+0800||SIU^S12^SIU_S12|1|P|2.5.1",
            "SCH|APT-77^SCHED|FAPT-77^GHHSCH||||BOOKED^Booked^L|||||^^^20240512090000+0800^20240512093000+0800",
            PID, "RGS|1",
            f"AIP|1||2002^Zhang^Wei|RAD^Radiologist^L||20240512090000+0800|||{minutes}|min^minutes^ISO+"))
    bundle, _ = appointment("30")
    assert only(bundle, "Appointment")["participant"][0]["period"]["end"] == "2024-05-12T09:30:00+08:00"
    with pytest.raises(DataTypeError, match=r"negative.*AIP-9"):
        appointment("-1")


def test_a_dose_range_whose_high_is_below_its_low_is_an_error_naming_the_field() -> None:
    # IG RXE-3/RXE-4 -> doseRange.low/high in the one unit RXE-5; R4 rng-2: low SHALL NOT be above high
    def order(low: str, high: str) -> tuple[dict, object]:
        return convert(er7("MSH|^~\\&|PH|HOSP|EHR|HOSP|20240415080000+0800||RDE^O11^RDE_O11|1|P|2.5.1",
                           PID, "ORC|NW|PL-1^HOSP", f"RXE||123^Drug A^NDC|{low}|{high}|mg^mg^UCUM"))
    bundle, _ = order("1", "2")
    dose = only(bundle, "MedicationRequest")["dosageInstruction"][0]["doseAndRate"][0]["doseRange"]
    assert (dose["low"]["value"], dose["high"]["value"]) == (1, 2)
    assert order("2", "2")[0] is not None
    with pytest.raises(DataTypeError, match=r"below the low.*RXE-4"):
        order("1", "0")
