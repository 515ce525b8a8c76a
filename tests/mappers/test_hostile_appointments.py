"""Appointment.start and end of an SIU, whatever the sender put in its timing fields.

FHIR R4 Appointment app-2: start and end are both given or neither; app-3: only a proposed,
cancelled or waitlist appointment may go without them. The IG maps SCH-11 TQ.4/TQ.5
(TQ[Appointment]) to start/end as instants; TQ1-7/TQ1-8 replace SCH-11 from v2.5 on. So
(SCH[Appointment], appointment_times): a time that is no timestamp is a DataTypeError at its field
(AE ACK); one time and a duration (TQ1-6, else SCH-9 in SCH-10 units) give the other, as IG
TQ1[ServiceRequest] TQ1-6 does; one time of an appointment that may go without start and end is
its requestedPeriod; a booked (noshow, entered-in-error ...) appointment without a usable pair is
a RequiredFieldMissing at the empty field (AR ACK).
"""
from __future__ import annotations

import pytest

from adapters.hl7v2.errors import DataTypeError, HL7Error, RequiredFieldMissing
from mapper_helpers import er7, only, validation_errors
from mappers import convert

START, END = "20240102090000+0100", "20240102100000+0100"


def _siu(sch11: str = "", tq1: str | None = None, *, event: str = "S12", status: str = "", duration: str = "") -> bytes:
    """An SIU with SCH-11 (TQ), SCH-25 status, SCH-9^SCH-10 duration (as `9|10`) and an optional TQ1 (fields 6-8 as `6|7|8`)."""
    sch = "SCH|A1|F1|||||||" + (duration or "|") + "|" + sch11 + "|" * 14 + status
    segments = [f"MSH|^~\\&|S|F|R|F|20240101120000+0000||SIU^{event}^SIU_S12|1|P|2.5.1", sch]
    if tq1 is not None:
        segments.append("TQ1|1|||||" + tq1)
    return er7(*segments, "PID|1||P1^^^F^MR||Doe^Jo", "RGS|1", "AIP|1||7^Kim^Lee|||" + START + "|||60|min||Booked")


def _appointment(raw: bytes) -> dict:
    bundle, _ = convert(raw)
    assert validation_errors(bundle) == []
    return only(bundle, "Appointment")


def _times(appointment: dict) -> dict:
    return {k: appointment[k] for k in ("start", "end", "requestedPeriod") if k in appointment}


# --- a time that is no timestamp ----------------------------------------------------------------


@pytest.mark.parametrize(("raw", "where"), [
    (_siu(f"^^^SEL^{END}"), "SCH-11.4"),
    (_siu(f"^^^{START}^1."), "SCH-11.5"),
    (_siu(tq1=f"|1.|{END}"), "TQ1-7"),
    (_siu(tq1=f"|{START}|99999999999999999999"), "TQ1-8"),
    (_siu(tq1=f"|{START}|20240230100000"), "TQ1-8"),  # no 30 February
    # not silently dropped where start and end may be missing either: the sender sent something wrong
    (_siu(tq1=f"|SEL|{END}", event="S15"), "TQ1-7"),
])
def test_a_timing_component_that_is_no_timestamp_is_an_error_at_its_field(raw: bytes, where: str) -> None:
    with pytest.raises(DataTypeError, match=rf"\(at {where}\)"):
        convert(raw)


def test_a_date_without_a_time_is_an_error_where_start_and_end_must_be_given() -> None:
    # IG TQ[Appointment]: TQ.4/TQ.5 are instants, which need the time of day
    with pytest.raises(DataTypeError, match=r"lacks the time an instant needs \(at SCH-11.5\)"):
        convert(_siu(f"^^^{START}^20240102"))


def test_a_date_without_a_time_of_a_cancelled_appointment_is_left_out() -> None:
    appointment = _appointment(_siu(tq1="|20240102|20240102", event="S15"))
    assert appointment["status"] == "cancelled" and _times(appointment) == {}


# --- which timing -------------------------------------------------------------------------------


def test_tq1_wins_over_sch11_when_it_has_a_time_else_sch11_counts() -> None:
    later = ("20240103090000+0100", "20240103100000+0100")
    tq1 = _appointment(_siu(f"^^^{START}^{END}", tq1=f"|{later[0]}|{later[1]}"))
    assert _times(tq1) == {"start": "2024-01-03T09:00:00+01:00", "end": "2024-01-03T10:00:00+01:00"}
    sch11 = _appointment(_siu(f"^^^{START}^{END}", tq1="||"))  # a TQ1 without times (priority only, say)
    assert _times(sch11) == {"start": "2024-01-02T09:00:00+01:00", "end": "2024-01-02T10:00:00+01:00"}


