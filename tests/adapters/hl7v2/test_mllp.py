"""MLLP Release 2 framing (HL7 v2.5.1 Appendix C.4): frame, incremental decoding, resynchronisation, limits."""
from __future__ import annotations

import asyncio
import socket
import threading

import hl7.client
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.hl7v2.errors import HL7Error, MessageTooLarge
from adapters.hl7v2.mllp import (
    DEFAULT_MAX_MESSAGE_BYTES,
    FrameTooLarge,
    FramingError,
    MLLPDecoder,
    frame,
    read_frame,
    read_messages,
    send_frame,
    write_message,
)

VT, FS, CR = b"\x0b", b"\x1c", b"\r"
ADT = b"MSH|^~\\&|HIS|GENHOSP|PB|GENHOSP|20240105083000||ADT^A01^ADT_A01|MSG0001|P|2.5.1\rPID|1||100^^^GENHOSP^MR||DOE^JANE\r"
ORU = b"MSH|^~\\&|LIS|GENHOSP|PB|GENHOSP|20240105083000||ORU^R01^ORU_R01|MSG0002|P|2.5.1\rOBX|1|NM|8867-4^Heart rate^LN||72|/min\r"


LONG = ADT + b"NTE|1||" + b"long comment " * 20 + b"\r"
assert len(LONG) > max(len(ADT), len(ORU))


def decode_all(data: bytes, decoder: MLLPDecoder | None = None) -> list[bytes | FrameTooLarge]:
    decoder = decoder or MLLPDecoder()
    items = decoder.feed(data)
    decoder.close()
    return items


# --- frame() -----------------------------------------------------------------------------


def test_frame_wraps_payload_in_start_and_end_blocks() -> None:
    assert frame(ADT) == VT + ADT + FS + CR
    assert frame(b"") == b"\x0b\x1c\r"
    assert frame(bytearray(b"MSH|")) == b"\x0bMSH|\x1c\r"


@pytest.mark.parametrize("bad", [b"MSH|\x0b|", b"MSH|\x1c|", b"\x1c\r"])
def test_frame_refuses_payload_containing_block_bytes(bad: bytes) -> None:
    with pytest.raises(FramingError) as caught:
        frame(bad)
    assert isinstance(caught.value, HL7Error)
    assert caught.value.offset == (bad.find(b"\x0b") if b"\x0b" in bad else bad.find(b"\x1c"))


# --- decoding ------------------------------------------------------------------------------


def test_one_frame_decodes_to_its_payload() -> None:
    decoder = MLLPDecoder()
    assert decoder.feed(frame(ADT)) == [ADT]
    assert (decoder.frames, decoder.junk_bytes, decoder.broken_frames) == (1, 0, 0)
    assert not decoder.in_frame and decoder.buffered_bytes == 0


def test_several_frames_in_one_feed_come_out_in_order() -> None:
    assert decode_all(frame(ADT) + frame(ORU) + frame(ADT)) == [ADT, ORU, ADT]


def test_frames_split_across_feeds_at_every_byte_position() -> None:
    stream = frame(ADT) + frame(ORU)
    for cut in range(len(stream) + 1):
        decoder = MLLPDecoder()
        items = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert items == [ADT, ORU], cut
        assert decoder.junk_bytes == 0 and decoder.broken_frames == 0


def test_frames_fed_one_byte_at_a_time() -> None:
    stream = frame(ADT) + b"\r\n" + frame(ORU)
    decoder = MLLPDecoder()
    items = [item for i in range(len(stream)) for item in decoder.feed(stream[i : i + 1])]
    assert items == [ADT, ORU]
    assert decoder.junk_bytes == 2


def test_frame_completes_exactly_on_its_end_cr() -> None:
    decoder = MLLPDecoder()
    stream = frame(ADT)
    assert decoder.feed(stream[:-1]) == []
    assert decoder.in_frame and decoder.awaiting_end_cr
    assert decoder.feed(stream[-1:]) == [ADT]


def test_junk_between_frames_is_skipped_counted_and_stream_resynchronises() -> None:
    junk = [b"garbage before", b"\r\n", b"\x1c", b"\x1c\r", b"\n\n\x00\xff"]
    stream = junk[0] + frame(ADT) + junk[1] + frame(ORU) + junk[2] + frame(ADT) + junk[3] + junk[4] + frame(ORU)
    decoder = MLLPDecoder()
    assert decode_all(stream, decoder) == [ADT, ORU, ADT, ORU]
    assert decoder.junk_bytes == sum(len(j) for j in junk)
    assert decoder.broken_frames == 0


def test_start_block_inside_unterminated_frame_breaks_it() -> None:
    stream = VT + b"MSH|^~\\&|cut short\r" + frame(ORU)
    decoder = MLLPDecoder()
    assert decode_all(stream, decoder) == [ORU]
    assert decoder.broken_frames == 1
    assert decoder.junk_bytes == 0


