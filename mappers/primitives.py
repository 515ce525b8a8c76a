"""HL7 v2 primitive values -> FHIR R4 primitives (v2.5 2.A; FHIR R4 2.24 datatypes).

What the mapping tables cannot say lives here: date/time parsing with precision and offset,
numbers, booleans. Every function takes the decoded text and returns the FHIR JSON value, or
None for an empty input. A value that is not what its type promises (an impossible date)
raises DataTypeError; the engine adds the segment/field location.

Timezone rule (documented in mappers/SPEC.md): a v2 time with an offset keeps it; a time
without one gets the offset of the conversion's zone at that moment (a tzinfo the caller passes,
default UTC; the gateway passes its PULSEBRIDGE_TIMEZONE setting), because FHIR dateTime/instant
require an offset whenever a time is present. Dates without a time never get an offset (FHIR
forbids it).
"""
from __future__ import annotations

import re
from calendar import isleap
from datetime import datetime, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from math import isfinite

from adapters.hl7v2.errors import DataTypeError

# YYYY[MM[DD[HH[MM[SS[.S{1,4}]]]]]][+/-ZZZZ] (v2.5 2.A.22 DTM)
_DTM = re.compile(
    r"^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?)?)?)?"
    r"(?:([+-])(\d{2})(\d{2}))?$"
)
_TM = re.compile(r"^(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?(?:([+-])(\d{2})(\d{2}))?$")
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)$")
_INTEGER = re.compile(r"[+-]?\d+")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1  # FHIR integer, positiveInt, unsignedInt
_INT64_MIN, _INT64_MAX = -(2**63), 2**64 - 1  # the whole numbers orjson writes


def _offset(zone: tzinfo, year: str, month: str, day: str, hour: str, minute: str | None, second: str | None) -> str:
    """The zone's UTC offset at this wall-clock time, as +HH:MM (an IANA zone's DST included)."""
    # a fixed offset (UTC, the default) is the same at every moment
    if zone.__class__ is timezone:
        fixed = _FIXED.get(zone)
        if fixed is None:
            fixed = _FIXED[zone] = _format_offset(int(zone.utcoffset(None).total_seconds()))
        return fixed
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute or 0), int(second or 0), tzinfo=zone)
    return _format_offset(int(moment.utcoffset().total_seconds()))  # type: ignore[union-attr]


_FIXED: dict[timezone, str] = {}  # fixed-offset zones seen -> +HH:MM


def _format_offset(seconds: int) -> str:
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{'-' if seconds < 0 else '+'}{hours:02d}:{minutes:02d}"


_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in_month(year: int, month: int) -> int:
    """Gregorian month length (what calendar.monthrange gives, without the weekday)."""
    return 29 if month == 2 and isleap(year) else _DAYS[month]


_PLAIN_LENGTHS = frozenset({4, 6, 8, 10, 12, 14})  # DTM digits down to year, month ... second


def _parse(text: str) -> tuple[str, str | None, str | None, str | None, str | None, str | None, str | None, str | None]:
    """DTM/TS/DT text -> (year, month, day, hour, minute, second, fraction, +HH:MM offset): the parts
    that were sent, nothing invented; an impossible date or time raises DataTypeError."""
    digits = text.strip()
    plain, sign, zone = digits, None, None
    if len(digits) > 9 and digits[-5] in "+-":  # an offset +/-ZZZZ after the digits
        plain, sign, zone = digits[:-5], digits[-5], digits[-4:]
    if len(plain) in _PLAIN_LENGTHS and plain.isascii() and plain.isdigit() and (zone is None or zone.isascii() and zone.isdigit()):
        # the usual YYYYMMDD[HHMM[SS]][+/-ZZZZ] without fraction: sliced, as _DTM would split it
        y, mo, d, h, mi, s = plain[:4], plain[4:6] or None, plain[6:8] or None, plain[8:10] or None, plain[10:12] or None, plain[12:14] or None
        oh, om = (zone[:2], zone[2:]) if zone is not None else (None, None)
        if y == "0000":
            _no_year_zero(text)
        # two ASCII digits each, so comparing the strings compares the numbers: _check only for what may be out of range
        if mo and not ("01" <= mo <= "12" and (not d or "01" <= d <= "28") and (not h or h <= "23") and (not mi or mi <= "59")
                       and (not s or s <= "59") and (not sign or oh <= "14" and om <= "59")):  # type: ignore[operator]
            _check(text, y, mo, d, h, mi, s, sign, oh, om)
        return y, mo, d, h, mi, s, None, f"{sign}{oh}:{om}" if sign else None
    m = _DTM.match(digits)
    if not m:
        raise DataTypeError(f"{text!r} is not an HL7 v2 date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])")
    y, mo, d, h, mi, s, frac, sign, oh, om = m.groups()
    if y == "0000":
        _no_year_zero(text)
    _check(text, y, mo, d, h, mi, s, sign, oh, om)
    return y, mo, d, h, mi, s, frac, f"{sign}{oh}:{om}" if sign else None


