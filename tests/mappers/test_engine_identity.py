"""Deterministic ids when a sender reuses an identifier on several segments (mappers/engine.py)."""
from __future__ import annotations

import pytest

from conformance.validation import has_errors, validate_bundle
from mappers import convert

ORU = (
    "MSH|^~\\&|LIS|LAB|PB|HOSP|20261123083015+0800||ORU^R01^ORU_R01|C1|P|2.5.1\r"
    "PID|1||P1^^^HOSP^MR||DOE^JANE\r"
    "OBR|1|PL1|FL1|24331-1^Lipid panel^LN|||20261123080000+0800\r"
    "OBX|1|NM|2093-3^Cholesterol^LN||5.2|mmol/L|||||F||||||||||OBS-1^LIS\r"
    "OBX|2|ST|2571-8^Triglyceride comment^LN||slightly raised||||||F||||||||||OBS-1^LIS\r"
)


def _resources(bundle: dict, resource_type: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def test_a_reused_obx21_still_gives_one_observation_per_obx() -> None:
    bundle, _ = convert(ORU.encode())
    observations = _resources(bundle, "Observation")
    assert len(observations) == 2
    assert len({o["id"] for o in observations}) == 2
    assert {"valueQuantity", "valueString"} == {k for o in observations for k in o if k.startswith("value")}
    assert not has_errors(validate_bundle(bundle, strict_references=True))


# The same two OBX in other message families: an order's supporting observations (IG OML_O21
# 6.4.7.1 OBX[Observation]) and a visit's (IG ADT_A01 row 13 OBX[Observation]); and an OBX whose
# OBX-5 repeats, which stays OBX[Observation-Component] (IG ORU_R01 4.2.4.3.1) though its OBX-21 is shared.
OTHER_FAMILIES = {
    "OML_O21": (
        "MSH|^~\\&|EHR|HOSP|LIS|LAB|20261123083015+0800||OML^O21^OML_O21|C2|P|2.5.1\r"
        "PID|1||P1^^^HOSP^MR||DOE^JANE\r"
        "ORC|NW|PL1\r"
        "OBR|1|PL1||24331-1^Lipid panel^LN\r"
    ),
    "ADT_A01": (
        "MSH|^~\\&|EHR|HOSP|PB|HOSP|20261123083015+0800||ADT^A01^ADT_A01|C3|P|2.5.1\r"
        "EVN|A01|20261123083015+0800\r"
        "PID|1||P1^^^HOSP^MR||DOE^JANE\r"
        "PV1|1|I\r"
    ),
}
SHARED_OBX = ORU.split("\r", 3)[3]
REPEATED_VALUE = "OBX|3|NM|8480-6^Systolic blood pressure^LN||120~118|mm[Hg]|||||F||||||||||OBS-1^LIS\r"


@pytest.mark.parametrize("family", sorted(OTHER_FAMILIES))
def test_a_reused_obx21_gives_one_observation_per_obx_in_other_families(family: str) -> None:
    bundle, _ = convert((OTHER_FAMILIES[family] + SHARED_OBX + REPEATED_VALUE).encode())
    observations = _resources(bundle, "Observation")
    assert len(observations) == 3
    assert len({o["id"] for o in observations}) == 3
    assert all(o["identifier"][0]["value"] == "OBS-1" for o in observations)
    by_code = {o["code"]["coding"][0]["code"]: o for o in observations}
    assert by_code["2093-3"]["valueQuantity"]["value"] == 5.2 and by_code["2571-8"]["valueString"] == "slightly raised"
    assert [c["valueQuantity"]["value"] for c in by_code["8480-6"]["component"]] == [120, 118]
    assert not has_errors(validate_bundle(bundle, strict_references=True))


def test_ids_stay_deterministic_and_orc_obr_of_one_order_still_merge() -> None:
    first, _ = convert(ORU.encode())
    again, _ = convert(ORU.encode())
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in again["entry"]]
    with_orc = ORU.replace("OBR|1|", "ORC|RE|PL1|FL1\rOBR|1|", 1)
    bundle, _ = convert(with_orc.encode())
    assert len(_resources(bundle, "ServiceRequest")) == 1
