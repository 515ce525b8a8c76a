"""Named functions for the order, result, pharmacy and immunization specs (orders family).

Only what the row grammar cannot say: reading another field of the segment through a datatype
map; v2 time quantities (CQ, TQ.3, RPT.9 offsets, explicit times) as FHIR Duration / Timing
elements, whose units are a required binding (R4 units-of-time, drt-1); and which segment of an
order gives its timing or specimen (TQ1 over OBR-6/ORC-7, SPM over OBR), as predicates.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable

from adapters.hl7v2.errors import DataTypeError
from adapters.hl7v2.message import Value
from mappers import primitives, vocab

if TYPE_CHECKING:
    from mappers.engine import Context

Fn = Callable[["Context", "Value | None", dict[str, Any]], Any]

UNITS_OF_TIME = frozenset({"s", "min", "h", "d", "wk", "mo", "a"})  # R4 ValueSet units-of-time (UCUM)


def field_as(ctx: Context, value: Value | None, args: dict[str, Any]) -> Any:
    """Another field of the current segment (args.field) through args.type, e.g. the drug code
    an ingredient strength belongs to (Medication.ingredient.item, R4 12.x Medication)."""
    seg = ctx.segment
    if value is None or seg is None:
        return None
    reps = seg.reps(int(args["field"]))
    if not reps or not reps[0].raw or reps[0].is_null:
        return None
    return ctx.convert(str(args["type"]), reps[0])


def _unit_code(unit: Value) -> str | None:
    """The UCUM time code of a unit (a CWE): its code, else its text, when UCUM knows it."""
    for text, display in ((unit[1].text.strip(), unit[2].text.strip()), (unit[2].text.strip(), None)):
        if not text:
            continue
        if text in UNITS_OF_TIME:
            return text
        found = vocab.ucum_unit(text, display)
        if found is not None and found.get("code") in UNITS_OF_TIME:
            return found["code"]
    return None


def _time_unit(value: Value) -> str | None:
    """The UCUM time code of a CQ's unit (CQ.2)."""
    return _unit_code(value[2])


def time_quantity(ctx: Context, value: Value | None, args: dict[str, Any]) -> dict[str, Any] | None:
    """CQ with a time unit -> Duration {value, unit, system, code} (R4 2.24.0.14 drt-1); else None."""
    if value is None:
        return None
    amount = primitives.decimal(value[1].text)
    code = _time_unit(value)
    if amount is None or code is None:
        return None
    unit = value[2][2].text.strip() or value[2][1].text.strip() or code
    return {"value": amount, "unit": unit, "system": "http://unitsofmeasure.org", "code": code}


def time_duration(ctx: Context, value: Value | None, args: dict[str, Any]) -> dict[str, Any] | None:
    """CQ -> Timing.repeat {duration, durationUnit} (IG TQ1[MedicationRequest] TQ1-13, CQ[decimal]/CQ[code])."""
    if value is None:
        return None
    amount = primitives.decimal(value[1].text)
    code = _time_unit(value)
    if amount is None or code is None:
        return None
    return {"duration": amount, "durationUnit": code}


MINUTES = {"s": 1 / 60, "min": 1, "h": 60, "d": 1440, "wk": 10080}  # Timing.repeat.offset is in minutes
# v2.5 4.4.3 TQ.3 duration: a unit letter then the number (S10 = ten seconds); X (times) and T
# (at the interval) are counts, not durations
TQ_DURATION_UNITS = {"S": "s", "M": "min", "H": "h", "D": "d", "W": "wk", "L": "mo"}


def offset_minutes(ctx: Context, value: Value | None, args: dict[str, Any]) -> int | None:
    """An amount and its time unit (args.amount / args.unit components: RPT.9/RPT.10, CQ.1/CQ.2) ->
    whole minutes (IG RPT[Timing] RPT.9, TQ1[ServiceRequest] TQ1-5; R4 Timing.repeat.offset, minutes)."""
    if value is None:
        return None
    amount = primitives.decimal(value[int(args["amount"])].text)
    code = _unit_code(value[int(args["unit"])])
    if amount is None or code not in MINUTES:
        return None
    minutes = float(amount) * MINUTES[code]
    return int(minutes) if minutes >= 0 and minutes == int(minutes) else None


