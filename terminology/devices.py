"""ISO/IEEE 11073-10101 (MDC) device observation codes -> LOINC, for vital signs.

Source: data/mdc-loinc.json; each row cites where the MDC <-> LOINC pairing is published
(FHIR R4 vital signs profile LOINC codes, HL7 PHD IG, LOINC/IEEE mapping). Only cited rows ship.
"""
from __future__ import annotations

from functools import cache

from terminology._data import load

MDC_SYSTEM = "urn:iso:std:iso:11073:10101"
LOINC_SYSTEM = "http://loinc.org"


@cache
def _index() -> dict[str, dict]:
    out: dict[str, dict] = {}
    for row in load("mdc-loinc.json")["mappings"]:
        out[str(row["mdc_code"])] = row
        out[row["mdc_refid"]] = row
    return out


def mdc_to_loinc(code: str | int) -> dict[str, str] | None:
    """LOINC Coding {system, code, display} for an MDC code (numeric '150021' or
    reference id 'MDC_PRESS_BLD_NONINV_SYS'), or None when no cited mapping exists.
    Accepts '150021^MDC_PRESS_BLD_NONINV_SYS'-style values too (first non-empty part known)."""
    row = _row(code)
    return {"system": LOINC_SYSTEM, "code": row["loinc"], "display": row["loinc_display"]} if row is not None else None


def mdc_coding(code: str | int) -> dict[str, str] | None:
    """The MDC Coding itself {system, code, display=refid} for a known MDC code, or None."""
    row = _row(code)
    return {"system": MDC_SYSTEM, "code": str(row["mdc_code"]), "display": row["mdc_refid"]} if row is not None else None


def _row(code: str | int) -> dict | None:
    """The mapping row of the first part of code (split at ^) that is a known MDC code or refid."""
    index = _index()
    for part in str(code).split("^"):
        row = index.get(part.strip())
        if row is not None:
            return row
    return None
