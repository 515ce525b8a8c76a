"""What SQLite and PostgreSQL share: SQL for search conditions, the buffered unit of work, migrations.

SQL is written with `?` placeholders; the PostgreSQL dialect rewrites them to `%s`.
Writes inside a unit are buffered and flushed with executemany (before any read that must see
them, and at commit), so a transaction Bundle costs a few round trips, not one per index row.
"""
from __future__ import annotations

import itertools
from abc import abstractmethod
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from adapters.storage.base import Version
from adapters.storage.dates import to_datetime, to_micros
from adapters.storage.engine import VersionedStore
from adapters.storage.indexing import RESOURCE_COLUMNS, TABLES, IndexRows, reference_view
from adapters.storage.plan import (
    COLUMNS,
    ChainMatch,
    Cmp,
    Condition,
    IdMatch,
    IndexMatch,
    LAST_UPDATED_SPAN,
    LastUpdatedMatch,
    SortSpec,
    compile_query,
    sort_specs,
)
from adapters.storage.query import IncludeSpec, SearchQuery
from adapters.storage.search_parameters import parameters, resource_types

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
STATS_AFTER = 10_000  # writes of one process before its first statistics refresh
_MAX_CHAR = "\U0010ffff"
# Filters most likely to be selective drive the query (`rid IN (...)`); the rest are EXISTS probes.
_DRIVER_RANK = {"reference": 0, "token": 1, "string": 2, "uri": 3, "quantity": 4, "number": 5, "date": 6}
INSERT_SQL = {
    t: f"INSERT INTO idx_{t} (rid, param, {', '.join(cols)}) VALUES ({', '.join('?' * (len(cols) + 2))})"
    for t, cols in COLUMNS.items()
}


_micros = lru_cache(maxsize=64)(to_micros)  # the versions of one transaction share a few instants


def migration_files(dialect: str, root: Path = MIGRATIONS) -> list[tuple[int, str]]:
    """Ordered (version, SQL) pairs from <root>/<dialect>/NNNN_name.sql."""
    files = sorted((root / dialect).glob("[0-9][0-9][0-9][0-9]_*.sql"))
    return [(int(f.name[:4]), f.read_text(encoding="utf-8")) for f in files]


@lru_cache(maxsize=1)
def parameter_keys() -> tuple[str, ...]:
    """The index key of every search parameter of every resource type (R4 searchparameter-registry), sorted."""
    return tuple(sorted(
        p.key for t in resource_types() for p in parameters(t).values() if p.name not in RESOURCE_COLUMNS
    ))


def split_statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _param_in(alias: str, ids: list[int]) -> str:
    return f"{alias}.param = ?" if len(ids) == 1 else f"{alias}.param IN ({', '.join('?' * len(ids))})"


