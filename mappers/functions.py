"""Named functions the specs call for what data cannot say (LinuxForHealth lesson: keep the
condition grammar tiny and put anything clever here, by name).

Three registries, each checked when specs load:
- FUNCTIONS  `fn: name` on a row or a map: f(ctx, value, args) -> FHIR value or None
- CONVERTERS `type: name` on a row: f(ctx, value, args) -> FHIR value or None
- PREDICATES `when: name(PATH)`: f(ctx, value) -> bool
The family modules (functions_orders, functions_encounters) declare the same three dicts, merged
into these at import (`_add_family`; a name may be registered once). A function of its value's
text alone is written on the text and registered through `of_text` (TEXT_FORMS).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from functools import lru_cache, update_wrapper
from types import ModuleType
from urllib.parse import quote
from typing import TYPE_CHECKING, Any, Callable

from adapters.hl7v2.message import Value
from mappers import functions_encounters, functions_orders, primitives, vocab

if TYPE_CHECKING:
    from mappers.engine import Context

Fn = Callable[["Context", "Value | None", dict[str, Any]], Any]


TextForm = Callable[[str, dict[str, Any]], Any]

# The functions that read only their value's decoded text, each with its form on that text: a
# compiled map hands such a form the text it reads from the raw message, without making a Value
# (engine._text_evaluator).
TEXT_FORMS: dict[Fn, TextForm] = {}


def of_text(form: TextForm) -> Fn:
    """The registry function (ctx, value, args) of a function of the value's text alone (TEXT_FORMS)."""

    def on_value(ctx: Context, value: Value | None, args: dict[str, Any]) -> Any:
        return form(value.text, args) if value is not None else None

    update_wrapper(on_value, form)
    TEXT_FORMS[on_value] = form
    return on_value


@of_text
def coding_system(text: str, args: dict[str, Any]) -> str | None:
    """CWE.3/CWE.6/CWE.12 coding-system name (table 0396) -> Coding.system URI (IG CWE[CodeableConcept] note)."""
    return vocab.system_uri(text)  # a blank name gives None


def text_lines(ctx: Context, value: Value | None, args: dict[str, Any]) -> str | None:
    """All repetitions of a text field (TX/FT/ST) joined by newlines: FHIR strings do not repeat (v2.5 2.A.79)."""
    seg = ctx.segment
    if seg is None:
        return primitives.string(value.text) if value is not None else None
    lines = [rep.text for rep in seg.reps(int(args["field"])) if not rep.is_null]
    text = "\n".join(lines).strip()
    return text or None


def message_hash(ctx: Context, value: Value | None, args: dict[str, Any]) -> str:
    """RFC 6920 `ni` URI of the raw message bytes (sha-256), identifying the exact source message."""
    digest = hashlib.sha256(ctx.state.raw).digest()
    return "ni:///sha-256;" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def message_summary(ctx: Context, value: Value | None, args: dict[str, Any]) -> str:
    """A display for the source message: type, control id, sender (made once per conversion: two rows read it)."""
    state = ctx.state
    summary = state.summary
    if summary is None:
        msg = state.message
        sender = "/".join(p for p in (msg.msh.get(3), msg.msh.get(4)) if p)
        summary = state.summary = f"HL7 v2 {msg.message_type} message {msg.control_id}" + (f" from {sender}" if sender else "")
    return summary


