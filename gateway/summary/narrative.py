"""Generated XHTML narrative of the visit summary (FHIR R4 narrative.html#xhtml): every source text escaped, txt-1/txt-2 safe."""
from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from html import escape
from typing import Any

from gateway.summary.language import translations
from gateway.summary.sections import Section, note_texts, summary_rules
from gateway.summary.visit import Visit

XHTML = "http://www.w3.org/1999/xhtml"


def text_of(value: Any) -> str:
    """Display text of a string, CodeableConcept, Coding, Reference or list of them ('; '-joined)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(text for text in (text_of(item) for item in value) if text)
    if not isinstance(value, dict):
        return ""
    if value.get("text"):
        return str(value["text"])
    if value.get("display"):
        return str(value["display"])
    for coding in value.get("coding") or []:
        if isinstance(coding, dict) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or coding.get("code"))
    return str(value.get("code") or "")


def _at(resource: dict, path: str) -> Any:
    value: Any = resource
    for step in path.split("."):
        value = value.get(step) if isinstance(value, dict) else None
    return value


def _date(resource: dict, language: str) -> str:
    for path in summary_rules()["dateElements"]:
        value = _at(resource, path)
        if isinstance(value, str):
            return value[:16].replace("T", " ")
    return ""


def _quantity(quantity: dict) -> str:
    number = quantity.get("value")
    unit = quantity.get("unit") or quantity.get("code") or ""
    return f"{'' if number is None else number} {unit}".strip()


def _value_of(holder: dict) -> str:
    if isinstance(holder.get("valueQuantity"), dict):
        return _quantity(holder["valueQuantity"])
    for key in ("valueCodeableConcept", "valueString", "valueBoolean", "valueInteger", "valueDateTime"):
        if key in holder:
            return text_of(holder[key]) if not isinstance(holder[key], (bool, int)) else str(holder[key])
    return ""


def _value(resource: dict, language: str) -> str:
    own = _value_of(resource)
    parts = [f"{text_of(component.get('code'))} {_value_of(component)}".strip()
             for component in resource.get("component") or [] if isinstance(component, dict)]
    return "; ".join(part for part in [own, *parts] if part)


def _code_text(code: Any, language: str) -> str:
    if not isinstance(code, str):
        return text_of(code)
    return translations()[language]["codes"].get(code, code)


def _status(resource: dict, language: str) -> str:
    for key in ("clinicalStatus", "status"):
        value = resource.get(key)
        if value:
            return _code_text(value if isinstance(value, str) else (_first_code(value) or text_of(value)), language)
    return ""


def _first_code(concept: dict) -> str | None:
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and coding.get("code"):
            return str(coding["code"])
    return None


def _item(resource: dict, language: str) -> str:
    elements = summary_rules()["itemElements"]
    for path in elements.get(resource["resourceType"], elements["*"]):
        text = text_of(resource.get(path))
        if text:
            return text
    return resource["resourceType"]


def _interpretation(resource: dict, language: str) -> str:
    """Interpretation codes (v3-ObservationInterpretation H, L, N ...) in the narrative language when translated."""
    codes = translations()[language]["codes"]
    texts = []
    for concept in resource.get("interpretation") or []:
        if isinstance(concept, dict):
            code = _first_code(concept)
            texts.append(codes[code] if code in codes and not concept.get("text") else text_of(concept))
    return "; ".join(text for text in texts if text)


def _reference_range(resource: dict, language: str) -> str:
    ranges = []
    for bounds in resource.get("referenceRange") or []:
        if bounds.get("text"):
            ranges.append(str(bounds["text"]))
        elif bounds.get("low") or bounds.get("high"):
            ranges.append(f"{_quantity(bounds.get('low') or {})}-{_quantity(bounds.get('high') or {})}")
    return "; ".join(ranges)


def _reaction(resource: dict, language: str) -> str:
    return "; ".join(text_of(reaction.get("manifestation")) for reaction in resource.get("reaction") or [] if isinstance(reaction, dict))


def _criticality(resource: dict, language: str) -> str:
    return _code_text(resource.get("criticality") or "", language)


def _dosage(resource: dict, language: str) -> str:
    dosage = resource.get("dosageInstruction") or resource.get("dosage") or []
    return text_of([d.get("text", "") for d in (dosage if isinstance(dosage, list) else [dosage]) if isinstance(d, dict)])


# A clinical note is shown whole up to this many characters; the document keeps all of it.
NOTE_LIMIT = 4000
TEXT_ATTACHMENTS = ("text/plain", "text/hl7v2")


def _attachment_text(resource: dict) -> list[str]:
    """The text content of a DocumentReference (MDM OBX TX/FT/ST and NTE lines, base64 in Attachment.data)."""
    texts = []
    for content in resource.get("content") or []:
        attachment = content.get("attachment") if isinstance(content, dict) else None
        if not isinstance(attachment, dict) or str(attachment.get("contentType", "")).split(";")[0] not in TEXT_ATTACHMENTS:
            continue
        try:
            texts.append(base64.b64decode(attachment.get("data", ""), validate=True).decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
    return texts


def _note(resource: dict, language: str) -> str:
    """Free text: a document's description and text content, or the annotations other resources carry (NTE-3)."""
    parts = [resource["description"]] if resource["resourceType"] == "DocumentReference" and resource.get("description") else []
    parts += _attachment_text(resource) if resource["resourceType"] == "DocumentReference" else note_texts(resource)
    text = "\n".join(part.strip() for part in parts if isinstance(part, str) and part.strip())
    return text if len(text) <= NOTE_LIMIT else text[:NOTE_LIMIT] + " …"


