"""Deterministic ids when a sender reuses an identifier on several segments (mappers/engine.py)."""
from __future__ import annotations

from conformance.validation import has_errors, validate_bundle
from mappers import convert

ORU = (
    "MSH|^~\\&|LIS|LAB|PB|HOSP|20261123083015+0800||ORU^R01^ORU_R01|C1|P|2.5.1\r"
    "PID|1||P1^^^HOSP^MR||DOE^JANE\r"
    "OBR|1|PL1|FL1|24331-1^Lipid panel^LN|||20261123080000+0800\r"
    "OBX|1|NM|2093-3^Cholesterol^LN||5.2|mmol/L|||||F|||||||||||OBS-1^LIS\r"
    "OBX|2|ST|2571-8^Triglyceride comment^LN||slightly raised||||||F|||||||||||OBS-1^LIS\r"
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


def test_ids_stay_deterministic_and_orc_obr_of_one_order_still_merge() -> None:
    first, _ = convert(ORU.encode())
    again, _ = convert(ORU.encode())
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in again["entry"]]
    with_orc = ORU.replace("OBR|1|", "ORC|RE|PL1|FL1\rOBR|1|", 1)
    bundle, _ = convert(with_orc.encode())
    assert len(_resources(bundle, "ServiceRequest")) == 1