def tq_duration(ctx: Context, value: Value | None, args: dict[str, Any]) -> dict[str, Any] | None:
    """TQ.3 duration (S50, M10, D3 ...) -> Duration with a UCUM time code (IG TQ[ServiceRequest] TQ.3 boundsDuration)."""
    if value is None:
        return None
    text = value.text.strip().upper()
    code = TQ_DURATION_UNITS.get(text[:1])
    amount = primitives.decimal(text[1:]) if code else None
    if amount is None:
        return None
    return {"value": amount, "unit": code, "system": "http://unitsofmeasure.org", "code": code}


# senders write explicit times (TQ1-4, RI.2) as HH:MM[:SS] rather than the TM form HHMM[SS]
_COLON_TIME = re.compile(r"^\d\d:\d\d(:\d\d)?$")


def explicit_time(ctx: Context, value: Value | None, args: dict[str, Any]) -> str | None:
    """TQ1-4 / RI.2 explicit time of day -> FHIR time (IG TQ1[ServiceRequest] TQ1-4 timeOfDay, v2.5 2.A.75 TM)."""
    if value is None:
        return None
    return _time_of_day(value.text.strip())


def _time_of_day(text: str) -> str | None:
    return primitives.time(text.replace(":", "") if _COLON_TIME.match(text) else text)


def explicit_times(ctx: Context, value: Value | None, args: dict[str, Any]) -> list[str] | None:
    """RI.2 explicit times, a comma-separated list (v2.5 2.A.65 RI: 0900,2100) -> Timing.repeat.timeOfDay
    (IG TQ[ServiceRequest] TQ.2 RI[Timing])."""
    if value is None:
        return None
    times = [_time_of_day(part.strip()) for part in value.text.split(",") if part.strip()]
    return times or None


TQ1_TIMING_FIELDS = (3, 4, 5, 6, 7, 8, 13, 14)  # the TQ1 fields that make occurrenceTiming


def tq1_timing(ctx: Context, value: Value | None) -> bool:
    """Whether the order's TQ1 gives a timing: TQ1 supersedes OBR-6 and ORC-7/OBR-27 (v2.5 4.5.3.6, 4.5.1.7),
    and R4 ServiceRequest.occurrence[x] is one element (IG TQ1[ServiceRequest] occurrenceTiming)."""
    seg = ctx.segment_in_scope("TQ1")
    if seg is None:
        return False
    return any(rep.raw and not rep.is_null for n in TQ1_TIMING_FIELDS for rep in seg.reps(n))


def order_has_specimen(ctx: Context, value: Value | None) -> bool:
    """Whether the order's group holds an SPM: the order's specimen is then that SPM's Specimen
    (IG ORU_R01 rows 4.2.2 OBR[Specimen] and 4.2.7.1 SPM[Specimen] describe the same specimen)."""
    place = ctx.place
    if place is None:
        return False
    depth = len(place.path)
    return any(p.segment.fields[0] == "SPM" and len(p.path) > depth and p.path[:depth] == place.path for p in ctx.state.places)


# Segments between an order/observation segment and its PRTs in the v2.8 order and result
# grammars (OML_O21 OBSERVATION_REQUEST: OBR, [{TCD}], [{NTE}], [{PRT}]; OBSERVATION: OBX, [TCD], [{NTE}], [{PRT}])
_BEFORE_PARTICIPATION = frozenset({"PRT", "NTE", "TCD", "ROL"})
_ORDER_SEGMENTS = frozenset({"ORC", "OBR", "RXO", "RXE"})


