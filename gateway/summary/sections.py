"""A record's facts sorted into a document's sections (FHIR R4 composition.html#section), as data/sections.json says.

Shared by the visit summary (Encounter/$summary) and the patient summary (Patient/$summary): each section names
its sources (a search parameter and a predicate), a resource is entered in the first section that claims it, and
the notes section quotes the annotations of entries that other sections claimed.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from adapters.storage import search_parameters as indexed
from adapters.storage.base import Repository
from gateway.fhir.compartment import search_every

SECTIONS_FILE = Path(__file__).resolve().parent / "data" / "sections.json"

Predicate = Callable[[dict], bool]


@cache
def summary_rules() -> dict[str, Any]:
    """sections.json: document types, section definitions of both summaries, vital-sign codes, display paths."""
    return json.loads(SECTIONS_FILE.read_text(encoding="utf-8"))


@dataclass
class Section:
    """One section: its definition row and the resources entered in it (empty when nothing is known)."""

    definition: dict[str, Any]
    entries: list[dict] = field(default_factory=list)
    searched: bool = False  # False when no source of the section is served here: the reason is 'unavailable'
    quoted: list[dict] = field(default_factory=list)  # notes section: entries of other sections whose notes it shows


def codes(concepts: Any) -> set[str]:
    """Every Coding.code of a CodeableConcept or a list of them."""
    concepts = concepts if isinstance(concepts, list) else [concepts]
    return {coding.get("code") for concept in concepts if isinstance(concept, dict)
            for coding in concept.get("coding") or [] if isinstance(coding, dict)}


def reference_of(resource: dict) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def entered_in_error(resource: dict) -> bool:
    return resource.get("status") == "entered-in-error" or "entered-in-error" in codes(resource.get("verificationStatus"))


def is_vital_sign(resource: dict) -> bool:
    """R4 vital signs profile: category vital-signs, or one of its LOINC codes (observation-vitalsigns.html)."""
    return "vital-signs" in codes(resource.get("category")) or bool(codes(resource.get("code")) & set(summary_rules()["vitalSignCodes"]))


def _is_result(resource: dict) -> bool:
    categories = codes(resource.get("category"))
    return not is_vital_sign(resource) and (not categories or bool(categories & set(summary_rules()["resultCategories"])))


def _clinical_status_in(names: str) -> Predicate:
    """Condition.clinicalStatus (condition-clinical) in the sections.json list `names`; none given counts as active."""
    wanted = set(summary_rules()["clinicalStatuses"][names])

    def check(resource: dict) -> bool:
        status = codes(resource.get("clinicalStatus")) or {"active"}
        return not entered_in_error(resource) and "refuted" not in codes(resource.get("verificationStatus")) and bool(status & wanted)

    return check


def has_notes(resource: dict) -> bool:
    """Annotation text (note[].text), a report's conclusion or an appointment comment (the targets of HL7 v2 NTE)."""
    return bool(note_texts(resource))


def note_texts(resource: dict) -> list[str]:
    """The free-text notes a resource carries, in element order (annotation.html; NTE-3 lands in these elements)."""
    texts = [str(note["text"]) for note in resource.get("note") or [] if isinstance(note, dict) and note.get("text")]
    for element in summary_rules()["noteElements"]:
        if isinstance(resource.get(element), str) and resource[element].strip():
            texts.append(resource[element])
    return texts


def common_predicates() -> dict[str, Predicate]:
    """The predicates sections.json may name that need no visit: what a record holds, by kind."""
    return {
        "recorded": lambda resource: not entered_in_error(resource),
        "vital-sign": lambda resource: not entered_in_error(resource) and is_vital_sign(resource),
        "report": lambda resource: not entered_in_error(resource) and not is_vital_sign(resource),
        "result": lambda resource: not entered_in_error(resource) and _is_result(resource),
        "current-document": lambda resource: resource.get("status", "current") == "current",
        "annotated": lambda resource: not entered_in_error(resource) and has_notes(resource),
        "active-problem": _clinical_status_in("active"),
        "past-problem": _clinical_status_in("past"),
    }


