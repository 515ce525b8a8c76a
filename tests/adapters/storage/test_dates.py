"""FHIR date/dateTime/instant bounds (adapters/storage/dates.py): the fast paths for the common shapes agree
with calendar arithmetic, and everything they reject still goes through the full grammar (R4 datatypes.html)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.storage.dates import InvalidDate, date_range, format_instant

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MOMENTS = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc))


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


@given(MOMENTS)
def test_a_day_spans_its_24_hours(moment: datetime) -> None:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    assert date_range(day.strftime("%Y-%m-%d")) == (_micros(day), _micros(day + timedelta(days=1)) - 1)


@given(MOMENTS)
def test_utc_seconds_and_milliseconds_span_their_precision(moment: datetime) -> None:
    second = moment.replace(microsecond=0)
    assert date_range(second.strftime("%Y-%m-%dT%H:%M:%SZ")) == (_micros(second), _micros(second) + 999_999)
    milli = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    text = milli.strftime("%Y-%m-%dT%H:%M:%S.") + f"{milli.microsecond // 1000:03d}Z"
    assert date_range(text) == (_micros(milli), _micros(milli) + 999)
    assert format_instant(_micros(milli)) == text


@given(MOMENTS)
def test_the_fast_path_agrees_with_the_same_instant_written_with_an_offset(moment: datetime) -> None:
    second = moment.replace(microsecond=0)
    assert date_range(second.strftime("%Y-%m-%dT%H:%M:%SZ")) == date_range(second.strftime("%Y-%m-%dT%H:%M:%S+00:00"))


@pytest.mark.parametrize("text", ["2026-02-30", "2026-13-01", "2026-01-01T24:00:00Z", "2026-01-01T10:60:00Z",
                                  "２０２６-01-01", "2026-01-01T10:00:00.12xZ", "2026-01-01X10:00:00Z"])
def test_what_the_fast_path_rejects_is_still_judged_by_the_grammar(text: str) -> None:
    with pytest.raises(InvalidDate):
        date_range(text)
