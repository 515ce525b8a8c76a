"""Split HL7 v2 files and streams into messages, bytes only (HL7 v2.5.1 2.10.3 batch protocol).

Accepted input, mixed freely in one file or stream:

* one message, or many, each starting with a segment ``MSH`` + field separator (any printable
  ASCII byte that is not a letter or digit; ``|`` is only the usual one), matched only at a
  segment start;
* segment terminators CR, LF or CRLF; blank and whitespace-only lines between or inside
  messages (dropped from the payload);
* messages wrapped in MLLP blocks (0x0B ... 0x1C 0x0D) as some engines export them: a block
  byte ends the current segment and message;
* FHS/BHS ... BTS/FTS envelopes (``[FHS] {[BHS] {MSH ...} [BTS]} [FTS]``): their segments are
  returned apart from the messages, and BTS-1 (batch message count) / FTS-1 (file batch count)
  are checked when present; a mismatch is a :class:`BatchWarning`, never a dropped message;
* a UTF-8 byte order mark at the start of the input, or before an MSH/FHS/BHS segment where
  files were concatenated.

Segments outside any message are reported as a ``stray-segments`` warning, never silently lost.
A message larger than ``max_message_bytes`` is not buffered: it comes out as a
:class:`ChunkTooLarge` (an HL7Error, table 0357 code 207) in its place, holding its first bytes.
Memory use is bounded by about twice ``max_message_bytes`` plus the read size.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, overload

from adapters.hl7v2.errors import MessageTooLarge
from adapters.hl7v2.mllp import DEFAULT_HEAD_BYTES, DEFAULT_MAX_MESSAGE_BYTES

BOM = b"\xef\xbb\xbf"
MESSAGE_HEADER = b"MSH"
FILE_HEADER, BATCH_HEADER, BATCH_TRAILER, FILE_TRAILER = b"FHS", b"BHS", b"BTS", b"FTS"
ENVELOPE_SEGMENTS = (FILE_HEADER, BATCH_HEADER, BATCH_TRAILER, FILE_TRAILER)
DEFAULT_CHUNK_SIZE = 1024 * 1024

# Warning codes (BatchWarning.code).
BATCH_COUNT_MISMATCH = "batch-count-mismatch"
FILE_COUNT_MISMATCH = "file-count-mismatch"
UNREADABLE_COUNT = "unreadable-count"
MISSING_TRAILER = "missing-trailer"
STRAY_SEGMENTS = "stray-segments"

_CR, _LF, _VT, _FS = 0x0D, 0x0A, 0x0B, 0x1C
_SEGMENT_END = re.compile(b"[\r\n\x0b\x1c]")
_COUNT = re.compile(rb"\d+")


@dataclass(frozen=True, slots=True)
class MessageChunk:
    """One message's bytes: from MSH through the last segment's terminator, blank lines dropped."""

    index: int  # 0-based among the input's messages (oversize ones included)
    offset: int  # byte offset of "MSH" in the input
    end: int  # byte offset just past the message's last terminator
    payload: bytes
    batch: int | None = None  # 0-based BHS batch index, None outside an explicit batch


@dataclass(frozen=True, slots=True)
class EnvelopeSegment:
    """An FHS, BHS, BTS or FTS segment (without its terminator), kept apart from the messages."""

    segment_id: str
    offset: int
    payload: bytes
    batch: int | None = None


@dataclass(frozen=True, slots=True)
class BatchWarning:
    """Something odd about the input's structure; the messages themselves are still all returned."""

    code: str
    detail: str
    offset: int
    batch: int | None = None
    expected: int | None = None
    found: int | None = None


class ChunkTooLarge(MessageTooLarge):
    """A message above ``max_message_bytes`` found while splitting; yielded in its place, not raised."""

    def __init__(self, *, index: int, offset: int, size: int, limit: int, head: bytes, batch: int | None) -> None:
        self.index = index
        self.size = size
        self.limit = limit
        self.head = head
        self.batch = batch
        super().__init__(f"message {index} of {size} bytes exceeds the limit of {limit} bytes", offset=offset)


Record = MessageChunk | EnvelopeSegment | BatchWarning | ChunkTooLarge