@of_text
def v2_table(text: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """A code from a v2 table as a Coding (or CodeableConcept with args.concept) in its THO system."""
    if not text.strip():
        return None
    coding = vocab.table_coding(str(args["table"]), text)
    return {"coding": [coding]} if args.get("concept") else coding


def quantity_unit(ctx: Context, value: Value | None, args: dict[str, Any]) -> dict[str, Any] | None:
    """CWE units (OBX-6, CQ.2) -> Quantity unit/system/code: UCUM when the code is UCUM (R4 2.24.0.11)."""
    if value is None:
        return None
    texts = value.texts(3)
    code, text, system = texts[1].strip(), texts[2].strip(), texts[3].strip()
    if not code and not text:
        return None
    unit = text or code
    if system.upper() in ("UCUM", "UCUM-") and code:
        return {"unit": unit, "system": "http://unitsofmeasure.org", "code": code}
    # a bare number is a valid UCUM term, but no unit (except "1", UCUM's unity): a numeric code filed
    # under another system (385055001^Tablet^SCT) is that system's concept; without a system only
    # the text can be UCUM
    if code.isdigit() and code != "1":
        found = None if system else (vocab.ucum_unit(text) if text else None)
    else:
        found = vocab.ucum_unit(code or text, text or None)
    if found is not None:
        return found
    out: dict[str, Any] = {"unit": unit}
    if code and system:
        out["system"] = vocab.system_uri(system)
        out["code"] = code
    return out


def structured_numeric_text(ctx: Context, value: Value | None, args: dict[str, Any]) -> str | None:
    """SN as sent, for the originalText extension: SN.1 SN.2 SN.3 SN.4 joined (IG SN[Quantity])."""
    if value is None:
        return None
    text = " ".join(p for p in (value[i].text.strip() for i in (1, 2, 3, 4)) if p)
    return text or None


def phone_number(ctx: Context, value: Value | None, args: dict[str, Any]) -> str | None:
    """XTN -> ContactPoint.value (IG XTN[ContactPoint]): email for Internet/X.400, else the unformatted
    number XTN.12, else +country area local Xextension built from XTN.5-8, else XTN.1."""
    if value is None:
        return None
    texts = value.texts(12)
    if texts[3].strip() in ("Internet", "X.400"):
        return texts[4].strip() or None
    unformatted = texts[12].strip()
    if unformatted:
        return unformatted
    country, area, local, ext = texts[5].strip(), texts[6].strip(), texts[7].strip(), texts[8].strip()
    if local:
        number = " ".join(p for p in (f"+{country}" if country else "", area, local) if p)
        return number + (f" X{ext}" if ext else "")
    return texts[1].strip() or texts[4].strip() or None


def media_type(ctx: Context, value: Value | None, args: dict[str, Any]) -> str | None:
    """ED.2/ED.3 or RP.3/RP.4 -> Attachment.contentType `type/subtype` (v2 tables 0191/0291 are MIME-like)."""
    if value is None:
        return None
    kind = value[int(args["type"])].text.strip().lower()
    sub = value[int(args["subtype"])].text.strip().lower()
    kind = {"ap": "application", "image": "image", "tx": "text", "text": "text", "audio": "audio", "video": "video", "multipart": "multipart"}.get(kind, kind)
    if kind and sub:
        return f"{kind}/{sub}"
    if sub in ("pdf", "rtf", "xml", "json"):
        return f"application/{sub}"
    return None


def encapsulated_data(ctx: Context, value: Value | None, args: dict[str, Any]) -> str | None:
    """ED.5 data -> base64Binary per ED.4 encoding (A: text, Hex, Base64) (v2.5 2.A.24)."""
    if value is None:
        return None
    encoding = value[4].text.strip().lower()
    data = value[5].text
    if not data:
        return None
    if encoding == "base64":
        return "".join(data.split())
    if encoding == "hex":
        try:
            return base64.b64encode(binascii.unhexlify("".join(data.split()))).decode()
        except (binascii.Error, ValueError):
            return None
    return base64.b64encode(data.encode("utf-8")).decode()


_LOCATION_SYSTEM = "urn:pulsebridge:location:"  # + the sending facility (MSH-4), percent-encoded


@lru_cache(maxsize=256)
def _location_system(facility: str) -> str:
    """The identifier system of the Locations a sending facility's PLs name (percent-encoded once per facility)."""
    return _LOCATION_SYSTEM + quote(facility, safe="")


_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"


def location_hierarchy(ctx: Context, value: Value | None, args: dict[str, Any]) -> dict[str, str] | None:
    """PL -> Locations, most specific first, each partOf the next valued level (IG PL[Location]).

    args.levels lists [component, physicalType code]; returns a Reference to the most specific.
    A level a message names again (the facility of every PL, a PV1-3 bed again in PV1-6) is made
    once per conversion (MessageState.locations): the same body would add nothing to its Location.
    """
    if value is None:
        return None
    return location_chain(ctx, value, args["levels"])


def care_locations(ctx: Context, value: Value | None, args: dict[str, Any]) -> dict[str, str] | None:
    """NDL -> the role's Location chain (IG NDL[PractitionerRole] NDL.4-7, NDL.10, NDL.11; NDL.9 maps nothing)."""
    if value is None:
        return None
    return location_chain(ctx, value, args["levels"], blank=9)


def location_chain(ctx: Context, value: Value, levels: list[list[Any]], blank: int | None = None) -> dict[str, str] | None:
    """location_hierarchy of a composite whose levels are its components (PL, NDL); component
    `blank` is read as empty (a component the IG maps to nothing, NDL.9); PL.9 describes the most
    specific level."""
    present = []
    sent = value.pieces() or [value.raw]  # the components as sent (a leaf is its own first): empty levels cost no split
    for comp, physical in levels:
        comp = int(comp)
        if comp > len(sent) or not sent[comp - 1] or comp == blank:
            continue
        subs = value.subtexts(comp)
        name = subs[0].strip()  # PL components are HD: the first subcomponent names the level
        if name:
            present.append((comp, subs, name, physical))
    if not present:
        return None
    state = ctx.state
    made = state.locations
    system = _location_system(state.facility)
    parent_ref: dict[str, str] | None = None
    chain = ""
    most_specific = present[0][0]
    for comp, subs, name, physical in reversed(present):  # from the facility down, so ids include the parents
        chain = f"{chain}/{name}" if chain else name  # identity within the hierarchy: the names from the facility down
        other_id = subs[1].strip() if len(subs) > 1 else ""
        id_type = subs[2].strip().upper() if other_id and len(subs) > 2 else ""
        description = ""
        if comp == most_specific and blank != 9:
            found = value.subtexts(9)
            description = found[0].strip() if found else ""
        key = (physical, chain, other_id, id_type, description, parent_ref["reference"] if parent_ref is not None else None)
        known = made.get(key)
        if known is not None:
            parent_ref = {"reference": known}
            continue
        body: dict[str, Any] = {
            "name": name,
            "mode": "instance",
            "physicalType": {"coding": [{"system": _PHYSICAL_TYPE, "code": physical}]},
            "identifier": [{"system": system, "value": chain}],
        }
        if id_type in ("ISO", "UUID"):
            prefix = "urn:oid:" if id_type == "ISO" else "urn:uuid:"
            body["identifier"].insert(0, {"system": "urn:ietf:rfc:3986", "value": prefix + other_id})
        if description:
            body["description"] = description
        if parent_ref is not None:
            body["partOf"] = parent_ref
        # every value above is a non-empty text but the level's physicalType code from the spec
        parent_ref = ctx.add_resource("Location", body, bool(physical))
        made[key] = parent_ref["reference"]
    return parent_ref


def assembled_name(ctx: Context, value: Value | None, args: dict[str, Any]) -> str | None:
    """XPN -> one string (IG XPN[string]: "concatenate according to XPN.11"): prefix, given, middle,
    family, suffix; family first when XPN.11 (table 0444) is F."""
    if value is None:
        return None
    texts = value.texts(11)  # value.get(n): the first subcomponent (XPN.1.1 the surname)
    prefix, given, middle, family, suffix = texts[5], texts[2], texts[3], texts[1], texts[4]
    parts = [family, given, middle, suffix] if texts[11].strip() == "F" else [prefix, given, middle, family, suffix]
    text = " ".join(p.strip() for p in parts if p.strip())
    return text or None


_CDC_RACE_ETHNICITY = "urn:oid:2.16.840.1.113883.6.238"  # CDC Race & Ethnicity code set (PHIN VADS)


def us_core_race_ethnicity(ctx: Context, value: Value | None, args: dict[str, Any]) -> dict[str, Any] | None:
    """PID-10 race / PID-22 ethnic group (all repetitions) -> the US Core race or ethnicity extension.

    IG PID[Patient] PID-10/PID-22: "use the local extension, e.g. US = US Core Race/Ethnicity".
    Only codes that are CDC Race & Ethnicity codes (sent as table 0005/CDCREC, or table 0189
    letters translated by args.codes) are used; anything else (another realm's codes) yields no
    extension. args: url, field, omb (OMB category codes -> display), codes (v2 letter -> CDC code).
    """
    seg = ctx.segment
    if seg is None:
        return None
    omb: dict[str, str] = args.get("omb") or {}
    letters: dict[str, str] = args.get("codes") or {}
    sub: list[dict[str, Any]] = []
    texts: list[str] = []
    for rep in seg.reps(int(args["field"])):
        parts = rep.texts(3)
        code, text, system = parts[1].strip(), parts[2].strip(), parts[3].strip()
        if not code:
            continue
        code = letters.get(code, code)
        if system and vocab.system_uri(system) not in (_CDC_RACE_ETHNICITY, "http://terminology.hl7.org/CodeSystem/v2-0189"):
            continue
        if code not in omb and not (len(code) == 6 and code[4] == "-" and code[:4].isdigit()):
            continue
        display = omb.get(code) or text or None
        coding = {"system": _CDC_RACE_ETHNICITY, "code": code, "display": display}
        sub.append({"url": "ombCategory" if code in omb else "detailed", "valueCoding": {k: v for k, v in coding.items() if v}})
        texts.append(text or omb.get(code, code))
    if not sub:
        return None
    sub.append({"url": "text", "valueString": ", ".join(dict.fromkeys(texts))})
    return {"url": args["url"], "extension": sub}


# Segments that attach to the segment before them in the ADT structures (v2.8 3.3.1: PID/PD1
# are followed by ARV and ROL; PV1/PV2 by ARV, ROL and PRT), skipped when finding the anchor.
_ATTACHED_SEGMENTS = frozenset({"ROL", "PRT", "ARV", "PD1", "PV2"})


def _anchor(ctx: Context) -> str | None:
    """The id of the segment a ROL/PRT belongs to: the nearest earlier one that is not attached."""
    if ctx.place is None:
        return None
    segments = ctx.message.segments
    for i in range(ctx.place.index - 1, -1, -1):
        if segments[i].fields[0] not in _ATTACHED_SEGMENTS:  # fields[0]: Segment.id without the property call
            return segments[i].fields[0]
    return None


def follows_patient(ctx: Context, value: Value | None) -> bool:
    """The segment is in the patient's ROL/PRT block (ADT_A01 `follow:PID.ROL`)."""
    return _anchor(ctx) == "PID"


def follows_visit(ctx: Context, value: Value | None) -> bool:
    """The segment is in the visit's ROL/PRT block (ADT_A01 `follow:PV1.ROL`)."""
    return _anchor(ctx) == "PV1"


def is_numeric(ctx: Context, value: Value | None) -> bool:
    """NM text that parses as a decimal."""
    return value is not None and primitives.decimal(value.text) is not None


def has_time(ctx: Context, value: Value | None) -> bool:
    """A DTM that carries a time of day (longer than YYYYMMDD): IG PID-7 birthTime condition."""
    return value is not None and len(value.text.strip()) > 8


def as_components(ctx: Context, value: Value | None) -> bool:
    """OBX-5 repeats, so the IG's OBX[Observation-Component] applies (one component per repetition;
    an OBX-21 shared with another OBX no longer matters: each OBX is its own Observation)."""
    seg = ctx.segment
    return seg is not None and len(seg.reps(5)) > 1


FUNCTIONS: dict[str, Fn] = {
    "text_lines": text_lines,
    "message_hash": message_hash,
    "message_summary": message_summary,
    "v2_table": v2_table,
    "quantity_unit": quantity_unit,
    "structured_numeric_text": structured_numeric_text,
    "phone_number": phone_number,
    "media_type": media_type,
    "encapsulated_data": encapsulated_data,
    "location_hierarchy": location_hierarchy,
    "care_locations": care_locations,
    "coding_system": coding_system,
    "us_core_race_ethnicity": us_core_race_ethnicity,
    "assembled_name": assembled_name,
}

CONVERTERS: dict[str, Fn] = {
    "system": coding_system,
}

# The functions whose results never hold an empty element (FHIR forbids them), so a map
# whose rows only write such values needs no prune (engine.map_clean); unlisted ones are pruned.
CLEAN_RESULTS: frozenset[str] = frozenset({
    "coding_system", "text_lines", "message_hash", "message_summary", "v2_table", "quantity_unit",
    "structured_numeric_text", "phone_number", "media_type", "location_hierarchy", "care_locations",
    "assembled_name", "us_core_race_ethnicity",
})

PREDICATES: dict[str, Callable[["Context", "Value | None"], bool]] = {
    "numeric": is_numeric,
    "timed": has_time,
    "follows_patient": follows_patient,
    "follows_visit": follows_visit,
    "as_components": as_components,
}


def _add_family(module: ModuleType) -> None:
    """Add a family module's FUNCTIONS, CONVERTERS and PREDICATES to these registries (names must be new)."""
    for name, registry in (("FUNCTIONS", FUNCTIONS), ("CONVERTERS", CONVERTERS), ("PREDICATES", PREDICATES)):
        mine = getattr(module, name)
        clash = set(registry) & set(mine)
        if clash:
            raise ValueError(f"{module.__name__}: names already registered: {sorted(clash)}")
        registry.update(mine)


_add_family(functions_encounters)
_add_family(functions_orders)
