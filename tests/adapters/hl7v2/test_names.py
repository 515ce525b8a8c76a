"""HL7 v2 field names for `inspect`, extracted from hl7apy's reference tables into data/field_names.json."""
from __future__ import annotations

import pytest

from adapters.hl7v2.names import _data, field_name, generate, known_version, segment_field_names


@pytest.mark.parametrize(
    ("segment", "field", "version", "name"),
    [
        ("PID", 5, "2.5", "Patient Name"),
        ("PID", 1, "2.5", "Set ID - PID"),
        ("PID", 3, "2.5.1", "Patient Identifier List"),
        ("PID", 6, "2.3", "Mother's Maiden Name"),
        ("PID", 3, "2.3", "Patient ID Internal ID"),  # the older name in an older version
        ("MSH", 10, "2.5", "Message Control ID"),
        ("MSH", 18, "2.1", "Character Set"),  # newer than the message's version: its later name
        ("OBX", 5, "2.9", "Observation Value"),  # newer than hl7apy knows: its latest
        ("PV1", 3, "", "Assigned Patient Location"),  # no MSH-12: 2.5
        ("QRD", 1, "2.7", "Query Date Time"),  # withdrawn in 2.7: from the versions that had it
        ("ZPI", 1, "2.5", ""),  # Z-segments have no standard names
        ("PID", 99, "2.5", ""),
    ],
)
def test_field_name(segment: str, field: int, version: str, name: str) -> None:
    assert field_name(segment, field, version) == name


def test_known_version() -> None:
    assert known_version("2.5") == "2.5"
    assert known_version("2.8.2") == "2.8.2"
    assert known_version("2.9.1") == "2.8.2"
    assert known_version("junk") == "2.5"
    assert known_version("") == "2.5"


def test_segment_field_names_in_order() -> None:
    names = segment_field_names("MSH", "2.5")
    assert names[:3] == ("Field Separator", "Encoding Characters", "Sending Application")
    assert len(names) == 21


def test_data_file_is_current_with_hl7apy() -> None:
    """Regenerate with `python -m adapters.hl7v2.names` when this fails after an hl7apy upgrade."""
    assert generate() == _data()
