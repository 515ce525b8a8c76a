"""The Patient compartment and the unified patient record built on it (FHIR R4 compartmentdefinition-patient.html,
patient-operation-everything.html).

The compartment's membership rules are DATA (conformance/data/patient-compartment.json, generated from the
official R4 CompartmentDefinition/patient by conformance/data/build_patient_compartment.py).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

from adapters.storage import search_parameters as indexed
from adapters.storage.base import Repository
from adapters.storage.query import SearchFilter, SearchQuery, SearchValue

COMPARTMENT_FILE = Path(__file__).resolve().parents[2] / "conformance" / "data" / "patient-compartment.json"
RECORD_FILE = Path(__file__).resolve().parent / "data" / "patient-record.json"
# One search pulls at most this many resources per (type, parameter); a record is never cut silently.
_BATCH = 10_000


@cache
def compartment_parameters() -> dict[str, tuple[str, ...]]:
    """Resource type -> the search parameters that place it in a Patient's compartment, limited to what the store indexes."""
    definition = json.loads(COMPARTMENT_FILE.read_text(encoding="utf-8"))
    served = set(indexed.resource_types())
    members: dict[str, tuple[str, ...]] = {}
    for resource_type, names in definition["resources"].items():
        usable = tuple(name for name in names if resource_type in served and name in indexed.parameters(resource_type))
        if usable:
            members[resource_type] = usable
    return members


@cache
def _record_rules() -> dict[str, Any]:
    return json.loads(RECORD_FILE.read_text(encoding="utf-8"))


def referenced_types() -> frozenset[str]:
    """Types pulled into a record because a compartment resource refers to them (Practitioner, Organization, ...)."""
    return frozenset(_record_rules()["referencedTypes"])


def care_date_parameter(resource_type: str) -> str | None:
    """The date search parameter that says when care happened for `resource_type` ($everything start/end)."""
    name = _record_rules()["careDate"].get(resource_type)
    return name if name and name in indexed.parameters(resource_type) else None


def linked_patient_ids(repository: Repository, patient_id: str) -> list[str]:
    """`patient_id` and every Patient reachable through Patient.link, both directions, transitively (patient.html#links).

    Raises NotFound (404) when `patient_id` itself is unknown, Gone (410) when it was deleted.
    """
    repository.read("Patient", patient_id)
    found = [patient_id]
    pending = [patient_id]
    while pending:
        current = pending.pop()
        neighbours: list[str] = []
        outgoing = _search(repository, "Patient", [("_id", current)])
        for patient in outgoing:
            neighbours += [_reference_id(link.get("other"), "Patient") for link in patient.get("link") or []]
        neighbours += [patient["id"] for patient in _search(repository, "Patient", [("link", f"Patient/{current}")])]
        for neighbour in neighbours:
            if neighbour and neighbour not in found:
                found.append(neighbour)
                pending.append(neighbour)
    return found


@dataclass(frozen=True)
class RecordFilter:
    """The $everything parameters that narrow a record: start, end (care dates), _since (lastUpdated), _type."""

    start: str | None = None
    end: str | None = None
    since: datetime | None = None
    types: frozenset[str] | None = None

    def wants(self, resource_type: str) -> bool:
        return self.types is None or resource_type in self.types


def patient_record(repository: Repository, patient_ids: list[str], record_filter: RecordFilter = RecordFilter()) -> list[dict]:
    """The patients, their compartments and the resources those refer to, sorted by (resourceType, id), each once."""
    patient_refs = ",".join(f"Patient/{patient_id}" for patient_id in patient_ids)
    found: dict[tuple[str, str], dict] = {}
    for patient in _search(repository, "Patient", [("_id", ",".join(patient_ids))]):
        found[("Patient", patient["id"])] = patient
    for resource_type, names in compartment_parameters().items():
        if resource_type == "Patient":
            continue  # Patient.link members are the linked patients, gathered above
        date_name = care_date_parameter(resource_type)
        for name in names:
            pairs = [(name, patient_refs)]
            if date_name and record_filter.start:
                pairs.append((date_name, f"ge{record_filter.start}"))
            if date_name and record_filter.end:
                pairs.append((date_name, f"le{record_filter.end}"))
            for resource in _search(repository, resource_type, pairs):
                found.setdefault((resource_type, resource["id"]), resource)
    for key, resource in _referenced(repository, found):
        found.setdefault(key, resource)
    since = record_filter.since
    return [
        found[key] for key in sorted(found)
        if record_filter.wants(key[0]) and (since is None or _last_updated(found[key]) >= since)
    ]


def _referenced(repository: Repository, record: dict[tuple[str, str], dict]) -> Iterator[tuple[tuple[str, str], dict]]:
    """Practitioners, Organizations, Locations, Devices ... referred to by the record, following them transitively."""
    wanted = referenced_types()
    seen = set(record)
    frontier = list(record.values())
    while frontier:
        by_type: dict[str, set[str]] = {}
        for resource in frontier:
            for resource_type, resource_id in references(resource):
                if resource_type in wanted and (resource_type, resource_id) not in seen:
                    by_type.setdefault(resource_type, set()).add(resource_id)
                    seen.add((resource_type, resource_id))
        frontier = []
        for resource_type, ids in by_type.items():
            for resource in _search(repository, resource_type, [("_id", ",".join(sorted(ids)))]):
                frontier.append(resource)
                yield (resource_type, resource["id"]), resource


def references(value: Any) -> Iterator[tuple[str, str]]:
    """(type, id) of every relative literal reference ("Type/id", references.html#literal) anywhere in `value`."""
    if isinstance(value, dict):
        reference = value.get("reference")
        if isinstance(reference, str):
            parts = reference.split("/")
            if len(parts) == 2 and parts[0][:1].isupper() and parts[1]:
                yield parts[0], parts[1]
        for child in value.values():
            if isinstance(child, (dict, list)):
                yield from references(child)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def _reference_id(reference: Any, resource_type: str) -> str | None:
    if isinstance(reference, dict) and isinstance(reference.get("reference"), str):
        kind, _, resource_id = reference["reference"].partition("/")
        if kind == resource_type and resource_id:
            return resource_id
    return None


def _last_updated(resource: dict) -> datetime:
    """meta.lastUpdated as an aware instant; a resource without one counts as updated long ago."""
    text = (resource.get("meta") or {}).get("lastUpdated")
    if not isinstance(text, str):
        return datetime.min.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _search(repository: Repository, resource_type: str, pairs: Iterable[tuple[str, str]]) -> list[dict]:
    """Every current match of a search, fetched in batches (no paging for the caller to get wrong)."""
    filters = tuple(_filter(resource_type, name, value) for name, value in pairs)
    results: list[dict] = []
    offset = 0
    while True:
        query = SearchQuery(resource_type, filters=filters, count=_BATCH, offset=offset, total="none", sort=())
        page = repository.search(query).matches
        results += page
        if len(page) < _BATCH:
            return results
        offset += _BATCH


def _filter(resource_type: str, name: str, raw: str) -> SearchFilter:
    """A filter built directly (the values are ours, not a client's), prefix split as search.html#prefix."""
    spec = indexed.parameter(resource_type, name)
    param_type = spec.type if spec is not None else "token"
    values = []
    for value in raw.split(","):
        if param_type == "date" and value[:2] in ("ge", "le"):
            values.append(SearchValue(value[2:], value[:2]))
        else:
            values.append(SearchValue(value))
    return SearchFilter(name, param_type, tuple(values))
