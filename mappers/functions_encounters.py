"""Named functions for the scheduling, document, problem, finance and referral families
(SIU, MDM, PPR, DFT, BAR, REF) where the spec data cannot say it.

- durations: SCH-9/SCH-10 and AIx duration + units -> minutes, or an end time computed from a
  start and a duration (IG AIS/AIG/AIL/AIP[Appointment]: "participant.period.start + AIx-n");
- text that several segments contribute to one FHIR string or attachment (IG SIU_S12 message
  sheet: "multiple NTE segments ... concatenated" into Appointment.comment; IG OBX[DocumentReference]:
  "each repeat yields a line feed within .content.data").

The unit table lives in the spec rows' `args` (data); this module only does arithmetic.
"""
from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from adapters.hl7v2.errors import DataTypeError
from adapters.hl7v2.message import Value
from mappers import primitives

if TYPE_CHECKING:
    from mappers.engine import Context


def _seconds_per_unit(ctx: Context, args: dict[str, Any]) -> float | None:
    """Seconds in one unit of the duration, from the units field (CNE.1) named in args.units.

    A missing units field means args.default_unit (v2.5 AIS-6: minutes when not valued)."""
    table: dict[str, float] = args["seconds"]
    unit = ""
    seg = ctx.segment
    if seg is not None and args.get("units"):
        reps = seg.reps(int(args["units"]))
        if reps and not reps[0].is_null:
            unit = reps[0][1].text.strip()
    unit = unit or str(args.get("default_unit", ""))
    found = table.get(unit) if unit in table else table.get(unit.lower())
    return float(found) if found is not None else None


_LONGEST = 60.0 * 2_147_483_647  # Appointment.minutesDuration is a positiveInt (R4 datatypes.html#positiveInt)


def _duration_seconds(ctx: Context, value: Value | None, args: dict[str, Any]) -> float | None:
    if value is None:
        return None
    amount = primitives.decimal(value.text)
    per_unit = _seconds_per_unit(ctx, args)
    if amount is None or per_unit is None:
        return None
    seconds = float(amount) * per_unit
    if not -_LONGEST <= seconds <= _LONGEST:
        raise DataTypeError(f"duration {value.text.strip()!r} is beyond {_LONGEST // 60:.0f} minutes (FHIR positiveInt)")
    return seconds


def duration_minutes(ctx: Context, value: Value | None, args: dict[str, Any]) -> int | None:
    """NM duration with a units field -> whole minutes for Appointment.minutesDuration (positiveInt)."""
    seconds = _duration_seconds(ctx, value, args)
    if seconds is None:
        return None
    minutes = round(seconds / 60)
    return minutes if minutes >= 1 else None


def end_after_duration(ctx: Context, value: Value | None, args: dict[str, Any]) -> str | None:
    """args.start (a DTM field of this segment) + this NM duration in args.units -> FHIR dateTime.

    IG AIS-7/AIG-11/AIL-9/AIP-9: participant.period.end = period.start + duration. The end keeps
    the start's UTC offset and precision is seconds. A negative duration would end the period before
    its start (R4 per-1): the sender's error."""
    seconds = _duration_seconds(ctx, value, args)
    seg = ctx.segment
    if seconds is None or seg is None:
        return None
    if seconds < 0:
        raise DataTypeError(f"duration {value.text.strip()!r} is negative: the end would be before the start")  # type: ignore[union-attr]
    reps = seg.reps(int(args["start"]))
    if not reps or reps[0].is_null or not reps[0].text.strip():
        return None
    start_text = primitives.date_time(reps[0][1].text, ctx.state.zone)
    if not start_text or "T" not in start_text:
        return None
    start = datetime.fromisoformat(start_text.replace("Z", "+00:00"))
    try:
        end = start + timedelta(seconds=seconds)
    except OverflowError:
        raise DataTypeError(f"{start_text} plus {seconds:.0f} seconds is past the year 9999") from None
    text = end.isoformat(timespec="seconds")
    return text[:-6] + "Z" if start_text.endswith("Z") and text.endswith("+00:00") else text


def _path_parent(resource: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """Walk a dotted path (no arrays) creating objects; return (parent, leaf name)."""
    *steps, leaf = path.split(".")
    node = resource
    for step in steps:
        node = node.setdefault(step, {})
    return node, leaf


def append_text(ctx: Context, value: Value | None, args: dict[str, Any]) -> None:
    """Append this segment's text field (args.field, repetitions as lines) to the string at args.path.

    FHIR R4 Appointment.comment is one string; the IG SIU_S12 message sheet says the NTE texts
    are concatenated with line feeds. Writes into the resource being merged into; returns None."""
    from mappers.functions import text_lines  # late import: mappers.functions registers this module

    record = ctx.record
    seg = ctx.segment
    if record is None or seg is None:
        return None
    text = text_lines(ctx, value, args)
    if text is None:
        return None
    parent, leaf = _path_parent(record.resource, str(args["path"]))
    have = parent.get(leaf)
    parent[leaf] = f"{have}\n{text}" if have else text
    return None


def append_attachment_text(ctx: Context, value: Value | None, args: dict[str, Any]) -> None:
    """Append this segment's text (args.field repetitions, one line each) to the base64 data of the
    DocumentReference.content whose attachment has contentType args.content_type (made if absent).

    IG OBX[DocumentReference] (OBX-2 TX/FT) and NTE[DocumentReference]: one text attachment whose
    lines come from every OBX-5 repetition, in message order."""
    record = ctx.record
    seg = ctx.segment
    if record is None or seg is None:
        return None
    lines = [rep.text for rep in seg.reps(int(args["field"])) if not rep.is_null]
    text = "\n".join(lines)
    if not text.strip():
        return None
    content_type = str(args["content_type"])
    contents: list[dict[str, Any]] = record.resource.setdefault("content", [])
    for content in contents:
        attachment = content.get("attachment") or {}
        if attachment.get("contentType") == content_type and "url" not in attachment:
            try:
                before = base64.b64decode(attachment.get("data", ""), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                continue
            attachment["data"] = base64.b64encode(f"{before}\n{text}".encode("utf-8")).decode("ascii")
            return None
    contents.append({"attachment": {"contentType": content_type, "data": base64.b64encode(text.encode("utf-8")).decode("ascii")}})
    return None


Fn = Callable[["Context", "Value | None", dict[str, Any]], Any]

FUNCTIONS: dict[str, Fn] = {
    "duration_minutes": duration_minutes,
    "end_after_duration": end_after_duration,
    "append_text": append_text,
    "append_attachment_text": append_attachment_text,
}
CONVERTERS: dict[str, Fn] = {}
PREDICATES: dict[str, Callable[["Context", "Value | None"], bool]] = {}
