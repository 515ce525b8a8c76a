"""The watched folder (`pulsebridge serve --watch DIR`): HL7 v2 files dropped in DIR are ingested, then filed.

Each file (one message, many, or FHS/BHS batches, split as in HL7 v2.5.1 2.10.3) goes through the
same Ingestor as MLLP and HTTP, message by message, then moves to DIR/processed/ when every
message was accepted (or was a resend of an accepted one) and to DIR/failed/ otherwise. Beside it
goes `<name>.reason.txt`: one line per message with its index, control id, ACK code and error.

Rules:

* Only complete files are taken: names starting with `.` or ending in `.tmp`/`.part` are being
  written (write-then-rename convention) and are left alone; any other file must keep the same
  size and modification time for `settle` seconds.
* Only regular files directly in DIR, by name: no sub-directories, and a symbolic link is never
  followed (it is filed under failed/ itself, unread). Files are opened relative to DIR's
  descriptor with O_NOFOLLOW, so nothing outside DIR can be read or moved. A file with more than
  one hard link may be another name for a file elsewhere: it is filed under failed/ unread too.
  processed/ and failed/ must be real directories: a link there stops the watcher at start.
* A file whose ingestion fails unexpectedly (say the store refuses a value) is filed under failed/
  with the error's type; the watcher carries on with the next file.
* A crash part-way through a file leaves it in DIR; at the next start it is read again and its
  applied messages are recognised as resends (gateway.ingest), so nothing is doubled. A file in
  failed/ can be moved back into DIR after a fix for the same reason.
"""
from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import stat
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.hl7v2.batch import ChunkTooLarge, iter_messages

if TYPE_CHECKING:
    from gateway.ingest import Ingestor, IngestResult
    from gateway.serve import Service

log = logging.getLogger(__name__)

PROCESSED, FAILED = "processed", "failed"
REASON_SUFFIX = ".reason.txt"
PARTIAL_SUFFIXES = (".tmp", ".part")
DEFAULT_SETTLE = 1.0  # seconds a file must stay unchanged before it is read
DEFAULT_INTERVAL = 0.5  # seconds between scans
_GOOD = ("accepted", "duplicate")


@dataclass(frozen=True)
class FiledFile:
    """What became of one dropped file: where it went (processed|failed) and one line per message."""

    name: str
    outcome: str
    stored_as: str  # the file name under processed/ or failed/
    lines: tuple[str, ...]


class WatchFolderError(OSError):
    """The watched folder cannot be used safely (its processed/ or failed/ is a link, say)."""


def _is_partial(name: str) -> bool:
    return name.startswith(".") or name.endswith(PARTIAL_SUFFIXES) or name.endswith(REASON_SUFFIX)


class WatchFolder:
    """Scans one directory and ingests each complete file once."""

    def __init__(self, directory: str, ingestor: Ingestor, *, settle: float = DEFAULT_SETTLE) -> None:
        self.directory = directory
        self.ingestor = ingestor
        self.settle = settle
        self._dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        self._targets: dict[str, int] = {}
        try:
            for kind in (PROCESSED, FAILED):
                self._targets[kind] = self._subdirectory(kind)
        except WatchFolderError:
            self.close()
            raise
        self._seen: dict[str, tuple[int, int, float]] = {}  # name -> (size, mtime_ns, when first seen so)

    def close(self) -> None:
        for fd in (*self._targets.values(), self._dir_fd):
            os.close(fd)

    def _subdirectory(self, kind: str) -> int:
        """processed/ or failed/ inside DIR, created if missing; refused (WatchFolderError) if it is a link or not a directory."""
        try:
            os.mkdir(kind, 0o750, dir_fd=self._dir_fd)
        except FileExistsError:
            pass
        try:
            return os.open(kind, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=self._dir_fd)
        except OSError:
            path = os.path.join(self.directory, kind)
            what = "a symbolic link" if os.path.islink(path) else "not a directory"
            raise WatchFolderError(f"{path} is {what}: files are only filed into real sub-directories") from None

    def ready(self, now: float | None = None) -> list[str]:
        """Names of the files complete enough to read now (sorted, oldest name first)."""
        now = time.monotonic() if now is None else now
        ready: list[str] = []
        present: set[str] = set()
        with os.scandir(self._dir_fd) as entries:
            for entry in entries:
                name = entry.name
                if name in (PROCESSED, FAILED) or _is_partial(name):
                    continue
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISLNK(info.st_mode):
                    ready.append(name)  # filed as failed without being read
                    continue
                if not stat.S_ISREG(info.st_mode):
                    continue
                present.add(name)
                key = (info.st_size, info.st_mtime_ns)
                seen = self._seen.get(name)
                if seen is None or seen[:2] != key:
                    self._seen[name] = (*key, now)
                elif now - seen[2] >= self.settle:
                    ready.append(name)
        self._seen = {name: value for name, value in self._seen.items() if name in present}
        return sorted(ready)

    def scan(self, now: float | None = None) -> list[FiledFile]:
        """Ingest and file every ready file."""
        return [filed for name in self.ready(now) if (filed := self.file_one(name)) is not None]

    def file_one(self, name: str) -> FiledFile | None:
        """Ingest every message of DIR/`name`, then move it to processed/ or failed/ with its reason file.

        None if the file is gone (taken back by whoever dropped it)."""
        self._seen.pop(name, None)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self._dir_fd)
        except FileNotFoundError:
            return None
        except OSError as error:  # ELOOP: a symbolic link; others: unreadable
            reason = "symbolic link, not followed" if error.errno == errno.ELOOP else error.strerror
            return self._file(name, FAILED, [f"file not read: {reason}"])
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                return self._file(name, FAILED, ["file not read: not a regular file"])
            if info.st_nlink > 1:
                return self._file(name, FAILED, ["file not read: it has other hard links, which may lie outside the folder"])
            try:
                results = self._ingest(name, handle)
            except Exception as error:  # noqa: BLE001 - one poisonous file must not stop the watcher
                # No file name in the log (senders may name files after patients); the reason file says which.
                log.exception("a watched file could not be ingested; filed under %s/", FAILED)
                return self._file(name, FAILED, [f"file not ingested: {type(error).__name__} (see the message log for what was applied)"])
        if not results:
            return self._file(name, FAILED, ["no HL7 v2 message found (each message starts with an MSH segment)"])
        outcome = PROCESSED if all(result.status in _GOOD for _, result in results) else FAILED
        return self._file(name, outcome, [_line(index, result) for index, result in results])

    def _ingest(self, name: str, handle: object) -> list[tuple[int, IngestResult]]:
        peer = f"file:{name}"
        results: list[tuple[int, IngestResult]] = []
        limit = self.ingestor.settings.max_message_bytes
        for chunk in iter_messages(handle, max_message_bytes=limit):  # type: ignore[arg-type]
            if isinstance(chunk, ChunkTooLarge):
                result = self.ingestor.reject_oversize(chunk.head, chunk, peer=peer, transport="file")
            else:
                result = self.ingestor.ingest(chunk.payload, peer=peer, transport="file")
            results.append((chunk.index, result))
        return results

    def _file(self, name: str, outcome: str, lines: list[str]) -> FiledFile:
        """Write the reason file, then move the file beside it (rename within DIR's file system)."""
        target = self._targets[outcome]
        stored_as = _free_name(target, name)
        reason_fd = os.open(stored_as + REASON_SUFFIX, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o640, dir_fd=target)
        with os.fdopen(reason_fd, "w", encoding="utf-8") as reason:
            reason.write(f"# {name}: {outcome}\n# message\tcontrol id\tack\terror\n")
            reason.writelines(line + "\n" for line in lines)
        os.rename(name, stored_as, src_dir_fd=self._dir_fd, dst_dir_fd=target)
        log.info("watched file %s -> %s/%s", name, outcome, stored_as)
        return FiledFile(name, outcome, stored_as, tuple(lines))


