"""The inbound message log: raw HL7 v2 messages kept before anything is applied (DESIGN.md, "nothing lost").

Each received message becomes one row (bytes, peer, transport, time, MSH-3/4/10, MSH-9) with a
status: `received` (durable, not yet applied), `applied`, `duplicate` (a resend of an applied
message; `duplicate_of` names it), `error` (parsed, could not be applied: a dead letter) or
`rejected` (could not be parsed or is not supported: also kept, as a dead letter).

`source_clock` keeps, per resource, the source event time (EVN-2, else MSH-7) of the newest
message applied to it, so an older event does not overwrite newer data.

The log lives in the resource store's own database and joins its units of work: inside
`MessageLog.unit()`, `repository.transaction(...)` runs in the same database transaction, so
resources, versions, Provenance and the log's "applied" mark commit together or not at all.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from adapters.storage.base import Repository
from adapters.storage.memory import MemoryRepository
from adapters.storage.sql import SqlStore, SqlUnit, migration_files, split_statements

RECEIVED, APPLIED, DUPLICATE, ERROR, REJECTED = "received", "applied", "duplicate", "error", "rejected"
DEAD_LETTER_STATUSES = (ERROR, REJECTED)
MIGRATIONS = Path(__file__).resolve().parent / "messagelog_migrations"
_COLUMNS = (
    "id, received_at, peer, transport, sending_application, sending_facility, control_id, message_type, digest, "
    "raw, status, ack_code, reason, duplicate_of, processed_at, attempts"
)


@dataclass(frozen=True)
class LoggedMessage:
    """One row of the message log."""

    id: int
    received_at: str
    peer: str
    transport: str
    sending_application: str
    sending_facility: str
    control_id: str
    message_type: str
    digest: str  # SHA-256 of the raw bytes: a resend carries the same content, not only the same MSH-10
    raw: bytes
    status: str
    ack_code: str = ""
    reason: str = ""
    duplicate_of: int | None = None
    processed_at: str | None = None
    attempts: int = 0

    def summary(self) -> dict[str, Any]:
        """Everything but the raw bytes (which carry PHI), for listings."""
        out = {k: v for k, v in self.__dict__.items() if k != "raw"}
        out["size"] = len(self.raw)
        return out


def utc_now() -> str:
    """The current UTC time as the log stores it (received_at, processed_at)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class MessageLog:
    """The log on a SQL store (SQLite or PostgreSQL), sharing the repository's connections and transactions."""

    def __init__(self, repository: SqlStore) -> None:
        self.repository = repository
        self._migrate()

    def unit(self) -> AbstractContextManager[SqlUnit]:
        """One write transaction of the store; repository calls made inside join it."""
        return self.repository.unit(True)

    def _migrate(self) -> None:
        """Apply messagelog_migrations/<dialect>/NNNN_*.sql not yet recorded in message_log_schema."""
        with self.unit() as unit:
            unit.lock("pulsebridge.message_log")  # one migrator at a time across processes
            unit.execute("CREATE TABLE IF NOT EXISTS message_log_schema (version INTEGER PRIMARY KEY)", [])
            applied = {row[0] for row in unit.fetch("SELECT version FROM message_log_schema", [])}
            for version, script in migration_files(self.repository.dialect, MIGRATIONS):
                if version in applied:
                    continue
                for statement in split_statements(script):
                    unit.execute(statement, [])
                unit.execute("INSERT INTO message_log_schema VALUES (?)", [version])

    # -- writes -------------------------------------------------------------------------------

    def record(self, message: LoggedMessage) -> int:
        """Store a received message durably (its own committed transaction); returns its id."""
        with self.unit() as unit:
            rows = unit.fetch(
                "INSERT INTO message_log (received_at, peer, transport, sending_application, sending_facility, "
                "control_id, message_type, digest, raw, status, ack_code, reason, attempts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [*_texts(message.received_at, message.peer, message.transport, message.sending_application,
                         message.sending_facility, message.control_id, message.message_type, message.digest),
                 bytes(message.raw), *_texts(message.status, message.ack_code, message.reason), message.attempts],
            )
        return int(rows[0][0])

    def finish(self, unit: SqlUnit, message_id: int, status: str, ack_code: str, reason: str = "", duplicate_of: int | None = None) -> None:
        """Set the outcome of a message inside `unit` (the transaction that applied it, if any)."""
        unit.execute(
            "UPDATE message_log SET status = ?, ack_code = ?, reason = ?, duplicate_of = ?, processed_at = ?, "
            "attempts = attempts + 1 WHERE id = ?",
            [*_texts(status, ack_code, reason), duplicate_of, utc_now(), message_id],
        )

    def lock_sender_key(self, unit: SqlUnit, application: str, facility: str, control_id: str) -> None:
        """Serialise messages with the same MSH-3/4/10 across processes (SQLite: BEGIN IMMEDIATE already does)."""
        unit.lock(f"msg|{application}|{facility}|{control_id}")

    def find_applied(self, unit: SqlUnit, key: tuple[str, str, str, str], *, other_than: int) -> LoggedMessage | None:
        """The earliest applied message with this (MSH-3, MSH-4, MSH-10, digest) (HL7 v2.5 2.10.1: MSH-10 identifies a message)."""
        rows = unit.fetch(
            f"SELECT {_COLUMNS} FROM message_log WHERE sending_application = ? AND sending_facility = ? "
            "AND control_id = ? AND digest = ? AND status = ? AND id <> ? ORDER BY id LIMIT 1",
            [*key, APPLIED, other_than],
        )
        return _row(rows[0]) if rows else None

    def clocks(self, unit: SqlUnit, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """Stored source event times (microseconds since the epoch, UTC) of these resources."""
        found: dict[tuple[str, str], int] = {}
        for resource_type, resource_id in keys:
            rows = unit.fetch(
                "SELECT event_micros FROM source_clock WHERE resource_type = ? AND id = ?", [resource_type, resource_id]
            )
            if rows:
                found[(resource_type, resource_id)] = int(rows[0][0])
        return found

    def set_clocks(self, unit: SqlUnit, times: dict[tuple[str, str], int], message_id: int) -> None:
        for (resource_type, resource_id), micros in times.items():
            unit.execute(
                "INSERT INTO source_clock (resource_type, id, event_micros, message_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (resource_type, id) DO UPDATE SET event_micros = excluded.event_micros, "
                "message_id = excluded.message_id",
                [resource_type, resource_id, micros, message_id],
            )

    # -- reads --------------------------------------------------------------------------------

    def get(self, message_id: int) -> LoggedMessage | None:
        with self.repository.unit(False) as unit:
            rows = unit.fetch(f"SELECT {_COLUMNS} FROM message_log WHERE id = ?", [message_id])
        return _row(rows[0]) if rows else None

    def by_status(self, statuses: tuple[str, ...], *, limit: int = 100, offset: int = 0) -> list[LoggedMessage]:
        """Messages in these states, oldest first."""
        marks = ", ".join("?" for _ in statuses)
        with self.repository.unit(False) as unit:
            rows = unit.fetch(
                f"SELECT {_COLUMNS} FROM message_log WHERE status IN ({marks}) ORDER BY id LIMIT ? OFFSET ?",
                [*statuses, limit, offset],
            )
        return [_row(r) for r in rows]

    def count(self, status: str | None = None) -> int:
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        with self.repository.unit(False) as unit:
            return int(unit.fetch(f"SELECT count(*) FROM message_log {where}", params)[0][0])


def _texts(*values: str) -> list[str]:
    """Values for text columns with U+0000 replaced by U+FFFD: PostgreSQL text cannot hold NUL; SQLite gets the same."""
    return [value.replace("\x00", "\ufffd") for value in values]


def _row(row: tuple) -> LoggedMessage:
    values = list(row)
    values[9] = bytes(values[9])
    return LoggedMessage(*values)


class MemoryMessageLog:
    """The same log in dicts, for the in-memory store (tests); units share the store's lock."""

    def __init__(self, repository: MemoryRepository) -> None:
        self.repository = repository
        self._rows: dict[int, LoggedMessage] = {}
        self._clock: dict[tuple[str, str], int] = {}
        self._lock = threading.RLock()

    @contextmanager
    def unit(self) -> Iterator[Any]:
        with self._lock, self.repository.unit(True) as unit:
            yield unit

    def record(self, message: LoggedMessage) -> int:
        with self._lock:
            message_id = len(self._rows) + 1
            self._rows[message_id] = replace(message, id=message_id)
            return message_id

    def finish(self, unit: Any, message_id: int, status: str, ack_code: str, reason: str = "", duplicate_of: int | None = None) -> None:
        row = self._rows[message_id]
        self._rows[message_id] = replace(
            row, status=status, ack_code=ack_code, reason=reason, duplicate_of=duplicate_of,
            processed_at=utc_now(), attempts=row.attempts + 1,
        )

    def lock_sender_key(self, unit: Any, application: str, facility: str, control_id: str) -> None:
        return None  # the store lock serialises every unit

    def find_applied(self, unit: Any, key: tuple[str, str, str, str], *, other_than: int) -> LoggedMessage | None:
        for row in self._rows.values():
            if (row.sending_application, row.sending_facility, row.control_id, row.digest) == key \
                    and row.status == APPLIED and row.id != other_than:
                return row
        return None

    def clocks(self, unit: Any, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        return {k: self._clock[k] for k in keys if k in self._clock}

    def set_clocks(self, unit: Any, times: dict[tuple[str, str], int], message_id: int) -> None:
        self._clock.update(times)

    def get(self, message_id: int) -> LoggedMessage | None:
        return self._rows.get(message_id)

    def by_status(self, statuses: tuple[str, ...], *, limit: int = 100, offset: int = 0) -> list[LoggedMessage]:
        with self._lock:
            rows = [r for _, r in sorted(self._rows.items()) if r.status in statuses]
        return rows[offset : offset + limit]

    def count(self, status: str | None = None) -> int:
        return sum(1 for r in self._rows.values() if status is None or r.status == status)


def open_message_log(repository: Repository) -> MessageLog | MemoryMessageLog:
    """The message log inside this repository's database."""
    if isinstance(repository, MemoryRepository):
        return MemoryMessageLog(repository)
    assert isinstance(repository, SqlStore), f"no message log for {type(repository).__name__}"
    return MessageLog(repository)
