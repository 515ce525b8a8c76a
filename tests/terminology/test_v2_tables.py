"""v2 tables as THO code systems, with displays for codes the message sends bare."""
from __future__ import annotations

import pytest

from terminology import v2_display, v2_table_coding, v2_table_system
from terminology.v2_tables import known_tables, normalise_table

MOST_USED = ["0001", "0002", "0004", "0007", "0063", "0085", "0123", "0189", "0190", "0200",
             "0201", "0202", "0203", "0204", "0119", "0038", "0162", "0163", "0164", "0396", "0443"]


@pytest.mark.parametrize("table", MOST_USED)
def test_most_used_tables_have_displays(table: str) -> None:
    assert table in known_tables()
    assert v2_table_system(table) == f"http://terminology.hl7.org/CodeSystem/v2-{table}"


@pytest.mark.parametrize(
    ("table", "code", "display"),
    [
        ("0001", "F", "Female"),
        ("0203", "MR", "Medical record number"),
        ("0004", "I", "Inpatient"),
        ("0085", "F", "Final results"),
        ("0396", "LN", "Logical Observation Identifier Names and Codes (LOINC®)"),
        ("0136", "Y", "Yes"),
    ],
)
def test_tho_displays(table: str, code: str, display: str) -> None:
    assert v2_display(table, code) == display


def test_coding_prefers_the_message_display() -> None:
    assert v2_table_coding("0203", "MR") == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical record number"}
    assert v2_table_coding("HL70203", "MR", "Med Rec #")["display"] == "Med Rec #"
    assert v2_table_coding(1, "ZZ") == {"system": "http://terminology.hl7.org/CodeSystem/v2-0001", "code": "ZZ"}


def test_tho_bindings_to_other_code_systems() -> None:
    assert v2_table_system("0136") == "http://terminology.hl7.org/CodeSystem/v2-0532"
    assert v2_table_system("0125") == "http://terminology.hl7.org/CodeSystem/v2-0440"
    assert v2_table_system("0292") == "http://hl7.org/fhir/sid/cvx"


def test_unknown_table_gets_the_tho_url_pattern() -> None:
    assert v2_table_system("9999") == "http://terminology.hl7.org/CodeSystem/v2-9999"
    assert v2_display("9999", "X") is None
    with pytest.raises(ValueError):
        v2_table_system("table one")


def test_table_number_spellings() -> None:
    assert normalise_table("HL70001") == normalise_table("1") == normalise_table(1) == "0001"
    assert normalise_table("HL7-0354") == "0354"
    assert normalise_table("x") is None