class _Sql:
    """Builds WHERE fragments for plan conditions; `contains` and planner guidance differ per dialect.

    With `hints` (SQLite), the query shape does not depend on planner statistics: the driving
    filter reads its parameter's value index (`INDEXED BY idx_<table>_value`), every other filter
    is a probe on the (rid, param) index, and `+r.resource_type` keeps the planner from scanning
    all resources of the type when a driving filter exists. Without ANALYZE, SQLite otherwise
    prefers the index with more equality columns, which is the wrong one for both.
    """

    def __init__(self, contains: str, param_ids: dict[str, int], hints: bool = False) -> None:
        self.contains = contains  # e.g. "instr({col}, ?) > 0"
        self.param_ids = param_ids
        self.hints = hints
        self.aliases = itertools.count()

    def ids(self, keys: tuple[str, ...]) -> list[int]:
        """search_params ids of index keys; 0 (no rows) for a key this database never registered."""
        return [self.param_ids.get(key, 0) for key in keys]

    def _index(self, table: str, purpose: str) -> str:
        return f" INDEXED BY idx_{table}_{purpose}" if self.hints else ""

    def unindexed(self, column: str) -> str:
        """`column` as a term the planner will not pick an index for (SQLite's unary plus)."""
        return f"+{column}" if self.hints else column

    def cmp(self, alias: str, cmp: Cmp, params: list[Any]) -> str:
        col = f"{alias}.{cmp.column}"
        if cmp.op == "isnull":
            return f"{col} IS NULL"
        if cmp.op == "startswith":
            params += [cmp.value, cmp.value + _MAX_CHAR]
            return f"({col} >= ? AND {col} < ?)"
        if cmp.op == "contains":
            params.append(cmp.value)
            return self.contains.format(col=col)
        if cmp.op == "prefix_of":
            params.append(cmp.value)
            return f"substr(?, 1, length({col})) = {col}"
        params.append(cmp.value)
        return f"{col} {cmp.op} ?"

    def alternatives(self, alias: str, match: IndexMatch | LastUpdatedMatch, params: list[Any]) -> str:
        ors = []
        for clause in match.alternatives:
            ors.append("(" + " AND ".join(self.cmp(alias, c, params) for c in clause) + ")" if clause else "1=1")
        return "(" + " OR ".join(ors) + ")" if ors else "1=0"

    def last_updated(self, outer: str, cond: LastUpdatedMatch, params: list[Any]) -> str:
        """The range clauses on `outer.last_updated`; `high` bounds move to the value, keeping the column bare."""
        clauses = tuple(
            tuple(
                Cmp("last_updated", c.op, c.value if c.column == "low" else c.value - LAST_UPDATED_SPAN)
                for c in clause
            )
            for clause in cond.alternatives
        )
        where = self.alternatives(outer, LastUpdatedMatch(clauses), params)
        return f"NOT {where}" if cond.negate else where

    def condition(self, outer: str, cond: Condition, params: list[Any], driver: bool = False) -> str:
        if isinstance(cond, IdMatch):
            if not cond.ids:
                return "1=1" if cond.negate else "1=0"
            params += list(cond.ids)
            return f"{outer}.id {'NOT IN' if cond.negate else 'IN'} ({', '.join('?' * len(cond.ids))})"
        if isinstance(cond, LastUpdatedMatch):
            return self.last_updated(outer, cond, params)
        x = f"x{next(self.aliases)}"
        if isinstance(cond, IndexMatch):
            ids = self.ids(cond.keys)
            params += ids
            if driver:
                where = self.alternatives(x, cond, params)
                return (
                    f"{outer}.rid IN (SELECT {x}.rid FROM idx_{cond.table} {x}{self._index(cond.table, 'value')} "
                    f"WHERE {_param_in(x, ids)} AND {where})"
                )
            inner = (
                f"SELECT 1 FROM idx_{cond.table} {x}{self._index(cond.table, 'rid')} "
                f"WHERE {x}.rid = {outer}.rid AND {_param_in(x, ids)} AND "
            )
            inner += self.alternatives(x, cond, params)
            return f"{'NOT ' if cond.negate else ''}EXISTS ({inner})"
        assert isinstance(cond, ChainMatch)
        params += self.ids((cond.key,))
        ors = []
        for target_type, conditions in cond.targets:
            t = f"t{next(self.aliases)}"
            params += [target_type, target_type]
            where = self.conjunction(t, conditions, params)
            ors.append(f"({x}.target_type = ? AND {x}.target_id IN (SELECT {t}.id FROM resources {t} WHERE {where}))")
        return (
            f"EXISTS (SELECT 1 FROM idx_reference {x}{self._index('reference', 'rid')} "
            f"WHERE {x}.rid = {outer}.rid AND {x}.param = ? AND ({' OR '.join(ors)}))"
        )

    def conjunction(self, outer: str, conditions: tuple[Condition, ...] | list[Condition], params: list[Any]) -> str:
        """`outer`'s type (first parameter, already in `params`), not deleted, and every condition.

        The most selective positive index filter drives (`rid IN (...)`); the rest are probes.
        """
        candidates = [c for c in conditions if isinstance(c, IndexMatch) and not c.negate]
        # `:missing=false` (an empty clause) matches every row of its parameter: a poor driver
        driver = min(candidates, key=lambda c: (() in c.alternatives, _DRIVER_RANK[c.table]), default=None)
        type_column = self.unindexed(f"{outer}.resource_type") if driver is not None else f"{outer}.resource_type"
        parts = [f"{type_column} = ?", f"{outer}.deleted = 0"]
        for cond in conditions:
            parts.append(self.condition(outer, cond, params, driver=cond is driver))
        return " AND ".join(parts)

    def where(self, query: SearchQuery, params: list[Any]) -> str:
        params.append(query.resource_type)
        return self.conjunction("r", compile_query(query), params)

    def order(self, specs: tuple[SortSpec, ...], params: list[Any]) -> str:
        terms = []
        for spec in specs:
            direction = "DESC" if spec.descending else "ASC"
            if spec.table is None:
                terms.append(f"r.{spec.column} {direction}")
                continue
            agg = "MAX" if spec.descending else "MIN"
            x = f"s{next(self.aliases)}"
            ids = self.ids(spec.keys)
            params += ids
            terms.append(
                f"(SELECT {agg}({x}.{spec.column}) FROM idx_{spec.table} {x}{self._index(spec.table, 'rid')} "
                f"WHERE {x}.rid = r.rid AND {_param_in(x, ids)})"
                f" {direction} NULLS LAST"
            )
        terms.append("r.rid ASC")
        return ", ".join(terms)


