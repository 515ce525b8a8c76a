"""Splitting files and streams into messages (HL7 v2.5.1 2.10.3 batch protocol), bytes only.

tests/data/hl7v2/batch-*.hl7 are synthetic files written for these tests (no patient data):
batch-fhs-two-batches.hl7 (CR, FHS + 2 batches, counts right), batch-count-mismatch.hl7 (CRLF,
BTS-1 and FTS-1 wrong), batch-bhs-no-trailer.hl7 (LF, '#' field separator, no BTS, blank tail).
"""
from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.hl7v2.batch import (
    BATCH_COUNT_MISMATCH,
    FILE_COUNT_MISMATCH,
    MISSING_TRAILER,
    STRAY_SEGMENTS,
    UNREADABLE_COUNT,
    BatchFile,
    BatchSplitter,
    BatchWarning,
    ChunkTooLarge,
    EnvelopeSegment,
    MessageChunk,
    iter_messages,
    iter_records,
    split_messages,
)
from adapters.hl7v2.errors import HL7Error, MessageTooLarge
from adapters.hl7v2.mllp import frame

DATA = Path(__file__).resolve().parents[2] / "data" / "hl7v2"
BOM = b"\xef\xbb\xbf"

MSG1 = [b"MSH|^~\\&|HIS|GENHOSP|PB|GENHOSP|20240105083000||ADT^A01^ADT_A01|MSG0001|P|2.5.1", b"PID|1||100^^^GENHOSP^MR||DOE^JANE"]
MSG2 = [b"MSH|^~\\&|LIS|GENHOSP|PB|GENHOSP|20240105083000||ORU^R01^ORU_R01|MSG0002|P|2.5.1", b"OBX|1|NM|8867-4^Heart rate^LN||72|/min"]
MSG3 = [b"MSH|^~\\&|RIS|GENHOSP|PB|GENHOSP|20240105083000||ORM^O01^ORM_O01|MSG0003|P|2.3", b"ORC|NW|ORD1", b"OBR|1|ORD1"]


def er7(segments: list[bytes], terminator: bytes = b"\r") -> bytes:
    return b"".join(s + terminator for s in segments)


