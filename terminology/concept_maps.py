"""HL7 v2-to-FHIR IG vocabulary ConceptMaps (v2 table code -> FHIR Coding), read from data.

Source: HL7 Version 2 to FHIR IG, mappings/codesystems ("HL7 Concept Map_ <Name>" sheets),
generated into data/concept-maps.json by terminology.generate. Maps are named after their FHIR
target as the IG's segment/datatype sheets name them in "Vocabulary Mapping", e.g.
"AdministrativeSex", "AddressType[Use]", "PatientClass[EncounterClass]", "Yes/NoIndicator".
"""
from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

from terminology._data import UnknownConceptMap, load

_FILE = "concept-maps.json"


def _key(name: str) -> str:
    # Same normalisation as terminology.generate.name_key: case and punctuation outside
    # brackets are ignored, so "Yes/NoIndicator", "YesNoIndicator", "Contact Role" resolve.
    return re.sub(r"[^0-9a-z\[\]]", "", name.lower())


@cache
def _names() -> dict[str, str]:
    out: dict[str, str] = {}
    for name, cmap in load(_FILE)["maps"].items():
        for label in (name, *cmap["aliases"]):
            out.setdefault(_key(label), name)
    return out


def map_names() -> list[str]:
    """Names of every IG vocabulary ConceptMap shipped (IG mappings/codesystems)."""
    return list(load(_FILE)["maps"])


@lru_cache(maxsize=1024)
def resolve_map_name(map_name: str) -> str:
    """Canonical IG name for a map name or alias; raises UnknownConceptMap (a KeyError)."""
    try:
        return _names()[_key(map_name)]
    except KeyError:
        raise UnknownConceptMap(f"no IG vocabulary map named {map_name!r}") from None


def concept_map(map_name: str) -> dict[str, Any]:
    """The whole generated map: name, aliases, v2_table, source_system, target_systems,
    status, source (IG sheet), elements [{code, display, targets[...]}], unmapped_targets.
    Shared read-only data: do not mutate."""
    return load(_FILE)["maps"][resolve_map_name(map_name)]


@cache
def _index(name: str) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    by_code: dict[str, list[dict[str, Any]]] = {}
    for element in load(_FILE)["maps"][name]["elements"]:
        by_code[element["code"]] = element["targets"]
    for code, targets in _language_sources(name).items():
        by_code.setdefault(code, targets)
    folded: dict[str, str] = {}
    clashes: set[str] = set()
    for code in by_code:
        upper = code.upper()
        if upper in folded:
            clashes.add(upper)
        folded[upper] = code
    for upper in clashes:
        del folded[upper]
    return by_code, folded


_LANGUAGES = "iso639-bcp47.json"


def _language_sources(name: str) -> dict[str, list[dict[str, Any]]]:
    """ISO 639 source codes for a map whose IG sheet lists BCP 47 targets but no v2 codes
    (PrimaryLanguage, table 0296): ISO 639-2 B/T and 639-1 codes -> the IG's own target row."""
    languages = load(_LANGUAGES)
    if name not in languages["maps"]:
        return {}
    targets = {t["code"]: t for t in load(_FILE)["maps"][name]["unmapped_targets"] if t.get("system") == "urn:ietf:bcp:47"}
    out: dict[str, list[dict[str, Any]]] = {}
    for code, bcp47 in languages["codes"].items():
        if bcp47 in targets:
            out[code] = out[bcp47] = [targets[bcp47]]
    return out


def _targets(map_name: str, code: str) -> list[dict[str, Any]] | None:
    by_code, folded = _index(resolve_map_name(map_name))
    code = code.strip()
    targets = by_code.get(code)
    if targets is None:
        # v2 table codes are upper case; senders often lower-case them ("f" for PID-8).
        # Fold only when no two source codes differ just by case.
        exact = folded.get(code.upper())
        targets = by_code.get(exact) if exact is not None else None
    return targets


def translate(map_name: str, code: str) -> dict[str, str] | None:
    """FHIR Coding {system, code, display} the IG maps a v2 code to, or None if unmapped.

    Per the IG sheet: exact code first, then a unique case-insensitive match. When the IG
    lists several targets (e.g. SegmentActionCode U -> PUT or PATCH "local assessment"),
    the first target without a condition wins, else the first listed. A fresh dict each call.
    """
    targets = _targets(map_name, code)
    if not targets:
        return None
    chosen = next((t for t in targets if "condition" not in t), targets[0])
    return {k: chosen[k] for k in ("system", "code", "display") if k in chosen}


def translate_all(map_name: str, code: str) -> list[dict[str, Any]]:
    """Every IG target row for a v2 code, each {system, code, display, condition?, comment?}."""
    return [dict(t) for t in _targets(map_name, code) or []]


def is_mapped_source(map_name: str, code: str) -> bool:
    """Whether the IG sheet lists this v2 code at all (even with no FHIR target)."""
    return _targets(map_name, code) is not None
