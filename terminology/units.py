"""Units for FHIR Quantity (unit, system, code) from v2 unit text (OBX-6, CWE.1/CWE.2).

FHIR R4 Quantity (§2.24.0.11): ``system`` http://unitsofmeasure.org with a UCUM ``code`` when
the unit is UCUM; ``unit`` keeps the human-readable text the sender used. Non-UCUM spellings
common in lab/device feeds are mapped through data/lab-unit-aliases.json.
"""
from __future__ import annotations

from functools import cache, lru_cache

from terminology._data import load
from terminology.ucum import UCUM_SYSTEM, is_ucum

# Micro sign and Greek mu both stand for UCUM's "u" (micro) prefix in sender text.
_MICRO = str.maketrans({"\u00b5": "u", "\u03bc": "u"})


@cache
def _aliases() -> tuple[dict[str, str], dict[str, str]]:
    exact: dict[str, str] = load("lab-unit-aliases.json")["aliases"]
    folded: dict[str, str] = {}
    for text, code in exact.items():
        folded.setdefault(text.casefold(), code)
    return exact, folded


@lru_cache(maxsize=4096)
def to_ucum(text: str) -> str | None:
    """UCUM code for unit text, or None when it is neither UCUM nor a known lab spelling.

    Order: curated alias (exact) -> valid UCUM as sent -> micro sign as 'u' -> alias ignoring case.
    """
    text = (text or "").strip()
    if not text:
        return None
    exact, folded = _aliases()
    if text in exact:
        return exact[text]
    if is_ucum(text):
        return text
    micro = text.translate(_MICRO)
    if micro != text:
        if micro in exact:
            return exact[micro]
        if is_ucum(micro):
            return micro
    return folded.get(micro.casefold())


def ucum_unit(text: str, display: str | None = None) -> dict[str, str] | None:
    """Quantity unit fields {unit, system, code} for unit text, or None if not UCUM-mappable.

    ``unit`` is the sender's display (``display``, e.g. CWE.2, else the text itself).
    A fresh dict each call; callers put only {"unit": text} when this returns None.
    """
    code = to_ucum(text)
    if code is None:
        return None
    unit = (display or "").strip() or text.strip()
    return {"unit": unit, "system": UCUM_SYSTEM, "code": code}