def segments_of(chunk: MessageChunk) -> list[bytes]:
    return [s for s in chunk.payload.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r") if s]


def by_chunks(data: bytes, size: int, max_message_bytes: int | None = None) -> list[object]:
    return list(iter_records(io.BytesIO(data), chunk_size=size, max_message_bytes=max_message_bytes))


# --- single and many messages --------------------------------------------------------------


@pytest.mark.parametrize("terminator", [b"\r", b"\n", b"\r\n"])
def test_one_message_is_returned_whole(terminator: bytes) -> None:
    data = er7(MSG1, terminator)
    result = split_messages(data)
    assert isinstance(result, BatchFile) and len(result) == 1
    assert result[0] == MessageChunk(index=0, offset=0, end=len(data), payload=data, batch=None)
    assert result.warnings == [] and result.envelope == []


def test_last_segment_without_terminator() -> None:
    data = er7(MSG1)[:-1]
    assert split_messages(data)[0].payload == data


@pytest.mark.parametrize(
    "separator",
    [b"", b"\r", b"\n", b"\r\n", b"\n\n", b"\r\n\r\n", b"\n   \n\t\n", b"\x0b", b"\x1c\r"],
    ids=["none", "cr", "lf", "crlf", "blank-line", "blank-crlf", "whitespace-lines", "vt", "fs-cr"],
)
def test_many_messages_split_at_each_msh(separator: bytes) -> None:
    parts = [er7(MSG1), er7(MSG2), er7(MSG3)]
    data = separator.join(parts)
    result = split_messages(data)
    assert [segments_of(m) for m in result] == [MSG1, MSG2, MSG3]
    assert [m.index for m in result] == [0, 1, 2]
    for chunk, part in zip(result, parts):
        assert chunk.payload.startswith(part)  # a CR followed by a separating LF reads as one CRLF
        assert data[chunk.offset : chunk.end] == chunk.payload
    assert result.warnings == []


def test_blank_lines_inside_a_message_are_dropped_from_its_payload() -> None:
    data = MSG1[0] + b"\n\n   \n" + MSG1[1] + b"\n" + er7(MSG2, b"\n")
    result = split_messages(data)
    assert [segments_of(m) for m in result] == [MSG1, MSG2]
    assert result[0].payload == MSG1[0] + b"\n" + MSG1[1] + b"\n"
    assert result[0].end == data.index(b"MSH", 1)


def test_msh_only_at_a_segment_start() -> None:
    inside = [MSH_IN_FIELD := b"OBX|1|TX|NOTE||copy of MSH|^~\\&|X|Y", b"NTE|1||MSH|^~\\&"]
    data = er7(MSG1 + inside) + er7(MSG2)
    result = split_messages(data)
    assert len(result) == 2
    assert segments_of(result[0]) == MSG1 + inside
    assert MSH_IN_FIELD in result[0].payload


@pytest.mark.parametrize("separator", [b"#", b"!", b"$", b"*"])
def test_field_separator_is_whatever_follows_msh(separator: bytes) -> None:
    first = [s.replace(b"|", separator) for s in MSG1]
    second = [s.replace(b"|", separator) for s in MSG2]
    assert [segments_of(m) for m in split_messages(er7(first) + er7(second))] == [first, second]


@pytest.mark.parametrize("not_a_header", [b"MSHX|^~\\&|A", b"MSH1|^~\\&|A", b"MSH", b"MSH |", b"MSHA"])
def test_msh_followed_by_letter_digit_or_space_is_not_a_header(not_a_header: bytes) -> None:
    result = split_messages(er7(MSG1) + not_a_header + b"\r" + er7(MSG2))
    assert len(result) == 2
    assert segments_of(result[0]) == MSG1 + [not_a_header]


def test_leading_bom_and_trailing_whitespace() -> None:
    data = BOM + er7(MSG1, b"\n") + b"\n \t\n\n  "
    result = split_messages(data)
    assert len(result) == 1 and result.warnings == []
    assert result[0].offset == 3 and result[0].payload == er7(MSG1, b"\n")


def test_bom_before_msh_of_concatenated_files() -> None:
    data = BOM + er7(MSG1, b"\n") + BOM + er7(MSG2, b"\n")
    result = split_messages(data)
    assert [m.payload for m in result] == [er7(MSG1, b"\n"), er7(MSG2, b"\n")]
    assert result[1].offset == len(BOM + er7(MSG1, b"\n") + BOM)


def test_mllp_framed_export_with_line_breaks_between_frames() -> None:
    data = b"".join(frame(er7(m)) + b"\r\n" for m in (MSG1, MSG2, MSG3))
    result = split_messages(data)
    assert [m.payload for m in result] == [er7(MSG1), er7(MSG2), er7(MSG3)]
    assert result.warnings == []
    assert result[1].offset == data.index(b"\x0bMSH", 1) + 1


def test_frame_end_closes_the_message_even_without_next_msh() -> None:
    data = frame(er7(MSG1)) + frame(b"PID|1||999") + frame(er7(MSG2))
    result = split_messages(data)
    assert [segments_of(m) for m in result] == [MSG1, MSG2]
    [stray] = result.warnings
    assert stray.code == STRAY_SEGMENTS and stray.offset == data.index(b"PID|1||999") and stray.found == 1


def test_segments_before_any_msh_are_reported_not_lost() -> None:
    data = b"EVN|A01\rPID|1||1\r" + er7(MSG1)
    result = split_messages(data)
    assert len(result) == 1
    assert result.warnings == [BatchWarning(STRAY_SEGMENTS, result.warnings[0].detail, 0, None, found=2)]


def test_empty_and_blank_input() -> None:
    for data in (b"", b"\r\n", BOM, b"  \n\t", b"\x0b\x1c\r"):
        result = split_messages(data)
        assert result.records == [], data


# --- batches -------------------------------------------------------------------------------


def test_fhs_file_with_two_batches() -> None:
    data = (DATA / "batch-fhs-two-batches.hl7").read_bytes()
    result = split_messages(data)
    assert result.warnings == []
    assert [e.segment_id for e in result.envelope] == ["FHS", "BHS", "BTS", "BHS", "BTS", "FTS"]
    assert [e.batch for e in result.envelope] == [None, 0, 0, 1, 1, None]
    assert result.envelope[2].payload == b"BTS|2" and result.envelope[5].payload == b"FTS|2"
    assert [(m.index, m.batch) for m in result] == [(0, 0), (1, 0), (2, 1)]
    assert [m.payload.split(b"|")[9] for m in result] == [b"MSG0001", b"MSG0002", b"MSG0003"]
    for m in result:
        assert m.payload.startswith(b"MSH|") and b"BTS" not in m.payload and b"BHS" not in m.payload
        assert data[m.offset : m.end] == m.payload
    for e in result.envelope:
        assert data[e.offset : e.offset + len(e.payload)] == e.payload
    kinds = [type(r).__name__ for r in result.records]
    assert kinds == ["EnvelopeSegment", "EnvelopeSegment", "MessageChunk", "MessageChunk", "EnvelopeSegment"] + [
        "EnvelopeSegment", "MessageChunk", "EnvelopeSegment", "EnvelopeSegment"
    ]


def test_count_mismatch_is_a_warning_and_keeps_every_message() -> None:
    data = (DATA / "batch-count-mismatch.hl7").read_bytes()
    result = split_messages(data)
    assert len(result) == 3
    assert all(m.payload.endswith(b"\r\n") for m in result)
    batch_warning, file_warning = result.warnings
    assert (batch_warning.code, batch_warning.batch, batch_warning.expected, batch_warning.found) == (BATCH_COUNT_MISMATCH, 0, 3, 2)
    assert batch_warning.offset == data.index(b"BTS|3")
    assert (file_warning.code, file_warning.expected, file_warning.found) == (FILE_COUNT_MISMATCH, 1, 2)
    assert file_warning.offset == data.index(b"FTS|1")


def test_batch_without_trailer_and_custom_separator() -> None:
    data = (DATA / "batch-bhs-no-trailer.hl7").read_bytes()
    result = split_messages(data)
    assert [e.segment_id for e in result.envelope] == ["BHS"]
    assert [m.batch for m in result] == [0, 0]
    assert b"MSH#^~ in text" in result[0].payload  # MSH inside a field is not a message start
    [warning] = result.warnings
    assert warning.code == MISSING_TRAILER and warning.batch == 0 and warning.offset == len(data)


def test_trailers_without_headers_count_an_implicit_batch() -> None:
    data = er7(MSG1) + er7(MSG2) + b"BTS|2\rFTS|1\r"
    result = split_messages(data)
    assert len(result) == 2 and result.warnings == []
    assert [e.batch for e in result.envelope] == [None, None]


def test_unreadable_and_empty_counts() -> None:
    data = b"BHS|^~\\&\r" + er7(MSG1) + b"BTS|two\rBHS|^~\\&\r" + er7(MSG2) + b"BTS\rBHS\r" + er7(MSG3) + b"BTS||x\r"
    result = split_messages(data)
    assert len(result) == 3
    assert [(w.code, w.batch) for w in result.warnings] == [(UNREADABLE_COUNT, 0)]
    assert [e.batch for e in result.envelope] == [0, 0, 1, 1, 2, 2]


def test_new_header_closes_an_open_batch_with_a_warning() -> None:
    data = b"FHS|^~\\&\rBHS|^~\\&\r" + er7(MSG1) + b"BHS|^~\\&\r" + er7(MSG2) + b"BTS|1\rFHS|^~\\&\r" + er7(MSG3)
    result = split_messages(data)
    assert [m.batch for m in result] == [0, 1, None]
    assert [w.code for w in result.warnings] == [MISSING_TRAILER, MISSING_TRAILER, MISSING_TRAILER]
    assert [w.offset for w in result.warnings] == [data.index(b"BHS", 20), data.rindex(b"FHS"), len(data)]


def test_batch_inside_one_mllp_frame() -> None:
    batch = b"BHS|^~\\&\r" + er7(MSG1) + er7(MSG2) + b"BTS|2\r"
    result = split_messages(frame(batch))
    assert len(result) == 2 and result.warnings == []
    assert [e.segment_id for e in result.envelope] == ["BHS", "BTS"]


def test_bom_before_file_header() -> None:
    data = BOM + (DATA / "batch-fhs-two-batches.hl7").read_bytes()
    result = split_messages(data)
    assert result.envelope[0].offset == 3 and len(result) == 3 and result.warnings == []


# --- size limit ----------------------------------------------------------------------------


def test_oversize_message_comes_out_in_place_and_splitting_continues() -> None:
    big = MSG2[:1] + [b"OBX|%d|ED|PDF^Report^L||^AP^PDF^Base64^" % i + b"A" * 200 for i in range(10)]
    data = er7(MSG1) + er7(big) + er7(MSG3)
    result = split_messages(data, max_message_bytes=500)
    assert [m.index for m in result] == [0, 2]
    [oversize] = result.oversize
    assert isinstance(oversize, ChunkTooLarge) and isinstance(oversize, MessageTooLarge) and isinstance(oversize, HL7Error)
    assert oversize.code == "207"
    assert (oversize.index, oversize.offset, oversize.size, oversize.limit) == (1, len(er7(MSG1)), len(er7(big)), 500)
    assert oversize.head == er7(big)  # the first head_bytes (4096) of the message: all of it here
    assert [type(r).__name__ for r in result.records] == ["MessageChunk", "ChunkTooLarge", "MessageChunk"]


def test_oversize_single_segment_without_terminator_in_a_stream() -> None:
    data = er7(MSG1) + b"MSH|^~\\&|" + b"x" * 10_000 + b"\r" + er7(MSG2)
    for size in (1, 7, 4096, len(data)):
        records = by_chunks(data, size, max_message_bytes=1000)
        assert [type(r).__name__ for r in records] == ["MessageChunk", "ChunkTooLarge", "MessageChunk"], size
        assert records[1].size == 10_010


def test_streaming_memory_stays_bounded_for_a_huge_input() -> None:
    """50 MiB of one endless segment with a 1 MiB limit must not be held in memory."""

    class Endless(io.RawIOBase):
        """One small message, then an MSH segment of `total` bytes that never ends."""

        def __init__(self, total: int) -> None:
            self.parts = iter([er7(MSG1), b"MSH|"])
            self.left = total - 4

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            part = next(self.parts, None)
            if part is not None:
                return part
            n = min(size, self.left)
            self.left -= n
            return b"y" * n

    tracemalloc.start()
    try:
        records = list(iter_messages(Endless(50 << 20), chunk_size=1 << 20, max_message_bytes=1 << 20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [type(r).__name__ for r in records] == ["MessageChunk", "ChunkTooLarge"]
    assert records[1].size == 50 << 20
    assert peak < 8 << 20, peak


def test_tiny_limit_still_recognises_message_headers() -> None:
    data = BOM + er7(MSG1) + er7(MSG2)
    records = split_messages(data, max_message_bytes=0).records
    assert [(type(r).__name__, r.index, r.offset) for r in records] == [
        ("ChunkTooLarge", 0, 3),
        ("ChunkTooLarge", 1, 3 + len(er7(MSG1))),
    ]


def test_text_mode_file_is_refused() -> None:
    with pytest.raises(TypeError):
        list(iter_records(io.StringIO("MSH|^~\\&|")))  # type: ignore[arg-type]


# --- streaming equals in-memory ------------------------------------------------------------


@pytest.mark.parametrize("name", ["batch-fhs-two-batches.hl7", "batch-count-mismatch.hl7", "batch-bhs-no-trailer.hl7"])
def test_streaming_gives_the_same_records_at_every_chunk_size(name: str) -> None:
    data = BOM + (DATA / name).read_bytes()
    expected = split_messages(data).records
    for size in range(1, 40):
        assert by_chunks(data, size) == expected, size
    assert by_chunks(data, 1 << 20) == expected


def test_iter_messages_filters_to_messages() -> None:
    data = (DATA / "batch-fhs-two-batches.hl7").read_bytes()
    messages = list(iter_messages(io.BytesIO(data), chunk_size=5))
    assert messages == split_messages(data).messages


def test_splitter_feed_and_close_are_incremental() -> None:
    splitter = BatchSplitter()
    assert splitter.feed(er7(MSG1)) == []  # the message may go on
    assert splitter.feed(er7(MSG2)[:10]) == []  # "MSH|^~\\&|L": not yet a whole segment
    cut = len(MSG2[0]) + 2  # a CR is only a whole terminator once the next byte shows it is not CRLF
    assert splitter.feed(er7(MSG2)[10 : cut - 1]) == []
    [first] = splitter.feed(er7(MSG2)[cut - 1 : cut])
    assert first.payload == er7(MSG1)
    assert splitter.feed(er7(MSG2)[cut:]) == []
    [second] = splitter.close()
    assert second.payload == er7(MSG2) and second.offset == len(er7(MSG1))


# --- the public corpus ---------------------------------------------------------------------


def corpus_files(corpus_dir: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((corpus_dir / "hl7v2").glob("*.hl7"))]


def test_every_corpus_file_is_exactly_one_message(corpus_dir: Path) -> None:
    files = corpus_files(corpus_dir)
    assert len(files) == 139
    for raw in files:
        result = split_messages(raw)
        assert len(result) == 1 and result.warnings == [] and result.envelope == []
        assert result[0].payload.rstrip(b"\n") == raw.removeprefix(BOM).rstrip(b"\n")


@pytest.mark.parametrize("joiner", ["lf", "crlf-no-bom", "mllp"])
def test_concatenated_corpus_splits_into_139(corpus_dir: Path, joiner: str) -> None:
    files = corpus_files(corpus_dir)
    if joiner == "lf":  # most files end without a newline; BOMs stay in place
        data = b"\n".join(files)
    elif joiner == "crlf-no-bom":
        data = b"\r\n".join(f.removeprefix(BOM).replace(b"\n", b"\r\n") for f in files)
    else:
        data = b"".join(frame(f.removeprefix(BOM).replace(b"\n", b"\r")) + b"\n" for f in files)
    result = split_messages(data)
    assert len(result) == 139 and result.warnings == []
    expected = [f.removeprefix(BOM).replace(b"\r", b"").rstrip(b"\n") for f in files]
    assert [m.payload.replace(b"\r\n", b"\n").replace(b"\r", b"\n").rstrip(b"\n") for m in result] == expected
    assert [m.index for m in result] == list(range(139))
    assert list(iter_messages(io.BytesIO(data), chunk_size=997)) == result.messages


# --- properties ----------------------------------------------------------------------------

field_text = st.binary(max_size=30).map(lambda b: bytes(c for c in b if c not in b"\r\n\x0b\x1c"))
segment_ids = st.sampled_from([b"PID", b"PV1", b"OBX", b"NTE", b"ZPB", b"EVN"])
other_segment = st.builds(lambda sid, text: sid + b"|" + text, segment_ids, field_text)
message = st.builds(lambda text, rest: [b"MSH|^~\\&|" + text, *rest], field_text, st.lists(other_segment, max_size=5))
joints = st.sampled_from([b"\r", b"\n", b"\r\n", b"\n\n", b"\r\n  \r\n", b"\x1c\r\x0b"])


@settings(max_examples=200, deadline=None)
@given(st.lists(message, max_size=6), st.lists(joints, min_size=6, max_size=6), st.sampled_from([b"\r", b"\n", b"\r\n"]), st.integers(1, 64))
def test_generated_files_split_back_into_their_messages(
    messages: list[list[bytes]], between: list[bytes], terminator: bytes, chunk_size: int
) -> None:
    data = b"".join(er7(m, terminator) + between[i] for i, m in enumerate(messages))
    result = split_messages(data)
    assert [segments_of(m) for m in result] == messages
    assert result.warnings == []
    assert by_chunks(data, chunk_size) == result.records


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 50), st.one_of(st.none(), st.integers(0, 100)))
def test_arbitrary_bytes_split_the_same_in_any_chunking_and_never_raise(data: bytes, chunk_size: int, limit: int | None) -> None:
    def comparable(records: list[object]) -> list[object]:
        return [(r.index, r.offset, r.size, r.head) if isinstance(r, ChunkTooLarge) else r for r in records]

    result = split_messages(data, max_message_bytes=limit)
    assert comparable(by_chunks(data, chunk_size, limit)) == comparable(result.records)
    for record in result.records:
        assert isinstance(record, (MessageChunk, EnvelopeSegment, BatchWarning, ChunkTooLarge))
        if isinstance(record, MessageChunk):
            assert record.payload[:3] == b"MSH" and (limit is None or len(record.payload) <= limit)
            assert data[record.offset : record.offset + 4] == record.payload[:4]
            assert data[: record.end].endswith(record.payload[-1:])
        if isinstance(record, ChunkTooLarge):
            assert data[record.offset : record.offset + 3] == b"MSH" and limit is not None and record.size > limit
