"""Segment fields FHIR cannot do without (a map's `required:`, mappers/SPEC.md): a field the sender left
empty, or filled with nothing usable, is a RequiredFieldMissing naming it, never a resource missing a
1..1 element. Where a map already states the absence (a placeholder text for an empty OBX-3 or IN1-3/4),
only a field sent with nothing usable in it is the error."""
from __future__ import annotations

from pathlib import Path

import pytest

from adapters.hl7v2.errors import RequiredFieldMissing
from mapper_helpers import er7, only, validation_errors
from mappers import convert
from mappers.specs import SpecError, load_specs

ORU = "MSH|^~\\&|LIS|LAB|EHR|HOSP|20240415080000+0800||ORU^R01^ORU_R01|R1|P|2.5.1"
DFT = "MSH|^~\\&|S|F|R|F|20240101120000+0000||DFT^P03^DFT_P03|1|P|2.5.1"
ADT = "MSH|^~\\&|S|F|R|F|20240101120000+0000||ADT^A01^ADT_A01|1|P|2.5.1"
PID = "PID|1||P1^^^F^MR||Doe^Jo"
OBR = "OBR|1|PL-20^HOSP|FL-20^LAB|24317-0^Hemogram^LN|||20240415070000+0800"


@pytest.mark.parametrize("sent", ["^^^", '&^~""', "&&&"])
def test_an_obx_3_with_no_usable_code_is_a_required_field_missing(sent: str) -> None:
    # R4 Observation.code 1..1; v2.5 7.4.2.3 OBX-3 is R
    with pytest.raises(RequiredFieldMissing, match=r"OBX-3 gives no Observation.code.*\(at OBX-3\)"):
        convert(er7(ORU, PID, OBR, f"OBX|1|NM|{sent}||5.5|mmol/L"))


def test_an_empty_obx_3_keeps_its_placeholder_text() -> None:
    bundle, _ = convert(er7(ORU, PID, OBR, "OBX|1|NM|||5.5|mmol/L"))
    assert only(bundle, "Observation")["code"] == {"text": "observation code not given (OBX-3 empty)"}
    assert validation_errors(bundle) == []


@pytest.mark.parametrize("sent", ["^^^", "&&"])
def test_an_ft1_with_no_usable_transaction_code_is_a_required_field_missing(sent: str) -> None:
    # R4 ChargeItem.code 1..1; v2.5 6.5.1.7 FT1-7 is R (an FT1 with FT1-7 empty makes no ChargeItem: DFT.yaml)
    charge = f"FT1|1|T-1||20240101|20240101|CG|{sent}|||1|100&USD"
    with pytest.raises(RequiredFieldMissing, match=r"\(at FT1-7\)"):
        convert(er7(DFT, PID, "PV1|1|O", charge))
    bundle, _ = convert(er7(DFT, PID, "PV1|1|O", charge.replace(f"CG|{sent}|", "CG|71045^Xray chest^C4|")))
    assert only(bundle, "ChargeItem")["code"]["coding"][0]["code"] == "71045"


@pytest.mark.parametrize("sent", ["", "^"])
def test_a_message_without_its_date_time_is_a_required_field_missing(sent: str) -> None:
    # R4 Provenance.recorded 1..1; v2.5 2.14.9.7 MSH-7 is R
    with pytest.raises(RequiredFieldMissing, match=r"\(at MSH-7\)"):
        convert(er7(ADT.replace("20240101120000+0000", sent), PID, "PV1|1|I"))


def test_an_insurance_with_an_unusable_insurer_is_a_required_field_missing() -> None:
    # R4 Coverage.payor 1..*; v2.5 6.5.6.3 IN1-3 is R. IN1-4 sent with no name gives no payor either
    with pytest.raises(RequiredFieldMissing, match=r"\(at IN1-3\)"):
        convert(er7(ADT, PID, "PV1|1|I", "IN1|1|PLAN1||^^^"))
    bundle, _ = convert(er7(ADT, PID, "PV1|1|I", "IN1|1|PLAN1"))
    assert only(bundle, "Coverage")["payor"] == [{"display": "payor not given (IN1-3/IN1-4 empty)"}]


@pytest.mark.parametrize(("kind", "required"), [
    ("segments", '{code: PID-3}'), ("segments", '{code: OBX-3.1}'), ("segments", "[OBX-3]"), ("datatypes", '{code: OBX-3}'),
])
def test_required_names_a_field_of_the_map_own_segment(tmp_path: Path, kind: str, required: str) -> None:
    (tmp_path / kind).mkdir()
    (tmp_path / kind / "results.yaml").write_text(f"OBX[Observation]:\n  resource: Observation\n  required: {required}\n")
    with pytest.raises(SpecError, match=f"{kind}/results.yaml: OBX\\[Observation\\]: `required`"):
        load_specs(tmp_path)


@pytest.mark.parametrize(("application", "facility"), [("", ""), ("", "&^~"), ("^^", ""), ('""', "^")])
def test_a_sender_named_by_nothing_usable_is_an_unidentified_sending_system(application: str, facility: str) -> None:
    # R4 Provenance.agent 1..*; MSH-3/MSH-4 are optional (v2.5 2.14.9.3-4): with no agent from them, it is not known
    msh = ADT.replace("|S|F|", f"|{application}|{facility}|", 1)
    bundle, _ = convert(er7(msh, PID, "PV1|1|I"))
    assert only(bundle, "Provenance")["agent"] == [{"who": {"display": "unidentified sending system"}}]
    assert validation_errors(bundle) == []


def test_an_order_status_that_maps_to_nothing_is_unknown() -> None:
    # R4 ServiceRequest.status 1..1 (request-status "unknown"); a DFT's ORC has no OBR to give the default
    bundle, _ = convert(er7(DFT, PID, "PV1|1|O", "ORC|RE|PLACER|FILLER||^^^^.||||20191122",
                            "FT1|1|T-1||20240101|20240101|CG|71045^Xray chest^C4|||1|100&USD"))
    assert only(bundle, "ServiceRequest")["status"] == "unknown"
    assert validation_errors(bundle) == []


def test_the_control_id_counts_as_mapped_though_no_row_reads_it() -> None:
    # MSH-10 is in the Provenance key and its display (message_summary); the unmapped report must not list it
    _, report = convert(er7(ADT.replace("|1|P|", "|CTRL-1|P|"), PID, "PV1|1|I"))
    assert ("MSH", 1, 10) not in report.unmapped
