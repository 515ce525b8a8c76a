"""ER7 (pipe-and-hat) encoding rules, v2.5 2.6: bytes or text in, a Message out; and back to ER7."""
from __future__ import annotations

import re
from dataclasses import dataclass

from adapters.hl7v2.charset import DEFAULT_FALLBACK, CharsetDecision, decode
from adapters.hl7v2.delimiters import Delimiters
from adapters.hl7v2.errors import Location, MessageTooLarge, ParseError
from adapters.hl7v2.escape import escape
from adapters.hl7v2.message import Message

_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_valid_ids: set[str] = set()


@dataclass(frozen=True)
class Limits:
    """Refuse oversized input before it can exhaust memory; every setting has a PULSEBRIDGE_ variable."""

    max_message_bytes: int = 16 * 1024 * 1024
    max_segments: int = 100_000


DEFAULT_LIMITS = Limits()


def parse(
    data: bytes | str,
    *,
    fallback_charset: str = DEFAULT_FALLBACK,
    limits: Limits = DEFAULT_LIMITS,
) -> Message:
    """Parse one message. Bytes are decoded by MSH-18 (or UTF-8, else the fallback); text is taken as is."""
    if len(data) > limits.max_message_bytes:
        raise MessageTooLarge(f"message of {len(data)} bytes exceeds the limit of {limits.max_message_bytes}")
    if isinstance(data, bytes):
        text, charset = decode(data, fallback=fallback_charset)
    else:
        text, charset = data, CharsetDecision("", "", "text input")
    if text[:1] == "\ufeff":
        text = text[1:]
    start = 0
    while start < len(text) and text[start] in "\r\n\t \x0b":
        start += 1
    if text[start : start + 3] != "MSH":
        what = "a batch (FHS/BHS): split it into messages first" if text[start : start + 3] in ("FHS", "BHS") else "not an HL7 v2 message"
        raise ParseError(f"{what}: it must start with MSH", offset=start)
    if start:
        text = text[start:]
    delimiters = _delimiters(text)
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    lines = text.split("\r")
    if len(lines) > limits.max_segments:
        raise MessageTooLarge(f"message has more than {limits.max_segments} segments")
    sep = delimiters.field
    rows: list[list[str]] = []
    for line in lines:
        if not line:
            continue
        fields = line.split(sep)
        seg_id = fields[0]
        if seg_id not in _valid_ids:
            if not _SEGMENT_ID.fullmatch(seg_id):
                if not line.strip():
                    continue
                raise _bad_segment(text, line, len(rows) + 1)
            _valid_ids.add(seg_id)
        if seg_id == "MSH":
            if rows:
                raise ParseError(
                    "a second MSH: several messages in one; split them first",
                    location=Location("MSH", 2),
                    offset=text.find(line),
                )
            fields.insert(1, sep)  # MSH-1 is the field separator itself: MSH-n is fields[n] from here on
        rows.append(fields)
    return Message(rows, delimiters, charset)


def _delimiters(text: str) -> Delimiters:
    """MSH-1 and MSH-2 as the message declares them (v2.5 2.5.4, 2.15.9.1-2)."""
    if len(text) < 8:
        raise ParseError("MSH is too short to declare its delimiters", location=Location("MSH", 1, 1), offset=0)
    sep = text[3]
    if sep.isalnum() or sep in "\r\n \t":
        raise ParseError(f"MSH-1 field separator {sep!r} is not a delimiter", location=Location("MSH", 1, 1), offset=3)
    end = text.find(sep, 4)
    encoding = text[4:] if end < 0 else text[4:end]
    for term in "\r\n":
        encoding = encoding.split(term, 1)[0]
    if not 4 <= len(encoding) <= 5 or len(set(encoding + sep)) != len(encoding) + 1 or any(
        ch.isalnum() or ch.isspace() for ch in encoding
    ):
        raise ParseError(
            f"MSH-2 encoding characters {encoding!r} must be 4 or 5 distinct delimiters",
            location=Location("MSH", 1, 2),
            offset=4,
        )
    return Delimiters(sep, encoding[0], encoding[1], encoding[2], encoding[3], encoding[4:5])


def _bad_segment(text: str, line: str, number: int) -> ParseError:
    shown = line[:20] + ("..." if len(line) > 20 else "")
    return ParseError(
        f"segment {number} does not start with a segment id (3 capitals/digits then the field separator): {shown!r}",
        location=Location(line[:3].upper() if line[:3].isalnum() else "", None),
        offset=text.find(line),
    )


def encode_segment(fields: list[object], delimiters: Delimiters) -> str:
    """ER7 for a decoded segment (as `Segment.decoded()` gives it); values are escaped."""
    d = delimiters
    seg_id = str(fields[0])
    out = [seg_id]
    start = 1
    if seg_id == "MSH":
        out.append(d.encoding_characters)
        start = 3
    for field in fields[start:]:
        if isinstance(field, str):
            out.append(escape(field, d))
            continue
        out.append(
            d.repetition.join(
                d.component.join(d.subcomponent.join(escape(s, d) for s in comp) for comp in rep) for rep in field
            )
        )
    return d.field.join(out)


def encode(segments: list[list[object]], delimiters: Delimiters = Delimiters()) -> str:
    """ER7 text for decoded segments, CR-terminated."""
    return "".join(encode_segment(s, delimiters) + "\r" for s in segments)
