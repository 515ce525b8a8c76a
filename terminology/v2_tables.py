"""HL7 v2 tables as FHIR code systems (THO v2-nnnn), with displays for lookups.

Source: HL7 Terminology (THO) 7.0.1: CodeSystem v2-nnnn and ValueSet v2-nnnn, generated into
data/v2-tables.json. Where THO binds a table to another code system (0136 -> v2-0532,
0125 -> v2-0440, 0292 -> CVX), that system is the one used, as THO's ValueSet v2-nnnn says.
"""
from __future__ import annotations

import re
from functools import cache

from terminology._data import load

_FILE = "v2-tables.json"
THO_V2_BASE = "http://terminology.hl7.org/CodeSystem/v2-"
_TABLE_RE = re.compile(r"^(?:HL7)?-?(\d{1,4})$", re.IGNORECASE)


def normalise_table(table: str | int) -> str | None:
    """'1', '0001', 'HL70001', 'HL7-0001' -> '0001'; anything else -> None."""
    match = _TABLE_RE.match(str(table).strip())
    return match.group(1).zfill(4) if match else None


@cache
def _tables() -> dict[str, dict]:
    return load(_FILE)["tables"]


def v2_table_system(table: str | int) -> str:
    """FHIR system URI for a v2 table: THO's binding, else http://terminology.hl7.org/CodeSystem/v2-nnnn.

    Raises ValueError for something that is not a table number.
    """
    number = normalise_table(table)
    if number is None:
        raise ValueError(f"not an HL7 v2 table number: {table!r}")
    entry = _tables().get(number)
    return entry["system"] if entry else THO_V2_BASE + number


def v2_display(table: str | int, code: str) -> str | None:
    """THO display of a v2 table code (exact code), or None when THO has none shipped."""
    number = normalise_table(table)
    entry = _tables().get(number) if number else None
    return entry["concepts"].get(code.strip()) if entry else None


def v2_table_coding(table: str | int, code: str, display: str | None = None) -> dict[str, str]:
    """FHIR Coding for a v2 table value: {system, code, display}.

    The message's own display (e.g. CWE.2) wins; otherwise THO's display when known; no
    display key when neither exists. A fresh dict each call.
    """
    code = code.strip()
    coding = {"system": v2_table_system(table), "code": code}
    text = (display or "").strip() or v2_display(table, code)
    if text:
        coding["display"] = text
    return coding


def known_tables() -> list[str]:
    """Table numbers shipped in data/v2-tables.json."""
    return sorted(_tables())
