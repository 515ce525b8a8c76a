"""Named functions for the scheduling, document, problem, finance and referral families
(SIU, MDM, PPR, DFT, BAR, REF) where the spec data cannot say it.

- durations: SCH-9/SCH-10 and AIx duration + units -> minutes, or an end time computed from a
  start and a duration (IG AIS/AIG/AIL/AIP[Appointment]: "participant.period.start + AIx-n");
- Appointment.start/end from SCH-11 or TQ1, kept to FHIR R4 Appointment app-2/app-3
  (`appointment_times`: a missing one from a duration, else requestedPeriod, else an error at the field);
- text that several segments contribute to one FHIR string or attachment (IG SIU_S12 message
  sheet: "multiple NTE segments ... concatenated" into Appointment.comment; IG OBX[DocumentReference]:
  "each repeat yields a line feed within .content.data").

The unit table and the source fields live in the spec rows' `args` (data); this module only does arithmetic.
"""
from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from adapters.hl7v2.errors import DataTypeError, Location, RequiredFieldMissing
from adapters.hl7v2.message import Segment, Value
from mappers import primitives
from mappers.sources import Source, compile_source

if TYPE_CHECKING:
    from mappers.engine import Context


def _unit_seconds(unit: str, args: dict[str, Any]) -> float | None:
    """Seconds in one unit of a duration (CNE.1/CWE.1 of its units), args.default_unit when none was sent."""
    table: dict[str, float] = args["seconds"]
    unit = unit or str(args.get("default_unit", ""))
    found = table.get(unit) if unit in table else table.get(unit.lower())
    return float(found) if found is not None else None


def _seconds_per_unit(ctx: Context, args: dict[str, Any]) -> float | None:
    """Seconds in one unit of the duration, from the units field (CNE.1) named in args.units.

    A missing units field means args.default_unit (v2.5 AIS-6: minutes when not valued)."""
    unit = ""
    seg = ctx.segment
    if seg is not None and args.get("units"):
        reps = seg.reps(int(args["units"]))
        if reps and not reps[0].is_null:
            unit = reps[0][1].text.strip()
    return _unit_seconds(unit, args)


_LONGEST = 60.0 * 2_147_483_647  # Appointment.minutesDuration is a positiveInt (R4 datatypes.html#positiveInt)


def _seconds(amount_text: str, per_unit: float | None) -> float | None:
    """An NM amount of units of per_unit seconds; None when it is no number or the unit is unknown."""
    amount = primitives.decimal(amount_text)
    if amount is None or per_unit is None:
        return None
    seconds = float(amount) * per_unit
    if not -_LONGEST <= seconds <= _LONGEST:
        raise DataTypeError(f"duration {amount_text.strip()!r} is beyond {_LONGEST // 60:.0f} minutes (FHIR positiveInt)")
    return seconds


def _duration_seconds(ctx: Context, value: Value | None, args: dict[str, Any]) -> float | None:
    if value is None:
        return None
    return _seconds(value.text, _seconds_per_unit(ctx, args))


def duration_minutes(ctx: Context, value: Value | None, args: dict[str, Any]) -> int | None:
    """NM duration with a units field -> whole minutes for Appointment.minutesDuration (positiveInt)."""
    seconds = _duration_seconds(ctx, value, args)
    if seconds is None:
        return None
    minutes = round(seconds / 60)
    return minutes if minutes >= 1 else None


def _shifted(moment_text: str, seconds: float) -> str:
    """A FHIR dateTime/instant with a time of day, moved by seconds: the same UTC offset ('Z' stays
    'Z'), precision seconds."""
    moment = datetime.fromisoformat(moment_text.replace("Z", "+00:00"))
    try:
        moved = moment + timedelta(seconds=seconds)
    except OverflowError:
        if seconds < 0:
            raise DataTypeError(f"{moment_text} minus {-seconds:.0f} seconds is before the year 1") from None
        raise DataTypeError(f"{moment_text} plus {seconds:.0f} seconds is past the year 9999") from None
    text = moved.isoformat(timespec="seconds")
    return text[:-6] + "Z" if moment_text.endswith("Z") and text.endswith("+00:00") else text


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
    return _shifted(start_text, seconds)


# --- Appointment.start / end (FHIR R4 Appointment app-2, app-3) -------------------------------

_SOURCES: dict[str, Source] = {}  # the source paths named in args, compiled on first use


def _source(path: str) -> Source:
    src = _SOURCES.get(path)
    if src is None:
        src = _SOURCES[path] = compile_source(path, None)
    return src


def _text(ctx: Context, path: str) -> str:
    """The stripped text at a segment path (this segment or one in scope); '' when not valued."""
    found = _source(path).read(ctx, False)
    return found[0].text.strip() if found else ""