# --- one of start and end -----------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "times"), [
    # TQ1-6 service duration (CQ: amount^units)
    (_siu(tq1=f"45^min&minutes&ISO+|{START}|"), {"start": "2024-01-02T09:00:00+01:00", "end": "2024-01-02T09:45:00+01:00"}),
    (_siu(tq1=f'2^h|""|{END}'), {"start": "2024-01-02T08:00:00+01:00", "end": "2024-01-02T10:00:00+01:00"}),
    # SCH-9 appointment duration in SCH-10 units (minutes when SCH-10 is empty)
    (_siu(f"^^^{START}", duration="90|s"), {"start": "2024-01-02T09:00:00+01:00", "end": "2024-01-02T09:01:30+01:00"}),
    (_siu(f"^^^^{END}", duration="30|"), {"start": "2024-01-02T09:30:00+01:00", "end": "2024-01-02T10:00:00+01:00"}),
    (_siu(tq1=f"|{START}|", duration="1|h"), {"start": "2024-01-02T09:00:00+01:00", "end": "2024-01-02T10:00:00+01:00"}),
    # TQ1-6 unusable (no number, no known unit, not positive): the next duration counts
    (_siu(tq1=f"SEL^min|{START}|", duration="15|min"), {"start": "2024-01-02T09:00:00+01:00", "end": "2024-01-02T09:15:00+01:00"}),
    (_siu(tq1=f"-5^min|{START}|", duration="15|min"), {"start": "2024-01-02T09:00:00+01:00", "end": "2024-01-02T09:15:00+01:00"}),
    # a time sent as UTC stays an instant in Z
    (_siu(tq1="30^min|20240102090000+0000|"), {"start": "2024-01-02T09:00:00Z", "end": "2024-01-02T09:30:00Z"}),
])
def test_one_time_and_a_duration_give_the_other(raw: bytes, times: dict) -> None:
    appointment = _appointment(raw)
    assert appointment["status"] == "booked" and _times(appointment) == times


def test_a_derived_time_beyond_what_fhir_holds_is_an_error_at_the_duration() -> None:
    with pytest.raises(DataTypeError, match=r"\(at TQ1-6\)"):
        convert(_siu(tq1="99999999999999999999^min|99991231230000+0000|"))
    with pytest.raises(DataTypeError, match=r"before the year 1 \(at TQ1-6\)"):
        convert(_siu(tq1="1000000^d||00010102000000+0000"))


@pytest.mark.parametrize(("raw", "status", "period"), [
    (_siu(tq1=f"|{START}|", event="S15"), "cancelled", {"start": "2024-01-02T09:00:00+01:00"}),
    (_siu(f"^^^^{END}", status="Waitlist"), "waitlist", {"end": "2024-01-02T10:00:00+01:00"}),
    (_siu(tq1=f"|{START}|20240102", status="Cancelled"), "cancelled", {"start": "2024-01-02T09:00:00+01:00"}),
])
def test_one_time_without_a_duration_is_the_requested_period_where_start_and_end_may_be_missing(raw: bytes, status: str, period: dict) -> None:
    appointment = _appointment(raw)
    assert appointment["status"] == status
    assert _times(appointment) == {"requestedPeriod": [period]}


@pytest.mark.parametrize(("raw", "where", "missing"), [
    (_siu(tq1=f"|{START}|"), "TQ1-8", "end"),
    (_siu(tq1=f"||{END}", event="S26"), "TQ1-7", "start"),
    (_siu(f"^^^{START}", event="S17"), "SCH-11.5", "end"),
    (_siu(tq1=f"|{START}|\\.br\\", event="S26"), "TQ1-8", "end"),  # a line break only: no text, nothing sent
    (_siu(f"^^^{START}", duration="SEL|min"), "SCH-11.5", "end"),  # a duration that is no number gives nothing
])
def test_one_time_without_a_duration_of_a_booked_appointment_is_an_error_at_the_empty_field(raw: bytes, where: str, missing: str) -> None:
    with pytest.raises(RequiredFieldMissing, match=rf"needs its {missing} date/time.* \(at {where}\)"):
        convert(raw)


# --- neither ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "where"), [
    (_siu(), "SCH-11.4"),
    (_siu(event="S26"), "SCH-11.4"),  # noshow
    (_siu(event="S17"), "SCH-11.4"),  # entered-in-error: app-3 lets only proposed, cancelled, waitlist go
    (_siu(tq1="||"), "TQ1-7"),  # a v2.5 sender: its timing is TQ1
    (_siu("^^^\"\"^\"\""), "SCH-11.4"),  # the v2 null deletes, it is no time
])
def test_a_booked_appointment_without_start_and_end_is_an_error_naming_its_timing(raw: bytes, where: str) -> None:
    with pytest.raises(RequiredFieldMissing, match=rf"needs its start and end .*app-3.* \(at {where}\)"):
        convert(raw)


@pytest.mark.parametrize(("event", "status"), [("S15", ""), ("S12", "Waitlist"), ("S16", "")])
def test_an_appointment_that_may_go_without_start_and_end_converts_without_them(event: str, status: str) -> None:
    assert _times(_appointment(_siu(event=event, status=status))) == {}


# --- whatever is sent ---------------------------------------------------------------------------

_AWKWARD = ["SEL", "0", "1.", "0000", "2023010112", "20230101120000.1234+2400", "^^^^", "\\.br\\", '""', "x" * 300]


@pytest.mark.parametrize("event", ["S12", "S15"])
@pytest.mark.parametrize("place", ["SCH-11.4", "SCH-11.5", "TQ1-7", "TQ1-8"])
def test_any_timing_value_gives_a_valid_appointment_or_an_hl7_error(place: str, event: str) -> None:
    for awkward in _AWKWARD:
        value = awkward.replace("^", "\\S\\") if place.startswith("SCH") else awkward  # one component of SCH-11
        if place == "SCH-11.4":
            raw = _siu(f"^^^{value}^{END}", event=event)
        elif place == "SCH-11.5":
            raw = _siu(f"^^^{START}^{value}", event=event)
        elif place == "TQ1-7":
            raw = _siu(tq1=f"|{value}|{END}", event=event)
        else:
            raw = _siu(tq1=f"|{START}|{value}", event=event)
        try:
            bundle, _ = convert(raw)
        except HL7Error as error:
            assert place in str(error) or "SCH-11" in str(error), (awkward, str(error))
        else:
            assert validation_errors(bundle) == [], awkward
