"""FHIR interaction semantics shared by every backend (R4 http.html, bundle.html#transaction).

A backend supplies a unit of work (one atomic DB transaction) with a handful of primitives; this
module decides versions, meta stamping, update-as-create, If-Match, conditional create/update/
delete, urn:uuid resolution and the order of transaction entries, so all backends agree.

Choice: an update whose content equals the current version (ignoring meta.versionId and
meta.lastUpdated) makes no new version; it returns the current version with changed=False. This
keeps resent HL7 messages from growing the history.
"""
from __future__ import annotations

import gc
import random
import time
import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl

import orjson

from adapters.storage.base import (
    BundleEntryRequest,
    Gone,
    InvalidResource,
    NotFound,
    PreconditionFailed,
    Repository,
    TransientConflict,
    VersionConflict,
    WriteOutcome,
    Version,
)
from adapters.storage.dates import format_instant, now_micros, to_datetime
from adapters.storage.indexing import IndexRows, index_resource
from adapters.storage.projection import project
from adapters.storage.query import SearchQuery, SearchResult, parse_search

T = TypeVar("T")

# Processing order of transaction entries (R4 bundle.html#transaction-processing).
_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
BULK_ENTRIES = 100  # a transaction Bundle this large pauses the cyclic garbage collector (_collector_paused)


class UnitOfWork(Protocol):
    """One atomic database transaction, as the engine needs it."""

    def current(self, resource_type: str, resource_id: str) -> Version | None:
        """Latest version (a delete marker too), locked for update where the backend can."""

    def put(self, version: Version, rows: IndexRows | None, is_new: bool) -> None:
        """Store a version, make it current, replace the index rows (None: remove them)."""

    def match_ids(self, query: SearchQuery) -> list[str]:
        """Ids of every current resource matching the filters (no paging)."""

    def search(self, query: SearchQuery) -> tuple[int | None, list[dict], list[dict]]:
        """(total, page of matches, included resources)."""

    def lock(self, key: str) -> None:
        """Serialise conditional writes on the same criteria across processes."""


@lru_cache(maxsize=64)  # a transaction Bundle stamps many resources within one millisecond
def _instant(micros: int) -> tuple[str, int, datetime]:
    return format_instant(micros), micros, to_datetime(micros)


@contextmanager
def _collector_paused(pause: bool) -> Iterator[None]:
    """Hold off cyclic garbage collection while a bulk transaction Bundle builds its rows (R4 bundle.html#transaction).

    A Bundle of a thousand entries allocates tens of thousands of small containers (copies, versions,
    index rows) that all live until the commit; the collector would rescan them hundreds of times
    for nothing (about a tenth of a bulk load's CPU). Reference counting still frees everything;
    the collector runs again as soon as the unit ends. The pause is process-wide (other threads'
    collections wait for one Bundle too); a process that disabled the collector keeps it off.
    """
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def retrying(unit_of_work: Callable[[], T], attempts: int = 4) -> T:
    """Run a function that opens its own unit again when a concurrent transaction got in its way
    (TransientConflict: the database rolled it back whole), after a short random pause; a unit
    joined by a caller's enclosing unit never sees the conflict here, its owner does."""
    for attempt in range(1, attempts + 1):
        try:
            return unit_of_work()
        except TransientConflict:
            if attempt == attempts:
                raise
            time.sleep(random.uniform(0.005, 0.02) * attempt)
    raise AssertionError("unreachable")


def new_id() -> str:
    return str(uuid.uuid4())


def stamp(resource: dict, version_id: int, last_updated: str) -> dict:
    """A copy with meta.versionId and meta.lastUpdated set (R4 resource.html#Meta)."""
    out = dict(resource)
    meta = dict(out.get("meta") or {})
    meta["versionId"] = str(version_id)
    meta["lastUpdated"] = last_updated
    out["meta"] = meta
    return out


def _content(resource: dict) -> dict:
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    out = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        out["meta"] = meta
    return out


def parse_if_match(value: str | int | None) -> int | None:
    """`W/"3"`, `"3"` or 3 -> 3 (R4 http.html#concurrency)."""
    if value is None or isinstance(value, int):
        return value
    version = etag_version(value)
    if version is None:
        raise VersionConflict(f"If-Match '{value}' is not a version")
    return version


def etag_version(value: str) -> int | None:
    """The version id in an ETag value such as `W/"3"` or `"3"`; None when it names none (R4 http.html#versioning)."""
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    return int(text) if text.isdigit() else None


