"""MDC (ISO/IEEE 11073-10101) -> LOINC for vital signs, cited rows only."""
from __future__ import annotations

import pytest

from terminology import mdc_to_loinc
from terminology._data import load
from terminology.devices import mdc_coding


@pytest.mark.parametrize(
    ("mdc", "loinc"),
    [("150020", "85354-9"), ("150021", "8480-6"), ("150022", "8462-4"), ("150364", "8310-5"),
     ("149530", "8867-4"), ("147842", "8867-4"), ("150456", "2708-6"), (150021, "8480-6"),
     ("MDC_PRESS_BLD_NONINV_DIA", "8462-4"), ("150456^MDC_PULS_OXIM_SAT_O2^MDC", "2708-6")],
)
def test_known_vital_signs(mdc: str | int, loinc: str) -> None:
    coding = mdc_to_loinc(mdc)
    assert coding is not None and coding["system"] == "http://loinc.org" and coding["code"] == loinc


def test_unknown_codes_are_not_guessed() -> None:
    assert mdc_to_loinc("150023") is None  # mean NIBP: no cited LOINC pairing shipped
    assert mdc_to_loinc("") is None


def test_mdc_coding() -> None:
    assert mdc_coding("150021") == {"system": "urn:iso:std:iso:11073:10101", "code": "150021", "display": "MDC_PRESS_BLD_NONINV_SYS"}


def test_every_row_cites_a_source() -> None:
    for row in load("mdc-loinc.json")["mappings"]:
        assert row["source"] and row["loinc_display"]
