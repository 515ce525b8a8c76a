"""A patient's whole record sorted into the International Patient Summary's sections (IPS, hl7.org/fhir/uv/ips,
StructureDefinition-Composition-uv-ips), from every linked or merged source record, as data/sections.json says."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from adapters.storage.base import Repository
from gateway.fhir.compartment import linked_patient_ids
from gateway.summary.sections import (
    Predicate, Section, common_predicates, entered_in_error, searched_candidates, sort_into_sections, summary_rules,
)

CLOSED_APPOINTMENT = frozenset({"cancelled", "noshow", "fulfilled", "entered-in-error", "checked-in", "arrived"})


@dataclass
class PatientSummary:
    patient: dict
    sections: list[Section]
    document_type: dict


def _upcoming(now: datetime) -> Predicate:
    """Plan of care: an Appointment still to happen (appointment.html#statuses), starting at or after `now`."""

    def upcoming(resource: dict) -> bool:
        start = resource.get("start")
        if entered_in_error(resource) or resource.get("status") in CLOSED_APPOINTMENT or not isinstance(start, str):
            return False
        try:
            return datetime.fromisoformat(start.replace("Z", "+00:00")) >= now
        except (ValueError, TypeError):  # not an instant, or one without its required offset
            return False

    return upcoming


def gather_patient(repository: Repository, patient_id: str, now: datetime) -> PatientSummary:
    """Read the Patient (404/410) and sort the whole linked record into IPS sections; empty optional sections are left out."""
    patient = repository.read("Patient", patient_id).resource
    assert patient is not None
    patient_refs = [f"Patient/{pid}" for pid in linked_patient_ids(repository, patient_id)]
    predicates = {**common_predicates(), "upcoming": _upcoming(now)}
    rules = summary_rules()["patientSummary"]
    fetched: dict[tuple[str, str], list[dict]] = {}  # Observation?patient= feeds two sections: search it once
    sections = sort_into_sections(
        rules["sections"], lambda source: searched_candidates(repository, source, patient_refs, predicates, fetched))
    kept = [section for section in sections if section.entries or section.definition.get("required")]
    return PatientSummary(patient, kept, rules["documentType"])
