"""Escape sequences (HL7 v2.5 2.7.4-2.7.6): decoded on access with the message's own escape character."""
from __future__ import annotations

import pytest

from adapters.hl7v2 import parse
from adapters.hl7v2.delimiters import DEFAULT, Delimiters
from adapters.hl7v2.escape import escape, unescape

CUSTOM = Delimiters("#", "$", "*", "@", "!")


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("a\\F\\b", "a|b"),
        ("a\\S\\b", "a^b"),
        ("a\\T\\b", "a&b"),
        ("a\\R\\b", "a~b"),
        ("a\\E\\b", "a\\b"),
        ("\\X41\\", "A"),
        ("\\X4142\\", "AB"),
        ("\\XE5BCA0E4B889\\", "张三"),  # multi-byte UTF-8 in hex
        ("\\Xe5bca0\\", "张"),  # lower-case hex digits
        ("\\XE9\\", "é"),  # not UTF-8: read as Latin-1
        ("\\X0D0A\\", "\r\n"),
        ("one\\.br\\two", "one\ntwo"),
        ("\\H\\bold\\N\\ plain", "bold plain"),  # highlighting dropped, text kept
        ("a\\.sp\\b", "ab"),
        ("a\\.sp2\\b\\.in+4\\c\\.ti-2\\d\\.sk3\\e\\.ce\\f\\.fi\\g\\.nf\\h", "abcdefgh"),
        ("\\C2842\\x\\M2442\\", "x"),  # charset switches carry no text
        ("\\Z01\\z", "z"),  # locally defined
        ("\\XZZ\\", ""),  # bad hex carries nothing
        ("\\X414\\", ""),  # odd digits
        ("lone \\ escape", "lone \\ escape"),  # no closing escape: literal
        ("\\F\\\\S\\\\T\\", "|^&"),
        ("plain", "plain"),
    ],
)
def test_unescape_default_delimiters(raw: str, text: str) -> None:
    assert unescape(raw, DEFAULT) == text


def test_unescape_uses_the_message_escape_character() -> None:
    assert unescape("1@F@2 @S@ @T@ @R@ @E@ @.br@x", CUSTOM) == "1#2 $ ! * @ \nx"
    assert unescape("keep \\F\\ as is", CUSTOM) == "keep \\F\\ as is"


def test_truncation_escape_p() -> None:
    d = Delimiters("|", "^", "~", "\\", "&", "#")
    assert unescape("a\\P\\b", d) == "a#b"
    assert escape("a#b", d) == "a\\P\\b"
    assert unescape("a\\P\\b", DEFAULT) == "ab"  # no truncation character declared: nothing to stand for


@pytest.mark.parametrize("text", ["a|b^c&d~e\\f", "line1\nline2", "cr\rhere", "", "张三 Müller", "\\F\\ looks escaped"])
def test_escape_round_trips(text: str) -> None:
    for d in (DEFAULT, CUSTOM):
        encoded = escape(text, d)
        for ch in (d.field, d.component, d.repetition, d.subcomponent, "\r", "\n"):
            assert ch not in encoded
        assert unescape(encoded, d) == text


def test_newline_uses_hex_when_dot_is_a_delimiter() -> None:
    d = Delimiters("|", "^", "~", ".", "&")
    assert escape("a\nb", d) == "a.X0A.b"
    assert unescape(escape("a\nb.c", d), d) == "a\nb.c"


def test_escapes_decoded_on_access_in_a_message() -> None:
    msg = parse(
        "MSH|^~\\&|A|B|C|D|1||ORU^R01|9|P|2.5\r"
        "OBX|1|FT|X||Na\\S\\K \\T\\ \\F\\ \\R\\ \\E\\\\.br\\\\H\\!\\N\\\\XE78E8B\\|\r"
    )
    value = msg.value("OBX-5")
    assert value.raw == "Na\\S\\K \\T\\ \\F\\ \\R\\ \\E\\\\.br\\\\H\\!\\N\\\\XE78E8B\\"  # kept as sent
    assert value.text == "Na^K & | ~ \\\n!王"
    # an escaped delimiter is data, never a split point
    assert msg.get("OBX-5.2") == ""
    assert msg.segments[1].decoded()[5] == [[["Na^K & | ~ \\\n!王"]]]


def test_hex_escape_is_read_in_the_message_character_set() -> None:
    """v2.5 2.7.5: \\Xhh\\ carries bytes; a GB 18030 message's bytes are GB 18030 text (你 = C4 E3), not Latin-1."""
    gb = parse("MSH|^~\\&|HIS|H|||20240101||ADT^A01|1|P|2.5|||||CHN|GB 18030-2000\rPID|1||1||王\\XC4E3\\\r".encode("gb18030"))
    assert gb.segment("PID")[5].text == "王你"
    utf8 = parse(b"MSH|^~\\&|HIS|H|||20240101||ADT^A01|1|P|2.5|||||||UNICODE UTF-8\rPID|1||1||\\XE4BDA0\\\r")
    assert utf8.segment("PID")[5].text == "你"
    # bytes that are not text in the declared set still carry something rather than vanish
    assert unescape("\\XFF\\", Delimiters(hex_codec="utf-8")) == "ÿ"