class SqlUnit:
    """One database transaction with buffered writes (see module docstring)."""

    def __init__(self, store: SqlStore, conn: Any, write: bool) -> None:
        self.store = store
        self.conn = conn
        self.write = write
        self.pending: dict[tuple[str, str], tuple[int, bool, Version, IndexRows | None, int]] = {}
        self.versions: list[tuple] = []
        self.rids: dict[tuple[str, str], int] = {}
        self.known: dict[tuple[str, str], tuple[int, Version] | None] = {}  # prefetched current versions
        self.existed: set[int] = set()
        self.written = 0  # versions stored in this unit

    # -- statements of callers joining the unit (the message log) ----------------------------

    def fetch(self, sql: str, params: list[Any]) -> list[tuple]:
        return self.store.fetch(self.conn, sql, params)

    def execute(self, sql: str, params: list[Any]) -> None:
        """A statement without a result set (psycopg refuses fetchall() on those)."""
        self.store.execute(self.conn, sql, params)

    # -- primitives the engine uses ----------------------------------------------------------

    def prefetch(self, keys: list[tuple[str, str]]) -> None:
        """Load (and lock) the current versions of many resources in a few queries: for transaction Bundles."""
        wanted = sorted({k for k in keys if k not in self.pending and k not in self.known})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found = self.store.fetch_current_many(self.conn, chunk, lock=self.write)
            for key in chunk:
                self.known[key] = found.get(key)
                if key in found:
                    self.rids[key] = found[key][0]

    def current(self, resource_type: str, resource_id: str) -> Version | None:
        key = (resource_type, resource_id)
        if key in self.pending:
            return self.pending[key][2]
        if key in self.known:
            hit = self.known[key]
            return None if hit is None else hit[1]
        row = self.store.fetch_current(self.conn, resource_type, resource_id, lock=self.write)
        if row is None:
            return None
        rid, version = row
        self.rids[key] = rid
        return version

    def put(self, version: Version, rows: IndexRows | None, is_new: bool) -> None:
        key = (version.resource_type, version.id)
        if key in self.pending:
            rid, new_in_unit = self.pending[key][0], self.pending[key][1]
        elif is_new:
            rid, new_in_unit = self.store.allocate_rid(self.conn), True
        else:
            rid, new_in_unit = self.rids[key], False
            self.existed.add(rid)
        self.written += 1
        micros = _micros(version.last_updated)
        self.pending[key] = (rid, new_in_unit, version, rows, micros)
        self.known[key] = (rid, version)
        blob = None if version.resource is None else self.store.dump_json(version.resource)
        self.versions.append((rid, version.resource_type, version.id, version.version_id, micros, version.method, blob))

    def flush(self) -> None:
        if not self.pending:
            return
        execute_many: Callable[[str, list], None] = self.store.execute_many(self.conn)
        inserts, updates = [], []
        indexed: list[tuple[tuple[int], IndexRows]] = []
        for (resource_type, resource_id), (rid, new_in_unit, version, rows, micros) in self.pending.items():
            deleted = 0 if version.resource is not None else 1
            if new_in_unit:
                inserts.append((rid, resource_type, resource_id, version.version_id, micros, deleted))
            else:
                updates.append((version.version_id, micros, deleted, rid))
            if rows is not None:
                indexed.append(((rid,), rows))
        # the hot loop of a bulk load: one pass per index table, each row `(rid,) + row` (one allocation,
        # where (rid, *row) builds a list first), no per-resource comprehension or dict
        index: dict[str, list[tuple]] = {
            "token": [head + r for head, rows in indexed for r in rows.token],
            "string": [head + r for head, rows in indexed for r in rows.string],
            "date": [head + r for head, rows in indexed for r in rows.date],
            "reference": [head + r for head, rows in indexed for r in rows.reference],
            "quantity": [head + r for head, rows in indexed for r in rows.quantity],
            "number": [head + r for head, rows in indexed for r in rows.number],
            "uri": [head + r for head, rows in indexed for r in rows.uri],
        }
        if self.existed:
            stale = [(rid,) for rid in self.existed]
            for table in TABLES:
                execute_many(f"DELETE FROM idx_{table} WHERE rid = ?", stale)
        if inserts:
            execute_many(
                "INSERT INTO resources (rid, resource_type, id, version_id, last_updated, deleted) VALUES (?, ?, ?, ?, ?, ?)",
                inserts,
            )
        if updates:
            execute_many("UPDATE resources SET version_id = ?, last_updated = ?, deleted = ? WHERE rid = ?", updates)
        execute_many(
            "INSERT INTO versions (rid, resource_type, id, version_id, last_updated, method, resource) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            self.versions,
        )
        for table, table_rows in index.items():
            if table_rows:
                execute_many(INSERT_SQL[table], table_rows)
        self.pending.clear()
        self.versions.clear()
        self.existed.clear()

    def lock(self, key: str) -> None:
        self.store.lock_key(self.conn, key)

    def match_ids(self, query: SearchQuery) -> list[str]:
        self.flush()
        params: list[Any] = []
        sql = f"SELECT r.id FROM resources r WHERE {self.store.builder().where(query, params)}"
        return [row[0] for row in self.store.fetch(self.conn, sql, params)]

    def search(self, query: SearchQuery) -> tuple[int | None, list[dict], list[dict]]:
        self.flush()
        total = None
        if query.total != "none" or query.summary == "count":
            total = self.store.fetch(self.conn, *self.store.count_sql(query))[0][0]
        if query.summary == "count":
            return total, [], []
        rows = self.store.fetch(self.conn, *self.store.page_sql(query))
        matches = [self.store.load_json(row[3]) for row in rows]
        return total, matches, self._included(query, [(row[0], row[1], row[2]) for row in rows])

    # -- _include / _revinclude ----------------------------------------------------------------

    def _included(self, query: SearchQuery, page: list[tuple[int, str, str]]) -> list[dict]:
        specs = [(s, False) for s in query.include] + [(s, True) for s in query.revinclude]
        seen = {row[0] for row in page}
        frontier = page
        out: list[dict] = []
        first = True
        while frontier and specs:
            found: dict[int, tuple[int, str, str, dict]] = {}
            for spec, reverse in specs:
                if first or spec.iterate:
                    for row in (self._revinclude if reverse else self._include)(spec, frontier):
                        if row[0] not in seen:
                            found[row[0]] = row
            seen.update(found)
            out += [row[3] for row in found.values()]
            frontier, first = [row[:3] for row in found.values()], False
        return out

    def _fetch_resources(self, where: str, params: list[Any]) -> list[tuple[int, str, str, dict]]:
        sql = (
            "SELECT r.rid, r.resource_type, r.id, v.resource FROM resources r "
            "JOIN versions v ON v.rid = r.rid AND v.version_id = r.version_id "
            f"WHERE r.deleted = 0 AND {where}"
        )
        return [(row[0], row[1], row[2], self.store.load_json(row[3])) for row in self.store.fetch(self.conn, sql, params)]

    def _include(self, spec: IncludeSpec, sources: list[tuple[int, str, str]]) -> list[tuple[int, str, str, dict]]:
        rids = [s[0] for s in sources if spec.param == "*" or s[1] == spec.source_type]
        if not rids:
            return []
        params: list[Any] = list(rids)
        param_sql, param_ids = self._include_params(spec)
        params += param_ids
        if spec.param != "*":
            narrowed_to = reference_view(spec.source_type, spec.param)[1]
            if narrowed_to is not None:
                param_sql += " AND x.target_type = ?"
                params.append(narrowed_to)
        target_sql = ""
        if spec.target_type:
            target_sql = " AND x.target_type = ?"
            params.append(spec.target_type)
        targets = self.store.fetch(
            self.conn,
            f"SELECT DISTINCT x.target_type, x.target_id FROM idx_reference x WHERE x.rid IN ({', '.join('?' * len(rids))}) "
            f"AND {param_sql}{target_sql} AND x.target_type IS NOT NULL",
            params,
        )
        out = []
        by_type: dict[str, list[str]] = {}
        for target_type, target_id in targets:
            by_type.setdefault(target_type, []).append(target_id)
        for target_type, ids in by_type.items():
            out += self._fetch_resources(
                f"r.resource_type = ? AND r.id IN ({', '.join('?' * len(ids))})", [target_type, *ids]
            )
        return out

    def _include_params(self, spec: IncludeSpec) -> tuple[str, list[int]]:
        """The `x.param` condition of an _include/_revinclude and its ids: one parameter, or all of the type's (`*`)."""
        if spec.param == "*":
            keys = tuple(p.key for p in parameters(spec.source_type).values() if p.type == "reference")
        else:
            keys = (reference_view(spec.source_type, spec.param)[0],)
        ids = self.store.builder().ids(keys) or [0]
        return _param_in("x", ids), ids

    def _revinclude(self, spec: IncludeSpec, targets: list[tuple[int, str, str]]) -> list[tuple[int, str, str, dict]]:
        out = []
        by_type: dict[str, list[str]] = {}
        narrowed_to = None if spec.param == "*" else reference_view(spec.source_type, spec.param)[1]
        for _, target_type, target_id in targets:
            if spec.target_type in (None, target_type) and narrowed_to in (None, target_type):
                by_type.setdefault(target_type, []).append(target_id)
        param_sql, param_ids = self._include_params(spec)
        for target_type, ids in by_type.items():
            params: list[Any] = [spec.source_type, *param_ids, target_type, *ids]
            out += self._fetch_resources(
                f"{self.store.builder().unindexed('r.resource_type')} = ? AND r.rid IN "
                f"(SELECT x.rid FROM idx_reference x WHERE {param_sql} "
                f"AND x.target_type = ? AND x.target_id IN ({', '.join('?' * len(ids))}))",
                params,
            )
        return out


