"""The Patient compartment and the unified patient record built on it (FHIR R4 compartmentdefinition-patient.html,
patient-operation-everything.html).

The compartment's membership rules are DATA (conformance/data/patient-compartment.json, generated from the
official R4 CompartmentDefinition/patient by conformance/data/build_patient_compartment.py).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

from adapters.storage import search_parameters as indexed
from adapters.storage.base import Repository
from adapters.storage.indexing import IndexRows, index_parameter
from adapters.storage.query import SearchFilter, SearchQuery, SearchValue, SortKey

COMPARTMENT_FILE = Path(__file__).resolve().parents[2] / "conformance" / "data" / "patient-compartment.json"
RECORD_FILE = Path(__file__).resolve().parent / "data" / "patient-record.json"
# One search pulls at most this many resources per (type, parameter); a record is never cut silently.
_BATCH = 10_000
_ID_BATCH = 500  # ids per `_id` search (SQLite binds one variable per id)
# The compartment parameter that confines a search to one patient's record, in order of preference
# (the one that names the patient the resource is about, rather than a performer or author).
BINDING_PREFERENCE = ("patient", "beneficiary", "subject", "actor")


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


def binding_parameter(resource_type: str) -> str | None:
    """The search parameter that confines a search of `resource_type` to a patient's compartment, or None outside it."""
    names = compartment_parameters().get(resource_type)
    if not names:
        return None
    return next((name for name in BINDING_PREFERENCE if name in names), names[0])


def compartment_filter(resource_type: str, name: str, patient_ids: Iterable[str]) -> SearchFilter:
    """`name=Patient/a,Patient/b`: resources whose `name` reference is one of these patients (compartmentdefinition-patient.html)."""
    return _filter(resource_type, name, ",".join(f"Patient/{patient_id}" for patient_id in patient_ids))


def compartment_patients(resource: dict) -> frozenset[str] | None:
    """Ids of the Patients whose compartment holds `resource`; None when its type is not in the Patient compartment."""
    resource_type = resource.get("resourceType")
    if resource_type == "Patient":
        linked = (_reference_id(link.get("other"), "Patient") for link in resource.get("link") or [])
        return frozenset([resource.get("id"), *linked]) - {None}
    names = compartment_parameters().get(str(resource_type))
    if names is None:
        return None
    rows = IndexRows()
    for name in names:
        spec = indexed.parameter(str(resource_type), name)
        if spec is not None:
            index_parameter(spec, resource, rows)
    return frozenset(target_id for _key, target_type, target_id, _url in rows.reference if target_type == "Patient" and target_id)


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
        outgoing = search_every(repository, "Patient", [("_id", current)])
        for patient in outgoing:
            neighbours += [_reference_id(link.get("other"), "Patient") for link in patient.get("link") or []]
        neighbours += [patient["id"] for patient in search_every(repository, "Patient", [("link", f"Patient/{current}")])]
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
    """The whole record in page order (record_page): compartment members by (resourceType, id), then the resources they
    refer to by (resourceType, id), each once."""
    members = _members_by_key(repository, patient_ids, record_filter)
    since = record_filter.since
    kept = [members[key] for key in sorted(members)
            if record_filter.wants(key[0]) and (since is None or _last_updated(members[key]) >= since)]
    return kept + _referenced_tail(repository, members, record_filter)


@dataclass(frozen=True)
class RecordPage:
    """One page of a patient record; `total` is known when the page had to look at the whole record (or needs nothing else)."""

    resources: list[dict]
    total: int | None
    more: bool


def record_page(repository: Repository, patient_ids: list[str], record_filter: RecordFilter, offset: int, count: int) -> RecordPage:
    """Resources [offset, offset + count) of the record (patient-operation-everything.html, paged as search.html#paging).

    The order is fixed, so following the pages yields each resource once: the compartment members grouped by type
    (types in name order, ids in store order), then the Practitioners, Organizations ... they refer to. A page counts
    each type's members (one COUNT per type and parameter) and reads only the types it covers; the referenced tail
    needs the whole record, so only the page that reaches it reads everything.
    """
    page: list[dict] = []
    position = 0
    for resource_type in sorted(_member_types()):
        if not record_filter.wants(resource_type):
            continue
        size, read = _type_members(repository, resource_type, patient_ids, record_filter)
        start = max(0, offset - position)
        if size > start and len(page) < count:
            page += read(start, count - len(page))
        position += size
    if not (referenced_types() & (record_filter.types or referenced_types())):
        return RecordPage(page, position, offset + count < position)
    if offset + count < position:
        return RecordPage(page, None, True)
    tail = _referenced_tail(repository, _members_by_key(repository, patient_ids, record_filter), record_filter)
    start = max(0, offset - position)
    page += tail[start:start + count - len(page)]
    total = position + len(tail)
    return RecordPage(page, total, offset + count < total)


def _member_types() -> list[str]:
    """The compartment's resource types that belong to a record (excludedTypes left out), Patient included."""
    excluded = set(_record_rules()["excludedTypes"])
    return [resource_type for resource_type in compartment_parameters() if resource_type not in excluded]