def _segment_of(ctx: Context, path: str) -> Segment | None:
    seg_id = _source(path).segment
    seg = ctx.segment
    return seg if seg is not None and seg.fields[0] == seg_id else ctx.segment_in_scope(str(seg_id))


def _where(ctx: Context, path: str) -> Location:
    """The ERR-2 location of a segment path, for an error about its value."""
    src = _source(path)
    seg = _segment_of(ctx, path)
    return Location(str(src.segment), seg.sequence if seg is not None else None, src.field, src.repetition or 1,
                    src.component, src.subcomponent)


def _instant(ctx: Context, path: str) -> tuple[str | None, DataTypeError | None]:
    """The FHIR instant at path (None when not valued). What is no timestamp at all raises a
    DataTypeError at path; a date without a time of day gives (None, that error) for the caller to
    raise where an instant must be given."""
    text = _text(ctx, path)
    if not text:
        return None, None
    try:
        return primitives.instant(text, ctx.state.zone), None
    except DataTypeError as exc:
        located = DataTypeError(exc.reason, location=_where(ctx, path))
        try:
            primitives.date_time(text, ctx.state.zone)
        except DataTypeError:
            raise located from None
        return None, located


def _appointment_duration(ctx: Context, args: dict[str, Any]) -> tuple[float, str] | None:
    """Seconds and amount path of the first positive duration of args.durations ([amount path, units path] pairs)."""
    for amount_path, units_path in args["durations"]:
        amount = _text(ctx, amount_path)
        if not amount:
            continue
        try:
            seconds = _seconds(amount, _unit_seconds(_text(ctx, units_path), args))
        except DataTypeError as exc:
            raise DataTypeError(exc.reason, location=_where(ctx, amount_path)) from None
        if seconds is not None and seconds > 0:
            return seconds, amount_path
    return None


def appointment_times(ctx: Context, value: Value | None, args: dict[str, Any]) -> dict[str, Any] | None:
    """Appointment.start and end from the first [start, end] pair of args.timings with a time sent
    (TQ1-7/TQ1-8, which replace SCH-11 TQ.4/TQ.5 from v2.5 on; IG TQ[Appointment]: instants),
    kept to FHIR R4 Appointment app-2 (both or neither) and app-3 (neither only for a status in
    args.requested: proposed, cancelled, waitlist). Reads the status the rows above gave.

    - one time and a duration (args.durations, first positive: TQ1-6, SCH-9 in SCH-10 units) give
      the other (IG TQ1[ServiceRequest] TQ1-6: end = start + duration, start = end - duration);
    - else one time of a status in args.requested is the Appointment.requestedPeriod asked for;
    - else the empty field is a RequiredFieldMissing. A time that is no timestamp is a
      DataTypeError at its field; so is a date without a time of day where start and end must be
      given (one that need not be is left out)."""
    record = ctx.record
    status = record.resource.get("status") if record is not None else None
    requested: list[str] = args["requested"]
    may_lack = status in requested
    pairs: list[list[str]] = args["timings"]
    for start_path, end_path in pairs:
        start, start_error = _instant(ctx, start_path)
        end, end_error = _instant(ctx, end_path)
        if start_error is None and end_error is None and start is None and end is None:
            continue
        if not may_lack and (start_error or end_error):
            raise start_error or end_error  # type: ignore[misc]
        if start is not None and end is not None:
            return {"start": start, "end": end}
        if start is None and end is None:  # dates only, of an appointment that may go without start and end
            return None
        duration = _appointment_duration(ctx, args)
        if duration is not None:
            seconds, duration_path = duration
            try:
                if start is not None:
                    return {"start": start, "end": _shifted(start, seconds)}
                return {"start": _shifted(end, -seconds), "end": end}  # type: ignore[arg-type]
            except DataTypeError as exc:
                raise DataTypeError(exc.reason, location=_where(ctx, duration_path)) from None
        if may_lack:
            return {"requestedPeriod": [{"start": start} if start is not None else {"end": end}]}
        missing = end_path if start is not None else start_path
        raise RequiredFieldMissing(
            f"an appointment with status {status} needs its {'end' if start is not None else 'start'} date/time, or a"
            " duration to derive it from (FHIR R4 Appointment app-2)", location=_where(ctx, missing))
    if may_lack:
        return None
    # no time at all: name the timing the sender uses (TQ1 when it sent one)
    named = next((pair for pair in pairs if _segment_of(ctx, pair[0]) is not None), pairs[-1])
    raise RequiredFieldMissing(
        f"an appointment with status {status} needs its start and end date/time (FHIR R4 Appointment app-3:"
        f" only {', '.join(requested)} ones may go without)", location=_where(ctx, named[0]))


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
    "appointment_times": appointment_times,
    "append_text": append_text,
    "append_attachment_text": append_attachment_text,
}
CONVERTERS: dict[str, Fn] = {}
PREDICATES: dict[str, Callable[["Context", "Value | None"], bool]] = {}
