"""Acknowledgments (HL7 v2.5 2.9 original/enhanced mode, MSH 2.15.9, MSA 2.15.8, ERR 2.15.5)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import hl7
import pytest

from adapters.hl7v2 import parse
from adapters.hl7v2.ack import AckMode, ack_bytes, ack_code, ack_for_unparseable, ack_mode, build_ack
from adapters.hl7v2.errors import (
    ApplicationError,
    DataTypeError,
    HL7Error,
    Location,
    ParseError,
    RequiredFieldMissing,
    UnsupportedVersion,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "hl7v2"
NOW = datetime(2024, 3, 15, 8, 30, 5, tzinfo=timezone(timedelta(hours=8)))


def adt(version: str = "2.5", msh15: str = "", msh16: str = "", extra: str = "") -> str:
    return (
        f"MSH|^~\\&|HIS^1.2.3^ISO|HOSP|PULSEBRIDGE|GW|20240315083000||ADT^A04|CTRL-1|P|{version}|||{msh15}|{msh16}{extra}\r"
        "PID|1||123^^^HOSP^MR||DOE^JANE\r"
    )


def test_original_mode_accept_header_swaps_and_echoes() -> None:
    ack = parse(build_ack(parse(adt()), now=NOW))
    msh = ack.msh
    assert msh.raw(3) == "PULSEBRIDGE" and msh.raw(4) == "GW"
    assert msh.raw(5) == "HIS^1.2.3^ISO" and msh.raw(6) == "HOSP"
    assert msh.raw(7) == "20240315083005+0800"
    assert msh.raw(9) == "ACK^A04^ACK"
    assert ack.structure == "ACK"
    assert msh.raw(11) == "P" and msh.raw(12) == "2.5"
    assert ack.control_id and ack.control_id != "CTRL-1" and len(ack.control_id) <= 20
    assert ack.get("MSA-1") == "AA" and ack.get("MSA-2") == "CTRL-1"
    assert ack.segment("ERR") is None
    assert [s.id for s in ack] == ["MSH", "MSA"]


def test_control_ids_are_fresh() -> None:
    msg = parse(adt())
    ids = {parse(build_ack(msg)).control_id for _ in range(50)}
    assert len(ids) == 50


def test_naive_now_gets_the_local_offset() -> None:
    ack = parse(build_ack(parse(adt()), now=datetime(2024, 1, 2, 3, 4, 5)))
    stamp = ack.msh.raw(7)
    assert stamp.startswith("20240102030405") and stamp[14] in "+-" and len(stamp) == 19


def test_application_error_is_ae_with_err_segment_v25() -> None:
    error = DataTypeError("birth date 2024|13|45 is not a date", location=Location("PID", 1, 7, 1, 1))
    ack = parse(build_ack(parse(adt()), error=error, now=NOW))
    assert ack.get("MSA-1") == "AE"
    assert ack.get("MSA-3") == ""  # v2.5+: the text goes to ERR, not MSA-3
    err = ack.segment("ERR")
    assert err is not None
    assert err.raw(1) == ""
    assert err.raw(2) == "PID^1^7^1^1"
    assert err.raw(3) == "102^Data type error^HL70357"
    assert err.get(4) == "E"
    assert "birth date 2024|13|45 is not a date" in err.get(7)  # delimiters escaped in ER7, decoded back
    assert "\\F\\" in err.raw(7)


def test_reject_is_ar() -> None:
    ack = parse(build_ack(parse(adt()), error=UnsupportedVersion("version 9.9 not taken", location=Location("MSH", 1, 12))))
    assert ack.get("MSA-1") == "AR"
    assert ack.get("ERR-3") == "203"
    assert ack.get("ERR-3.3") == "HL70357"
    assert ack.get("ERR-2") == "MSH"
    assert ack.value("ERR-2").decoded() == [["MSH"], ["1"], ["12"], ["1"]]


def test_error_without_location_has_no_erl() -> None:
    ack = parse(build_ack(parse(adt()), error=ApplicationError("database unavailable")))
    assert ack.get("MSA-1") == "AE"
    assert ack.segment("ERR").raw(2) == ""  # type: ignore[union-attr]
    assert ack.get("ERR-3") == "207"


def test_refusal_without_error_and_note_on_success() -> None:
    refused = parse(build_ack(parse(adt()), accepted=False, text="duplicate"))
    assert refused.get("MSA-1") == "AR" and refused.get("ERR-3") == "207" and refused.get("ERR-8") == "duplicate"
    noted = parse(build_ack(parse(adt()), text="stored as Patient/1"))
    assert noted.get("MSA-1") == "AA"
    assert noted.get("ERR-3") == "0" and noted.get("ERR-4") == "I" and noted.get("ERR-8") == "stored as Patient/1"


@pytest.mark.parametrize("version", ["2.3", "2.4", "2.3.1", "2.2"])
def test_before_v25_text_in_msa3_and_err1_eld(version: str) -> None:
    error = RequiredFieldMissing("PID-3 is required", location=Location("PID", 1, 3))
    text = build_ack(parse(adt(version)), error=error)
    ack = parse(text)
    assert ack.get("MSA-1") == "AR"
    assert ack.get("MSA-3") == "PID-3 is required"
    assert ack.value("ERR-1").decoded() == [["PID"], ["1"], ["3"], ["101", "Required field missing", "HL70357"]]
    assert ack.segment("ERR").raw(2) == ""  # type: ignore[union-attr]
    assert ack.msh.raw(9) == ("ACK^A04^ACK" if version in ("2.3.1", "2.4") else "ACK^A04")


def test_v24_without_location() -> None:
    ack = parse(build_ack(parse(adt("2.4")), error=ParseError("garbled")))
    assert ack.value("ERR-1").decoded() == [[""], [""], [""], ["100", "Segment sequence error", "HL70357"]]


@pytest.mark.parametrize(
    ("msh15", "msh16", "expected"),
    [
        ("", "", AckMode(False)),
        ("AL", "NE", AckMode(True, "AL", "NE")),
        ("NE", "AL", AckMode(True, "NE", "AL")),
        ("ER", "SU", AckMode(True, "ER", "SU")),
        ("AL", "", AckMode(True, "AL", "AL")),
        ("", "ER", AckMode(True, "AL", "ER")),
    ],
)
def test_ack_mode(msh15: str, msh16: str, expected: AckMode) -> None:
    assert ack_mode(parse(adt(msh15=msh15, msh16=msh16))) == expected


def test_table_0155_conditions() -> None:
    original = AckMode(False)
    assert not original.accept_ack_wanted() and original.application_ack_wanted(True) and original.application_ack_wanted(False)
    for condition, on_success, on_error in (("AL", True, True), ("NE", False, False), ("ER", False, True), ("SU", True, False)):
        mode = AckMode(True, condition, condition)
        assert mode.accept_ack_wanted(True) is on_success and mode.accept_ack_wanted(False) is on_error
        assert mode.application_ack_wanted(True) is on_success and mode.application_ack_wanted(False) is on_error


def test_enhanced_mode_accept_codes() -> None:
    msg = parse(adt(msh15="AL", msh16="ER"))
    assert parse(build_ack(msg)).get("MSA-1") == "CA"
    assert parse(build_ack(msg, error=ApplicationError("x"))).get("MSA-1") == "CE"
    assert parse(build_ack(msg, error=ParseError("x"))).get("MSA-1") == "CR"
    assert parse(build_ack(msg, application=True)).get("MSA-1") == "AA"
    assert parse(build_ack(msg, error=ApplicationError("x"), application=True)).get("MSA-1") == "AE"


def test_ack_code_table() -> None:
    original, enhanced = AckMode(False), AckMode(True, "AL", "AL")
    assert ack_code(original) == "AA" and ack_code(original, accepted=False) == "AR"
    assert ack_code(enhanced, error=DataTypeError("x")) == "CE"
    assert ack_code(enhanced, error=HL7Error("x")) == "CR"


def test_ack_uses_the_incoming_delimiters_and_escapes_text() -> None:
    msg = parse((DATA / "oru_custom_delimiters.hl7").read_bytes())
    text = build_ack(msg, error=ApplicationError("bad value a#b$c*d@e!f"))
    assert text.startswith("MSH#$*@!#")
    ack = parse(text)
    assert ack.delimiters == msg.delimiters
    assert ack.get("MSA-2") == "LAB7"
    assert "bad value a#b$c*d@e!f" in ack.get("ERR-7")
    assert ack.msh.raw(9) == "ACK$R01$ACK"


def test_ack_bytes_in_gb18030_echo_msh18() -> None:
    msg = parse((DATA / "adt_a01_gb18030.hl7").read_bytes())
    data = ack_bytes(msg, error=ApplicationError("患者姓名缺失"))
    assert "北京协和医院".encode("gb18030") in data
    ack = parse(data)
    assert ack.charset.codec == "gb18030" and ack.charset.reason == "MSH-18"
    assert ack.msh.get(18) == "GB 18030-2000"
    assert ack.msh.get(5) == "HIS" and ack.msh.get(6) == "北京协和医院"
    assert "患者姓名缺失" in ack.get("ERR-7")
    assert ack.get("MSA-1") == "CE"  # MSH-15 AL / MSH-16 NE: enhanced mode


def test_ack_bytes_gbk_without_msh18_answers_in_the_fallback() -> None:
    msg = parse((DATA / "adt_a04_gbk_no_msh18.hl7").read_bytes())
    data = ack_bytes(msg)
    assert "上海仁济医院".encode("gbk") in data
    ack = parse(data)
    assert ack.msh.get(18) == "" and ack.charset.codec == "gb18030"
    assert ack.msh.get(6) == "上海仁济医院"


def test_ack_bytes_8859_1_replaces_what_it_cannot_carry() -> None:
    msg = parse((DATA / "adt_a08_8859_1.hl7").read_bytes())
    data = ack_bytes(msg, error=ApplicationError("Fehler bei Müller: 张"))
    ack = parse(data)
    assert ack.charset.codec == "latin-1"
    assert ack.get("MSH-6") == "Klinikum Köln"
    assert "Müller: ?" in ack.get("MSA-3")  # v2.3: the text goes to MSA-3


def test_ack_bytes_for_text_input_and_utf16() -> None:
    assert ack_bytes(parse(adt())).startswith(b"MSH|")
    text = adt()
    msg = parse(b"\xff\xfe" + text.encode("utf-16-le"))
    data = ack_bytes(msg)
    assert data.startswith(b"\xff\xfe")
    assert parse(data).get("MSA-2") == "CTRL-1"


def test_python_hl7_reads_our_ack() -> None:
    text = build_ack(parse(adt()), error=DataTypeError("bad", location=Location("PID", 1, 7)))
    other = hl7.parse(text)
    assert str(other.segment("MSA")[1]) == "AE"
    assert str(other.segment("MSA")[2]) == "CTRL-1"


# --- unparseable input ---------------------------------------------------------------------------


def test_unparseable_echoes_control_id_and_swaps() -> None:
    data = adt().encode() + b"bad segment\r"
    with pytest.raises(ParseError) as info:
        parse(data)
    ack = parse(ack_for_unparseable(data, info.value, now=NOW))
    assert ack.get("MSA-1") == "AR" and ack.get("MSA-2") == "CTRL-1"
    assert ack.msh.raw(3) == "PULSEBRIDGE" and ack.msh.raw(5) == "HIS^1.2.3^ISO"
    assert ack.get("ERR-3") == "100"
    assert "bad segment" in ack.get("ERR-7")


def test_unparseable_enhanced_mode_is_cr() -> None:
    data = adt(msh15="AL", msh16="NE").encode() + b"MSH|^~\\&|again\r"
    with pytest.raises(ParseError) as info:
        parse(data)
    assert parse(ack_for_unparseable(data, info.value)).get("MSA-1") == "CR"


def test_unparseable_with_bad_msh2_uses_default_delimiters() -> None:
    data = b"MSH|^^\\&|APP|FAC|GW|GW|1||ADT^A01|ID-9|P|2.5\r"
    with pytest.raises(ParseError) as info:
        parse(data)
    ack = parse(ack_for_unparseable(data, info.value))
    assert ack.delimiters.encoding_characters == "^~\\&"
    assert ack.get("MSA-2") == "ID-9"
    assert ack.get("MSH-3") == "GW" and ack.get("MSH-5") == "APP"


def test_unparseable_without_msh() -> None:
    data = b"\x00\x01 not hl7 at all"
    ack = parse(ack_for_unparseable(data, ParseError("not an HL7 v2 message", offset=0)))
    assert ack.get("MSA-1") == "AR" and ack.get("MSA-2") == ""
    assert ack.get("ERR-3") == "100"


def test_unparseable_gb18030_answers_in_gb18030() -> None:
    text = "MSH|^~\\&|HIS|协和|GW|GW|1||ADT^A01|CN9|P|2.5|||||CHN|GB 18030-2000\rPID|1||\u20ac\r"
    data = text.encode("gb18030") + b"\x81"  # truncated multi-byte sequence
    with pytest.raises(HL7Error) as info:
        parse(data)
    out = ack_for_unparseable(data, info.value)
    assert "协和".encode("gb18030") in out
    ack = parse(out)
    assert ack.get("MSA-2") == "CN9" and ack.get("MSH-6") == "协和" and ack.msh.get(18) == "GB 18030-2000"


def test_unparseable_unknown_charset_is_not_echoed() -> None:
    data = b"MSH|^~\\&|A|B|GW|GW|1||ADT^A01|Q1|P|2.5|||||XX|KLINGON\r"
    with pytest.raises(HL7Error) as info:
        parse(data)
    ack = parse(ack_for_unparseable(data, info.value))
    assert ack.msh.get(18) == "" and ack.get("MSA-2") == "Q1"
    assert ack.get("ERR-3") == "102"