def _line(index: int, result: IngestResult) -> str:
    """One reason-file line: 1-based message number, MSA-2 control id, MSA-1 code, error (PHI-free text)."""
    return "\t".join([str(index + 1), result.control_id or "-", result.ack_code or "-", (result.error or "").replace("\n", " ")])


def _free_name(dir_fd: int, name: str) -> str:
    """`name`, or `name.1`, `name.2`, ... when an earlier file of that name (or its reason file) was filed already."""
    candidate, n = name, 0
    while _exists(dir_fd, candidate) or _exists(dir_fd, candidate + REASON_SUFFIX):
        n += 1
        candidate = f"{name}.{n}"
    return candidate


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def watch_forever(db: str, directory: str, *, settle: float = DEFAULT_SETTLE, interval: float = DEFAULT_INTERVAL) -> None:
    """Scan until SIGTERM/SIGINT; the file being ingested is finished and filed first."""
    from adapters.storage import open_repository
    from gateway.ingest import Ingestor
    from gateway.settings import load_settings

    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    repository = open_repository(db)
    try:
        folder = WatchFolder(directory, Ingestor(repository, load_settings()), settle=settle)
    except WatchFolderError as error:
        repository.close()
        sys.exit(f"gateway.watch: {error}")
    print(f"watching {directory} for HL7 v2 files", file=sys.stderr, flush=True)
    try:
        while not stopping.is_set():
            for name in folder.ready():
                if stopping.is_set():
                    break
                folder.file_one(name)
            stopping.wait(interval)
    finally:
        folder.close()
        repository.close()


def watch_service(directory: str, *, settle: float = DEFAULT_SETTLE) -> Service:
    """A `serve` service: the watcher as a child process of the gunicorn master, stopped with it."""
    from gateway.serve import child_process_service

    return child_process_service("gateway.watch", os.path.abspath(directory), "--settle", str(settle))


def main(argv: list[str] | None = None) -> None:
    from gateway.log_hygiene import configure_logging
    from gateway.runtime import tune_collector
    from gateway.settings import SettingsError, load_settings

    parser = argparse.ArgumentParser(prog="gateway.watch", description="PulseBridge watched folder")
    parser.add_argument("directory")
    parser.add_argument("--db", help="database URL [default: the db setting, PULSEBRIDGE_DB]")
    parser.add_argument("--settle", type=float, default=DEFAULT_SETTLE)
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL)
    args = parser.parse_args(argv)
    configure_logging()
    tune_collector()
    try:
        db = args.db or load_settings().db
    except SettingsError as error:
        parser.exit(2, f"gateway.watch: {error}\n")
    watch_forever(db, args.directory, settle=args.settle, interval=args.interval)


if __name__ == "__main__":
    main()
