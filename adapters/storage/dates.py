"""FHIR date/dateTime/instant values as ranges of UTC microseconds (R4 search.html#date, datatypes.html#dateTime).

A value stands for the whole interval its precision implies: `2024` is the year 2024, `2024-03-05`
that day, `2024-03-05T10:00:00+08:00` that second. Values without an offset are taken as UTC.
Bounds are inclusive: high is the last microsecond of the interval.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

MIN_INSTANT = -(2**62)
MAX_INSTANT = 2**62
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
_PATTERN = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2})(?::(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})?)?)?)?"
)


class InvalidDate(ValueError):
    """Not a FHIR date, dateTime or instant."""


def _micros(dt: datetime) -> int:
    return (dt - _EPOCH) // _US


def date_range(text: str) -> tuple[int, int]:
    """(low, high) inclusive microsecond bounds of a FHIR date/dateTime/instant string."""
    m = _PATTERN.fullmatch(text.strip())
    if not m:
        raise InvalidDate(text)
    try:
        year = int(m["y"])
        if m["m"] is None:
            start = datetime(year, 1, 1, tzinfo=timezone.utc)
            end = datetime(year + 1, 1, 1, tzinfo=timezone.utc) if year < 9999 else None
            return _micros(start), (_micros(end) - 1 if end else MAX_INSTANT)
        month = int(m["m"])
        if m["d"] is None:
            start = datetime(year, month, 1, tzinfo=timezone.utc)
            nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
            return _micros(start), _micros(nxt) - 1
        day = int(m["d"])
        tz = timezone.utc
        if m["tz"] and m["tz"] != "Z":
            sign = -1 if m["tz"][0] == "-" else 1
            digits = m["tz"][1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        if m["H"] is None:
            start = datetime(year, month, day, tzinfo=tz)
            return _micros(start), _micros(start + timedelta(days=1)) - 1
        hour, minute = int(m["H"]), int(m["M"] or 0)
        second = int(m["S"] or 0)
        fraction = m["f"] or ""
        micro = int((fraction + "000000")[:6])
        start = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
        if m["S"] is None:
            width = timedelta(minutes=1) if m["M"] else timedelta(hours=1)
        elif fraction:
            width = timedelta(microseconds=10 ** max(0, 6 - len(fraction)))
        else:
            width = timedelta(seconds=1)
        return _micros(start), _micros(start + width) - 1
    except (ValueError, OverflowError) as exc:
        raise InvalidDate(text) from exc


def format_instant(micros: int) -> str:
    """An R4 instant in UTC with millisecond precision (`...T10:00:00.123Z`)."""
    dt = _EPOCH + timedelta(microseconds=micros)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def now_micros() -> int:
    return _micros(datetime.now(timezone.utc))


def to_datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)