COLUMNS: dict[str, Callable[[dict, str], str]] = {
    "item": _item, "date": _date, "status": _status, "value": _value, "interpretation": _interpretation,
    "referenceRange": _reference_range, "reaction": _reaction, "criticality": _criticality, "dosage": _dosage,
    "note": _note,
}


def _div(language: str, body: str) -> str:
    return f'<div xmlns="{XHTML}" lang="{escape(language)}" xml:lang="{escape(language)}">{body}</div>'


def empty_reason(section: Section) -> str:
    """list-empty-reason code: 'unavailable' when no source is served (or the definition says so), else 'nilknown'."""
    if not section.searched:
        return "unavailable"
    return str(section.definition.get("emptyReason", "nilknown"))


def _cell(text: str) -> str:
    """Escaped cell text; line breaks of multi-line notes kept as <br/> (txt-1 allows br)."""
    return "<br/>".join(escape(line) for line in text.split("\n"))


def section_div(section: Section, language: str) -> str:
    """A table with one row per entry, or the empty reason in words."""
    words = translations()[language]
    shown = [*section.entries, *section.quoted]
    if not shown:
        return _div(language, f"<p>{escape(words['labels'][empty_reason(section)])}</p>")
    columns = section.definition["columns"]
    head = "".join(f"<th>{escape(words['columns'][column])}</th>" for column in columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(COLUMNS[column](resource, language))}</td>" for column in columns) + "</tr>"
        for resource in shown
    )
    return _div(language, f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")


def patient_name(patient: dict) -> str:
    for name in patient.get("name") or []:
        if isinstance(name, dict):
            if name.get("text"):
                return str(name["text"])
            given = " ".join(str(part) for part in name.get("given") or [])
            return f"{name.get('family', '')} {given}".strip()
    return str(patient.get("id", ""))


def composition_div(visit: Visit, language: str, title: str) -> str:
    """The document header: title, patient, visit class and period."""
    words = translations()[language]["labels"]
    encounter = visit.encounter
    period = encounter.get("period") or {}
    when = " - ".join(str(period[key])[:16].replace("T", " ") for key in ("start", "end") if period.get(key))
    body = (f"<h1>{escape(title)}</h1><p><b>{escape(words['patient'])}:</b> {escape(patient_name(visit.patient))}</p>"
            f"<p><b>{escape(words['visit'])}:</b> {escape(text_of(encounter.get('class')))} "
            f"{escape(_code_text(encounter.get('status', ''), language))}</p>")
    if when:
        body += f"<p><b>{escape(words['period'])}:</b> {escape(when)}</p>"
    return _div(language, body)


def patient_div(patient: dict, language: str, title: str) -> str:
    """The patient summary header: title, patient name, birth date and gender (IPS Composition.text)."""
    words = translations()[language]["labels"]
    body = f"<h1>{escape(title)}</h1><p><b>{escape(words['patient'])}:</b> {escape(patient_name(patient))}</p>"
    facts = [(words["birthDate"], str(patient.get("birthDate") or "")), (words["gender"], _code_text(patient.get("gender") or "", language))]
    body += "".join(f"<p><b>{escape(label)}:</b> {escape(value)}</p>" for label, value in facts if value)
    return _div(language, body)
