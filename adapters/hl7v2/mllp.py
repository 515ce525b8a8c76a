"""MLLP framing, bytes only: HL7 v2 Minimal Lower Layer Protocol, Release 2 (HL7 v2.5.1 Appendix C.4).

A frame is ``<VT> payload <FS><CR>`` with VT = 0x0B (start block), FS = 0x1C (end block) and
CR = 0x0D. This module never looks inside the payload; parsing is the ER7 reader's job.

Decoding rules (:class:`MLLPDecoder`):

* Bytes outside a frame (junk, stray CR/LF after an end block, a lone FS) are skipped and
  counted in ``junk_bytes``; the stream resynchronises at the next VT.
* A VT inside an unterminated frame means the previous frame was broken: it is dropped,
  counted in ``broken_frames``, and a new frame starts at that VT. An FS that is not followed
  by CR breaks the frame the same way. End of stream inside a frame (``close()``) also counts
  as a broken frame.
* A frame whose payload grows beyond ``max_message_bytes`` (default 16 MiB) stops being
  buffered: only its first ``head_bytes`` are kept (they normally hold MSH, so the caller can
  echo MSH-10 in MSA-2), the rest is counted and discarded. When its end block arrives, the
  decoder returns a :class:`FrameTooLarge` *instance in place of the payload*, keeping one
  item per frame in stream order, so the caller can answer AR for it and carry on: later
  frames decode normally.
* An empty frame ``<VT><FS><CR>`` yields ``b""``: the sender still waits for an answer.
"""
from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import AsyncIterator

from adapters.hl7v2.errors import HL7Error, MessageTooLarge

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\x0d"
FRAME_END = END_BLOCK + CARRIAGE_RETURN

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""16 MiB: room for OBX-5 ED documents (base64 PDFs, images) while bounding memory per connection."""

DEFAULT_HEAD_BYTES = 4096
DEFAULT_READ_SIZE = 64 * 1024

_VT = START_BLOCK[0]
_FS = END_BLOCK[0]
_CR = CARRIAGE_RETURN[0]
_BLOCK_BYTE = re.compile(b"[\x0b\x1c]")


class FramingError(HL7Error):
    """The byte stream breaks MLLP framing (a payload that cannot be framed, a frame cut off by end of stream)."""


class FrameTooLarge(MessageTooLarge):
    """A frame's payload exceeded ``max_message_bytes``; returned (not raised) by :meth:`MLLPDecoder.feed`.

    ``size`` is the full payload size seen, ``limit`` the configured maximum, ``head`` the first
    bytes of the payload (normally enough to read MSH for the AR acknowledgment).
    """

    def __init__(self, size: int, limit: int, head: bytes, *, offset: int | None = None) -> None:
        self.size = size
        self.limit = limit
        self.head = head
        super().__init__(f"MLLP frame of {size} bytes exceeds the limit of {limit} bytes", offset=offset)


Item = bytes | FrameTooLarge
"""What the decoder produces for one complete frame: its payload, or the oversize marker."""


def frame(message: bytes) -> bytes:
    """Wrap one payload in an MLLP Release 2 block: VT payload FS CR (v2.5.1 Appendix C.4.2).

    MLLP cannot carry VT or FS inside a payload (ER7 never contains them), so such a payload
    raises :class:`FramingError` rather than producing a frame the peer would cut in two.
    """
    payload = bytes(message)
    bad = _BLOCK_BYTE.search(payload)
    if bad is not None:
        raise FramingError(f"payload contains MLLP block byte 0x{payload[bad.start()]:02X}", offset=bad.start())
    return START_BLOCK + payload + FRAME_END


class MLLPDecoder:
    """Incremental MLLP deframer: feed it bytes as they arrive, get back complete payloads."""

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, *, head_bytes: int = DEFAULT_HEAD_BYTES) -> None:
        if max_message_bytes < 0:
            raise ValueError("max_message_bytes must be >= 0")
        self.max_message_bytes = max_message_bytes
        self.head_bytes = head_bytes
        self.junk_bytes = 0
        self.broken_frames = 0
        self.oversize_frames = 0
        self.frames = 0
        self._position = 0  # stream offset of the next byte fed
        self._in_frame = False
        self._after_fs = False  # the last byte of the frame so far was FS; CR decides
        self._buffer = bytearray()
        self._oversize = False
        self._size = 0
        self._head = b""
        self._frame_offset = 0

    @property
    def in_frame(self) -> bool:
        """True while a frame has started and not ended (bytes are pending)."""
        return self._in_frame

    @property
    def awaiting_end_cr(self) -> bool:
        """True when the last byte fed was a frame's FS, so the next byte decides whether the frame ends."""
        return self._in_frame and self._after_fs

    @property
    def buffered_bytes(self) -> int:
        """Payload bytes currently held in memory (never more than ``max_message_bytes``)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Item]:
        """Consume ``data``; return the frames completed by it, in order (payload bytes or FrameTooLarge)."""
        items: list[Item] = []
        view = bytes(data)
        pos, end = 0, len(view)
        base = self._position
        while pos < end:
            if not self._in_frame:
                start = view.find(START_BLOCK, pos)
                if start < 0:
                    self.junk_bytes += end - pos
                    break
                self.junk_bytes += start - pos
                self._start_frame(base + start)
                pos = start + 1
                continue
            if self._after_fs:
                self._after_fs = False
                if view[pos] == _CR:
                    items.append(self._finish_frame())
                    pos += 1
                else:
                    # FS not followed by CR: not a Release 2 end block; drop the frame and
                    # look at this byte again as if between frames (it may be a VT).
                    self._break_frame()
                continue
            found = _BLOCK_BYTE.search(view, pos)
            if found is None:
                self._append(view[pos:])
                break
            at = found.start()
            self._append(view[pos:at])
            if view[at] == _VT:
                self._break_frame()
                self._start_frame(base + at)
            else:
                self._after_fs = True
            pos = at + 1
        self._position = base + end
        return items

    def close(self) -> None:
        """Signal end of stream: an unterminated frame is counted as broken and dropped."""
        if self._in_frame:
            self._break_frame()

    def _start_frame(self, offset: int) -> None:
        self._in_frame = True
        self._after_fs = False
        self._buffer.clear()
        self._oversize = False
        self._size = 0
        self._frame_offset = offset

    def _append(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._size += len(chunk)
        if self._oversize:
            if len(self._head) < self.head_bytes:
                self._head += chunk[: self.head_bytes - len(self._head)]
            return
        if self._size > self.max_message_bytes:
            self._oversize = True
            self._head = bytes((self._buffer + chunk[: self.head_bytes])[: self.head_bytes])
            self._buffer.clear()
            return
        self._buffer += chunk

    def _finish_frame(self) -> Item:
        self._in_frame = False
        if self._oversize:
            self.oversize_frames += 1
            item: Item = FrameTooLarge(self._size, self.max_message_bytes, self._head, offset=self._frame_offset)
        else:
            self.frames += 1
            item = bytes(self._buffer)
        self._buffer.clear()
        self._oversize = False
        return item

    def _break_frame(self) -> None:
        self.broken_frames += 1
        self._in_frame = False
        self._after_fs = False
        self._buffer.clear()
        self._oversize = False


async def read_messages(
    reader: asyncio.StreamReader,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    decoder: MLLPDecoder | None = None,
    read_size: int = DEFAULT_READ_SIZE,
) -> AsyncIterator[Item]:
    """Yield each frame received on ``reader`` until EOF: payload bytes, or a FrameTooLarge to answer with AR.

    Pass your own ``decoder`` to read its counters (junk, broken, oversize) afterwards.
    """
    decoder = decoder if decoder is not None else MLLPDecoder(max_message_bytes)
    while True:
        data = await reader.read(read_size)
        if not data:
            decoder.close()
            return
        for item in decoder.feed(data):
            yield item


async def write_message(writer: asyncio.StreamWriter, payload: bytes) -> None:
    """Send one payload as an MLLP frame and wait until the transport's buffer drains."""
    writer.write(frame(payload))
    await writer.drain()


