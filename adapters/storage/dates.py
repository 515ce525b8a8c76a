"""FHIR date/dateTime/instant values as ranges of UTC microseconds (R4 search.html#date, datatypes.html#dateTime).

A value stands for the whole interval its precision implies: `2024` is the year 2024, `2024-03-05`
that day, `2024-03-05T10:00:00+08:00` that second. Values without an offset are taken as UTC.
Bounds are inclusive: high is the last microsecond of the interval.
"""
from __future__ import annotations

import re
import time
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

MIN_INSTANT = -(2**62)
MAX_INSTANT = 2**62
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
# [0-9], not \d: FHIR's date regexes (datatypes.html#date) admit ASCII digits only.
_PATTERN = re.compile(
    r"(?P<y>[0-9]{4})(?:-(?P<m>[0-9]{2})(?:-(?P<d>[0-9]{2})"
    r"(?:T(?P<H>[0-9]{2})(?::(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2})(?:\.(?P<f>[0-9]{1,9}))?)?)?"
    r"(?P<tz>Z|[+-][0-9]{2}:?[0-9]{2})?)?)?)?"
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


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@lru_cache(maxsize=4096)  # index rows of one load share few days
def _day_start(day: str) -> int | None:
    """Start of a `YYYY-MM-DD` day in UTC microseconds; None when it is not one (the full parser decides)."""
    if not _DAY.fullmatch(day):
        return None
    try:
        return _day_micros(int(day[:4]), int(day[5:7]), int(day[8:10]))
    except ValueError:
        return None


def _utc_second(text: str) -> tuple[int, int] | None:
    """Bounds of `YYYY-MM-DDThh:mm:ssZ` or `...ss.fffZ`, the instants HL7 mappers and servers write; else None."""
    start = _day_start(text[:10])
    clock = text[11:13] + text[14:16] + text[17:19]
    if start is None or text[10] != "T" or text[13] != ":" or text[16] != ":" or not (clock.isascii() and clock.isdigit()):
        return None
    clock_digits = int(clock)  # one int() for hhmmss: each int() of a str costs more than the arithmetic
    hour, minute, second = clock_digits // 10000, clock_digits // 100 % 100, clock_digits % 100
    if hour > 23 or minute > 59 or second > 59:
        return None
    start += ((hour * 60 + minute) * 60 + second) * 1_000_000
    if len(text) == 20:
        return start, start + 999_999
    millis = text[20:23]
    if text[19] != "." or not (millis.isascii() and millis.isdigit()):
        return None
    start += int(millis) * 1000
    return start, start + 999


def date_range(text: str) -> tuple[int, int]:
    """(low, high) inclusive microsecond bounds of a FHIR date/dateTime/instant string.

    Integer arithmetic on day ordinals rather than datetime objects: this runs for every date
    index row and every date search value. The common shapes (a day, a UTC second or millisecond)
    take a path without the regular expression; anything else, or anything it rejects, the full one.
    """
    size = len(text)
    if size == 10:
        start = _day_start(text)
        if start is not None:
            return start, start + _DAY_US - 1
    elif (size == 20 or size == 24) and text[-1] == "Z":
        bounds = _utc_second(text)
        if bounds is not None:
            return bounds
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


@lru_cache(maxsize=64)
def _day_text(day: int) -> str:
    """`YYYY-MM-DD` of a day number since the epoch."""
    return (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")


def format_instant(micros: int) -> str:
    """An R4 instant in UTC with millisecond precision (`...T10:00:00.123Z`)."""
    day, rest = divmod(micros, _DAY_US)
    if not 0 <= day < 2_932_897:  # outside 1970-01-01 .. 9999-12-31: the general formatter
        dt = _EPOCH + timedelta(microseconds=micros)
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    seconds, fraction = divmod(rest, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_day_text(day)}T{hour:02d}:{minute:02d}:{second:02d}.{fraction // 1000:03d}Z"


def now_micros() -> int:
    """UTC microseconds now, from the same clock as datetime.now()."""
    return time.time_ns() // 1000


def to_datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)
