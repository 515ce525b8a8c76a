"""One visit's facts sorted into the summary's sections (FHIR R4 composition.html#section), as data/sections.json says."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from adapters.storage import search_parameters as indexed
from adapters.storage.base import Gone, NotFound, Repository
from adapters.storage.query import SearchFilter, SearchQuery, SearchValue
from gateway.fhir.compartment import linked_patient_ids

SECTIONS_FILE = Path(__file__).resolve().parent / "data" / "sections.json"
_BATCH = 10_000


@cache
def summary_rules() -> dict[str, Any]:
    return json.loads(SECTIONS_FILE.read_text(encoding="utf-8"))


@dataclass
class Section:
    """One section: its definition row and the resources entered in it (empty when nothing is known)."""

    definition: dict[str, Any]
    entries: list[dict] = field(default_factory=list)
    searched: bool = False  # False when no source of the section is served here: the reason is 'unavailable'


@dataclass
class Visit:
    encounter: dict
    patient: dict
    sections: list[Section]
    document_type: dict


def _codes(concepts: Any) -> set[str]:
    concepts = concepts if isinstance(concepts, list) else [concepts]
    return {coding.get("code") for concept in concepts if isinstance(concept, dict)
            for coding in concept.get("coding") or [] if isinstance(coding, dict)}


def _reference(resource: dict) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def _refers_to(value: Any, target: str) -> bool:
    return isinstance(value, dict) and value.get("reference") == target


def _entered_in_error(resource: dict) -> bool:
    return resource.get("status") == "entered-in-error" or "entered-in-error" in _codes(resource.get("verificationStatus"))


def _is_vital_sign(resource: dict) -> bool:
    """R4 vital signs profile: category vital-signs, or one of its LOINC codes (observation-vitalsigns.html)."""
    return "vital-signs" in _codes(resource.get("category")) or bool(_codes(resource.get("code")) & set(summary_rules()["vitalSignCodes"]))


def _is_result(resource: dict) -> bool:
    categories = _codes(resource.get("category"))
    return not _is_vital_sign(resource) and (not categories or bool(categories & set(summary_rules()["resultCategories"])))


def _after_visit_start(encounter: dict) -> Callable[[dict], bool]:
    """A follow-up: an Appointment still to happen, starting after the visit began, not the one this visit kept."""
    kept = {ref.get("reference") for ref in encounter.get("appointment") or [] if isinstance(ref, dict)}
    start = str((encounter.get("period") or {}).get("start") or "")

    def follow_up(resource: dict) -> bool:
        return (_reference(resource) not in kept and resource.get("status") not in ("cancelled", "noshow", "entered-in-error")
                and str(resource.get("start") or "") >= start)

    return follow_up


def _predicates(encounter: dict) -> dict[str, Callable[[dict], bool]]:
    target = _reference(encounter)
    return {
        "recorded": lambda resource: not _entered_in_error(resource),
        "vital-sign": lambda resource: not _entered_in_error(resource) and _is_vital_sign(resource),
        "report": lambda resource: not _entered_in_error(resource) and not _is_vital_sign(resource),
        "result": lambda resource: not _entered_in_error(resource) and _is_result(resource),
        "this-encounter": lambda resource: not _entered_in_error(resource) and _refers_to(resource.get("encounter"), target),
        "follow-up": _after_visit_start(encounter),
    }


def _search(repository: Repository, resource_type: str, name: str, values: list[str]) -> list[dict]:
    spec = indexed.parameter(resource_type, name)
    assert spec is not None
    found: list[dict] = []
    offset = 0
    while True:
        query = SearchQuery(resource_type, filters=(SearchFilter(name, spec.type, tuple(SearchValue(v) for v in values)),),
                            count=_BATCH, offset=offset, total="none")
        page = repository.search(query).matches
        found += page
        if len(page) < _BATCH:
            return found
        offset += _BATCH


def _read(repository: Repository, reference: Any) -> dict | None:
    if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
        return None
    resource_type, _, resource_id = reference["reference"].partition("/")
    try:
        return repository.read(resource_type, resource_id).resource
    except (NotFound, Gone):
        return None


def _from_encounter(repository: Repository, encounter: dict, source: str) -> list[dict]:
    """The Encounter's own reason (reasonCode: the Encounter itself; reasonReference targets) or diagnoses."""
    if source == "encounter-reason":
        found = [encounter] if encounter.get("reasonCode") else []
        return found + [r for r in (_read(repository, ref) for ref in encounter.get("reasonReference") or []) if r]
    conditions = [_read(repository, diagnosis.get("condition")) for diagnosis in encounter.get("diagnosis") or []]
    return [condition for condition in conditions if condition and not _entered_in_error(condition)]


