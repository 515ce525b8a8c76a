"""The audit sink: one process beside the gunicorn workers that stores their AuditEvents (FHIR R4 auditevent.html).

A thread storing events inside a worker competes for the GIL with that worker's request threads,
and a request waits for it at every I/O boundary (each SQLite step, each socket write): with the
trail on, a 2-core server answered searches at a quarter to half of its unaudited rate, with p99
of 50-470 ms, while its CPUs were partly idle (6 ms with this process). So under `pulsebridge serve` the workers
only build each event in the request (~0.05 ms) and send its JSON, length-prefixed, over their own
Unix socket to this process, which stores them in one transaction about once a second.

- **No shared locks.** Each worker has its own connection, so a worker killed mid-send loses at
  most that one event and never blocks the others (a queue shared by all would deadlock on the lock
  a dead worker held).
- **Back-pressure.** A worker's send blocks while the sink's socket buffer is full: requests wait,
  nothing is dropped. Should the sink be gone, the worker stores the event itself, in the request,
  and logs (no PHI) that it did.
- **Stopping.** SIGINT and SIGTERM, which Ctrl-C and service managers send to the whole process
  group, are ignored. The sink ends when the master has closed its end of the control pipe and
  every worker is gone (their copies of that pipe close with them), after storing what they sent.
- **Restart.** Should the sink die (killed, out of memory), the master starts a new one on the same
  socket within a second or two (waiting longer, up to a minute, while it keeps dying young); each
  worker's next event connects to it. What a killed sink had read but not stored is lost with it,
  as with any crash.
- **Access.** The socket lives in a directory only the server's user can enter (mode 0700).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import orjson

from adapters.storage.base import Repository
from gateway.audit_trail import AuditWriter, Capture, event_of, store_events

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("!I")  # each event: its length, then its JSON
SOCKET_NAME = "sink.sock"
DIRECTORY_PREFIX = "pulsebridge-audit-"  # then the master's pid: tempfile.gettempdir()/pulsebridge-audit-<pid>-<random>
CAPACITY = 50_000  # events read but not yet stored before the sink stops reading (workers then wait)


class AuditSink:
    """The master's handle on the sink process: its socket address, the control pipe, start and stop."""

    def __init__(self, db: str, *, interval: float = 1.0, batch: int = 5_000) -> None:
        self.db, self.interval, self.batch = db, interval, batch
        sweep_stale_directories()
        self.directory = tempfile.mkdtemp(prefix=f"{DIRECTORY_PREFIX}{os.getpid()}-")  # mode 0700
        self.address = os.path.join(self.directory, SOCKET_NAME)
        self.process: subprocess.Popen | None = None
        self._control: int | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        """Start the sink process, and a thread of the master's that starts a new one whenever it dies."""
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="audit-sink-watch", daemon=True)
        self._watcher.start()

    def _spawn(self) -> None:
        """Bind the socket here, so workers can connect at once, and hand it to a new sink process."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)  # a sink that ended on an error removed it
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.address)  # a killed sink's socket
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.address)
        listener.listen(64)
        control_read, control_write = os.pipe()
        command = [sys.executable, "-m", "gateway.audit_sink", "--db", self.db, "--listener", str(listener.fileno()),
                   "--control", str(control_read), "--interval", str(self.interval), "--batch", str(self.batch),
                   "--directory", self.directory]
        self.process = subprocess.Popen(command, pass_fds=(listener.fileno(), control_read), preexec_fn=_shielded)  # noqa: S603
        listener.close()
        os.close(control_read)
        if self._control is not None:
            os.close(self._control)  # the dead sink's pipe
        self._control = control_write

    def _watch(self, every: float = 0.5, young: float = 10.0, longest: float = 60.0) -> None:
        """Until stop(): a sink that exited is replaced, at once unless it died within `young` seconds of
        its start, then after a wait doubling from 1 s up to `longest` (a sink that cannot open the store)."""
        wait, started = 1.0, time.monotonic()
        while not self._stopping.wait(every):
            assert self.process is not None
            code = self.process.poll()  # also when gunicorn's master reaped it: poll() then reads 0
            if code is None:
                continue
            died_young = time.monotonic() - started < young
            log.error("audit sink exited (code %s); starting a new one%s", code, f" in {wait:.0f} s" if died_young else "")
            if died_young and self._stopping.wait(wait):
                return
            wait = min(wait * 2, longest) if died_young else 1.0
            self._spawn()
            started = time.monotonic()

    def stop(self, timeout: float = 60.0) -> None:
        """After the workers have gone: close the control pipe and wait until the sink has stored everything."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
        if self._control is not None:
            os.close(self._control)
            self._control = None
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("audit sink did not finish within %.0f s; stopping it", timeout)
                self.process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def sweep_stale_directories(parent: str | None = None) -> list[str]:
    """Remove the socket directories of servers that are gone (a SIGKILL to a whole process group
    leaves nobody to clean up): ours, named after a master pid that no longer runs."""
    parent = parent or tempfile.gettempdir()
    removed = []
    for entry in os.scandir(parent):
        owner = entry.name.removeprefix(DIRECTORY_PREFIX).partition("-")[0]
        if not (entry.name.startswith(DIRECTORY_PREFIX) and owner.isdigit() and entry.is_dir(follow_symlinks=False)):
            continue
        if entry.stat(follow_symlinks=False).st_uid != os.getuid() or _alive(int(owner)):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _shielded() -> None:
    """In the sink before exec: Ctrl-C and SIGTERM to the process group must not end it before the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class SocketWriter(AuditWriter):
    """A worker's writer: builds each event in the request thread and sends it to the sink on this process's connection."""

    def __init__(self, repository: Repository, address: str) -> None:
        super().__init__(repository)
        self.address = address
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._pid = 0

    def submit(self, capture: Capture) -> None:
        event = event_of(capture)
        if event is None:
            return
        payload = orjson.dumps(event)
        with self._lock:
            try:
                self._connected().sendall(_LENGTH.pack(len(payload)) + payload)
                return
            except OSError as error:
                self._disconnect()
                log.warning("audit sink unreachable (%s): %s %s stored by the worker", type(error).__name__,
                            capture.method, capture.endpoint)
        store_events(self.repository, [event])  # slower, in the request, but the access is still recorded

    def _connected(self) -> socket.socket:
        if self._socket is None or self._pid != os.getpid():  # a forked worker opens its own connection
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                connection.connect(self.address)
            except OSError:
                connection.close()
                raise
            self._socket, self._pid = connection, os.getpid()
        return self._socket

    def _disconnect(self) -> None:
        if self._socket is not None and self._pid == os.getpid():
            self._socket.close()
        self._socket = None

    def flush(self) -> None:
        """Sends are synchronous: closing the connection tells the sink this worker is done."""
        with self._lock:
            self._disconnect()


class _Inbox:
    """Events read but not yet stored, handed from the reading thread to the storing one."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.events: list[bytes] = []
        self.lock = threading.Lock()
        self.closed = threading.Event()  # every writer is gone: nothing more will arrive

    def put(self, events: list[bytes]) -> None:
        while len(self.events) >= self.capacity and not self.closed.is_set():
            time.sleep(0.01)  # the store is behind: stop reading, so workers wait (back-pressure)
        with self.lock:
            self.events.extend(events)

    def take(self, limit: int) -> list[bytes]:
        with self.lock:
            taken, self.events = self.events[:limit], self.events[limit:]
        return taken


