"""Character sets (HL7 v2.5 2.15.9.18, table 0211): MSH-18 to codec; no MSH-18 -> UTF-8 else the fallback."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from adapters.hl7v2 import parse
from adapters.hl7v2.charset import CharsetDecision, codec_for, declared_charset, decode
from adapters.hl7v2.errors import EncodingError

DATA = Path(__file__).resolve().parents[2] / "data" / "hl7v2"


def _msg(msh18: str, pid5: str, codec: str) -> bytes:
    return (f"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X|P|2.5|||||CN|{msh18}\rPID|1||1||{pid5}\r").encode(codec)


# One sample per table 0211 family with text only that set can carry.
FAMILIES = [
    ("ASCII", "DOE^JOHN", "ascii"),
    ("ISO IR6", "DOE^JOHN", "ascii"),
    ("8859/1", "MÜLLER^JÜRGEN", "latin-1"),
    ("8859/2", "DVOŘÁK^ANTONÍN", "iso8859-2"),
    ("8859/3", "ĦAL^ĠORĠ", "iso8859-3"),
    ("8859/4", "ŅEMUNS^ĀRIS", "iso8859-4"),
    ("8859/5", "ИВАНОВ^ИВАН", "iso8859-5"),
    ("8859/6", "محمد^علي", "iso8859-6"),
    ("8859/7", "ΠΑΠΑΔΟΠΟΥΛΟΣ^ΓΙΩΡΓΟΣ", "iso8859-7"),
    ("8859/8", "כהן^דוד", "iso8859-8"),
    ("8859/9", "YILMAZ^ŞÜKRÜ", "iso8859-9"),
    ("8859/15", "DUPONT^ŒDIPE €", "iso8859-15"),
    ("ISO IR14", "ﾔﾏﾀﾞ^ﾀﾛｳ", "shift_jis"),
    ("ISO IR87", "山田^太郎", "iso2022_jp"),
    ("ISO IR159", "山田^太郎", "iso2022_jp_2"),
    ("GB 18030-2000", "张三^㐀", "gb18030"),
    ("KS X 1001", "김^민수", "euc_kr"),
    ("BIG-5", "陳^大文", "big5"),
    ("UNICODE", "张三^Müller", "utf-8"),
    ("UNICODE UTF-8", "张三^Müller", "utf-8"),
]


@pytest.mark.parametrize(("msh18", "name", "codec"), FAMILIES)
def test_each_table_0211_family_decodes(msh18: str, name: str, codec: str) -> None:
    msg = parse(_msg(msh18, name, codec))
    assert msg.get("PID-5.1") + "^" + msg.get("PID-5.2") == name.strip()
    assert msg.charset == CharsetDecision(codec_for(msh18), msh18, "MSH-18")


def test_every_table_value_is_mapped_or_refused() -> None:
    table = json.loads(resources.files("adapters.hl7v2").joinpath("data/charsets.json").read_text("utf-8"))["table_0211"]
    for value, codec in table.items():
        if codec is None:
            with pytest.raises(EncodingError):
                codec_for(value)
        else:
            assert codec_for(value) == codec
            "x".encode(codec)  # a real codec


def test_msh18_spelling_variants() -> None:
    assert codec_for("  gb   18030-2000 ") == "gb18030"
    assert codec_for("UTF-8") == "utf-8"
    assert codec_for("GBK") == "gb18030"


def test_real_gb18030_bytes_with_msh18() -> None:
    data = (DATA / "adt_a01_gb18030.hl7").read_bytes()
    assert "张三".encode("gb18030") in data
    assert b"\x81\x39\xee\x39" in data  # U+3400: a four-byte GB 18030 sequence, outside GBK
    msg = parse(data)
    assert msg.charset == CharsetDecision("gb18030", "GB 18030-2000", "MSH-18")
    assert msg.get("PID-5.1") == "张三"
    assert msg.get("PID-5.3") == "㐀"
    assert msg.get("MSH-4") == "北京协和医院"
    assert msg.get("PID-11.3") == "北京市"


def test_gbk_bytes_with_empty_msh18_fall_back_and_record_it() -> None:
    data = (DATA / "adt_a04_gbk_no_msh18.hl7").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    msg = parse(data)
    assert msg.charset.codec == "gb18030"
    assert msg.charset.declared == ""
    assert "fallback" in msg.charset.reason
    assert msg.get("PID-5") == "李四"
    assert msg.get("MSH-4") == "上海仁济医院"


def test_fallback_is_configurable() -> None:
    data = _msg("", "MÜLLER", "latin-1")
    msg = parse(data, fallback_charset="latin-1")
    assert msg.charset.codec == "latin-1" and msg.get("PID-5") == "MÜLLER"


def test_no_msh18_valid_utf8_is_utf8() -> None:
    msg = parse(_msg("", "张三", "utf-8"))
    assert msg.charset == CharsetDecision("utf-8", "", "no MSH-18: valid UTF-8")
    assert msg.get("PID-5") == "张三"


def test_8859_1_sample_file() -> None:
    msg = parse((DATA / "adt_a08_8859_1.hl7").read_bytes())
    assert msg.charset.codec == "latin-1"
    assert msg.get("PID-5") == "Müller"
    assert msg.get("PID-11.1") == "Hauptstraße 5"


def test_utf8_sample_file_with_declared_unicode() -> None:
    msg = parse((DATA / "oru_escapes_utf8.hl7").read_bytes())
    assert msg.charset == CharsetDecision("utf-8", "UNICODE UTF-8", "MSH-18")
    assert msg.get("OBX[3]-5") == "血糖 偏高"


def test_unknown_and_unsupported_msh18() -> None:
    with pytest.raises(EncodingError, match="unknown character set"):
        parse(_msg("KLINGON", "X", "ascii"))
    with pytest.raises(EncodingError, match="not supported"):
        parse(_msg("CNS 11643-1992", "X", "ascii"))


def test_bytes_that_are_neither_utf8_nor_fallback() -> None:
    data = b"MSH|^~\\&|A\rPID|1||\x80\xff\r"
    with pytest.raises(EncodingError) as info:
        parse(data, fallback_charset="ascii")
    assert info.value.offset == data.index(b"\x80")


def test_byte_order_marks() -> None:
    text = "MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\rPID|1||1||王^五\r"
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        msg = parse(bom + text.encode(codec))
        assert msg.charset.codec == codec and msg.charset.reason.startswith("byte-order mark")
        assert msg.get("PID-5") == "王"


def test_declared_charset_reads_first_repetition_and_custom_separator() -> None:
    assert declared_charset(b"MSH#$*@!#A#B#C#D#1##ADT$A01#X#P#2.5######UNICODE UTF-8*GB 18030-2000\r") == "UNICODE UTF-8"
    assert declared_charset(b"MSH|^~\\&|A\r") == ""
    assert declared_charset(b"garbage") == ""


def test_decode_direct() -> None:
    text, decision = decode("MSH|^~\\&|é".encode("utf-8"))
    assert text.endswith("é") and decision.codec == "utf-8"
