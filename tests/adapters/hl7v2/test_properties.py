"""Property tests for the ER7 reader (issue 2): encode/parse round trip, and bad bytes give only HL7Error."""
from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.hl7v2 import HL7Error, parse
from adapters.hl7v2.delimiters import DEFAULT, Delimiters
from adapters.hl7v2.er7 import encode

# Nested structures are costly to generate: fewer examples for the round trips than for fuzzing.
ROUND_TRIP = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Text that tries hard to break the reader: every delimiter and escape character, escape-looking
# sequences, segment terminators, CJK (incl. a GB 18030 four-byte character), accents, emoji.
TRICKY = list("|^~\\&#$*@!.\r\n\x0b\x1c\t ") + ["\\F\\", "\\X41\\", "\\.br\\", "MSH|", "张三", "㐀", "é", "😀", "\ufeff"]
text = st.lists(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=4) | st.sampled_from(TRICKY),
    max_size=5,
).map("".join)  # no NUL: ER7 has none, the reader refuses it (tests/gateway/test_ingest_nul.py)
subcomponents = st.lists(text, min_size=1, max_size=3)
repetition = st.lists(subcomponents, min_size=1, max_size=3)
field = st.lists(repetition, max_size=3)
segment_id = st.from_regex(r"\A[A-Z][A-Z0-9]{2}\Z").filter(lambda s: s != "MSH")
other_segments = st.lists(st.tuples(segment_id, st.lists(field, max_size=5)), max_size=3)
# MSH-3 .. MSH-17 (MSH-18 stays empty so that bytes are read as UTF-8)
msh_fields = st.lists(field, min_size=0, max_size=10)


@st.composite
def delimiter_sets(draw: st.DrawFn) -> Delimiters:
    """Legal sets: distinct printable ASCII characters that are not letters, digits or space."""
    chars = draw(st.lists(st.sampled_from(string.punctuation), min_size=6, max_size=6, unique=True))
    truncation = chars[5] if draw(st.booleans()) else ""
    return Delimiters(chars[0], chars[1], chars[2], chars[3], chars[4], truncation)


def _expected(segments: list[list[object]]) -> list[list[object]]:
    """What decoded() gives back: a field holding one empty value is indistinguishable from an empty field."""
    out = []
    for seg in segments:
        out.append([seg[0]] + [f if isinstance(f, str) or f != [[""]] and f != [[[""]]] else [] for f in seg[1:]])
    return out


def _round_trip(delimiters: Delimiters, msh: list[object], others: list[tuple[str, list[object]]]) -> None:
    segments: list[list[object]] = [["MSH", delimiters.field, delimiters.encoding_characters, *msh]]
    segments += [[sid, *fields] for sid, fields in others]
    er7 = encode(segments, delimiters)
    expected = _expected(segments)
    for data in (er7, er7.encode("utf-8"), er7.replace("\r", "\r\n").encode("utf-8"), b"\xef\xbb\xbf" + er7.encode("utf-8")):
        msg = parse(data)
        assert [s.decoded() for s in msg.segments] == expected
        assert msg.delimiters == delimiters


@ROUND_TRIP
@given(msh_fields, other_segments)
def test_round_trip_default_delimiters(msh: list[object], others: list[tuple[str, list[object]]]) -> None:
    _round_trip(DEFAULT, msh, others)


@ROUND_TRIP
@given(delimiter_sets(), msh_fields, other_segments)
def test_round_trip_random_delimiters(delimiters: Delimiters, msh: list[object], others: list[tuple[str, list[object]]]) -> None:
    _round_trip(delimiters, msh, others)


@ROUND_TRIP
@given(delimiter_sets(), st.lists(text, min_size=1, max_size=5))
def test_round_trip_leaf_access(delimiters: Delimiters, values: list[str]) -> None:
    """Each value placed at NTE-3(r).c.s reads back through path access."""
    fields = [[[[v]] for v in values]]  # NTE-1 with len(values) repetitions
    er7 = encode([["MSH", delimiters.field, delimiters.encoding_characters], ["NTE", *fields]], delimiters)
    msg = parse(er7.encode("utf-8"))
    for r, v in enumerate(values, 1):
        assert msg.get(f"NTE-1({r}).1.1") == v


def _touch(data: bytes | str) -> None:
    try:
        msg = parse(data)
    except HL7Error:
        return
    # a parsed message must also be readable without surprises
    _ = (msg.control_id, msg.version, msg.structure, msg.message_type, msg.charset)
    for seg in msg.segments:
        seg.decoded()
    msg.get("PID-3(2).4.1")
    msg.encode()


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_hl7_errors(data: bytes) -> None:
    _touch(data)


PREFIXES = [
    "MSH|^~\\&|",
    "MSH#$*@!#",
    "MSH|^~\\&#|",
    "\ufeffMSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5|||||CHN|",
    "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5|||||CHN|GB 18030-2000\r",
    "\r\nMSH|",
]


@FUZZ
@given(st.sampled_from(PREFIXES), st.text(max_size=300), st.sampled_from(["utf-8", "gb18030", "latin-1", "utf-16"]))
def test_text_after_an_msh_prefix_raises_only_hl7_errors(prefix: str, tail: str, codec: str) -> None:
    _touch(prefix + tail)
    _touch((prefix + tail).encode(codec, "replace"))


@FUZZ
@given(st.sampled_from(PREFIXES), st.binary(max_size=300))
def test_bytes_after_an_msh_prefix_raise_only_hl7_errors(prefix: str, tail: bytes) -> None:
    _touch(prefix.encode("utf-8") + tail)