def _no_year_zero(text: str) -> None:
    """Year 0000 does not exist: FHIR R4 date/dateTime/instant admit years 0001-9999 (datatypes.html#dateTime)."""
    raise DataTypeError(f"{text!r}: year 0000 does not exist")


def _check(text: str, y: str, mo: str | None, d: str | None, h: str | None, mi: str | None, s: str | None,
           sign: str | None, oh: str | None, om: str | None) -> None:
    """Raise DataTypeError for a month, day, time of day or offset that does not exist."""
    if mo and not 1 <= int(mo) <= 12:
        raise DataTypeError(f"{text!r}: month {mo} does not exist")
    if d and not 1 <= int(d) <= _days_in_month(int(y), int(mo)):  # type: ignore[arg-type]
        raise DataTypeError(f"{text!r}: day {d} does not exist in {y}-{mo}")
    if h and int(h) > 23 or mi and int(mi) > 59 or s and int(s) > 59:
        raise DataTypeError(f"{text!r}: time of day out of range")
    if sign and (int(oh) > 14 or int(om) > 59):  # type: ignore[arg-type]
        raise DataTypeError(f"{text!r}: timezone offset out of range")


def _date(year: str, month: str | None, day: str | None) -> str:
    """FHIR date: YYYY, YYYY-MM or YYYY-MM-DD (a time part is dropped)."""
    if not month:
        return year
    return f"{year}-{month}-{day}" if day else f"{year}-{month}"


def _date_time(year: str, month: str | None, day: str | None, hour: str | None, minute: str | None, second: str | None,
               fraction: str | None, offset: str | None, instant: bool, zone: tzinfo) -> str:
    """FHIR dateTime (or instant) of parsed parts: a time keeps its precision down to seconds, with an
    offset (R4 2.24.0.6); a time sent without one is read in `zone`."""
    if not hour or not day:
        if instant:
            raise DataTypeError(f"{_date(year, month, day)!r} lacks the time an instant needs")
        return _date(year, month, day)
    time = f"{hour}:{minute or '00'}:{second or '00'}"
    if fraction:
        time += "." + fraction
    offset = offset or _offset(zone, year, month, day, hour, minute, second)  # type: ignore[arg-type]
    if offset == "+00:00" and instant:
        offset = "Z"
    return f"{year}-{month}-{day}T{time}{offset}"


class Timestamp:
    """A parsed DTM/TS/DT keeping its precision: the parts that were sent, nothing invented."""

    __slots__ = ("year", "month", "day", "hour", "minute", "second", "fraction", "offset")

    def __init__(self, text: str) -> None:
        self.year, self.month, self.day, self.hour, self.minute, self.second, self.fraction, self.offset = _parse(text)

    def date(self) -> str:
        """FHIR date: YYYY, YYYY-MM or YYYY-MM-DD (the time part is dropped)."""
        return _date(self.year, self.month, self.day)

    def date_time(self, *, instant: bool = False, zone: tzinfo = timezone.utc) -> str:
        """FHIR dateTime: a time keeps its precision down to seconds, with an offset (R4 2.24.0.6);
        a time sent without one is read in `zone`."""
        return _date_time(self.year, self.month, self.day, self.hour, self.minute, self.second, self.fraction, self.offset, instant, zone)


def _usual_date_time(text: str, instant: bool, zone: tzinfo) -> str | None:
    """_date_time(*_parse(text), instant, zone) for the usual timestamp YYYYMMDDHHMM[SS][+/-ZZZZ]
    whose every part is in range, sliced in one go; None for anything else (then _parse decides)."""
    n = len(text)
    if n == 17 or n == 19:
        sign, zone_digits, plain = text[-5], text[-4:], text[:-5]
        if sign != "+" and sign != "-" or not (zone_digits.isdigit() and zone_digits.isascii()):
            return None
    elif n == 12 or n == 14:
        sign, zone_digits, plain = None, "", text
    else:
        return None
    if not (plain.isdigit() and plain.isascii()):
        return None
    year, month, day, hour, minute, second = plain[:4], plain[4:6], plain[6:8], plain[8:10], plain[10:12], plain[12:] or "00"
    # two ASCII digits each, so comparing the strings compares the numbers (as in _parse)
    if not ("01" <= month <= "12" and "01" <= day <= "28" and hour <= "23" and minute <= "59" and second <= "59"
            and year != "0000"):
        return None
    if sign is None:
        offset = _offset(zone, year, month, day, hour, minute, second)
    elif zone_digits[:2] <= "14" and zone_digits[2:] <= "59":
        offset = f"{sign}{zone_digits[:2]}:{zone_digits[2:]}"
    else:
        return None
    if offset == "+00:00" and instant:
        offset = "Z"
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}{offset}"