def send_frame(sock: socket.socket, payload: bytes) -> None:
    """Blocking: send one payload as an MLLP frame."""
    sock.sendall(frame(payload))


def read_frame(
    sock: socket.socket,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    decoder: MLLPDecoder | None = None,
    read_size: int = DEFAULT_READ_SIZE,
) -> bytes | None:
    """Blocking: read the next frame's payload from ``sock``; None when the peer closed between frames.

    Consumes the socket exactly up to the end of that frame (it peeks before reading), so
    bytes of a following frame stay in the socket for the next call. Raises FrameTooLarge for
    an oversize frame (the stream stays in sync) and FramingError when the peer closes in the
    middle of a frame. Socket timeouts propagate as TimeoutError.
    """
    decoder = decoder if decoder is not None else MLLPDecoder(max_message_bytes)
    # TLS sockets refuse MSG_PEEK; ACK-sized frames make byte-wise reads acceptable there.
    peekable = not isinstance(sock, ssl.SSLSocket)
    while True:
        if peekable:
            peeked = sock.recv(read_size, socket.MSG_PEEK)
            if peeked:
                take = _bytes_through_frame_end(peeked, decoder)
                data = sock.recv(take)
            else:
                data = b""
        else:
            data = sock.recv(1)
        if not data:
            if decoder.in_frame:
                decoder.close()
                raise FramingError("connection closed in the middle of an MLLP frame")
            return None
        items = decoder.feed(data)
        if items:
            item = items[0]  # at most one: reads stop at the first end block
            if isinstance(item, FrameTooLarge):
                raise item
            return item


def _bytes_through_frame_end(data: bytes, decoder: MLLPDecoder) -> int:
    """How many bytes of ``data`` to consume so that at most one frame completes."""
    if decoder.awaiting_end_cr and data[:1] == CARRIAGE_RETURN:
        return 1
    at = data.find(FRAME_END)
    return len(data) if at < 0 else at + len(FRAME_END)
