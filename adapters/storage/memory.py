"""In-memory repository: the test double, same semantics as the SQL backends (matching via adapters.storage.plan)."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from adapters.storage.base import Version
from adapters.storage.dates import to_micros
from adapters.storage.engine import VersionedStore
from adapters.storage.indexing import IndexRows, reference_view
from adapters.storage.plan import (
    COLUMNS,
    LAST_UPDATED_SPAN,
    ChainMatch,
    Cmp,
    Condition,
    IdMatch,
    IndexMatch,
    LastUpdatedMatch,
    compile_query,
    sort_specs,
)
from adapters.storage.query import IncludeSpec, SearchQuery
from adapters.storage.search_parameters import parameters

_POSITIONS = {table: {c: i + 1 for i, c in enumerate(cols)} for table, cols in COLUMNS.items()}
_POSITIONS["last_updated"] = {"low": 1, "high": 2}  # (key, low, high) rows built from Version.last_updated
Key = tuple[str, str]


def _cmp(row: tuple, table: str, cmp: Cmp) -> bool:
    value = row[_POSITIONS[table][cmp.column]]
    op = cmp.op
    if op == "isnull":
        return value is None
    if value is None:
        return False
    if op == "=":
        return value == cmp.value
    if op == "<":
        return value < cmp.value
    if op == "<=":
        return value <= cmp.value
    if op == ">":
        return value > cmp.value
    if op == ">=":
        return value >= cmp.value
    if op == "startswith":
        return value.startswith(cmp.value)
    if op == "contains":
        return cmp.value in value
    if op == "prefix_of":
        return cmp.value.startswith(value)
    raise ValueError(op)


class _Unit:
    """The whole store under one lock; an undo log makes a unit all-or-nothing."""

    def __init__(self, store: MemoryRepository) -> None:
        self.store = store
        self.undo: list[tuple[Key, int, IndexRows | None, bool]] = []

    def current(self, resource_type: str, resource_id: str) -> Version | None:
        versions = self.store.versions.get((resource_type, resource_id))
        return versions[-1] if versions else None

    def put(self, version: Version, rows: IndexRows | None, is_new: bool) -> None:
        key = (version.resource_type, version.id)
        versions = self.store.versions.setdefault(key, [])
        self.undo.append((key, len(versions), self.store.index.get(key), key in self.store.index))
        versions.append(version)
        self.store.log.append(version)
        if rows is None:
            self.store.index.pop(key, None)
        else:
            self.store.index[key] = rows

    def rollback(self) -> None:
        for key, length, rows, had_rows in reversed(self.undo):
            del self.store.versions[key][length:]
            if not self.store.versions[key]:
                del self.store.versions[key]
            self.store.log.pop()
            if had_rows:
                self.store.index[key] = rows  # type: ignore[assignment]
            else:
                self.store.index.pop(key, None)

    def lock(self, key: str) -> None:
        return None  # the store lock already serialises every unit

    # -- search ---------------------------------------------------------------------------------

    def _holds(self, key: Key, cond: Condition) -> bool:
        if isinstance(cond, IdMatch):
            hit = key[1] in cond.ids
            return hit != cond.negate if cond.ids else cond.negate
        if isinstance(cond, LastUpdatedMatch):
            micros = to_micros(self.store.versions[key][-1].last_updated)
            row = (None, micros, micros + LAST_UPDATED_SPAN)
            hit = any(all(_cmp(row, "last_updated", c) for c in clause) for clause in cond.alternatives)
            return hit != cond.negate
        rows = self.store.index.get(key)
        if isinstance(cond, IndexMatch):
            table_rows = [r for r in getattr(rows, cond.table)] if rows else []
            hit = any(
                r[0] in cond.keys and all(_cmp(r, cond.table, c) for c in clause)
                for r in table_rows
                for clause in cond.alternatives
            )
            return hit != cond.negate
        assert isinstance(cond, ChainMatch)
        refs = [r for r in (rows.reference if rows else ()) if r[0] == cond.key]
        for target_type, conditions in cond.targets:
            for r in refs:
                target = (target_type, r[2])
                if r[1] == target_type and target in self.store.index and all(self._holds(target, c) for c in conditions):
                    return True
        return False

    def _matching(self, query: SearchQuery) -> list[Key]:
        conditions = compile_query(query)
        return [
            key
            for key in self.store.index
            if key[0] == query.resource_type and all(self._holds(key, c) for c in conditions)
        ]

    def match_ids(self, query: SearchQuery) -> list[str]:
        return [key[1] for key in self._matching(query)]

    def _sort_value(self, key: Key, spec: Any) -> Any:
        if spec.table is None:
            version = self.store.versions[key][-1]
            return key[1] if spec.column == "id" else version.last_updated
        rows = getattr(self.store.index[key], spec.table)
        values = [r[_POSITIONS[spec.table][spec.column]] for r in rows if r[0] in spec.keys]
        values = [v for v in values if v is not None]
        if not values:
            return None
        return max(values) if spec.descending else min(values)

    def search(self, query: SearchQuery) -> tuple[int | None, list[dict], list[dict]]:
        keys = self._matching(query)
        for spec in reversed(sort_specs(query)):
            present = [k for k in keys if self._sort_value(k, spec) is not None]
            absent = [k for k in keys if self._sort_value(k, spec) is None]  # missing values sort last
            present.sort(key=lambda k: self._sort_value(k, spec), reverse=spec.descending)
            keys = present + absent
        total = len(keys)
        if query.summary == "count":
            return total, [], []
        page = keys[query.offset : query.offset + query.count]
        matches = [self.store.versions[k][-1].resource for k in page]
        return total, matches, self._included(query, page)  # type: ignore[misc]

    def _included(self, query: SearchQuery, page: list[Key]) -> list[dict]:
        seen = set(page)
        out: list[Key] = []
        frontier = list(page)
        specs = [(s, False) for s in query.include] + [(s, True) for s in query.revinclude]
        first = True
        while frontier and specs:
            found: list[Key] = []
            for spec, reverse in specs:
                if not first and not spec.iterate:
                    continue
                found += self._revinclude(spec, frontier) if reverse else self._include(spec, frontier)
            new = [k for k in dict.fromkeys(found) if k not in seen]
            seen.update(new)
            out += new
            frontier, first = new, False
        return [self.store.versions[k][-1].resource for k in out]  # type: ignore[misc]

    def _include(self, spec: IncludeSpec, sources: list[Key]) -> list[Key]:
        found = []
        for source in sources:
            if source[0] != spec.source_type and spec.param != "*":
                continue
            key, narrowed_to = (None, None) if spec.param == "*" else reference_view(spec.source_type, spec.param)
            for r in self.store.index[source].reference:
                if (spec.param == "*" and r[0].startswith(source[0] + ".")) or (
                    r[0] == key and narrowed_to in (None, r[1])
                ):
                    target = (r[1], r[2])
                    if (spec.target_type is None or r[1] == spec.target_type) and target in self.store.index:
                        found.append(target)
        return found

    def _revinclude(self, spec: IncludeSpec, targets: list[Key]) -> list[Key]:
        wanted = set(targets)
        narrowed_to = None
        if spec.param == "*":
            keys = [f"{spec.source_type}.{p}" for p in parameters(spec.source_type)]
        else:
            key, narrowed_to = reference_view(spec.source_type, spec.param)
            keys = [key]
        found = []
        for key, rows in self.store.index.items():
            if key[0] != spec.source_type:
                continue
            for r in rows.reference:
                if r[0] in keys and (r[1], r[2]) in wanted and spec.target_type in (None, r[1]) and narrowed_to in (None, r[1]):
                    found.append(key)
                    break
        return found


class MemoryRepository(VersionedStore):
    """Everything in dicts, guarded by one re-entrant lock."""

    def __init__(self) -> None:
        self.versions: dict[Key, list[Version]] = {}
        self.index: dict[Key, IndexRows] = {}  # current, non-deleted resources only
        self.log: list[Version] = []  # every version in write order, for history
        self._lock = threading.RLock()

    @contextmanager
    def unit(self, write: bool) -> Iterator[_Unit]:
        with self._lock:
            unit = _Unit(self)
            try:
                yield unit
            except BaseException:
                unit.rollback()
                raise

    def _vread(self, resource_type: str, resource_id: str, version_id: int) -> Version | None:
        with self._lock:
            for version in self.versions.get((resource_type, resource_id), ()):
                if version.version_id == version_id:
                    return version
        return None

    def _history(
        self, resource_type: str | None, resource_id: str | None, since_micros: int | None, count: int, offset: int
    ) -> tuple[int, list[Version]]:
        with self._lock:
            selected = [
                v
                for v in reversed(self.log)
                if (resource_type is None or v.resource_type == resource_type)
                and (resource_id is None or v.id == resource_id)
                and (since_micros is None or v.last_updated.timestamp() * 1_000_000 >= since_micros)
            ]
        return len(selected), selected[offset : offset + count]
