"""Required terminology bindings (R4 terminologies.html#required) for code, Coding and CodeableConcept elements."""
from __future__ import annotations

from typing import Any

from conformance.definitions import required_binding
from conformance.outcome import Issue


def check_required_binding(path: str, type_code: str, value: Any, expression: str) -> Issue | None:
    """An issue when `value` at `expression` is not in the required ValueSet bound at `path` (e.g. Patient.gender).

    code: the code SHALL be in the value set; Coding: system and code SHALL be in it; CodeableConcept: at least one
    coding SHALL be (other codings may be translations). ValueSets that cannot be enumerated are not checked.
    """
    binding = required_binding(path)
    if binding is None:
        return None
    url, codes_by_system = binding
    if type_code == "code":
        if not isinstance(value, str) or any(value in codes for codes in codes_by_system.values()):
            return None
        allowed = sorted(set().union(*codes_by_system.values()))
        shown = ", ".join(allowed[:12]) + (" ..." if len(allowed) > 12 else "")
        return Issue("error", "code-invalid", expression,
                     f"'{value}' is not in the required value set {url} ({shown})", "binding")
    if type_code == "Coding":
        if not isinstance(value, dict) or _coding_in(value, codes_by_system):
            return None
        return Issue("error", "code-invalid", expression,
                     f"Coding {value.get('system')}|{value.get('code')} is not in the required value set {url}", "binding")
    if type_code == "CodeableConcept":
        if not isinstance(value, dict):
            return None
        codings = value.get("coding")
        if isinstance(codings, list) and any(isinstance(c, dict) and _coding_in(c, codes_by_system) for c in codings):
            return None
        return Issue("error", "code-invalid", expression,
                     f"No coding is from the required value set {url} (system {' or '.join(sorted(codes_by_system))})",
                     "binding")
    return None


def _coding_in(coding: dict[str, Any], codes_by_system: dict[str, frozenset[str]]) -> bool:
    codes = codes_by_system.get(coding.get("system", ""))
    return codes is not None and coding.get("code") in codes
