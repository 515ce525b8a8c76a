"""FHIR date/dateTime/instant values as ranges of UTC microseconds (R4 search.html#date, datatypes.html#dateTime).

A value stands for the whole interval its precision implies: `2024` is the year 2024, `2024-03-05`
that day, `2024-03-05T10:00:00+08:00` that second. Values without an offset are taken as UTC.
Bounds are inclusive: high is the last microsecond of the interval.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

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


def to_micros(dt: datetime) -> int:
    """UTC microseconds since the epoch of an aware datetime (the inverse of to_datetime)."""
    return (dt - _EPOCH) // _US


_EPOCH_DAY = date(1970, 1, 1).toordinal()
_DAY_US = 86_400_000_000


def _day_micros(year: int, month: int, day: int) -> int:
    """Start of a calendar day in UTC microseconds; ValueError for a day that does not exist."""
    return (date(year, month, day).toordinal() - _EPOCH_DAY) * _DAY_US


def date_range(text: str) -> tuple[int, int]:
    """(low, high) inclusive microsecond bounds of a FHIR date/dateTime/instant string.

    Integer arithmetic on day ordinals rather than datetime objects: this runs for every date
    index row and every date search value.
    """
    m = _PATTERN.fullmatch(text.strip())
    if not m:
        raise InvalidDate(text)
    year_text, month_text, day_text, hour_text = m.group("y", "m", "d", "H")
    try:
        year = int(year_text)
        if month_text is None:
            start = _day_micros(year, 1, 1)
            return start, (_day_micros(year + 1, 1, 1) - 1 if year < 9999 else MAX_INSTANT)
        month = int(month_text)
        if day_text is None:
            start = _day_micros(year, month, 1)
            if month == 12:
                return start, (_day_micros(year + 1, 1, 1) - 1 if year < 9999 else MAX_INSTANT)
            return start, _day_micros(year, month + 1, 1) - 1
        start = _day_micros(year, month, int(day_text))
        offset = 0
        tz = m["tz"]
        if tz and tz != "Z":
            digits = tz[1:].replace(":", "")
            hours, minutes = int(digits[:2]), int(digits[2:])
            if hours > 23 or minutes > 59:
                raise ValueError(tz)
            offset = (-1 if tz[0] == "-" else 1) * (hours * 3600 + minutes * 60) * 1_000_000
        if hour_text is None:
            return start - offset, start - offset + _DAY_US - 1
        minute_text, second_text, fraction = m.group("M", "S", "f")
        hour, minute, second = int(hour_text), int(minute_text or 0), int(second_text or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(text)
        fraction = fraction or ""
        start += ((hour * 60 + minute) * 60 + second) * 1_000_000 + int((fraction + "000000")[:6]) - offset
        if second_text is None:
            width = 60_000_000 if minute_text else 3_600_000_000
        elif fraction:
            width = 10 ** max(0, 6 - len(fraction))
        else:
            width = 1_000_000
        return start, start + width - 1
    except (ValueError, OverflowError) as exc:
        raise InvalidDate(text) from exc


def format_instant(micros: int) -> str:
    """An R4 instant in UTC with millisecond precision (`...T10:00:00.123Z`)."""
    dt = _EPOCH + timedelta(microseconds=micros)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def now_micros() -> int:
    return to_micros(datetime.now(timezone.utc))


def to_datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)