def _member_searches(resource_type: str, patient_ids: list[str], record_filter: RecordFilter) -> list[list[tuple[str, str]]]:
    """The searches whose union is a type's members: one per compartment parameter, care dates as start/end say."""
    if resource_type == "Patient":
        return [[("_id", ",".join(patient_ids))]]  # Patient.link members are the linked patients themselves
    patient_refs = ",".join(f"Patient/{patient_id}" for patient_id in patient_ids)
    date_name = care_date_parameter(resource_type)
    searches = []
    for name in compartment_parameters()[resource_type]:
        pairs = [(name, patient_refs)]
        if date_name and record_filter.start:
            pairs.append((date_name, f"ge{record_filter.start}"))
        if date_name and record_filter.end:
            pairs.append((date_name, f"le{record_filter.end}"))
        searches.append(pairs)
    return searches


def _type_members(
    repository: Repository, resource_type: str, patient_ids: list[str], record_filter: RecordFilter
) -> tuple[int, Callable[[int, int], list[dict]]]:
    """How many members a type has in this record, and a reader of a window of them in a fixed order."""
    searches = _member_searches(resource_type, patient_ids, record_filter)
    if record_filter.since is not None:
        since = ("_lastUpdated", f"ge{record_filter.since.isoformat()}")
        searches = [[*pairs, since] for pairs in searches]
    counted = [(pairs, _count(repository, resource_type, pairs)) for pairs in searches]
    found = [(pairs, size) for pairs, size in counted if size]
    if len(found) == 1:
        pairs, size = found[0]
        return size, lambda start, limit: _window(repository, resource_type, pairs, start, limit)
    # Several parameters match (say, a patient who is also the performer of their own readings): their union by id.
    union = {resource["id"]: resource for pairs, _ in found for resource in search_every(repository, resource_type, pairs)}
    members = [union[key] for key in sorted(union)]
    return len(members), lambda start, limit: members[start:start + limit]


def _members_by_key(repository: Repository, patient_ids: list[str], record_filter: RecordFilter) -> dict[tuple[str, str], dict]:
    """Every compartment member of every type (care dates applied; _type and _since not: references are followed from all)."""
    members: dict[tuple[str, str], dict] = {}
    for resource_type in _member_types():
        for pairs in _member_searches(resource_type, patient_ids, record_filter):
            for resource in search_every(repository, resource_type, pairs):
                members.setdefault((resource_type, resource["id"]), resource)
    return members


def _referenced_tail(repository: Repository, members: dict[tuple[str, str], dict], record_filter: RecordFilter) -> list[dict]:
    """The resources outside the compartment that members refer to, by (resourceType, id), as _type and _since select."""
    since = record_filter.since
    tail = {key: resource for key, resource in referenced(repository, members, referenced_types())
            if record_filter.wants(key[0]) and (since is None or _last_updated(resource) >= since)}
    return [tail[key] for key in sorted(tail)]


def referenced(
    repository: Repository, record: dict[tuple[str, str], dict], types: frozenset[str] | None = None,
) -> Iterator[tuple[tuple[str, str], dict]]:
    """What the record refers to and is not in it, following references transitively, by (type, id).

    Read in waves, one batched `_id` search per type and wave, never one read per reference; only
    `types` are followed (None: every type the store serves). A reference to nothing stored yields nothing.
    """
    seen = set(record)
    frontier = list(record.values())
    while frontier:
        by_type: dict[str, set[str]] = {}
        for resource in frontier:
            for resource_type, resource_id in references(resource):
                wanted = indexed.parameter(resource_type, "_id") is not None if types is None else resource_type in types
                if wanted and (resource_type, resource_id) not in seen:
                    by_type.setdefault(resource_type, set()).add(resource_id)
                    seen.add((resource_type, resource_id))
        frontier = []
        for resource_type, ids in by_type.items():
            ordered = sorted(ids)
            for start in range(0, len(ordered), _ID_BATCH):
                for resource in search_every(repository, resource_type, [("_id", ",".join(ordered[start:start + _ID_BATCH]))]):
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


def search_every(repository: Repository, resource_type: str, pairs: Iterable[tuple[str, str]]) -> list[dict]:
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


def _count(repository: Repository, resource_type: str, pairs: Iterable[tuple[str, str]]) -> int:
    """How many current resources match (search.html#summary: _summary=count)."""
    filters = tuple(_filter(resource_type, name, value) for name, value in pairs)
    return repository.search(SearchQuery(resource_type, filters=filters, count=0, total="accurate", summary="count")).total or 0


def _window(repository: Repository, resource_type: str, pairs: Iterable[tuple[str, str]], start: int, limit: int) -> list[dict]:
    """Matches [start, start + limit) in id order (_sort=_id): the same order on every page."""
    filters = tuple(_filter(resource_type, name, value) for name, value in pairs)
    query = SearchQuery(resource_type, filters=filters, count=limit, offset=start, total="none", sort=(SortKey("_id"),))
    return repository.search(query).matches


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