def test_end_block_without_cr_breaks_the_frame_and_the_next_frame_still_decodes() -> None:
    decoder = MLLPDecoder()
    assert decode_all(VT + ADT + FS + b"X" + frame(ORU), decoder) == [ORU]
    assert decoder.broken_frames == 1
    assert decoder.junk_bytes == 1  # the X after the bad end block


def test_end_block_directly_followed_by_start_block() -> None:
    decoder = MLLPDecoder()
    assert decode_all(VT + ADT + FS + frame(ORU), decoder) == [ORU]
    assert decoder.broken_frames == 1 and decoder.junk_bytes == 0


def test_end_of_stream_inside_a_frame_counts_as_broken() -> None:
    decoder = MLLPDecoder()
    assert decoder.feed(frame(ADT) + VT + b"MSH|partial") == [ADT]
    assert decoder.in_frame and decoder.buffered_bytes == len(b"MSH|partial")
    decoder.close()
    assert decoder.broken_frames == 1 and not decoder.in_frame


def test_empty_frames_yield_empty_payloads() -> None:
    assert decode_all(frame(b"") + frame(ADT) + frame(b"")) == [b"", ADT, b""]


def test_oversize_frame_is_reported_in_place_and_the_next_frame_decodes() -> None:
    decoder = MLLPDecoder(max_message_bytes=max(len(ADT), len(ORU)), head_bytes=20)
    items = decode_all(frame(ORU) + frame(LONG) + frame(ADT), decoder)
    assert items[0] == ORU and items[2] == ADT
    oversize = items[1]
    assert isinstance(oversize, FrameTooLarge) and isinstance(oversize, MessageTooLarge)
    assert oversize.code == "207" and oversize.rejects
    assert (oversize.size, oversize.limit, oversize.head) == (len(LONG), max(len(ADT), len(ORU)), LONG[:20])
    assert oversize.offset == len(frame(ORU))  # where its start block is
    assert (decoder.frames, decoder.oversize_frames, decoder.broken_frames) == (2, 1, 0)


def test_payload_of_exactly_the_limit_is_accepted() -> None:
    assert decode_all(frame(ADT), MLLPDecoder(max_message_bytes=len(ADT))) == [ADT]
    assert isinstance(decode_all(frame(ADT), MLLPDecoder(max_message_bytes=len(ADT) - 1))[0], FrameTooLarge)


def test_oversize_frame_is_not_buffered() -> None:
    limit = 1000
    decoder = MLLPDecoder(max_message_bytes=limit)
    assert decoder.feed(VT + b"MSH|^~\\&|") == []
    for _ in range(500):
        assert decoder.feed(b"x" * 997) == []
        assert decoder.buffered_bytes <= limit
    items = decoder.feed(FS + CR + frame(ORU))
    assert isinstance(items[0], FrameTooLarge) and items[0].size == 9 + 500 * 997
    assert items[0].head.startswith(b"MSH|^~\\&|")
    assert items[1:] == [ORU]


def test_oversize_head_is_the_payload_prefix_whatever_the_chunking() -> None:
    for size in (1, 3, 50):
        decoder = MLLPDecoder(max_message_bytes=5, head_bytes=40)
        stream = frame(ADT)
        items = [item for i in range(0, len(stream), size) for item in decoder.feed(stream[i : i + size])]
        assert [(i.size, i.head) for i in items if isinstance(i, FrameTooLarge)] == [(len(ADT), ADT[:40])]


def test_broken_oversize_frame_is_dropped_not_reported() -> None:
    decoder = MLLPDecoder(max_message_bytes=5)
    assert decode_all(VT + b"0123456789" + frame(b"ok"), decoder) == [b"ok"]
    assert decoder.broken_frames == 1 and decoder.oversize_frames == 0


def test_default_limit_is_16_mib() -> None:
    assert DEFAULT_MAX_MESSAGE_BYTES == 16 * 1024 * 1024
    with pytest.raises(ValueError):
        MLLPDecoder(max_message_bytes=-1)


# --- properties ----------------------------------------------------------------------------

payloads = st.binary(max_size=200).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b""))
junk = st.binary(max_size=20).map(lambda b: b.replace(b"\x0b", b""))


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(junk, payloads), max_size=8), junk, st.lists(st.integers(min_value=0), max_size=12))
def test_framed_payloads_survive_any_chunking_and_junk(pairs: list[tuple[bytes, bytes]], tail: bytes, cuts: list[int]) -> None:
    stream = b"".join(j + frame(p) for j, p in pairs) + tail
    decoder = MLLPDecoder()
    items = [item for piece in chunked(stream, cuts) for item in decoder.feed(piece)]
    decoder.close()
    assert items == [p for _, p in pairs]
    assert decoder.junk_bytes == sum(len(j) for j, _ in pairs) + len(tail)
    assert decoder.broken_frames == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0), max_size=12), st.integers(min_value=0, max_value=64))
