"""The visit summary and the patient summary as FHIR document Bundles: Composition first, then every resource it or another entry refers
to, each once, so every reference resolves inside the Bundle (FHIR R4 documents.html, bundle.html#document)."""
from __future__ import annotations

import copy
import uuid
from datetime import datetime, timezone
from typing import Any

from adapters.storage.base import Repository
from gateway.fhir.compartment import referenced, references
from gateway.summary.language import translations
from gateway.summary.narrative import composition_div, empty_reason, patient_div, section_div
from gateway.summary.patient import gather_patient
from gateway.summary.sections import Section
from gateway.summary.visit import gather_visit

LOINC = "http://loinc.org"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
EMPTY_REASON_DISPLAY = {"nilknown": "Nil Known", "unavailable": "Unavailable"}
DOCUMENT_NAMESPACE = uuid.UUID("6b1d8f0e-4f0c-5c6e-9a7e-2f1e9c1d5a10")


def _ref(resource: dict) -> dict:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def _authors(patient: dict, encounter: dict | None = None) -> list[dict]:
    """Composition.author: the visit's attending practitioners, else its service provider, else the patient's organization."""
    attending = [p["individual"] for p in (encounter or {}).get("participant") or []
                 if isinstance(p, dict) and isinstance(p.get("individual"), dict)
                 and str(p["individual"].get("reference", "")).startswith("Practitioner/")
                 and "ATND" in {c.get("code") for t in p.get("type") or [] for c in t.get("coding") or []}]
    for candidate in (attending, [(encounter or {}).get("serviceProvider")], [patient.get("managingOrganization")]):
        found = [{"reference": ref["reference"]} for ref in candidate if isinstance(ref, dict) and ref.get("reference")]
        if found:
            return found
    return [{"reference": f"Patient/{patient['id']}"}]


def _section(section: Section, language: str) -> dict:
    definition = section.definition
    entry: dict = {
        "title": translations()[language]["sections"][definition["code"]],
        "code": {"coding": [{"system": LOINC, "code": definition["code"], "display": definition["display"]}]},
        "text": {"status": "generated", "div": section_div(section, language)},
    }
    if section.entries:
        entry["entry"] = [_ref(resource) for resource in section.entries]
    elif not section.quoted:
        reason = empty_reason(section)
        entry["emptyReason"] = {"coding": [{"system": EMPTY_REASON, "code": reason, "display": EMPTY_REASON_DISPLAY[reason]}]}
    return entry


def _closure(repository: Repository, start: list[dict]) -> list[dict]:
    """`start` plus everything they refer to, transitively; a reference to nothing stored is cut to its display."""
    included: dict[tuple[str, str], dict] = {(r["resourceType"], r["id"]): r for r in start}
    included.update(dict(referenced(repository, included)))
    for key, resource in included.items():
        dangling = {f"{kind}/{target_id}" for kind, target_id in references(resource) if (kind, target_id) not in included}
        if dangling:
            included[key] = _cut_references(copy.deepcopy(resource), dangling)
    return list(included.values())


def _cut_references(value: Any, dangling: set[str]) -> Any:
    """Drop literal references that resolve to nothing; a display (or the reference as text) is kept (references.html)."""
    if isinstance(value, dict):
        if value.get("reference") in dangling:
            value.setdefault("display", value.pop("reference"))
            value.pop("reference", None)
        for child in value.values():
            _cut_references(child, dangling)
    elif isinstance(value, list):
        for item in value:
            _cut_references(item, dangling)
    return value


def _document(repository: Repository, composition: dict, members: list[dict], key: str, base: str) -> dict:
    """The document Bundle around `composition` (id, identifier and date filled here) and `members` with all they refer to."""
    resources = _closure(repository, members)
    # Same content, same language -> same document identity; any new version of an entry makes a new document.
    versions = sorted(f"{r['resourceType']}/{r['id']}/{(r.get('meta') or {}).get('versionId', '')}" for r in resources)
    document_id = str(uuid.uuid5(DOCUMENT_NAMESPACE, "|".join([key, composition["language"], *versions])))
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    identifier = {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{document_id}"}
    composition = {"resourceType": "Composition", "id": document_id, **composition, "identifier": identifier, "date": now}
    resources = _closure(repository, [composition, *resources])
    entries = [{"fullUrl": f"urn:uuid:{document_id}", "resource": composition}]
    entries += [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources[1:]]
    return {
        "resourceType": "Bundle",
        "id": document_id,
        "language": composition["language"],
        "identifier": identifier,
        "type": "document",
        "timestamp": now,
        "entry": entries,
    }


def _type(document_type: dict) -> dict:
    return {"coding": [{"system": LOINC, "code": document_type["code"], "display": document_type["display"]}]}


def visit_summary(repository: Repository, encounter_id: str, base: str, language: str) -> dict:
    """GET Encounter/[id]/$summary: a document Bundle for one visit in `language` (a key of translations.json)."""
    visit = gather_visit(repository, encounter_id)
    title = translations()[language]["documents"][visit.document_type["code"]]
    composition = {
        "language": language,
        "text": {"status": "generated", "div": composition_div(visit, language, title)},
        "status": "final",
        "type": _type(visit.document_type),
        "subject": _ref(visit.patient),
        "encounter": _ref(visit.encounter),
        "author": _authors(visit.patient, visit.encounter),
        "title": title,
        "section": [_section(section, language) for section in visit.sections],
    }
    members = [visit.patient, visit.encounter, *(r for s in visit.sections for r in s.entries)]
    return _document(repository, composition, members, f"Encounter/{encounter_id}", base)


def patient_summary(repository: Repository, patient_id: str, base: str, language: str) -> dict:
    """GET Patient/[id]/$summary: the International Patient Summary document (IPS, Bundle-uv-ips) in `language`."""
    summary = gather_patient(repository, patient_id, datetime.now(timezone.utc))
    title = translations()[language]["documents"][summary.document_type["code"]]
    composition = {
        "language": language,
        "text": {"status": "generated", "div": patient_div(summary.patient, language, title)},
        "status": "final",
        "type": _type(summary.document_type),
        "subject": _ref(summary.patient),
        "author": _authors(summary.patient),
        "title": title,
        "section": [_section(section, language) for section in summary.sections],
    }
    members = [summary.patient, *(r for s in summary.sections for r in s.entries)]
    return _document(repository, composition, members, f"Patient/{patient_id}", base)
