"""One visit's facts sorted into the visit summary's sections (FHIR R4 composition.html#section), as data/sections.json says."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.storage.base import Gone, NotFound, Repository
from gateway.fhir.compartment import linked_patient_ids
from gateway.summary.sections import (
    Predicate, Section, common_predicates, entered_in_error, reference_of, searched_candidates, sort_into_sections,
    summary_rules,
)


@dataclass
class Visit:
    encounter: dict
    patient: dict
    sections: list[Section]
    document_type: dict


def _refers_to(value: Any, target: str) -> bool:
    return isinstance(value, dict) and value.get("reference") == target


def _after_visit_start(encounter: dict) -> Predicate:
    """A follow-up: an Appointment still to happen, starting after the visit began, not the one this visit kept."""
    kept = {ref.get("reference") for ref in encounter.get("appointment") or [] if isinstance(ref, dict)}
    start = str((encounter.get("period") or {}).get("start") or "")

    def follow_up(resource: dict) -> bool:
        return (reference_of(resource) not in kept and resource.get("status") not in ("cancelled", "noshow", "entered-in-error")
                and str(resource.get("start") or "") >= start)

    return follow_up


def _predicates(encounter: dict) -> dict[str, Predicate]:
    target = reference_of(encounter)
    return {
        **common_predicates(),
        "this-encounter": lambda resource: not entered_in_error(resource) and _refers_to(resource.get("encounter"), target),
        "follow-up": _after_visit_start(encounter),
    }


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
    return [condition for condition in conditions if condition and not entered_in_error(condition)]


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

    def candidates_of(source: dict) -> list[dict] | None:
        if "from" in source:
            return _from_encounter(repository, encounter, source["from"])
        values = [reference_of(encounter)] if source["search"] in ("encounter", "context") else patient_refs
        return searched_candidates(repository, source, values, predicates)

    sections = sort_into_sections(summary_rules()["sections"], candidates_of)
    return Visit(encounter, patient, sections, document_type(encounter))


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

