"""The MLLP listener (HL7 v2.5.1 Appendix C.4): asyncio sockets, ingest in a thread pool, one ACK per frame.

Design: the listener runs in its own process (`python -m gateway.mllp_server HOST:PORT --db URL`),
started and stopped by `pulsebridge serve` as a service of the gunicorn master. A separate process
has its own GIL and never forks with threads running; SQLite in WAL mode lets it write while the
HTTP workers read and write (writers queue on busy_timeout), PostgreSQL needs nothing special.

Per connection, frames are applied strictly in order (the next frame is read only after the
previous one's ACK is written); connections run side by side: the blocking ingest runs in a
thread pool, so a slow message on one connection never stalls the event loop. Idle connections
are closed after `idle_timeout`; an oversize frame is answered AR and the stream carries on;
broken frames are dropped by the decoder (the sender gets no ACK and resends). SIGTERM stops
accepting, lets every in-flight message finish and its ACK go out, then closes.

Enhanced mode (v2.5 2.9.3): the accept ACK is sent only when MSH-15 asks for it (AL always, NE
never, ER only on error, SU only on success); when it is not wanted, nothing is written for that
frame. A frame that does not parse is always answered (its MSH-15 cannot be trusted).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable

from adapters.hl7v2.mllp import FrameTooLarge, MLLPDecoder, read_messages, write_message
from gateway.address import split_address

if TYPE_CHECKING:
    from gateway.ingest import Ingestor
    from gateway.serve import Service

log = logging.getLogger(__name__)

DEFAULT_MLLP = "127.0.0.1:2575"
DEFAULT_IDLE_TIMEOUT = 300.0  # seconds a connection may stay silent between frames
DEFAULT_THREADS = 8


class MLLPServer:
    """Accepts MLLP connections and feeds each frame to an Ingestor."""

    def __init__(
        self,
        ingestor: Ingestor,
        host: str = "127.0.0.1",
        port: int = 2575,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        threads: int = DEFAULT_THREADS,
        max_message_bytes: int | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.host, self.port = host, port
        self.idle_timeout = idle_timeout
        self.max_message_bytes = max_message_bytes or ingestor.settings.max_message_bytes
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mllp-ingest")
        self._server: asyncio.base_events.Server | None = None
        self._connections: dict[asyncio.Task, bool] = {}  # task -> busy with a message
        self._stopping = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, self.host, self.port, backlog=256)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self, grace: float = 30.0) -> None:
        """Stop accepting, close idle connections, let in-flight messages finish and be acknowledged."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task, busy in list(self._connections.items()):
            if not busy:
                task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=grace)
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown, True)

    async def _run(self, func: Callable, *args: object):  # noqa: ANN202 - the ingest result types
        return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = False
        address = writer.get_extra_info("peername")
        peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
        decoder = MLLPDecoder(self.max_message_bytes)
        frames = read_messages(reader, decoder=decoder).__aiter__()
        try:
            while not self._stopping:
                try:
                    item = await asyncio.wait_for(frames.__anext__(), self.idle_timeout)
                except (StopAsyncIteration, asyncio.TimeoutError):
                    break
                self._connections[task] = True
                try:
                    await self._answer(item, peer, writer)
                finally:
                    self._connections[task] = False
        except (ConnectionError, asyncio.CancelledError):
            pass  # the peer hung up, or we are stopping while it was idle: nothing unacknowledged was applied
        except Exception:  # noqa: BLE001 - one connection's failure must not stop the listener
            log.exception("MLLP connection from %s failed", peer)
        finally:
            self._connections.pop(task, None)
            if decoder.broken_frames:
                log.warning("MLLP %s: %d broken frame(s) dropped", peer, decoder.broken_frames)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, item: bytes | FrameTooLarge, peer: str, writer: asyncio.StreamWriter) -> None:
        if isinstance(item, FrameTooLarge):
            result = await self._run(lambda: self.ingestor.reject_oversize(item.head, item, peer=peer, transport="mllp"))
            await write_message(writer, result.ack)
            return
        receipt = await self._run(lambda: self.ingestor.accept(item, peer=peer, transport="mllp"))
        if receipt.accept_ack is not None:  # enhanced mode: CA as soon as the message is durable
            # MSH-15 (table 0155) decides whether the CA goes out at all: NE and ER send nothing
            # for an accepted message, and the frame simply has no answer on the wire.
            if receipt.mode.accept_ack_wanted(success=True):
                await write_message(writer, receipt.accept_ack)
            await self._run(self.ingestor.apply, receipt)
            return
        result = await self._run(self.ingestor.apply, receipt)
        await write_message(writer, result.ack)


async def serve_forever(db: str, address: str, *, idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
    """Run a listener until SIGTERM/SIGINT, applying messages left unapplied by a crash first."""
    from adapters.storage import open_repository
    from gateway.ingest import Ingestor
    from gateway.settings import load_settings

    host, port = split_address(address)
    repository = open_repository(db)
    ingestor = Ingestor(repository, load_settings())
    recovered = ingestor.recover()
    if recovered:
        log.warning("applied %d message(s) logged before a crash", len(recovered))
    server = MLLPServer(ingestor, host, port, idle_timeout=idle_timeout)
    await server.start()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    print(f"MLLP listening on {host}:{server.port}", file=sys.stderr, flush=True)
    await done.wait()
    await server.stop()
    repository.close()


def mllp_service(address: str) -> Service:
    """A `serve` service: the listener as a child process of the gunicorn master, stopped with it."""
    from gateway.serve import child_process_service

    return child_process_service("gateway.mllp_server", address)


def main(argv: list[str] | None = None) -> None:
    from gateway.settings import Settings

    parser = argparse.ArgumentParser(prog="gateway.mllp_server", description="PulseBridge MLLP listener")
    parser.add_argument("address", nargs="?", default=DEFAULT_MLLP)
    parser.add_argument("--db", default=os.environ.get("PULSEBRIDGE_DB", Settings.db))
    parser.add_argument("--idle-timeout", type=float, default=float(os.environ.get("PULSEBRIDGE_MLLP_IDLE_TIMEOUT") or DEFAULT_IDLE_TIMEOUT))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve_forever(args.db, args.address, idle_timeout=args.idle_timeout))


if __name__ == "__main__":
    main()