@dataclass
class BatchFile(Sequence[MessageChunk]):
    """Everything found in one input; indexing and len() go over its messages."""

    records: list[Record] = field(default_factory=list)

    @property
    def messages(self) -> list[MessageChunk]:
        return [r for r in self.records if isinstance(r, MessageChunk)]

    @property
    def envelope(self) -> list[EnvelopeSegment]:
        return [r for r in self.records if isinstance(r, EnvelopeSegment)]

    @property
    def warnings(self) -> list[BatchWarning]:
        return [r for r in self.records if isinstance(r, BatchWarning)]

    @property
    def oversize(self) -> list[ChunkTooLarge]:
        return [r for r in self.records if isinstance(r, ChunkTooLarge)]

    @overload
    def __getitem__(self, i: int) -> MessageChunk: ...
    @overload
    def __getitem__(self, i: slice) -> list[MessageChunk]: ...
    def __getitem__(self, i: int | slice) -> MessageChunk | list[MessageChunk]:
        return self.messages[i]

    def __len__(self) -> int:
        return sum(1 for r in self.records if isinstance(r, MessageChunk))

    def __iter__(self) -> Iterator[MessageChunk]:
        return (r for r in self.records if isinstance(r, MessageChunk))


def _is_separator(byte: int) -> bool:
    """Delimiters are printable ASCII other than letters and digits (v2.5.1 2.5.4)."""
    return 0x21 <= byte <= 0x7E and not (0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A)


def _segment_kind(content: bytes) -> bytes | None:
    """MSH or an envelope segment id when ``content`` starts one, else None."""
    head = content[:3]
    if head == MESSAGE_HEADER:
        return head if len(content) > 3 and _is_separator(content[3]) else None
    if head in ENVELOPE_SEGMENTS and (len(content) == 3 or _is_separator(content[3])):
        return head
    return None


def _count_field(content: bytes) -> bytes:
    """BTS-1 / FTS-1: the first field after the segment id, split at the segment's own separator byte."""
    if len(content) <= 3:
        return b""
    return content[4:].split(content[3:4], 1)[0].strip()


