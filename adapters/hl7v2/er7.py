"""ER7 (pipe-and-hat) encoding rules, v2.5 2.6: bytes or text in, a Message out; and back to ER7."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from operator import itemgetter

from adapters.hl7v2.charset import BOMS, DEFAULT_FALLBACK, CharsetDecision, decode
from adapters.hl7v2.delimiters import DEFAULT, Delimiters
from adapters.hl7v2.errors import Location, MessageTooLarge, ParseError
from adapters.hl7v2.escape import escape
from adapters.hl7v2.message import Message

_USUAL = "MSH|^~\\&|"  # the recommended delimiters, as nearly every sender writes them
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_valid_ids: set[str] = set()  # segment ids seen and checked (never MSH: see _parse_text)


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
    """Parse one message. Bytes are decoded by MSH-18 (or UTF-8, else the fallback); text is taken as is.

    Errors carry the offset in the input: bytes for bytes input, characters for text input.
    """
    if len(data) > limits.max_message_bytes:
        raise MessageTooLarge(f"message of {len(data)} bytes exceeds the limit of {limits.max_message_bytes}")
    if isinstance(data, bytes):
        text, charset = decode(data, fallback=fallback_charset)
    else:
        text, charset = data, CharsetDecision("", "", "text input")
    try:
        nul = text.find("\x00")
        if nul >= 0:  # ER7 text (v2.5 2.6) has no NUL; PostgreSQL text could not hold it
            raise ParseError("the message contains a NUL character (U+0000), which HL7 v2 ER7 does not allow", offset=nul)
        return _parse_text(text, charset, limits)
    except ParseError as exc:
        if exc.offset is None:
            raise
        raise ParseError(exc.reason, location=exc.location, offset=_input_offset(data, text, charset, exc.offset)) from None


def _parse_text(text: str, charset: CharsetDecision, limits: Limits) -> Message:
    """Segments and fields of decoded text; ParseError offsets are positions in `text`."""
    start = 0
    while start < len(text) and text[start] in "\ufeff\r\n\t \x0b":
        start += 1
    if text[start : start + 3] != "MSH":
        what = "a batch (FHS/BHS): split it into messages first" if text[start : start + 3] in ("FHS", "BHS") else "not an HL7 v2 message"
        raise ParseError(f"{what}: it must start with MSH", offset=start)
    if start:
        text = text[start:]
    try:
        delimiters = read_delimiters(text)
    except ParseError as exc:
        raise ParseError(exc.reason, location=exc.location, offset=start + (exc.offset or 0)) from None
    if charset.codec:
        delimiters = _reading_hex_in(delimiters, charset.codec)
    source = text
    if "\r" not in text:  # LF only (files, some senders): one pass, not two replaces and a split
        lines = text.split("\n")
    elif "\n" in text:
        lines = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    else:
        lines = text.split("\r")
    if len(lines) > limits.max_segments and sum(1 for line in lines if line) > limits.max_segments:
        raise MessageTooLarge(f"message has more than {limits.max_segments} segments")
    sep = delimiters.field
    # Fast path: split every line, then check the segment ids in bulk (C loops, no per-line Python).
    rows = [line.split(sep) for line in lines if line]
    # _valid_ids never holds MSH, so a second MSH also takes the careful path (and is refused there)
    if not _valid_ids.issuperset(map(itemgetter(0), rows[1:])):
        rows = _checked_rows(lines, sep, source, start)
    rows[0].insert(1, sep)  # MSH-1 is the field separator itself: MSH-n is fields[n] from here on
    return Message(rows, delimiters, charset)


@lru_cache(maxsize=64)  # one shared object per delimiter set and charset: escape tables are cached by identity
def _reading_hex_in(delimiters: Delimiters, codec: str) -> Delimiters:
    return replace(delimiters, hex_codec=codec)


def _checked_rows(lines: list[str], sep: str, source: str, start: int) -> list[list[str]]:
    """The careful path: skip whitespace-only lines, learn new segment ids, raise on bad ones."""
    rows: list[list[str]] = []
    for index, line in enumerate(lines):
        if not line:
            continue
        fields = line.split(sep)
        seg_id = fields[0]
        if seg_id == "MSH":
            if rows:
                raise ParseError(
                    "a second MSH: several messages in one; split them first",
                    location=Location("MSH", 2),
                    offset=start + _line_offset(source, index),
                )
        elif seg_id not in _valid_ids:
            if not _SEGMENT_ID.fullmatch(seg_id):
                if not line.strip():
                    continue
                raise _bad_segment(line, len(rows) + 1, start + _line_offset(source, index))
            _valid_ids.add(seg_id)
        rows.append(fields)
    return rows


_TERMINATOR = re.compile(r"\r\n|\r|\n")


def _line_offset(text: str, index: int) -> int:
    """Where line `index` (0-based, lines ended by CR, LF or CRLF) starts in `text`; error path only."""
    pos = 0
    for _ in range(index):
        match = _TERMINATOR.search(text, pos)
        if match is None:
            return len(text)
        pos = match.end()
    return pos


def _input_offset(data: bytes | str, text: str, charset: CharsetDecision, position: int) -> int:
    """A position in the decoded text as an offset in the input (bytes for bytes input)."""
    if isinstance(data, str):
        return position
    bom = next((len(b) for b, codec in BOMS if data.startswith(b) and codec == charset.codec), 0)
    return bom + len(text[:position].encode(charset.codec, "replace"))


def read_delimiters(text: str) -> Delimiters:
    """MSH-1 and MSH-2 as the message declares them (v2.5 2.5.4, 2.15.9.1-2); `text` starts with MSH."""
    if text.startswith(_USUAL):
        return DEFAULT
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


def _bad_segment(line: str, number: int, offset: int) -> ParseError:
    shown = line[:20] + ("..." if len(line) > 20 else "")
    return ParseError(
        f"segment {number} does not start with a segment id (3 capitals/digits then the field separator): {shown!r}",
        location=None,
        offset=offset,
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
