"""Unit text -> FHIR Quantity unit/system/code (UCUM), including common lab spellings."""
from __future__ import annotations

import pytest

from terminology import is_ucum, to_ucum, ucum_unit
from terminology._data import load


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("mmHg", "mm[Hg]"), ("beats/min", "/min"), ("bpm", "/min"), ("BPM", "/min"),
        ("mg/dl", "mg/dL"), ("degF", "[degF]"), ("%", "%"), ("10*3/uL", "10*3/uL"),
        ("K/uL", "10*3/uL"), ("x10E9/L", "10*9/L"), ("mEq/L", "meq/L"), ("IU/L", "[IU]/L"),
        ("µg/L", "ug/L"), ("μg/mL", "ug/mL"), ("°C", "Cel"), ("mm[Hg]", "mm[Hg]"), ("kg", "kg"),
        ("pH", "[pH]"), ("ft", "[ft_i]"), ("mL/min/1.73m2", "mL/min/{1.73_m2}"),
    ],
)
def test_to_ucum(text: str, code: str) -> None:
    assert to_ucum(text) == code


def test_quantity_fields_keep_the_sender_text() -> None:
    assert ucum_unit("mmHg") == {"unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
    assert ucum_unit("mg/dL", "milligram per deciliter")["unit"] == "milligram per deciliter"
    assert ucum_unit("cells per field") is None
    assert ucum_unit("") is None


def test_every_alias_target_is_ucum_and_no_alias_shadows_itself() -> None:
    aliases = load("lab-unit-aliases.json")["aliases"]
    for text, code in aliases.items():
        assert is_ucum(code), (text, code)
        assert text != code, text