def _participation_owner(ctx: Context) -> str | None:
    """The id of the segment a PRT participates in: the nearest earlier one that is not a PRT, NTE or TCD."""
    if ctx.place is None:
        return None
    segments = ctx.message.segments
    return next((segments[i].fields[0] for i in range(ctx.place.index - 1, -1, -1) if segments[i].fields[0] not in _BEFORE_PARTICIPATION), None)


def follows_observation(ctx: Context, value: Value | None) -> bool:
    """The PRT is an OBX's participation (IG ORU_R01 4.2.4.3.2, OML_O21 6.4.7.2, VXU_V04 12.6.2)."""
    return _participation_owner(ctx) == "OBX"


def follows_order(ctx: Context, value: Value | None) -> bool:
    """The PRT is an order's participation (IG ORU_R01 4.2.1.2 / 4.2.4, OML_O21 6.2 / 6.4.4)."""
    return _participation_owner(ctx) in _ORDER_SEGMENTS


def in_order_document(ctx: Context, value: Value | None) -> bool:
    """The OBX (or one of its PRTs) is the document of an order, between its ORC and OBR: ORU_R01
    COMMON_ORDER is ORC, [{PRT}], [ORDER_DOCUMENT: OBX, [{PRT}], TXA] (v2.9; IG ORU_R01 4.2.1.3
    maps no resource for it)."""
    if ctx.place is None:
        return False
    segments = ctx.message.segments
    start = ctx.place.index
    while start > 0 and segments[start].id in ("PRT", "TXA"):
        start -= 1
    if segments[start].id != "OBX":
        return False
    before = start - 1
    while before > 0 and segments[before].id == "PRT":
        before -= 1
    after = ctx.place.index + 1
    while after < len(segments) and segments[after].id in ("PRT", "TXA"):
        after += 1
    return before >= 0 and segments[before].id == "ORC" and after < len(segments) and segments[after].id == "OBR"


def located_at_address(ctx: Context, value: Value | None, args: dict[str, Any]) -> dict[str, str] | None:
    """PL -> its Location chain (IG PL[Location]), the most specific level with the address of another
    field of the segment (args.address, XAD[Address]): IG RXA[Immunization] RXA-27 location[1](Location),
    RXA-28 location[1](Location.address)."""
    if value is None:
        return None
    place = ctx.convert("PL[Location]", value)
    address = field_as(ctx, value, {"field": args["address"], "type": "XAD[Address]"})
    if place is not None and address:
        ctx.state.made[place["reference"]].setdefault("address", address)
    return place


def range_high(ctx: Context, value: Value | None, args: dict[str, Any]) -> int | float | None:
    """NM -> Range.high.value whose low is field args.low of this segment (IG RXO-3/RXE-4 doseRange.high,
    both in the one unit RXO-4/RXE-5): a high below the low is the sender's error (R4 rng-2)."""
    high = primitives.decimal(value.text) if value is not None else None
    seg = ctx.segment
    if high is None or seg is None:
        return high
    reps = seg.reps(int(args["low"]))
    low = primitives.decimal(reps[0].text) if reps and not reps[0].is_null else None
    if low is not None and low > high:
        raise DataTypeError(f"high {value.text.strip()!r} is below the low {reps[0].text.strip()!r}")  # type: ignore[union-attr]
    return high


FUNCTIONS: dict[str, Fn] = {
    "range_high": range_high,
    "located_at_address": located_at_address,
    "explicit_time": explicit_time,
    "explicit_times": explicit_times,
    "offset_minutes": offset_minutes,
    "tq_duration": tq_duration,
    "field_as": field_as,
    "time_quantity": time_quantity,
    "time_duration": time_duration,
}
CONVERTERS: dict[str, Fn] = {}
PREDICATES: dict[str, Callable[["Context", "Value | None"], bool]] = {
    "tq1_timing": tq1_timing,
    "order_has_specimen": order_has_specimen,
    "follows_observation": follows_observation,
    "follows_order": follows_order,
    "in_order_document": in_order_document,
}