def test_arbitrary_bytes_decode_the_same_in_any_chunking_and_never_raise(data: bytes, cuts: list[int], limit: int) -> None:
    whole = MLLPDecoder(max_message_bytes=limit)
    expected = whole.feed(data)
    whole.close()
    pieces = MLLPDecoder(max_message_bytes=limit)
    items = []
    for piece in chunked(data, cuts):
        items += pieces.feed(piece)
        assert pieces.buffered_bytes <= limit
    pieces.close()
    summary = [(i.size, i.head) if isinstance(i, FrameTooLarge) else i for i in items]
    assert summary == [(i.size, i.head) if isinstance(i, FrameTooLarge) else i for i in expected]
    for item in items:
        assert isinstance(item, FrameTooLarge) or (len(item) <= limit and b"\x0b" not in item and b"\x1c" not in item)
    assert (pieces.junk_bytes, pieces.broken_frames, pieces.frames) == (whole.junk_bytes, whole.broken_frames, whole.frames)
    assert pieces.frames + pieces.oversize_frames == len(items)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_frame_raises_only_the_package_error(data: bytes) -> None:
    try:
        framed = frame(data)
    except HL7Error:
        assert b"\x0b" in data or b"\x1c" in data
    else:
        assert MLLPDecoder().feed(framed) == [data]


# --- asyncio helpers -----------------------------------------------------------------------


def test_read_messages_yields_items_until_eof() -> None:
    async def scenario() -> tuple[list[bytes | FrameTooLarge], MLLPDecoder]:
        reader = asyncio.StreamReader()
        stream = b"junk" + frame(ADT) + frame(LONG) + frame(ORU) + VT + b"cut"
        for i in range(0, len(stream), 7):
            reader.feed_data(stream[i : i + 7])
        reader.feed_eof()
        decoder = MLLPDecoder(max_message_bytes=max(len(ADT), len(ORU)))
        items = [item async for item in read_messages(reader, decoder=decoder, read_size=5)]
        return items, decoder

    items, decoder = asyncio.run(scenario())
    assert items[0] == ADT and items[2] == ORU and isinstance(items[1], FrameTooLarge)
    assert (decoder.junk_bytes, decoder.broken_frames, decoder.oversize_frames) == (4, 1, 1)


def test_asyncio_server_answers_python_hl7_mllp_client() -> None:
    """A real peer: python-hl7's blocking MLLPClient against a server built on read_messages/write_message."""
    received: list[bytes] = []
    ready = threading.Event()
    port: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for item in read_messages(reader):
            assert isinstance(item, bytes)
            received.append(item)
            control_id = item.split(b"\r")[0].split(b"|")[9]
            await write_message(writer, b"MSH|^~\\&|PB||||||ACK|A" + control_id + b"|P|2.5.1\rMSA|AA|" + control_id + b"\r")
        writer.close()

    async def serve(stop: asyncio.Event) -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        async with server:
            await stop.wait()

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(stop),))
    thread.start()
    try:
        assert ready.wait(10)
        with hl7.client.MLLPClient("127.0.0.1", port[0]) as client:
            ack1 = client.send_message(ADT)
            ack2 = client.send_message(ORU)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
    assert received == [ADT, ORU]
    assert b"MSA|AA|MSG0001" in ack1 and b"MSA|AA|MSG0002" in ack2


# --- blocking socket helpers ---------------------------------------------------------------


def test_read_frame_reads_one_frame_at_a_time_from_a_socket() -> None:
    left, right = socket.socketpair()
    with left, right:
        right.settimeout(5)
        left.sendall(b"\r\n" + frame(ADT) + frame(ORU) + frame(b""))
        assert read_frame(right) == ADT
        assert read_frame(right) == ORU
        assert read_frame(right) == b""
        send_frame(left, ADT)
        assert read_frame(right) == ADT
        left.shutdown(socket.SHUT_WR)
        assert read_frame(right) is None


def test_read_frame_keeps_sync_after_an_oversize_frame() -> None:
    left, right = socket.socketpair()
    with left, right:
        right.settimeout(5)
        left.sendall(frame(LONG) + frame(ORU))
        with pytest.raises(FrameTooLarge) as caught:
            read_frame(right, max_message_bytes=len(ORU))
        assert caught.value.size == len(LONG)
        assert read_frame(right, max_message_bytes=len(ORU)) == ORU


def test_read_frame_with_end_block_split_across_sends() -> None:
    left, right = socket.socketpair()
    with left, right:
        right.settimeout(5)
        decoder = MLLPDecoder()
        left.sendall(VT + ADT + FS)
        result: list[bytes | None] = []
        reader = threading.Thread(target=lambda: result.append(read_frame(right, decoder=decoder)))
        reader.start()
        left.sendall(CR + frame(ORU))
        reader.join(5)
        assert result == [ADT]
        assert read_frame(right, decoder=decoder) == ORU


def test_read_frame_raises_when_peer_closes_mid_frame() -> None:
    left, right = socket.socketpair()
    with left, right:
        right.settimeout(5)
        left.sendall(VT + b"MSH|^~\\&|half")
        left.shutdown(socket.SHUT_WR)
        with pytest.raises(FramingError):
            read_frame(right)