def date_time(text: str, zone: tzinfo = timezone.utc) -> str | None:
    """DTM/TS -> FHIR dateTime."""
    if len(text) == 8 and text.isdigit() and text.isascii():
        # YYYYMMDD, the commonest (a birth date): a date, as _parse and _date_time would give it
        month, day = text[4:6], text[6:]
        if "01" <= month <= "12" and "01" <= day <= "28" and text[:4] != "0000":
            return f"{text[:4]}-{month}-{day}"
    return (_usual_date_time(text, False, zone) or _date_time(*_parse(text), False, zone)) if text else None


def date(text: str) -> str | None:
    """DTM/DT -> FHIR date."""
    if not text:
        return None
    year, month, day = _parse(text)[:3]
    return _date(year, month, day)


def instant(text: str, zone: tzinfo = timezone.utc) -> str | None:
    """DTM -> FHIR instant (seconds padded when the sender stopped at minutes)."""
    return (_usual_date_time(text, True, zone) or _date_time(*_parse(text), True, zone)) if text else None


def time(text: str) -> str | None:
    """TM -> FHIR time hh:mm:ss (no offset: FHIR time has none)."""
    if not text:
        return None
    m = _TM.match(text.strip())
    if not m or int(m[1]) > 23 or (m[2] and int(m[2]) > 59) or (m[3] and int(m[3]) > 59):
        raise DataTypeError(f"{text!r} is not an HL7 v2 time (HH[MM[SS[.S]]][+/-ZZZZ])")
    out = f"{m[1]}:{m[2] or '00'}:{m[3] or '00'}"
    return out + "." + m[4] if m[4] else out


def decimal(text: str) -> int | float | None:
    """NM -> FHIR decimal as a JSON number; None when the text is not a number (caller reports it).
    A whole number is kept exact within JSON's 64-bit integers, beyond them it is a double like a
    fraction; a number no double holds (over ~1.8e308) is not a number here."""
    text = text.strip()
    if text.isdigit() and text.isascii() and len(text) < 19:  # the commonest: a whole number, as Decimal then int gives it
        return int(text)
    if not text or not _NUMBER.match(text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if "." not in text and _INT64_MIN <= value <= _INT64_MAX:
        return int(value)
    number = float(value)
    return number if isfinite(number) else None


def integer(text: str) -> int | None:
    """NM/SI -> FHIR integer, a signed 32-bit number (R4 2.1.28.0.1); anything else gives None."""
    text = text.strip()
    if text.isdigit() and text.isascii() and len(text) < 10:  # the commonest: no sign, below 2^31 by its length
        return int(text)
    if not _INTEGER.fullmatch(text) or len(text.lstrip("+-0")) > 10:  # more digits than any 32-bit number
        return None
    value = int(text)
    return value if _INT32_MIN <= value <= _INT32_MAX else None


def positive_int(text: str) -> int | None:
    value = integer(text)
    return value if value is not None and value > 0 else None


def unsigned_int(text: str) -> int | None:
    value = integer(text)
    return value if value is not None and value >= 0 else None


def boolean(text: str) -> bool | None:
    """ID with table 0136 (Y/N) -> FHIR boolean."""
    code = text.strip().upper()
    if code in ("Y", "YES", "T", "TRUE", "1"):
        return True
    if code in ("N", "NO", "F", "FALSE", "0"):
        return False
    return None


def string(text: str) -> str | None:
    """ST/TX/FT/ID -> FHIR string (escapes already decoded by the reader); blank -> None."""
    text = text.strip()
    return text or None


def code(text: str) -> str | None:
    """FHIR code: no leading/trailing or repeated inner whitespace (R4 2.24.0.1)."""
    if " " in text or not text.isprintable():  # whitespace other than a space is not printable
        text = " ".join(text.split())
    return text or None


def uri(text: str) -> str | None:
    """FHIR uri/url: no whitespace at all (R4 datatypes.html#uri, regex \\S*); a text with inner whitespace
    is no address FHIR could hold, so it is the sender's error rather than an attachment left without one."""
    text = text.strip()
    if " " in text or not text.isprintable():
        raise DataTypeError(f"{text!r} is not a url (a url has no whitespace)")
    return text or None


_COMPARATORS = frozenset({"<", "<=", ">", ">="})  # R4 quantity-comparator, a required binding


def comparator(text: str) -> str | None:
    """SN.1 -> Quantity.comparator: `<`, `<=`, `>`, `>=` as sent; `=` or blank is no comparator (v2.5 2.A.72);
    anything else has no FHIR comparator to take it."""
    text = text.strip()
    if text in _COMPARATORS:
        return text
    if text == "=" or not text:
        return None
    raise DataTypeError(f"{text!r} is not a comparator (<, <=, >, >= or =)")


# The primitives whose result depends on the conversion's zone: called as f(text, zone).
ZONED = frozenset({"dateTime", "instant"})

PRIMITIVES = {
    "string": string,
    "markdown": string,
    "code": code,
    "id": code,
    "uri": uri,
    "url": uri,
    "comparator": comparator,
    "dateTime": date_time,
    "date": date,
    "instant": instant,
    "time": time,
    "decimal": decimal,
    "integer": integer,
    "positiveInt": positive_int,
    "unsignedInt": unsigned_int,
    "boolean": boolean,
}
