"""The message model (HL7 v2.5 2.5-2.6): path access, lazy values, header properties."""
from __future__ import annotations

import pytest

from adapters.hl7v2 import parse
from adapters.hl7v2.errors import ParseError
from adapters.hl7v2.message import Path, parse_path

ORU = (
    "MSH|^~\\&|LIS|LAB|GW|GW|20240101120000+0800||ORU^R01|M42|P|2.5.1|||AL|ER|CHN|UNICODE UTF-8\r"
    "PID|1||A1^^^H^MR~B2^^^X&1.2.3&ISO^PI||WANG^XIAOMING\r"
    "OBR|1||F1|GLU^Glucose^L\r"
    "OBX|1|NM|GLU^Glucose^L||5.4|mmol/L\r"
    "OBX|2|NM|HBA1C^HbA1c^L||6.1|%\r"
    "OBX|3|ST|NOTE^Note^L||fasting \\T\\ rested~second rep\r"
)


@pytest.fixture(scope="module")
def oru():
    return parse(ORU)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("PID-3(2).4.1", "X"),
        ("PID-3(2).4.2", "1.2.3"),
        ("PID-3(2).4", "X"),  # a composite read as primitive: its first leaf
        ("PID-3(2)", "B2"),
        ("PID-3", "A1"),
        ("PID-3(3)", ""),
        ("PID-5.2", "XIAOMING"),
        ("OBX[3]-5", "fasting & rested"),
        ("OBX[3]-5(2)", "second rep"),
        ("OBX[2]-5", "6.1"),
        ("OBX-5", "5.4"),
        ("OBX[4]-5", ""),
        ("MSH.9.2", "R01"),
        ("MSH-9.1", "ORU"),
        ("MSH-1", "|"),
        ("MSH-2", "^~\\&"),
        ("MSH-10", "M42"),
        ("ZZZ-1", ""),
        ("PID-99", ""),
    ],
)
def test_path_access(oru, path: str, expected: str) -> None:
    assert oru.get(path) == expected


def test_parse_path_grammar() -> None:
    assert parse_path("PID-3(2).4.1") == Path("PID", 1, 3, 2, 4, 1)
    assert parse_path("OBX[3]-5") == Path("OBX", 3, 5, 1, None, None)
    assert parse_path("MSH.9.2") == Path("MSH", 1, 9, 1, 2, None)
    for bad in ("PID", "pid-3", "PID-x", "PID-3.", "P1-3", ""):
        with pytest.raises(ValueError):
            parse_path(bad)


def test_value_objects(oru) -> None:
    value = oru.value("PID-3(2)")
    assert value.raw == "B2^^^X&1.2.3&ISO^PI"
    assert [p.raw for p in value.parts()] == ["B2", "", "", "X&1.2.3&ISO", "PI"]
    assert [p.raw for p in value[4].parts()] == ["X", "1.2.3", "ISO"]
    assert value.get(4, 3) == "ISO"
    assert value.decoded() == [["B2"], [""], [""], ["X", "1.2.3", "ISO"], ["PI"]]
    assert str(value[5]) == "PI"
    assert bool(value) and not oru.value("PID-2")
    with pytest.raises(IndexError):
        value[0]



@pytest.mark.parametrize("raw", ["B2^^^X&1.2.3&ISO^PI", "A\\T\\B&s\\S\\2^x", "", "only", "^^^^^^^^^^^^^^^tail"])
def test_texts_read_as_the_values_do(raw: str) -> None:
    """Value.texts/subtexts split the raw text themselves; they must give what the Values give."""
    value = parse(f"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||{raw}\r").segment("PID")[3]
    fresh = parse(f"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||{raw}\r").segment("PID")[3]
    assert value.texts(12) == ["", *(fresh[k].text for k in range(1, 13))]
    for k in range(1, 6):
        part = fresh[k]
        expected = [s.text for s in part.parts()] if part.raw else []
        assert list(value.subtexts(k)) == expected

def test_segments_and_occurrences(oru) -> None:
    assert [s.id for s in oru] == ["MSH", "PID", "OBR", "OBX", "OBX", "OBX"]
    obx = oru.all("OBX")
    assert [s.sequence for s in obx] == [1, 2, 3]
    assert oru.segment("OBX", 2).fields is obx[1].fields  # type: ignore[union-attr]
    assert oru.segment("NTE") is None
    loc = obx[2].location(5)
    assert (loc.segment, loc.sequence, loc.field) == ("OBX", 3, 5)
    assert str(loc) == "OBX[3]-5"


def test_header_properties(oru) -> None:
    assert oru.control_id == "M42"
    assert oru.version == "2.5.1"
    assert oru.message_code == "ORU" and oru.trigger_event == "R01"
    assert oru.message_type == "ORU^R01"
    assert oru.structure == "ORU_R01"
    assert oru.processing_id == "P"
    assert oru.accept_ack_type == "AL" and oru.application_ack_type == "ER"


@pytest.mark.parametrize(
    ("msh9", "structure"),
    [
        ("ADT^A04", "ADT_A01"),
        ("ADT^A08", "ADT_A01"),
        ("ADT^A40", "ADT_A39"),
        ("ADT^A04^ADT_A99", "ADT_A99"),  # MSH-9.3 wins
        ("ORM^O01", "ORM_O01"),
        ("ZZZ^Z01", "ZZZ_Z01"),
        ("ACK^A01", "ACK"),
    ],
)
def test_structure_derivation(msh9: str, structure: str) -> None:
    assert parse(f"MSH|^~\\&|A|B|C|D|1||{msh9}|1|P|2.5\r").structure == structure


def test_require_names_the_location(oru) -> None:
    assert oru.require("PID-5") == "WANG"
    with pytest.raises(ParseError) as info:
        oru.require("PID-8")
    assert str(info.value.location) == "PID-8"
    assert info.value.code == "100"


def test_message_encode_restores_msh(oru) -> None:
    assert oru.encode() == ORU
    assert parse(oru.encode()).segments[1].decoded() == oru.segments[1].decoded()


def test_parsing_is_lazy() -> None:
    msg = parse(ORU)
    assert msg._segments is None  # no Segment objects until asked for
    assert msg.control_id == "M42" and msg.get("OBX[2]-5") == "6.1" and len(msg.all("OBX")) == 3
    assert msg._segments is None  # header, path and all() reads build only what they return
    assert len(msg.segments) == 6
    assert msg._segments is not None
    assert msg.segment("OBX", 2) is msg.segments[4]