def search_all(repository: Repository, resource_type: str, name: str, values: Iterable[str]) -> list[dict]:
    """Every current match of `name=v1,v2...` (gateway.fhir.compartment.search_every fetches them in batches)."""
    return search_every(repository, resource_type, [(name, ",".join(values))])


def date_key(resource: dict) -> str:
    """The clinically relevant date of a resource (first of sections.json dateElements present), for ordering."""
    for path in summary_rules()["dateElements"]:
        value: Any = resource
        for step in path.split("."):
            value = value.get(step) if isinstance(value, dict) else None
        if isinstance(value, str):
            return value
    return ""


def sort_into_sections(
    definitions: list[dict],
    candidates_of: Callable[[dict], list[dict] | None],
) -> list[Section]:
    """Fill each section from its sources in order, each resource once (in the first section that claims it).

    `candidates_of(source)` returns the source's resources, already selected, or None when the store does not
    serve that source (the section then stays 'unavailable' rather than 'nil known').
    """
    claimed: set[str] = set()
    sections: list[Section] = []
    for definition in definitions:
        section = Section(definition)
        for source in definition["sources"]:
            candidates = candidates_of(source)
            if candidates is None:
                continue
            section.searched = True
            for resource in sorted(candidates, key=lambda r: (date_key(r), r["resourceType"], r["id"])):
                if reference_of(resource) not in claimed:
                    claimed.add(reference_of(resource))
                    section.entries.append(resource)
        sections.append(section)
    for section in sections:
        if section.definition.get("quotesNotes"):
            section.quoted = [r for other in sections if other is not section for r in other.entries if has_notes(r)]
    return _ordered_results(sections)


def searched_candidates(
    repository: Repository, source: dict, values: list[str], predicates: dict[str, Predicate],
    fetched: dict[tuple[str, str], list[dict]] | None = None,
) -> list[dict] | None:
    """A search source: `type` searched by `search`=values, kept when its `select` predicate holds; with `latest`, only
    the most recent resource per item code (IPS: the current picture, not every repeat of a test)."""
    resource_type, name = source["type"], source["search"]
    if indexed.parameter(resource_type, name) is None:
        return None
    memo = fetched if fetched is not None else {}
    if (resource_type, name) not in memo:
        memo[(resource_type, name)] = search_all(repository, resource_type, name, values)
    keep = predicates[source["select"]]
    selected = [resource for resource in memo[(resource_type, name)] if keep(resource)]
    return _latest_per_item(selected) if source.get("latest") else selected


def _item_key(resource: dict) -> str:
    """What a resource is about, for 'the latest of each': its item element's first system|code, else its text."""
    elements = summary_rules()["itemElements"]
    for path in elements.get(resource["resourceType"], elements["*"]):
        concept = resource.get(path)
        for coding in (concept.get("coding") or []) if isinstance(concept, dict) else []:
            if isinstance(coding, dict) and coding.get("code"):
                return f"{coding.get('system', '')}|{coding['code']}"
        if isinstance(concept, dict) and concept.get("text"):
            return str(concept["text"])
    return reference_of(resource)


def _latest_per_item(resources: list[dict]) -> list[dict]:
    latest: dict[str, dict] = {}
    for resource in resources:
        key = _item_key(resource)
        if key not in latest or (date_key(resource), resource["id"]) > (date_key(latest[key]), latest[key]["id"]):
            latest[key] = resource
    return list(latest.values())


def _ordered_results(sections: list[Section]) -> list[Section]:
    """Each DiagnosticReport is followed by its result Observations (diagnosticreport.html#results)."""
    for section in sections:
        reports = [r for r in section.entries if r["resourceType"] == "DiagnosticReport"]
        if not reports:
            continue
        by_ref = {reference_of(r): r for r in section.entries}
        placed: dict[str, dict] = {}
        for report in reports:
            placed[reference_of(report)] = report
            for result in report.get("result") or []:
                target = result.get("reference") if isinstance(result, dict) else None
                if target in by_ref:
                    placed.setdefault(target, by_ref[target])
        section.entries = [*placed.values(), *(r for r in section.entries if reference_of(r) not in placed)]
    return sections