def serve(listener: socket.socket, control: int, db: str, *, interval: float, batch: int, capacity: int = CAPACITY) -> None:
    """The sink: one thread reads every connection at once (a worker never waits for a commit), this one stores.

    Events are stored one transaction per `interval` (up to `batch` each); the sink ends as the module says."""
    from adapters.storage import open_repository

    repository = open_repository(db)
    inbox = _Inbox(capacity)
    reader = threading.Thread(target=_read, args=(listener, control, inbox), name="audit-sink-reader", daemon=True)
    reader.start()
    try:
        while True:
            finished = inbox.closed.wait(interval)
            while events := inbox.take(batch):
                store_events(repository, [orjson.loads(event) for event in events])
            if finished:
                return
    finally:
        repository.close()


def _read(listener: socket.socket, control: int, inbox: _Inbox) -> None:
    """Accept workers and read their events until the control pipe and every connection are closed."""
    selector = selectors.DefaultSelector()
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ, "listener")
    selector.register(control, selectors.EVENT_READ, "control")
    connections = 0
    control_open = True
    try:
        while control_open or connections:
            for key, _ in selector.select():
                if key.data == "listener":
                    try:
                        connection, _ = listener.accept()
                    except BlockingIOError:
                        continue
                    connection.setblocking(False)
                    selector.register(connection, selectors.EVENT_READ, bytearray())
                    connections += 1
                elif key.data == "control":
                    if not os.read(control, 64):
                        selector.unregister(control)
                        control_open = False
                else:
                    received = _receive(key.fileobj)  # type: ignore[arg-type]
                    if received is None:
                        selector.unregister(key.fileobj)
                        key.fileobj.close()  # type: ignore[union-attr]
                        connections -= 1
                        continue
                    key.data.extend(received)
                    events = _frames(key.data)
                    if events:
                        inbox.put(events)
    finally:
        inbox.closed.set()


def _receive(connection: socket.socket) -> bytes | None:
    """What the connection has now; None once the worker has closed it (or died)."""
    try:
        data = connection.recv(1 << 16)
    except BlockingIOError:
        return b""
    except OSError:
        return None
    return data or None


def _frames(buffer: bytearray) -> list[bytes]:
    """The complete events at the front of `buffer`, removed from it; a partial one stays for the next read."""
    out = []
    offset = 0
    while len(buffer) - offset >= _LENGTH.size:
        (length,) = _LENGTH.unpack_from(buffer, offset)
        end = offset + _LENGTH.size + length
        if end > len(buffer):
            break
        out.append(bytes(buffer[offset + _LENGTH.size:end]))
        offset = end
    del buffer[:offset]
    return out


def main(argv: list[str] | None = None) -> None:
    """`python -m gateway.audit_sink`: started by `pulsebridge serve` (AuditSink.start), not by hand."""
    parser = argparse.ArgumentParser(prog="python -m gateway.audit_sink")
    parser.add_argument("--db", required=True)
    parser.add_argument("--listener", type=int, required=True, help="file descriptor of the bound Unix socket")
    parser.add_argument("--control", type=int, required=True, help="file descriptor of the control pipe's read end")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--directory", help="the socket's private directory, removed at the end (also after a master's crash)")
    args = parser.parse_args(argv)
    listener = socket.socket(fileno=args.listener)
    try:
        serve(listener, args.control, args.db, interval=args.interval, batch=args.batch)
    finally:
        if args.directory:
            shutil.rmtree(args.directory, ignore_errors=True)


if __name__ == "__main__":
    main()
