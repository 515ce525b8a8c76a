"""ER7 encoding rules (HL7 v2.5 2.5-2.6): delimiters from MSH-1/2, terminators, BOM, nesting, limits, bad input.

Sample files under tests/data/hl7v2/ named adt_*/oru_*/three_messages_* were written for these
tests (no real patients); the corpus is Microsoft FHIR-Converter's public samples (MIT).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from adapters.hl7v2 import HL7Error, parse
from adapters.hl7v2.delimiters import Delimiters
from adapters.hl7v2.er7 import Limits, encode, read_delimiters
from adapters.hl7v2.errors import EncodingError, MessageTooLarge, ParseError

DATA = Path(__file__).resolve().parents[2] / "data" / "hl7v2"

ADT = (
    "MSH|^~\\&|HIS|HOSP|GW|GW|20240101120000||ADT^A01^ADT_A01|C1|P|2.5\r"
    "EVN|A01|20240101120000\r"
    "PID|1||111^^^HOSP^MR~222^^^OTHER^PI&1.2.3&ISO||EVERYMAN^ADAM^A||19800101|M\r"
    "PV1|1|I|WARD^1^2\r"
)


# --- delimiters -------------------------------------------------------------------------------


def test_default_delimiters_are_read_from_msh() -> None:
    msg = parse(ADT)
    assert msg.delimiters == Delimiters("|", "^", "~", "\\", "&", "")


def test_custom_delimiters_msh_hash_dollar_star_at_bang() -> None:
    msg = parse((DATA / "oru_custom_delimiters.hl7").read_bytes())
    d = msg.delimiters
    assert (d.field, d.component, d.repetition, d.escape, d.subcomponent) == ("#", "$", "*", "@", "!")
    assert msg.get("MSH-1") == "#"
    assert msg.get("MSH-2") == "$*@!"
    assert msg.message_type == "ORU^R01"
    assert msg.structure == "ORU_R01"
    assert msg.get("PID-3(2).1") == "P200"
    assert msg.get("PID-3(2).4") == "OTHER"

def test_custom_delimiters_escape_sequences_use_the_declared_characters() -> None:
    msg = parse((DATA / "oru_custom_delimiters.hl7").read_bytes())
    # @S@ decodes to this message's component separator '$', @F@ to '#', @T@ '!', @R@ '*', @E@ '@'
    assert msg.get("OBX[1]-7") == "12$16"
    assert msg.get("OBX[2]-5") == "Ratio 1#2 ! sub*rep@esc"


def test_five_encoding_characters_declare_a_truncation_character() -> None:
    msg = parse("MSH|^~\\&#|A|B|C|D|20240101||ADT^A01|1|P|2.7\rPID|1||X\\P\\Y\r")
    assert msg.delimiters.truncation == "#"
    assert msg.get("MSH-2") == "^~\\&#"
    assert msg.get("MSH-3") == "A"
    assert msg.get("PID-3") == "X#Y"


def test_read_delimiters_rejects_bad_msh2() -> None:
    with pytest.raises(ParseError) as info:
        read_delimiters("MSH|^^\\&|")
    assert info.value.location is not None and info.value.location.field == 2


# --- segment terminators, BOM, leading noise ----------------------------------------------------


@pytest.mark.parametrize("terminator", ["\r", "\n", "\r\n"])
def test_segment_terminators_cr_lf_crlf(terminator: str) -> None:
    msg = parse(ADT.replace("\r", terminator).encode("ascii"))
    assert [s.id for s in msg.segments] == ["MSH", "EVN", "PID", "PV1"]
    assert msg.get("PV1-3.2") == "1"


def test_mixed_terminators_and_blank_lines() -> None:
    text = "MSH|^~\\&|A|B|C|D|1||ADT^A01|9|P|2.5\r\n\r\nPID|1\n\nPV1|1|O\r"
    msg = parse(text)
    assert [s.id for s in msg.segments] == ["MSH", "PID", "PV1"]
    assert msg.get("PV1-2") == "O"


def test_whitespace_only_lines_are_skipped() -> None:
    msg = parse("MSH|^~\\&|A|B|C|D|1||ADT^A01|9|P|2.5\r \t \rPID|1\r\x1c\r")
    assert [s.id for s in msg.segments] == ["MSH", "PID"]


def test_no_final_terminator() -> None:
    assert parse(ADT.rstrip("\r")).get("PV1-3") == "WARD"


def test_utf8_bom_bytes_and_bom_text() -> None:
    for data in (b"\xef\xbb\xbf" + ADT.encode(), "\ufeff" + ADT):
        msg = parse(data)
        assert msg.control_id == "C1"
        assert msg.segments[0].id == "MSH"


def test_leading_whitespace_and_mllp_start_byte_are_skipped() -> None:
    assert parse("\x0b\r\n  " + ADT).control_id == "C1"


# --- nesting -------------------------------------------------------------------------------------


def test_repetitions_components_subcomponents() -> None:
    msg = parse(ADT)
    pid = msg.segment("PID")
    assert pid is not None
    reps = pid.reps(3)
    assert [r.raw for r in reps] == ["111^^^HOSP^MR", "222^^^OTHER^PI&1.2.3&ISO"]
    assert reps[1][5][1].text == "PI"
    assert reps[1][5][2].text == "1.2.3"
    assert reps[1][5][3].text == "ISO"
    assert reps[1][5][4].text == ""
    assert pid[5][2].text == "ADAM"
    assert pid.get(3, 5, 2, repetition=2) == "1.2.3"
    assert pid.get(3, repetition=3) == ""
    assert pid.decoded()[3] == [[["111"], [""], [""], ["HOSP"], ["MR"]], [["222"], [""], [""], ["OTHER"], ["PI", "1.2.3", "ISO"]]]


def test_msh1_msh2_numbering_quirk() -> None:
    msg = parse(ADT)
    msh = msg.msh
    assert msh.raw(1) == "|"
    assert msh.raw(2) == "^~\\&"
    assert msh.raw(3) == "HIS"
    assert msh.get(9, 2) == "A01"
    assert msh.get(10) == "C1"
    decoded = msh.decoded()
    assert decoded[0] == "MSH" and decoded[1] == "|" and decoded[2] == "^~\\&"
    assert decoded[3] == [[["HIS"]]]
    # MSH-2 is a literal: its escape character is not an escape sequence, nor split
    assert msh[2].text == "^~\\&"
    assert len(msh) == 12


def test_empty_and_absent_fields() -> None:
    pid = parse(ADT).segment("PID")
    assert pid is not None
    assert pid.raw(2) == "" and pid.reps(2) == [] and pid.get(2) == ""
    assert pid.get(40) == "" and pid.reps(40) == []
    assert not pid[2]


def test_explicit_null() -> None:
    msg = parse('MSH|^~\\&|A|B|C|D|1||ADT^A08|9|P|2.5\rPID|1||""\r')
    assert msg.value("PID-3").is_null


def test_encode_then_parse_keeps_values() -> None:
    d = Delimiters("#", "$", "*", "@", "!")
    er7 = encode([["MSH", "#", "$*@!", [[["A"]]], [], [], [], [], [], [[["ADT"], ["A01"]]], [[["X1"]]]], ["NTE", [[["a#b$c*d@e!f\r\ng"]]]]], d)
    msg = parse(er7)
    assert msg.get("NTE-1") == "a#b$c*d@e!f\r\ng"
    assert msg.control_id == "X1"
    assert parse(msg.encode()).segments[1].decoded() == msg.segments[1].decoded()


# --- limits -------------------------------------------------------------------------------------


def test_message_bytes_limit() -> None:
    data = ADT.encode()
    assert parse(data, limits=Limits(max_message_bytes=len(data))).control_id == "C1"
    with pytest.raises(MessageTooLarge) as info:
        parse(data, limits=Limits(max_message_bytes=len(data) - 1))
    assert info.value.code == "207"
    assert "exceeds" in str(info.value)


def test_segment_limit_counts_segments_not_terminators() -> None:
    data = ADT.replace("\r", "\r\n").encode()  # 4 segments, trailing terminator
    assert len(parse(data, limits=Limits(max_segments=4)).segments) == 4
    with pytest.raises(MessageTooLarge):
        parse(data, limits=Limits(max_segments=3))


def test_huge_segment_count_refused() -> None:
    data = ("MSH|^~\\&|A|B|C|D|1||ORU^R01|9|P|2.5\r" + "OBX|1\r" * 5000).encode()
    with pytest.raises(MessageTooLarge):
        parse(data, limits=Limits(max_segments=1000))


# --- malformed input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment", "offset"),
    [
        (b"", "must start with MSH", 0),
        (b"PID|1||X\r", "must start with MSH", 0),
        (b"\r\nEVN|A01\r", "must start with MSH", 2),
        (b"FHS|^~\\&\rMSH|^~\\&\r", "batch", 0),
        (b"MSH|^~", "too short", 0),  # truncated inside MSH-2
        (b"MSH", "too short", 0),
        (b"MSHA^~\\&|", "field separator", 3),
        (b"MSH|^^\\&|A\r", "encoding characters", 4),
        (b"MSH|^~\\|A\r", "encoding characters", 4),
        (b"MSH|^~\\&x|A\r", "encoding characters", 4),
        (b"MSH|^~\\&|A|B\rPI|1\r", "segment 2", 13),
        (b"MSH|^~\\&|A|B\rpid|1\r", "segment 2", 13),
        (b"MSH|^~\\&|A|B\rPID|1\rMSH|^~\\&|C\r", "second MSH", 19),
    ],
)
def test_malformed_input_raises_parse_error_with_offset(data: bytes, fragment: str, offset: int) -> None:
    with pytest.raises(ParseError) as info:
        parse(data)
    assert fragment in str(info.value)
    assert info.value.offset == offset
    assert info.value.code == "100"
    assert info.value.rejects


def test_second_msh_location_and_byte_offset_with_multibyte_text() -> None:
    data = "MSH|^~\\&|张三\r\nPID|1\r\nMSH|^~\\&|\r\n".encode("utf-8")
    with pytest.raises(ParseError) as info:
        parse(data)
    assert info.value.location is not None and (info.value.location.segment, info.value.location.sequence) == ("MSH", 2)
    assert data[info.value.offset : info.value.offset + 3] == b"MSH"
    assert info.value.offset == data.index(b"MSH", 1)


def test_bad_segment_offset_counts_bytes_in_gb18030() -> None:
    data = "MSH|^~\\&|李四\rbad|x\r".encode("gb18030")
    with pytest.raises(ParseError) as info:
        parse(data)
    assert info.value.offset == data.index(b"bad")


def test_undecodable_bytes_raise_encoding_error() -> None:
    data = b"MSH|^~\\&|A|B|C|D|1||ADT^A01|9|P|2.5|||||CHN|UNICODE UTF-8\rPID|1||\xff\xfe\r"
    with pytest.raises(EncodingError) as info:
        parse(data)
    assert isinstance(info.value, HL7Error)
    assert info.value.offset == data.index(b"\xff")


# --- corpus ---------------------------------------------------------------------------------------


def test_whole_corpus_parses(corpus_dir: Path) -> None:
    files = sorted((corpus_dir / "hl7v2").iterdir())
    assert len(files) == 139
    for path in files:
        msg = parse(path.read_bytes())
        assert msg.control_id, path.name
        assert msg.structure, path.name
        assert msg.segments[0].id == "MSH"
        assert all(len(s.id) == 3 for s in msg.segments), path.name
