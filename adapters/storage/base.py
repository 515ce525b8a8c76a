"""The repository port: one method per FHIR interaction (FHIR R4 http.html), one contract for every backend."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

from adapters.storage.query import SearchQuery, SearchResult


class StorageError(Exception):
    """Base of storage errors; `http_status` is decided here, once."""

    http_status = 500
    issue_code = "exception"


class NotFound(StorageError):
    http_status = 404
    issue_code = "not-found"


class Gone(StorageError):
    """The resource existed and was deleted (R4 http.html#read: 410)."""

    http_status = 410
    issue_code = "deleted"


class VersionConflict(StorageError):
    """If-Match did not match the current version (R4 http.html#concurrency: 412)."""

    http_status = 412
    issue_code = "conflict"


class PreconditionFailed(StorageError):
    """A conditional interaction matched more than one resource (R4 http.html#ccreate: 412)."""

    http_status = 412
    issue_code = "multiple-matches"


class InvalidSearch(StorageError):
    """Unknown parameter, bad prefix or modifier, malformed value (R4 search.html#errors: 400)."""

    http_status = 400
    issue_code = "invalid"


class TransientConflict(StorageError):
    """A concurrent transaction got in the way (PostgreSQL deadlock_detected 40P01, serialization_failure
    40001); the database rolled the whole unit back, so running it again is safe and usually succeeds."""

    http_status = 503
    issue_code = "transient"


class InvalidResource(StorageError):
    """A write the store cannot accept as given: no resourceType, update without id (R4 http.html#update: 400)."""

    http_status = 400
    issue_code = "invalid"


@dataclass(frozen=True, init=False)
class Version:
    """One stored version of a resource; `resource` is None for a delete marker."""

    resource_type: str
    id: str
    version_id: int
    last_updated: datetime
    resource: dict | None
    method: str = "PUT"  # POST, PUT or DELETE: the interaction that made this version

    def __init__(
        self, resource_type: str, id: str, version_id: int, last_updated: datetime, resource: dict | None,
        method: str = "PUT",
    ) -> None:
        """Fills the fields straight into the instance dict: a frozen dataclass's generated __init__ makes
        one object.__setattr__ call per field, and a transaction Bundle makes a Version per entry."""
        fields = self.__dict__
        fields["resource_type"] = resource_type
        fields["id"] = id
        fields["version_id"] = version_id
        fields["last_updated"] = last_updated
        fields["resource"] = resource
        fields["method"] = method

    @property
    def deleted(self) -> bool:
        return self.resource is None


@dataclass(frozen=True, init=False)
class WriteOutcome:
    """What a write did: the version it made and whether it created the resource."""

    version: Version
    created: bool
    changed: bool = True  # False when a conditional create matched an existing resource

    def __init__(self, version: Version, created: bool, changed: bool = True) -> None:
        """As Version.__init__: one per transaction entry, without object.__setattr__ per field."""
        fields = self.__dict__
        fields["version"] = version
        fields["created"] = created
        fields["changed"] = changed


@dataclass(frozen=True)
class BundleEntryRequest:
    """One entry of a transaction/batch Bundle, as plain data (R4 bundle.html#transaction)."""

    method: str  # GET, POST, PUT, DELETE
    url: str
    resource: dict | None = None
    full_url: str | None = None
    if_none_exist: str | None = None
    if_match: str | None = None


class Repository(ABC):
    """Versioned FHIR resource store. Every write stamps meta.versionId and meta.lastUpdated."""

    @abstractmethod
    def create(self, resource: dict, *, if_none_exist: SearchQuery | None = None) -> WriteOutcome:
        """Store a new resource under a server-assigned id (or return the one match of if_none_exist)."""

    @abstractmethod
    def read(self, resource_type: str, resource_id: str) -> Version:
        """Current version; NotFound if never stored, Gone if deleted."""

    @abstractmethod
    def vread(self, resource_type: str, resource_id: str, version_id: int) -> Version:
        """One version; NotFound if absent."""

    @abstractmethod
    def update(self, resource: dict, *, if_match: int | None = None) -> WriteOutcome:
        """Create or replace at resource['id'] (update-as-create); VersionConflict on if_match mismatch."""

    @abstractmethod
    def delete(self, resource_type: str, resource_id: str) -> Version | None:
        """Mark deleted (new version, resource None); None if there was nothing to delete."""

    @abstractmethod
    def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        since: datetime | None = None,
        count: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[Version]]:
        """Versions newest first, for an instance, a type or the whole system; returns (total, page)."""

    @abstractmethod
    def search(self, query: SearchQuery) -> SearchResult:
        """Current, non-deleted resources matching every filter; includes resolved."""

    @abstractmethod
    def transaction(self, entries: list[BundleEntryRequest]) -> list[WriteOutcome | Version | SearchResult | None]:
        """Apply all entries atomically (all or nothing), resolving urn:uuid references between them."""

    def close(self) -> None:
        """Release connections."""
