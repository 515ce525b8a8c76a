"""The R4 search parameters this store indexes, read from conformance/data/search-parameters.json.

The data is generated from the official R4 4.0.1 SearchParameter definitions by
conformance/search_parameters.py (CC0); see that module for how to regenerate it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from adapters.storage.fhirpath import Step, parse

DATA = Path(__file__).resolve().parents[2] / "conformance" / "data" / "search-parameters.json"


@dataclass(frozen=True)
class SearchParameter:
    """One R4 SearchParameter restricted to one resource type (R4 searchparameter.html)."""

    resource_type: str
    name: str
    type: str  # token, string, date, reference, quantity, number, uri
    expression: str
    element_types: tuple[tuple[str, ...], ...]  # per union branch of `expression`
    targets: tuple[str, ...]
    url: str

    @property
    def key(self) -> str:
        """How index rows name this parameter: `Observation.code`."""
        return f"{self.resource_type}.{self.name}"

    @property
    def branches(self) -> tuple[tuple[Step, ...], ...]:
        return parse(self.expression)


@lru_cache(maxsize=1)
def _data() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def parameters(resource_type: str) -> dict[str, SearchParameter]:
    """All indexed parameters of a type, including the Resource-level ones (_id, _lastUpdated, ...)."""
    data = _data()["parameters"]
    if resource_type not in data or resource_type == "Resource":
        return {}
    out: dict[str, SearchParameter] = {}
    for owner in ("Resource", resource_type):
        for name, spec in data[owner].items():
            out[name] = SearchParameter(
                resource_type=resource_type,
                name=name,
                type=spec["type"],
                expression=spec["expression"],
                element_types=tuple(tuple(t) for t in spec["elementTypes"]),
                targets=tuple(spec.get("targets", ())),
                url=spec["url"],
            )
    return out


def parameter(resource_type: str, name: str) -> SearchParameter | None:
    return parameters(resource_type).get(name)


def resource_types() -> tuple[str, ...]:
    """Resource types with search support (the CapabilityStatement lists these)."""
    return tuple(t for t in _data()["parameters"] if t != "Resource")


def summary_elements(resource_type: str) -> tuple[str, ...]:
    """Top-level elements marked isSummary in the R4 StructureDefinition (`value[x]` for choices)."""
    return tuple(_data()["summaryElements"].get(resource_type, ()))
