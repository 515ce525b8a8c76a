"""v2 DTM/DT/TM/NM -> FHIR primitives (mappers.primitives): precision, offsets, impossible dates."""
from __future__ import annotations

from datetime import timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from adapters.hl7v2.errors import DataTypeError
from mappers import primitives


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024", "2024"),
        ("202403", "2024-03"),
        ("20240305", "2024-03-05"),
        ("2024030514", "2024-03-05T14:00:00+00:00"),
        ("202403051430+0800", "2024-03-05T14:30:00+08:00"),
        ("20240305143015.25-0500", "2024-03-05T14:30:15.25-05:00"),
    ],
)
def test_date_time_keeps_precision_and_offset(text: str, expected: str) -> None:
    assert primitives.date_time(text) == expected


def test_time_without_offset_gets_the_configured_zone() -> None:
    zone = timezone(timedelta(hours=8))  # PULSEBRIDGE_TIMEZONE=+0800, parsed by gateway.settings
    assert primitives.date_time("202403051430", zone) == "2024-03-05T14:30:00+08:00"
    assert primitives.date("202403051430") == "2024-03-05"  # a date never carries an offset


@pytest.mark.parametrize("text", ["20230230", "20231301", "2023010125", "202301011260", "2023-01-01", "2023010112+1900"])
def test_impossible_dates_raise(text: str) -> None:
    with pytest.raises(DataTypeError):
        primitives.date_time(text)


def test_instant_needs_a_time_and_pads_seconds() -> None:
    assert primitives.instant("202403051430+0100") == "2024-03-05T14:30:00+01:00"
    with pytest.raises(DataTypeError):
        primitives.instant("20240305")


@pytest.mark.parametrize(("text", "expected"), [("13.2", 13.2), ("5", 5), ("-0.5", -0.5), (".5", 0.5), ("abc", None), ("1.2.3", None)])
def test_decimal(text: str, expected: object) -> None:
    assert primitives.decimal(text) == expected


def test_decimal_beyond_64_bits_is_a_double_and_beyond_a_double_is_not_a_number() -> None:
    assert primitives.decimal("18446744073709551615") == 2**64 - 1  # still exact
    assert primitives.decimal("18446744073709551616") == 1.8446744073709552e19
    assert isinstance(primitives.decimal("-9223372036854775809"), float)
    assert primitives.decimal("9" * 5000) is None and primitives.decimal("9" * 400 + ".5") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7", 7), ("+7", 7), ("-7", -7), ("0002147483647", 2**31 - 1), ("-2147483648", -(2**31)), ("2147483648", None),
     ("-2147483649", None), ("9" * 5000, None), ("1.0", None), ("", None)],
)
def test_integer_is_a_32_bit_number(text: str, expected: int | None) -> None:
    assert primitives.integer(text) == expected


def test_time_and_boolean() -> None:
    assert primitives.time("0815") == "08:15:00"
    assert primitives.boolean("Y") is True and primitives.boolean("N") is False and primitives.boolean("X") is None


def test_a_named_zone_gives_the_offset_in_force_at_that_time() -> None:
    new_york = ZoneInfo("America/New_York")  # PULSEBRIDGE_TIMEZONE may name an IANA zone (README)
    assert primitives.date_time("202401151430", new_york) == "2024-01-15T14:30:00-05:00"
    assert primitives.date_time("202407151430", new_york) == "2024-07-15T14:30:00-04:00"
    assert primitives.instant("202407151430+0000", new_york) == "2024-07-15T14:30:00Z"  # a sent offset wins