def rewrite_references(value: Any, mapping: dict[str, str]) -> Any:
    """A copy with every `reference` found in `mapping` replaced by its target (R4 bundle.html#references)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "reference" and isinstance(v, str) and v in mapping:
                out[k] = mapping[v]
            else:
                out[k] = rewrite_references(v, mapping) if isinstance(v, (dict, list)) else v
        return out
    if isinstance(value, list):
        return [rewrite_references(v, mapping) if isinstance(v, (dict, list)) else v for v in value]
    return value


def conditional_references(resource: dict) -> set[str]:
    """Every `Type?query` reference in a resource (R4 bundle.html#transaction, conditional references)."""
    found: set[str] = set()
    # a serialised scan finds the rare resource with a '?' anywhere far faster than a walk
    if b"?" in orjson.dumps(resource):
        _conditional_references(resource, found)
    return found


def _conditional_references(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and "?" in ref and "://" not in ref and not ref.startswith("#"):
            found.add(ref)
        for v in value.values():
            if isinstance(v, (dict, list)):
                _conditional_references(v, found)
    elif isinstance(value, list):
        for v in value:
            _conditional_references(v, found)


@lru_cache(maxsize=4096)  # a transaction looks at each entry's url several times
def _split_url(url: str) -> tuple[str, str | None, str | None]:
    """'Patient/1/_history/2?x' -> ('Patient', '1', '2'); query strings are handled separately."""
    path = url.split("?", 1)[0].strip("/")
    if "://" in path:  # absolute URL: keep the last Type/id[/_history/n] part
        parts = path.split("/")
        idx = max((i for i, p in enumerate(parts) if p[:1].isupper()), default=0)
        path = "/".join(parts[idx:])
    parts = path.split("/")
    resource_id = parts[1] if len(parts) > 1 else None
    version = parts[3] if len(parts) > 3 and parts[2] == "_history" else None
    return parts[0], resource_id, version


def put_targets(entries: list[BundleEntryRequest], methods: list[str] | None = None) -> list[tuple[str, str]]:
    """(type, id) of what each plain PUT entry writes, conditional ones left out (bundle.html#transaction);
    `methods`: the entries' methods upper-cased, when the caller has them already."""
    methods = methods or [entry.method.upper() for entry in entries]
    puts = [_split_url(e.url) for e, method in zip(entries, methods) if method == "PUT" and "?" not in e.url]
    return [(resource_type, resource_id) for resource_type, resource_id, _ in puts if resource_id]


def _query_of(url: str) -> SearchQuery:
    resource_type, _, query = url.partition("?")
    return parse_search(resource_type.strip("/").split("/")[-1], parse_qsl(query, keep_blank_values=True))


class VersionedStore(Repository):
    """Repository semantics over a backend's units of work."""

    param_ids: dict[str, int] | None = None  # how index rows name parameters: key, or a backend's id for it

    @abstractmethod
    def unit(self, write: bool) -> AbstractContextManager[UnitOfWork]:
        """An atomic unit; write=True takes the write lock up front (BEGIN IMMEDIATE / row locks).

        Store calls made in the same thread inside a unit join it, so a caller can add its own
        statements to the transaction of a write (the message log's "applied" mark does).
        """

    @abstractmethod
    def _vread(self, resource_type: str, resource_id: str, version_id: int) -> Version | None: ...

    @abstractmethod
    def _history(
        self, resource_type: str | None, resource_id: str | None, since_micros: int | None, count: int, offset: int
    ) -> tuple[int, list[Version]]: ...

    # -- single interactions ------------------------------------------------------------------

    def create(self, resource: dict, *, if_none_exist: SearchQuery | None = None) -> WriteOutcome:
        with self.unit(True) as uow:
            return self._create(uow, resource, if_none_exist, None)

    def update(self, resource: dict, *, if_match: int | None = None) -> WriteOutcome:
        with self.unit(True) as uow:
            return self._update(uow, resource, parse_if_match(if_match))

    def delete(self, resource_type: str, resource_id: str) -> Version | None:
        with self.unit(True) as uow:
            return self._delete(uow, resource_type, resource_id, None)

    def read(self, resource_type: str, resource_id: str) -> Version:
        version = self._current(resource_type, resource_id)
        if version is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known")
        if version.deleted:
            raise Gone(f"{resource_type}/{resource_id} was deleted")
        return version

    def _current(self, resource_type: str, resource_id: str) -> Version | None:
        """The current version, deleted or not; None when the id was never stored."""
        with self.unit(False) as uow:
            return uow.current(resource_type, resource_id)

    def vread(self, resource_type: str, resource_id: str, version_id: int) -> Version:
        version = self._vread(resource_type, resource_id, int(version_id))
        if version is None:
            raise NotFound(f"{resource_type}/{resource_id}/_history/{version_id} is not known")
        return version

    def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        since: datetime | None = None,
        count: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[Version]]:
        since_micros = None
        if since is not None:
            since_micros = int(since.timestamp() * 1_000_000)
        return self._history(resource_type, resource_id, since_micros, count, offset)

    def search(self, query: SearchQuery) -> SearchResult:
        with self.unit(False) as uow:
            return self._search(uow, query)

    def transaction(self, entries: list[BundleEntryRequest]) -> list[WriteOutcome | Version | SearchResult | None]:
        return retrying(lambda: self._transaction_unit(entries))

    def _transaction_unit(self, entries: list[BundleEntryRequest]) -> list[WriteOutcome | Version | SearchResult | None]:
        with _collector_paused(len(entries) >= BULK_ENTRIES), self.unit(True) as uow:
            return self._transaction(uow, entries)

    # -- the semantics -----------------------------------------------------------------------

    @staticmethod
    def _now() -> tuple[str, int, datetime]:
        """(meta.lastUpdated text, UTC microseconds, datetime) of this millisecond."""
        micros = now_micros()
        micros -= micros % 1000  # lastUpdated is served with millisecond precision
        return _instant(micros)

    def _search(self, uow: UnitOfWork, query: SearchQuery) -> SearchResult:
        total, matches, included = uow.search(query)
        if query.total == "none" and query.summary != "count":
            total = None
        if query.summary == "count":
            return SearchResult(total=total)
        return SearchResult(
            total=total,
            matches=[project(m, query.summary, query.elements) for m in matches],
            included=[project(i, query.summary, query.elements) for i in included],
        )

    def _single_match(self, uow: UnitOfWork, query: SearchQuery) -> str | None:
        uow.lock(f"{query.resource_type}?{query.filters!r}")
        ids = uow.match_ids(query)
        if len(ids) > 1:
            raise PreconditionFailed(f"{len(ids)} {query.resource_type} resources match the condition")
        return ids[0] if ids else None

    def _create(
        self, uow: UnitOfWork, resource: dict, if_none_exist: SearchQuery | None, assigned_id: str | None
    ) -> WriteOutcome:
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            raise InvalidResource("resource has no resourceType")
        if if_none_exist is not None:
            existing = self._single_match(uow, if_none_exist)
            if existing is not None:
                current = uow.current(resource_type, existing)
                assert current is not None
                return WriteOutcome(current, created=False, changed=False)
        resource_id = assigned_id or new_id()
        instant, _, when = self._now()
        stamped = stamp({**resource, "id": resource_id}, 1, instant)
        version = Version(resource_type, resource_id, 1, when, stamped, "POST")
        uow.put(version, index_resource(stamped, self.param_ids), True)
        return WriteOutcome(version, created=True)

    def _update(self, uow: UnitOfWork, resource: dict, if_match: int | None) -> WriteOutcome:
        resource_type, resource_id = resource.get("resourceType"), resource.get("id")
        if not isinstance(resource_type, str) or not isinstance(resource_id, str) or not resource_id:
            raise InvalidResource("update needs resourceType and id")
        current = uow.current(resource_type, resource_id)
        if if_match is not None and (current is None or current.deleted or current.version_id != if_match):
            have = "none" if current is None or current.deleted else current.version_id
            raise VersionConflict(f"{resource_type}/{resource_id}: If-Match {if_match}, current version {have}")
        if current is not None and not current.deleted and _content(current.resource) == _content(resource):
            return WriteOutcome(current, created=False, changed=False)
        version_id = current.version_id + 1 if current else 1
        instant, _, when = self._now()
        stamped = stamp(resource, version_id, instant)
        version = Version(resource_type, resource_id, version_id, when, stamped, "PUT")
        uow.put(version, index_resource(stamped, self.param_ids), current is None)
        return WriteOutcome(version, created=current is None or current.deleted)

    def _delete(self, uow: UnitOfWork, resource_type: str, resource_id: str, if_match: int | None) -> Version | None:
        current = uow.current(resource_type, resource_id)
        if if_match is not None and (current is None or current.deleted or current.version_id != if_match):
            raise VersionConflict(f"{resource_type}/{resource_id}: If-Match {if_match} does not match")
        if current is None or current.deleted:
            return None
        _, _, when = self._now()
        version = Version(resource_type, resource_id, current.version_id + 1, when, None, "DELETE")
        uow.put(version, None, False)
        return version

    def _transaction(
        self, uow: UnitOfWork, entries: list[BundleEntryRequest]
    ) -> list[WriteOutcome | Version | SearchResult | None]:
        mapping: dict[str, str] = {}
        post_ids: dict[int, str] = {}
        matched: dict[int, WriteOutcome] = {}
        methods = [entry.method.upper() for entry in entries]
        order = sorted(range(len(entries)), key=[_ORDER.get(method, 9) for method in methods].__getitem__)
        # 1. ids: conditional creates that match, new ids for POST, ids from PUT urls (bundle.html#references)
        for i in order:
            entry = entries[i]
            method = methods[i]
            if method == "POST":
                if entry.resource is None:
                    raise InvalidResource(f"entry {i}: POST without a resource")
                resource_type = entry.resource.get("resourceType") or _split_url(entry.url)[0]
                if entry.if_none_exist:
                    query = _query_of(f"{resource_type}?{entry.if_none_exist.lstrip('?')}")
                    existing = self._single_match(uow, query)
                    if existing is not None:
                        current = uow.current(resource_type, existing)
                        assert current is not None
                        matched[i] = WriteOutcome(current, created=False, changed=False)
                        if entry.full_url:
                            mapping[entry.full_url] = f"{resource_type}/{existing}"
                        continue
                post_ids[i] = new_id()
                if entry.full_url:
                    mapping[entry.full_url] = f"{resource_type}/{post_ids[i]}"
            elif method == "PUT" and entry.full_url and "?" not in entry.url:
                resource_type, resource_id, _ = _split_url(entry.url)
                if resource_id:
                    mapping[entry.full_url] = f"{resource_type}/{resource_id}"
        # 2. conditional references `Patient?identifier=...` must name exactly one resource
        found: set[str] = set()
        for entry in entries:
            if entry.resource is not None:
                found |= conditional_references(entry.resource)
        for ref in sorted(found):
            ids = uow.match_ids(_query_of(ref))
            if len(ids) != 1:
                raise PreconditionFailed(f"conditional reference '{ref}' matches {len(ids)} resources")
            mapping[ref] = f"{ref.split('?', 1)[0]}/{ids[0]}"
        # 3. load the targets of plain PUTs in one go, then apply in processing order, report in entry order
        prefetch = getattr(uow, "prefetch", None)
        if prefetch is not None:
            prefetch(put_targets(entries, methods))
        results: list[WriteOutcome | Version | SearchResult | None] = [None] * len(entries)
        for i in order:
            entry = entries[i]
            method = methods[i]
            resource = rewrite_references(entry.resource, mapping) if entry.resource is not None and mapping else entry.resource
            if_match = parse_if_match(entry.if_match)
            if method == "POST":
                results[i] = matched.get(i) or self._create(uow, resource, None, post_ids[i])  # type: ignore[arg-type]
            elif method in ("PUT", "PATCH"):
                if method == "PATCH" or resource is None:
                    raise InvalidResource(f"entry {i}: {method} needs a resource (PATCH is not supported)")
                resource_type, resource_id, _ = _split_url(entry.url)
                given_id = resource.get("id")
                conditional = "?" in entry.url
                if conditional:
                    resource_id = self._single_match(uow, _query_of(entry.url)) or given_id or new_id()
                if not resource_id:
                    raise InvalidResource(f"entry {i}: PUT url '{entry.url}' names no id")
                if given_id not in (None, resource_id) and not conditional:
                    raise InvalidResource(f"entry {i}: resource id '{given_id}' differs from url")
                if given_id != resource_id:  # _update copies what it stores; no copy when the id is right
                    resource = {**resource, "id": resource_id}
                results[i] = self._update(uow, resource, if_match)
            elif method == "DELETE":
                resource_type, resource_id, _ = _split_url(entry.url)
                if "?" in entry.url:
                    resource_id = self._single_match(uow, _query_of(entry.url))
                    if resource_id is None:
                        continue
                if not resource_id:
                    raise InvalidResource(f"entry {i}: DELETE url '{entry.url}' names no id")
                results[i] = self._delete(uow, resource_type, resource_id, if_match)
            elif method in ("GET", "HEAD"):
                resource_type, resource_id, version = _split_url(entry.url)
                if resource_id is None:
                    results[i] = self._search(uow, _query_of(entry.url))
                elif version is not None:
                    results[i] = self.vread(resource_type, resource_id, int(version))
                else:
                    current = uow.current(resource_type, resource_id)
                    if current is None:
                        raise NotFound(f"entry {i}: {resource_type}/{resource_id} is not known")
                    if current.deleted:
                        raise Gone(f"entry {i}: {resource_type}/{resource_id} was deleted")
                    results[i] = current
            else:
                raise InvalidResource(f"entry {i}: unsupported method '{entry.method}'")
        return results
