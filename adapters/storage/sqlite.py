"""SQLite backend, the embedded default: `sqlite:///path.db` (file, WAL) or `sqlite://` (in memory).

Threads: each thread gets its own connection to a file database (readers run concurrently under
WAL); writes in this process are serialised by a lock and run as BEGIN IMMEDIATE ... COMMIT, so
other processes wait on busy_timeout instead of failing. An in-memory database has one
connection shared under the lock. Every unit (a write, a transaction Bundle, a search) is one
SQLite transaction: all or nothing, and reads see one snapshot.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

import orjson

from adapters.storage.sql import SqlStore, SqlUnit, migration_files, split_statements

BUSY_TIMEOUT_MS = 30_000
WAL_CHECKPOINT_PAGES = 16384
ANALYSIS_LIMIT = 1000  # rows sampled per index by ANALYZE (SqlStore.note_writes), bounding its cost


def database_path(url: str) -> str:
    """`sqlite:///relative.db`, `sqlite:////abs/path.db` -> a filename; `sqlite://` -> ':memory:'."""
    if not url.startswith("sqlite://"):
        raise ValueError(f"not a sqlite URL: {url}")
    rest = url[len("sqlite://"):]
    if rest in ("", "/", "/:memory:"):
        return ":memory:"
    return rest[1:] if rest.startswith("/") else rest


class SQLiteRepository(SqlStore):
    dialect = "sqlite"
    planner_hints = True

    def __init__(self, url: str = "sqlite://") -> None:
        self.path = database_path(url)
        self.memory = self.path == ":memory:"
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._shared: sqlite3.Connection | None = None
        self._next_rid: int | None = None
        self._migrate(self._connection())

    # -- connections --------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not self.memory:
            conn.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: a commit survives a crash of the process (it is in the WAL file), not a power
            # loss before the next checkpoint's fsync; the database never corrupts either way.
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -65536")
        # Checkpoint every WAL_CHECKPOINT_PAGES (64 MiB) instead of SQLite's 1000 pages: index pages that
        # many commits touch are copied back once, and the checkpoint's fsyncs happen 16 times less often.
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self.memory:
            if self._shared is None:
                self._shared = self._open()
            return self._shared
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        return conn

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                try:
                    conn.execute("PRAGMA optimize")  # SQLite's advice for every connection close
                except sqlite3.Error:
                    pass  # busy or read-only: statistics are an optimisation, closing is not
                conn.close()
            self._connections.clear()
        self._shared = None
        self._local = threading.local()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Apply migrations/sqlite/NNNN_*.sql in order and register parameter ids, in one transaction."""
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
                )
                applied = {row[0] for row in conn.execute("SELECT version FROM schema_version")}
                for version, script in migration_files(self.dialect):
                    if version in applied:
                        continue
                    for statement in split_statements(script):
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_version VALUES (?, datetime('now'))", (version,))
                self.register_parameters(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        return self._connection().execute("SELECT max(version) FROM schema_version").fetchone()[0]

    # -- units of work ------------------------------------------------------------------------

    @contextmanager
    def unit(self, write: bool) -> Iterator[SqlUnit]:
        active = getattr(self._local, "unit", None)
        if active is not None:  # a read inside this thread's open unit joins it
            yield active
            return
        lock = self._write_lock if (write or self.memory) else None
        if lock is not None:
            lock.acquire()
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            unit = self._local.unit = SqlUnit(self, conn, write)
            try:
                yield unit
                unit.flush()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                if unit.written:
                    try:
                        self.note_writes(conn, unit.written)  # still under the write lock
                    except sqlite3.OperationalError:
                        pass  # the data is committed; statistics wait for the next threshold
            finally:
                if lock is not None:  # the rid counter belongs to the unit holding the write lock
                    self._next_rid = None
                self._local.unit = None
        finally:
            if lock is not None:
                lock.release()

    # -- dialect ------------------------------------------------------------------------------

    def execute(self, conn: Any, sql: str, params: list[Any]) -> Any:
        return conn.execute(sql, params)

    def execute_many(self, conn: Any) -> Callable[[str, list], None]:
        return lambda sql, rows: conn.executemany(sql, rows)

    def allocate_rid(self, conn: Any) -> int:
        # Safe: called only inside BEGIN IMMEDIATE, which holds the database's single write lock.
        if self._next_rid is None:
            self._next_rid = (conn.execute("SELECT max(rid) FROM resources").fetchone()[0] or 0) + 1
        rid, self._next_rid = self._next_rid, self._next_rid + 1
        return rid

    def dump_json(self, resource: dict) -> Any:
        return orjson.dumps(resource)

    def load_json(self, stored: Any) -> dict:
        return orjson.loads(stored)