class BatchSplitter:
    """Incremental splitter: ``feed()`` bytes as they come, ``close()`` at end of input; both return records in order."""

    def __init__(self, max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES, *, head_bytes: int = DEFAULT_HEAD_BYTES) -> None:
        self.max_message_bytes = max_message_bytes
        self.head_bytes = head_bytes
        self._out: list[Record] = []
        self._position = 0
        # tokenizer: the segment being read
        self._segment = bytearray()
        self._segment_size = 0
        self._segment_offset = 0
        self._held: tuple[bytes, int, int] | None = None  # segment ended by CR at a chunk's end: LF may follow
        # past the limit a segment is only counted; keep enough of it to recognise BOM + MSH + separator
        self._segment_cap = None if max_message_bytes is None else max(max_message_bytes + 1, 8)
        # message being assembled
        self._index = 0
        self._message: bytearray | None = None
        self._message_offset = 0
        self._message_end = 0
        self._message_size = 0
        self._message_head: bytes | None = None  # set once the message went over the limit
        # stray segments run
        self._stray_offset: int | None = None
        self._stray_segments = 0
        self._stray_bytes = 0
        # envelope state
        self._batches_started = 0
        self._batch: int | None = None
        self._batch_offset = 0
        self._messages_in_batch = 0  # since the last BHS/BTS/FHS: explicit or implicit batch
        self._file_offset: int | None = None
        self._batches_in_file = 0

    def feed(self, data: bytes) -> list[Record]:
        """Consume the next bytes of the input; return the records they complete."""
        data = bytes(data)
        base = self._position
        pos = 0
        if self._held is not None and data:
            content, offset, size = self._held
            self._held = None
            if data[0] == _LF:
                self._on_segment(content, offset, size, b"\r\n")
                pos = 1
            else:
                self._on_segment(content, offset, size, b"\r")
            self._segment_offset = base + pos
        end = len(data)
        while pos < end:
            found = _SEGMENT_END.search(data, pos)
            if found is None:
                self._grow(data[pos:])
                break
            at = found.start()
            offset = self._segment_offset
            if self._segment_size == 0:  # the whole segment is in this chunk
                content = data[pos:at]
                size = len(content)
                if self._segment_cap is not None and size > self._segment_cap:
                    content = content[: self._segment_cap]
            else:
                self._grow(data[pos:at])
                content, size = bytes(self._segment), self._segment_size
                self._segment.clear()
                self._segment_size = 0
            byte = data[at]
            if byte == _CR and at + 1 == end:
                self._held = (content, offset, size)
                pos = end
            elif byte == _CR and data[at + 1] == _LF:
                self._on_segment(content, offset, size, b"\r\n")
                pos = at + 2
            elif byte in (_CR, _LF):
                self._on_segment(content, offset, size, data[at : at + 1])
                pos = at + 1
            else:  # an MLLP block byte: the segment and the message end here
                self._on_segment(content, offset, size, b"")
                self._end_message()
                pos = at + 1
            self._segment_offset = base + pos
        self._position = base + end
        return self._drain()

    def close(self) -> list[Record]:
        """End of input: flush the last segment and message, report unclosed envelopes."""
        if self._held is not None:
            content, offset, size = self._held
            self._held = None
            self._on_segment(content, offset, size, b"\r")
        if self._segment_size:
            content, size = bytes(self._segment), self._segment_size
            self._segment.clear()
            self._segment_size = 0
            self._on_segment(content, self._segment_offset, size, b"")
        self._end_message()
        self._end_stray()
        self._close_batch(self._position, "end of input")
        self._close_file(self._position, "end of input")
        return self._drain()

    def _drain(self) -> list[Record]:
        out, self._out = self._out, []
        return out

    def _grow(self, chunk: bytes) -> None:
        self._segment_size += len(chunk)
        if self._segment_cap is None:
            self._segment += chunk
        elif len(self._segment) < self._segment_cap:
            self._segment += chunk[: self._segment_cap - len(self._segment)]

    def _on_segment(self, content: bytes, offset: int, size: int, terminator: bytes) -> None:
        """One segment and its terminator (empty after a block byte or at end of input)."""
        if content.startswith(BOM) and (offset == 0 or _segment_kind(content[3:]) is not None or not content[3:].strip()):
            content, offset, size = content[3:], offset + 3, size - 3
        if size == len(content) and not content.strip():
            return  # blank line
        kind = _segment_kind(content)
        if kind == MESSAGE_HEADER:
            self._end_message()
            self._end_stray()
            self._message = bytearray()
            self._message_offset = offset
            self._message_size = 0
            self._message_head = None
            self._append(content, offset, size, terminator)
        elif kind is not None:
            self._end_message()
            self._end_stray()
            self._on_envelope(kind, content, offset)
        elif self._message is not None:
            self._append(content, offset, size, terminator)
        else:
            if self._stray_offset is None:
                self._stray_offset = offset
            self._stray_segments += 1
            self._stray_bytes += size + len(terminator)

    def _append(self, content: bytes, offset: int, size: int, terminator: bytes) -> None:
        assert self._message is not None
        self._message_size += size + len(terminator)
        self._message_end = offset + size + len(terminator)
        if self._message_head is None:
            limit = self.max_message_bytes
            if limit is None or self._message_size <= limit:
                self._message += content
                self._message += terminator
                return
            self._message_head = bytes(self._message[: self.head_bytes])
            self._message.clear()
        room = self.head_bytes - len(self._message_head)
        if room > 0:
            whole = size == len(content)  # else the segment was cut at the cap: no terminator follows
            self._message_head += (content + terminator if whole else content)[:room]

    def _end_message(self) -> None:
        if self._message is None:
            return
        batch = self._batch
        if self._message_head is not None:
            record: Record = ChunkTooLarge(
                index=self._index,
                offset=self._message_offset,
                size=self._message_size,
                limit=self.max_message_bytes or 0,
                head=self._message_head,
                batch=batch,
            )
        else:
            record = MessageChunk(self._index, self._message_offset, self._message_end, bytes(self._message), batch)
        self._out.append(record)
        self._index += 1
        self._messages_in_batch += 1
        self._message = None

    def _end_stray(self) -> None:
        if self._stray_offset is None:
            return
        self._out.append(
            BatchWarning(
                STRAY_SEGMENTS,
                f"{self._stray_segments} segment(s), {self._stray_bytes} bytes, outside any message (no MSH before them)",
                self._stray_offset,
                self._batch,
                found=self._stray_segments,
            )
        )
        self._stray_offset = None
        self._stray_segments = 0
        self._stray_bytes = 0

    def _on_envelope(self, kind: bytes, content: bytes, offset: int) -> None:
        if kind == FILE_HEADER:
            self._close_batch(offset, "FHS")
            self._close_file(offset, "FHS")
            self._file_offset = offset
            self._batches_in_file = 0
            self._messages_in_batch = 0
            self._out.append(EnvelopeSegment("FHS", offset, content, None))
        elif kind == BATCH_HEADER:
            self._close_batch(offset, "BHS")
            self._batch = self._batches_started
            self._batches_started += 1
            self._batches_in_file += 1
            self._batch_offset = offset
            self._messages_in_batch = 0
            self._out.append(EnvelopeSegment("BHS", offset, content, self._batch))
        elif kind == BATCH_TRAILER:
            batch = self._batch
            if batch is None:
                self._batches_in_file += 1  # [BHS] is optional: the trailer closes an implicit batch
            self._out.append(EnvelopeSegment("BTS", offset, content, batch))
            self._check_count(content, offset, batch, self._messages_in_batch, BATCH_COUNT_MISMATCH, "BTS-1 batch message count")
            self._batch = None
            self._messages_in_batch = 0
        else:
            self._close_batch(offset, "FTS")
            self._out.append(EnvelopeSegment("FTS", offset, content, None))
            self._check_count(content, offset, None, self._batches_in_file, FILE_COUNT_MISMATCH, "FTS-1 file batch count")
            self._file_offset = None
            self._batches_in_file = 0
            self._messages_in_batch = 0

    def _check_count(self, content: bytes, offset: int, batch: int | None, found: int, code: str, what: str) -> None:
        declared = _count_field(content)
        if not declared:
            return
        if not _COUNT.fullmatch(declared):
            self._out.append(BatchWarning(UNREADABLE_COUNT, f"{what} {declared!r} is not a count", offset, batch))
            return
        expected = int(declared)
        if expected != found:
            self._out.append(
                BatchWarning(code, f"{what} says {expected}, found {found}", offset, batch, expected=expected, found=found)
            )

    def _close_batch(self, offset: int, by: str) -> None:
        if self._batch is None:
            return
        self._out.append(
            BatchWarning(MISSING_TRAILER, f"BHS at byte {self._batch_offset} has no BTS before {by}", offset, self._batch)
        )
        self._batch = None

    def _close_file(self, offset: int, by: str) -> None:
        if self._file_offset is None:
            return
        self._out.append(BatchWarning(MISSING_TRAILER, f"FHS at byte {self._file_offset} has no FTS before {by}", offset))
        self._file_offset = None


def split_messages(data: bytes, *, max_message_bytes: int | None = None) -> BatchFile:
    """Split an in-memory file: a BatchFile whose len() and items are its MessageChunks."""
    splitter = BatchSplitter(max_message_bytes)
    records = splitter.feed(data)
    records += splitter.close()
    return BatchFile(records)


def iter_records(
    fileobj: BinaryIO,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
) -> Iterator[Record]:
    """Stream every record of a binary file in order, reading ``chunk_size`` bytes at a time."""
    splitter = BatchSplitter(max_message_bytes)
    while True:
        chunk = fileobj.read(chunk_size)
        if isinstance(chunk, str):
            raise TypeError("iter_records needs a file opened in binary mode")
        if not chunk:
            break
        yield from splitter.feed(chunk)
    yield from splitter.close()


def iter_messages(
    fileobj: BinaryIO,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
) -> Iterator[MessageChunk | ChunkTooLarge]:
    """Stream only the messages (and oversize ones in their place); use iter_records for envelopes and warnings."""
    for record in iter_records(fileobj, chunk_size=chunk_size, max_message_bytes=max_message_bytes):
        if isinstance(record, (MessageChunk, ChunkTooLarge)):
            yield record
