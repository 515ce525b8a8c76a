"""Message structure by trigger event (HL7 v2.5.1 table 0354), used when MSH-9.3 is empty."""
from __future__ import annotations

import json
from importlib import resources

import pytest

from adapters.hl7v2.structures import structure_for


@pytest.mark.parametrize(
    ("code", "event", "structure"),
    [
        ("ADT", "A01", "ADT_A01"),
        ("ADT", "A04", "ADT_A01"),
        ("ADT", "A08", "ADT_A01"),
        ("ADT", "A13", "ADT_A01"),
        ("ADT", "A05", "ADT_A05"),
        ("ADT", "A28", "ADT_A05"),
        ("ADT", "A31", "ADT_A05"),
        ("ADT", "A07", "ADT_A06"),
        ("ADT", "A40", "ADT_A39"),
        ("ORU", "R01", "ORU_R01"),
        ("SIU", "S14", "SIU_S12"),
        ("ACK", "A01", "ACK"),
        ("ACK", "", "ACK"),
        ("XYZ", "Q99", "XYZ_Q99"),
        ("XYZ", "", "XYZ"),
    ],
)
def test_structure_for(code: str, event: str, structure: str) -> None:
    assert structure_for(code, event) == structure


def test_every_table_entry_maps_back_to_a_structure_with_its_code() -> None:
    table = json.loads(resources.files("adapters.hl7v2").joinpath("data/structures.json").read_text("utf-8"))["table_0354"]
    for structure, events in table.items():
        code = structure.split("_", 1)[0]
        for event in events:
            found = structure_for(code, event)
            assert found.split("_", 1)[0] == code
            assert event == "*" or found in table
