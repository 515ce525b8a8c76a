"""Named functions for the order, pharmacy and immunization specs (orders family).

Only what the row grammar cannot say: reading another field of the segment through a datatype
map, and v2 time quantities (CQ) as FHIR Duration / Timing.repeat duration, whose units are a
required binding (R4 units-of-time, drt-1: a Duration with a value has a UCUM time code).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from adapters.hl7v2.message import Value
from mappers import primitives, vocab

if TYPE_CHECKING:
    from mappers.engine import Context

Fn = Callable[["Context", "Value | None", dict[str, Any]], Any]

UNITS_OF_TIME = frozenset({"s", "min", "h", "d", "wk", "mo", "a"})  # R4 ValueSet units-of-time (UCUM)


def field_as(ctx: Context, value: Value | None, args: dict[str, Any]) -> Any:
    """Another field of the current segment (args.field) through args.type, e.g. the drug code
    an ingredient strength belongs to (Medication.ingredient.item, R4 12.x Medication)."""
    from mappers.engine import convert  # late import: the engine imports the function registry

    seg = ctx.segment
    if value is None or seg is None:
        return None
    reps = seg.reps(int(args["field"]))
    if not reps or not reps[0].raw or reps[0].is_null:
        return None
    return convert(str(args["type"]), reps[0], ctx)


def _time_unit(value: Value) -> str | None:
    """The UCUM time code of a CQ's unit (CQ.2, a CWE): its code, else its text, when UCUM knows it."""
    unit = value[2]
    for text, display in ((unit[1].text.strip(), unit[2].text.strip()), (unit[2].text.strip(), None)):
        if not text:
            continue
        if text in UNITS_OF_TIME:
            return text
        found = vocab.ucum_unit(text, display)
        if found is not None and found.get("code") in UNITS_OF_TIME:
            return found["code"]
    return None


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


FUNCTIONS: dict[str, Fn] = {
    "field_as": field_as,
    "time_quantity": time_quantity,
    "time_duration": time_duration,
}
CONVERTERS: dict[str, Fn] = {}
PREDICATES: dict[str, Callable[["Context", "Value | None"], bool]] = {}
