"""PulseBridge terminology: HL7 v2 vocabulary -> FHIR R4 codes, as data.

Public API (pure functions; JSON data under terminology/data/ loaded lazily once, cached):

- translate(map_name, code) -> Coding | None        IG vocabulary ConceptMaps (concept_maps)
- translate_all(map_name, code) -> list[dict]       every IG target row, with conditions
- system_uri(coding_system_name) -> str | None       HL7 table 0396 name -> system URI
- v2_table_coding(table, code, display=None) -> Coding    THO v2-nnnn code system
- v2_table_system(table) -> str, v2_display(table, code) -> str | None
- ucum_unit(text, display=None) -> {unit, system, code} | None, to_ucum(text), is_ucum(code)
- mdc_to_loinc(code) -> Coding | None                 ISO/IEEE 11073-10101 -> LOINC vitals
"""
from __future__ import annotations

from terminology._data import TerminologyError, UnknownConceptMap
from terminology.coding_systems import (
    LOCAL_SYSTEM_PREFIX,
    is_local_system,
    local_system_uri,
    oid_system_uri,
    system_uri,
)
from terminology.concept_maps import (
    concept_map,
    is_mapped_source,
    map_names,
    resolve_map_name,
    translate,
    translate_all,
)
from terminology.devices import mdc_to_loinc
from terminology.ucum import UCUM_SYSTEM, UcumSyntaxError, is_ucum, validate_ucum
from terminology.units import to_ucum, ucum_unit
from terminology.v2_tables import v2_display, v2_table_coding, v2_table_system

__all__ = [
    "LOCAL_SYSTEM_PREFIX",
    "UCUM_SYSTEM",
    "TerminologyError",
    "UcumSyntaxError",
    "UnknownConceptMap",
    "concept_map",
    "is_local_system",
    "is_mapped_source",
    "is_ucum",
    "local_system_uri",
    "map_names",
    "mdc_to_loinc",
    "oid_system_uri",
    "resolve_map_name",
    "system_uri",
    "to_ucum",
    "translate",
    "translate_all",
    "ucum_unit",
    "v2_display",
    "v2_table_coding",
    "v2_table_system",
    "validate_ucum",
]
