"""The one place the mappers reach terminology/: IG ConceptMaps, coding-system URIs, v2 tables, UCUM.

Kept thin on purpose, so a change in the terminology package's API is a change here only.
"""
from __future__ import annotations

from functools import lru_cache

from terminology import coding_systems, concept_maps, units, v2_tables
from terminology._data import UnknownConceptMap

__all__ = ["UnknownConceptMap", "known_map", "system_uri", "table_coding", "translate", "translation", "translations_clean", "ucum_unit"]


@lru_cache(maxsize=8192)
def translation(map_name: str, code: str) -> dict[str, str] | None:
    """`translate` without the copy: the one Coding the cache holds, for reading only (never to be
    put in a resource or changed)."""
    return concept_maps.translate(map_name, code) or None


def translate(map_name: str, code: str) -> dict[str, str] | None:
    """IG ConceptMap lookup: v2 code -> FHIR Coding {system, code, display}; None when unmapped."""
    found = translation(map_name, code)
    return found.copy() if found is not None else None


@lru_cache(maxsize=256)
def translations_clean(map_name: str) -> bool:
    """Whether no Coding this IG ConceptMap gives has an empty system, code or display (engine.map_clean)."""
    cmap = concept_maps.concept_map(map_name)
    targets = [t for element in cmap["elements"] for t in element["targets"]] + list(cmap["unmapped_targets"])
    return all(t[k] for t in targets for k in ("system", "code", "display") if k in t)


def known_map(map_name: str) -> bool:
    """Whether the IG ships a vocabulary map by this name (checked when specs load)."""
    try:
        concept_maps.resolve_map_name(map_name)
    except UnknownConceptMap:
        return False
    return True


@lru_cache(maxsize=4096)
def system_uri(name: str) -> str | None:
    """v2 coding-system name (table 0396, CWE.3) -> FHIR Coding.system; local names keep a urn."""
    return coding_systems.system_uri(name)


def table_coding(table: str, code: str, display: str | None = None) -> dict[str, str]:
    """A v2 table value as a Coding in its THO code system (a fresh dict: callers may extend it)."""
    return _table_coding(table, code, display).copy()


@lru_cache(maxsize=8192)
def _table_coding(table: str, code: str, display: str | None) -> dict[str, str]:
    return v2_tables.v2_table_coding(table, code, display)  # the cached one: only copies leave


def ucum_unit(text: str, display: str | None = None) -> dict[str, str] | None:
    """Quantity {unit, system, code} for unit text when it is UCUM (or a known lab spelling)."""
    return units.ucum_unit(text, display)
