"""v2 coding-system names (HL7 table 0396, CWE.3/CWE.6/CWE.14) -> FHIR Coding.system URIs.

Source: THO 7.0.1 CodeSystem v2-0396 and code-system NamingSystems (preferred uri), generated
into data/coding-systems.json, plus the curated links in data/coding-systems-curated.json.
Local names (99zzz, L, and anything unknown) are never dropped: they become
``urn:pulsebridge:codesystem:<name>`` (the name percent-encoded per RFC 3986, case kept), so
the code keeps its source system name in a valid FHIR uri.
"""
from __future__ import annotations

import re
from functools import cache
from urllib.parse import quote

from terminology._data import load
from terminology.v2_tables import v2_table_system

_FILE = "coding-systems.json"
LOCAL_SYSTEM_PREFIX = "urn:pulsebridge:codesystem:"
_HL7_TABLE_RE = re.compile(r"^HL7-?(\d{4})$", re.IGNORECASE)
_OID_RE = re.compile(r"^(?:urn:oid:)?([0-2](?:\.(?:0|[1-9]\d*))+)$", re.IGNORECASE)


@cache
def _systems() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    data = load(_FILE)
    exact = {name: item["uri"] for name, item in data["systems"].items()}
    folded: dict[str, str] = {}
    for name, uri in exact.items():
        folded.setdefault(name.upper(), uri)
    return exact, folded, data["oids"]


def local_system_uri(name: str) -> str:
    """URI for a local/unknown coding system name: urn:pulsebridge:codesystem:<name>."""
    return LOCAL_SYSTEM_PREFIX + quote(name.strip(), safe="-._~")


def is_local_system(uri: str) -> bool:
    """Whether a system URI is one system_uri() minted for a local name."""
    return uri.startswith(LOCAL_SYSTEM_PREFIX)


def oid_system_uri(oid: str) -> str:
    """An OID (CWE.14) -> the THO NamingSystem's preferred URI, else urn:oid:<oid>."""
    match = _OID_RE.match(oid.strip())
    if not match:
        raise ValueError(f"not an OID: {oid!r}")
    return _systems()[2].get(match.group(1), "urn:oid:" + match.group(1))


def system_uri(coding_system_name: str) -> str | None:
    """FHIR system URI for a v2 coding-system name (HL7 table 0396, e.g. CWE.3).

    - blank -> None (a Coding without system);
    - a URI (has '://' or starts with 'urn:') -> unchanged; an OID -> oid_system_uri();
    - 'HL7nnnn' / 'HL7-nnnn' -> the v2 table's THO system (v2_table_system);
    - a 0396 name known to THO (LN, SCT, I10, UCUM, CVX ...), exact then case-insensitive;
    - anything else, including 99zzz and L -> local_system_uri(name).
    """
    name = (coding_system_name or "").strip()
    if not name:
        return None
    if "://" in name or name.lower().startswith("urn:"):
        if _OID_RE.match(name):
            return oid_system_uri(name)
        return name
    if _OID_RE.match(name):
        return oid_system_uri(name)
    table = _HL7_TABLE_RE.match(name)
    if table:
        return v2_table_system(table.group(1))
    exact, folded, _ = _systems()
    uri = exact.get(name) or folded.get(name.upper())
    return uri if uri else local_system_uri(name)
