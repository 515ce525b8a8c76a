"""The visit summary as a FHIR document Bundle: Composition first, then every resource it or another entry refers
to, each once, so every reference resolves inside the Bundle (FHIR R4 documents.html, bundle.html#document)."""
from __future__ import annotations

import copy
import uuid
from datetime import datetime, timezone
from typing import Any

from adapters.storage.base import Gone, NotFound, Repository
from gateway.fhir.compartment import references
from gateway.summary.language import translations
from gateway.summary.narrative import composition_div, section_div
from gateway.summary.visit import Visit, gather_visit

LOINC = "http://loinc.org"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
EMPTY_REASON_DISPLAY = {"nilknown": "Nil Known", "unavailable": "Unavailable"}
DOCUMENT_NAMESPACE = uuid.UUID("6b1d8f0e-4f0c-5c6e-9a7e-2f1e9c1d5a10")


def _ref(resource: dict) -> dict:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def _authors(visit: Visit) -> list[dict]:
    """Composition.author: the visit's attending practitioners, else its service provider, else the patient's organization."""
    attending = [p["individual"] for p in visit.encounter.get("participant") or []
                 if isinstance(p, dict) and isinstance(p.get("individual"), dict)
                 and str(p["individual"].get("reference", "")).startswith("Practitioner/")
                 and "ATND" in {c.get("code") for t in p.get("type") or [] for c in t.get("coding") or []}]
    for candidate in (attending, [visit.encounter.get("serviceProvider")], [visit.patient.get("managingOrganization")]):
        found = [{"reference": ref["reference"]} for ref in candidate if isinstance(ref, dict) and ref.get("reference")]
        if found:
            return found
    return [{"reference": f"Patient/{visit.patient['id']}"}]


def _section(section: Any, language: str) -> dict:
    definition = section.definition
    entry: dict = {
        "title": translations()[language]["sections"][definition["code"]],
        "code": {"coding": [{"system": LOINC, "code": definition["code"], "display": definition["display"]}]},
        "text": {"status": "generated", "div": section_div(section, language)},
    }
    if section.entries:
        entry["entry"] = [_ref(resource) for resource in section.entries]
    else:
        reason = "nilknown" if section.searched else "unavailable"
        entry["emptyReason"] = {"coding": [{"system": EMPTY_REASON, "code": reason, "display": EMPTY_REASON_DISPLAY[reason]}]}
    return entry


def _closure(repository: Repository, start: list[dict]) -> list[dict]:
    """`start` plus everything they refer to, transitively; a reference to nothing stored is cut to its display."""
    included: dict[tuple[str, str], dict] = {(r["resourceType"], r["id"]): r for r in start}
    pending = list(included)
    while pending:
        key = pending.pop(0)
        resource = included[key]
        dangling = set()
        for target in references(resource):
            if target in included:
                continue
            try:
                found = repository.read(*target).resource
            except (NotFound, Gone):
                found = None
            if found is None:
                dangling.add(f"{target[0]}/{target[1]}")
                continue
            included[target] = found
            pending.append(target)
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


def visit_summary(repository: Repository, encounter_id: str, base: str, language: str) -> dict:
    """GET Encounter/[id]/$summary: a document Bundle for one visit in `language` (a key of translations.json)."""
    visit = gather_visit(repository, encounter_id)
    words = translations()[language]
    sections = [_section(section, language) for section in visit.sections]
    members = [visit.patient, visit.encounter, *(r for s in visit.sections for r in s.entries)]
    resources = _closure(repository, members)
    # Same content, same language -> same document identity; any new version of an entry makes a new document.
    versions = sorted(f"{r['resourceType']}/{r['id']}/{(r.get('meta') or {}).get('versionId', '')}" for r in resources)
    document_id = str(uuid.uuid5(DOCUMENT_NAMESPACE, "|".join([encounter_id, language, *versions])))
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    title = words["documents"][visit.document_type["code"]]
    composition = {
        "resourceType": "Composition",
        "id": document_id,
        "language": language,
        "text": {"status": "generated", "div": composition_div(visit, language, title)},
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{document_id}"},
        "status": "final",
        "type": {"coding": [{"system": LOINC, "code": visit.document_type["code"], "display": visit.document_type["display"]}]},
        "subject": _ref(visit.patient),
        "encounter": _ref(visit.encounter),
        "date": now,
        "author": _authors(visit),
        "title": title,
        "section": sections,
    }
    resources = _closure(repository, [composition, *resources])
    entries = [{"fullUrl": f"urn:uuid:{document_id}", "resource": composition}]
    entries += [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources[1:]]
    return {
        "resourceType": "Bundle",
        "id": document_id,
        "language": language,
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{document_id}"},
        "type": "document",
        "timestamp": now,
        "entry": entries,
    }
