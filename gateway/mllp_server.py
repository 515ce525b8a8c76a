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

Hardening: a connection from an address outside `allow` (PULSEBRIDGE_MLLP_ALLOW) is closed at
accept, before a byte is read, and logged with the address only. With a certificate and key the
listener speaks MLLP over TLS (the TLS layer HL7 v2 leaves to the transport; IHE ITI TF-2 3.19
"secure node" practice): the handshake runs after the allow-list check, a failed handshake
(plain TCP, an untrusted or missing client certificate when a client CA is set) closes that
connection only. Log records name peers, message ids and outcomes, never message content.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from adapters.hl7v2.mllp import FrameTooLarge, MLLPDecoder, read_messages, write_message
from gateway.address import split_address
from gateway.allow_list import AllowList, require_for_bind
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.ingest import Ingestor
    from gateway.serve import Service

log = logging.getLogger(__name__)

DEFAULT_MLLP = "127.0.0.1:2575"
DEFAULT_IDLE_TIMEOUT = Settings.mllp_idle_timeout  # seconds a connection may stay silent between frames
DEFAULT_THREADS = 8
TLS_HANDSHAKE_TIMEOUT = 10.0  # seconds a client gets to complete the TLS handshake


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
        allow: AllowList | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.host, self.port = host, port
        self.idle_timeout = idle_timeout
        self.max_message_bytes = max_message_bytes or ingestor.settings.max_message_bytes
        self.allow = ingestor.settings.mllp_allow if allow is None else allow
        self.tls = tls
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

    async def _admit(self, writer: asyncio.StreamWriter, host: str, peer: str) -> bool:
        """The allow-list check (nothing read yet), then the TLS handshake when TLS is configured."""
        if not self.allow.permits(host):
            log.warning("MLLP connection from %s refused: address not in the MLLP allow-list", peer)
            writer.transport.abort()
            return False
        if self.tls is None:
            return True
        try:
            await writer.start_tls(self.tls, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as error:  # ssl.SSLError is an OSError
            reason = getattr(error, "reason", None) or type(error).__name__
            log.warning("MLLP connection from %s refused: TLS handshake failed (%s)", peer, reason)
            writer.transport.abort()
            return False
        return True

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = writer.get_extra_info("peername")
        host = address[0] if isinstance(address, tuple) else str(address)
        peer = f"{host}:{address[1]}" if isinstance(address, tuple) else host
        if not await self._admit(writer, host, peer):
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = False
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
            log.exception("MLLP connection from %s failed", peer)  # gateway.log_hygiene withholds the exception text
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


def server_tls_context(cert: str, key: str, client_ca: str = "") -> ssl.SSLContext:
    """A TLS 1.2+ server context (RFC 9325 recommendations); with `client_ca`, client certificates are required and verified."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass(frozen=True)
class ListenerOptions:
    """How the listener admits connections: idle timeout, allow-list, TLS files (from settings or `serve` options)."""

    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    allow: AllowList = AllowList()
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""

    def check(self, host: str) -> ssl.SSLContext | None:
        """Refuse (ValueError, OSError) an exposed bind with no allow-list or unusable TLS files; the TLS context or None."""
        require_for_bind(host, self.allow, option="--mllp-allow / PULSEBRIDGE_MLLP_ALLOW")
        return self.tls()

    def tls(self) -> ssl.SSLContext | None:
        """The server TLS context, or None for plain MLLP; ValueError when only half of cert/key is given."""
        if not (self.tls_cert or self.tls_key):
            if self.tls_client_ca:
                raise ValueError("an MLLP TLS client CA needs the listener's own certificate and key as well")
            return None
        if not (self.tls_cert and self.tls_key):
            raise ValueError("MLLP over TLS needs both a certificate and its private key")
        return server_tls_context(self.tls_cert, self.tls_key, self.tls_client_ca)

    def arguments(self) -> list[str]:
        """These options as `python -m gateway.mllp_server` arguments."""
        pairs = [("--allow", str(self.allow)), ("--tls-cert", self.tls_cert), ("--tls-key", self.tls_key),
                 ("--tls-client-ca", self.tls_client_ca)]
        return [item for option, value in pairs if value for item in (option, value)]


async def serve_forever(db: str, address: str, options: ListenerOptions | None = None) -> None:
    """Run a listener until SIGTERM/SIGINT, applying messages left unapplied by a crash first."""
    from adapters.storage import open_repository
    from gateway.ingest import Ingestor
    from gateway.settings import load_settings

    options = options or ListenerOptions()
    host, port = split_address(address)
    tls = options.check(host)
    repository = open_repository(db)
    ingestor = Ingestor(repository, load_settings())
    recovered = ingestor.recover()
    if recovered:
        log.warning("applied %d message(s) logged before a crash", len(recovered))
    server = MLLPServer(ingestor, host, port, idle_timeout=options.idle_timeout, allow=options.allow, tls=tls)
    await server.start()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    print(f"MLLP{' over TLS' if tls else ''} listening on {host}:{server.port}", file=sys.stderr, flush=True)
    await done.wait()
    await server.stop()
    repository.close()


def mllp_service(address: str, options: ListenerOptions | None = None) -> Service:
    """A `serve` service: the listener as a child process of the gunicorn master, stopped with it."""
    from gateway.serve import child_process_service

    return child_process_service("gateway.mllp_server", address, *(options or ListenerOptions()).arguments())


def main(argv: list[str] | None = None) -> None:
    from gateway.allow_list import parse_allow_list
    from gateway.log_hygiene import configure_logging
    from gateway.runtime import tune_collector
    from gateway.settings import SettingsError, load_settings, readable_file

    parser = argparse.ArgumentParser(prog="gateway.mllp_server", description="PulseBridge MLLP listener")
    parser.add_argument("address", nargs="?", default=DEFAULT_MLLP)
    parser.add_argument("--db", help="database URL [default: the db setting, PULSEBRIDGE_DB]")
    parser.add_argument("--idle-timeout", type=float, help="seconds of silence before a connection is closed [default: PULSEBRIDGE_MLLP_IDLE_TIMEOUT]")
    parser.add_argument("--allow", type=parse_allow_list, help="admitted senders: IPs and CIDR networks, comma-separated")
    parser.add_argument("--tls-cert", type=readable_file, help="PEM certificate chain: speak MLLP over TLS")
    parser.add_argument("--tls-key", type=readable_file, help="PEM private key of the certificate")
    parser.add_argument("--tls-client-ca", type=readable_file, help="PEM CA bundle: require client certificates it signed")
    args = parser.parse_args(argv)
    configure_logging()
    tune_collector()
    try:
        settings = load_settings()
        options = ListenerOptions(
            idle_timeout=args.idle_timeout or settings.mllp_idle_timeout,
            allow=args.allow if args.allow is not None else settings.mllp_allow,
            tls_cert=args.tls_cert or settings.mllp_tls_cert,
            tls_key=args.tls_key or settings.mllp_tls_key,
            tls_client_ca=args.tls_client_ca or settings.mllp_tls_client_ca,
        )
        options.check(split_address(args.address)[0])  # fail here, before the database is opened
    except (SettingsError, ValueError, OSError) as error:  # ssl.SSLError is an OSError
        parser.exit(2, f"gateway.mllp_server: {error}\n")
    asyncio.run(serve_forever(args.db or settings.db, args.address, options))


if __name__ == "__main__":
    main()