class SqlStore(VersionedStore):
    """A VersionedStore over a DB-API connection; dialects fill in connection handling and SQL details."""

    dialect: str  # names the migrations folder: sqlite, postgresql
    contains_sql = "instr({col}, ?) > 0"
    planner_hints = False  # SQLite: INDEXED BY / unary plus, see _Sql

    param_ids: dict[str, int]  # search_params: index key -> id (register_parameters)

    def builder(self) -> _Sql:
        return _Sql(self.contains_sql, self.param_ids, self.planner_hints)

    def register_parameters(self, conn: Any) -> None:
        """Give every known parameter key an id in search_params (schema 3) and load key -> id.

        Runs when the store opens, in the migration's transaction: index rows of this process only
        ever use keys of parameter_keys(), so writes never need to register one.
        """
        known = dict(self.fetch(conn, "SELECT key, pid FROM search_params", []))
        missing = [(key,) for key in parameter_keys() if key not in known]
        if missing:
            self.execute_many(conn)("INSERT INTO search_params (key) VALUES (?) ON CONFLICT (key) DO NOTHING", missing)
            known = dict(self.fetch(conn, "SELECT key, pid FROM search_params", []))
        self.param_ids = known

    @abstractmethod
    def execute(self, conn: Any, sql: str, params: list[Any]) -> Any:
        """Run one statement written with `?` placeholders; returns the DB-API cursor."""

    def fetch(self, conn: Any, sql: str, params: list[Any]) -> list[tuple]:
        return self.execute(conn, sql, params).fetchall()

    @abstractmethod
    def execute_many(self, conn: Any) -> Callable[[str, list], None]: ...

    @abstractmethod
    def allocate_rid(self, conn: Any) -> int: ...

    @abstractmethod
    def dump_json(self, resource: dict) -> Any: ...

    @abstractmethod
    def load_json(self, stored: Any) -> dict: ...

    def lock_key(self, conn: Any, key: str) -> None:
        return None

    def lock_suffix(self) -> str:
        return ""

    def note_writes(self, conn: Any, written: int) -> None:
        """Refresh planner statistics once this process's writes pass a doubling threshold.

        Runs after a write unit committed. Nobody has to remember ANALYZE after a bulk load; SQLite
        search plans do not depend on it anyway (see _Sql), PostgreSQL's autovacuum would get there
        later, and other queries profit at once. Doubling keeps the total cost logarithmic.
        """
        self._written = getattr(self, "_written", 0) + written
        if self._written >= getattr(self, "_stats_at", STATS_AFTER):
            self._stats_at = 2 * self._written
            conn.execute("ANALYZE")

    def count_sql(self, query: SearchQuery) -> tuple[str, list[Any]]:
        """The statement counting a search's matches (for Bundle.total)."""
        params: list[Any] = []
        return f"SELECT count(*) FROM resources r WHERE {self.builder().where(query, params)}", params

    def page_sql(self, query: SearchQuery) -> tuple[str, list[Any]]:
        """The statement of one page of a search: rid, type, id and JSON of each match, in _sort order."""
        builder = self.builder()
        params: list[Any] = []
        where = builder.where(query, params)
        order = builder.order(sort_specs(query), params)
        sql = (
            "SELECT r.rid, r.resource_type, r.id, v.resource FROM resources r "
            "JOIN versions v ON v.rid = r.rid AND v.version_id = r.version_id "
            f"WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"
        )
        return sql, [*params, query.count, query.offset]

    def fetch_current(self, conn: Any, resource_type: str, resource_id: str, lock: bool) -> tuple[int, Version] | None:
        rows = self.fetch(
            conn,
            "SELECT r.rid, r.version_id, v.last_updated, v.method, v.resource FROM resources r "
            "JOIN versions v ON v.rid = r.rid AND v.version_id = r.version_id "
            f"WHERE r.resource_type = ? AND r.id = ?{self.lock_suffix() if lock else ''}",
            [resource_type, resource_id],
        )
        if not rows:
            return None
        rid, version_id, last_updated, method, stored = rows[0]
        resource = None if stored is None else self.load_json(stored)
        return rid, Version(resource_type, resource_id, version_id, to_datetime(last_updated), resource, method)

    def lock_absent(self, conn: Any, keys: list[tuple[str, str]]) -> None:
        """Serialise creators of ids that do not exist yet (PostgreSQL); SQLite's write lock already does."""
        return None

    def fetch_current_many(
        self, conn: Any, keys: list[tuple[str, str]], lock: bool
    ) -> dict[tuple[str, str], tuple[int, Version]]:
        by_type: dict[str, list[str]] = {}
        for resource_type, resource_id in keys:
            by_type.setdefault(resource_type, []).append(resource_id)
        out: dict[tuple[str, str], tuple[int, Version]] = {}
        for resource_type, ids in by_type.items():
            if lock:
                self.lock_rows(conn, resource_type, ids)
            rows = self.fetch(
                conn,
                "SELECT r.rid, r.id, r.version_id, v.last_updated, v.method, v.resource FROM resources r "
                "JOIN versions v ON v.rid = r.rid AND v.version_id = r.version_id "
                f"WHERE r.resource_type = ? AND r.id IN ({', '.join('?' * len(ids))})",
                [resource_type, *ids],
            )
            for rid, resource_id, version_id, last_updated, method, stored in rows:
                resource = None if stored is None else self.load_json(stored)
                version = Version(resource_type, resource_id, version_id, to_datetime(last_updated), resource, method)
                out[(resource_type, resource_id)] = (rid, version)
        if lock:
            self.lock_absent(conn, [k for k in keys if k not in out])
        return out

    def lock_rows(self, conn: Any, resource_type: str, ids: list[str]) -> None:
        return None

    def _version_rows(self, rows: list[tuple]) -> list[Version]:
        return [
            Version(t, i, v, to_datetime(lu), None if res is None else self.load_json(res), m)
            for t, i, v, lu, m, res in rows
        ]

    def _vread(self, resource_type: str, resource_id: str, version_id: int) -> Version | None:
        with self.unit(False) as unit:
            return self._vread_in(unit.conn, resource_type, resource_id, version_id)

    def _history(
        self, resource_type: str | None, resource_id: str | None, since_micros: int | None, count: int, offset: int
    ) -> tuple[int, list[Version]]:
        with self.unit(False) as unit:
            return self._history_in(unit.conn, resource_type, resource_id, since_micros, count, offset)

    def _vread_in(self, conn: Any, resource_type: str, resource_id: str, version_id: int) -> Version | None:
        rows = self.fetch(
            conn,
            "SELECT v.resource_type, v.id, v.version_id, v.last_updated, v.method, v.resource FROM versions v "
            "JOIN resources r ON r.rid = v.rid WHERE r.resource_type = ? AND r.id = ? AND v.version_id = ?",
            [resource_type, resource_id, version_id],
        )
        return self._version_rows(rows)[0] if rows else None

    def _history_in(
        self, conn: Any, resource_type: str | None, resource_id: str | None, since: int | None, count: int, offset: int
    ) -> tuple[int, list[Version]]:
        where, params = [], []
        if resource_type is not None and resource_id is not None:
            where.append("v.rid = (SELECT r.rid FROM resources r WHERE r.resource_type = ? AND r.id = ?)")
            params += [resource_type, resource_id]
        elif resource_type is not None:
            where.append("v.resource_type = ?")
            params.append(resource_type)
        if since is not None:
            where.append("v.last_updated >= ?")
            params.append(since)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        total = self.fetch(conn, f"SELECT count(*) FROM versions v {clause}", params)[0][0]
        rows = self.fetch(
            conn,
            "SELECT v.resource_type, v.id, v.version_id, v.last_updated, v.method, v.resource FROM versions v "
            f"{clause} ORDER BY v.vid DESC LIMIT ? OFFSET ?",
            [*params, count, offset],
        )
        return total, self._version_rows(rows)