def _date_key(resource: dict) -> str:
    for path in summary_rules()["dateElements"]:
        value: Any = resource
        for step in path.split("."):
            value = value.get(step) if isinstance(value, dict) else None
        if isinstance(value, str):
            return value
    return ""


def gather_visit(repository: Repository, encounter_id: str) -> Visit:
    """Read the Encounter (404/410 when unknown/deleted) and sort its facts into sections, each resource once."""
    encounter = repository.read("Encounter", encounter_id).resource
    assert encounter is not None
    subject = encounter.get("subject") or {}
    patient_id = str(subject.get("reference", "")).partition("/")[2]
    patient = repository.read("Patient", patient_id).resource
    assert patient is not None
    patient_refs = [f"Patient/{pid}" for pid in linked_patient_ids(repository, patient_id)]
    predicates = _predicates(encounter)
    claimed: set[str] = set()
    sections: list[Section] = []
    for definition in summary_rules()["sections"]:
        section = Section(definition)
        for source in definition["sources"]:
            if "from" in source:
                candidates = _from_encounter(repository, encounter, source["from"])
                section.searched = True
            else:
                resource_type, name = source["type"], source["search"]
                if indexed.parameter(resource_type, name) is None:
                    continue
                section.searched = True
                values = [_reference(encounter)] if source["search"] in ("encounter", "context") else patient_refs
                keep = predicates[source["select"]]
                candidates = [r for r in _search(repository, resource_type, name, values) if keep(r)]
            for resource in sorted(candidates, key=lambda r: (_date_key(r), r["resourceType"], r["id"])):
                if _reference(resource) not in claimed:
                    claimed.add(_reference(resource))
                    section.entries.append(resource)
        sections.append(section)
    return Visit(encounter, patient, _ordered_results(sections), document_type(encounter))


def _ordered_results(sections: list[Section]) -> list[Section]:
    """Each DiagnosticReport is followed by its result Observations (diagnosticreport.html#results)."""
    for section in sections:
        reports = [r for r in section.entries if r["resourceType"] == "DiagnosticReport"]
        if not reports:
            continue
        by_ref = {_reference(r): r for r in section.entries}
        ordered: list[dict] = []
        for report in reports:
            ordered.append(report)
            for result in report.get("result") or []:
                observation = by_ref.get(result.get("reference")) if isinstance(result, dict) else None
                if observation is not None and observation not in ordered:
                    ordered.append(observation)
        ordered += [r for r in section.entries if r not in ordered]
        section.entries = ordered
    return sections


def document_type(encounter: dict) -> dict:
    """The LOINC document type: a discharge summary for a finished inpatient stay, else a summary of episode note."""
    encounter_class = (encounter.get("class") or {}).get("code")
    for row in summary_rules()["documentTypes"]:
        if "encounterClass" in row and encounter_class not in row["encounterClass"]:
            continue
        if "encounterStatus" in row and encounter.get("status") not in row["encounterStatus"]:
            continue
        return row
    raise LookupError("sections.json needs a documentTypes row without conditions")
