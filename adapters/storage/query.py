"""The search request as plain data, parsed before anything touches a database (FHIR R4 search.html)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SearchValue:
    """One value of a parameter; `prefix` is eq ne gt lt ge le sa eb ap (FHIR R4 search.html#prefix)."""

    raw: str
    prefix: str = "eq"


@dataclass(frozen=True)
class SearchFilter:
    """`name[:modifier]=v1,v2` (values OR-ed); several filters are AND-ed.

    `chain` holds the rest of a chained parameter, e.g. subject:Patient.identifier=X gives
    name="subject", target_type="Patient", chain=("identifier",).
    """

    name: str
    param_type: str  # token, string, date, reference, quantity, number, uri, special
    values: tuple[SearchValue, ...]
    modifier: str | None = None
    target_type: str | None = None
    chain: tuple[str, ...] = ()


@dataclass(frozen=True)
class SortKey:
    name: str
    descending: bool = False


@dataclass(frozen=True)
class IncludeSpec:
    """`_include=Source:param[:Target]` or `_revinclude=Source:param[:Target]`."""

    source_type: str
    param: str
    target_type: str | None = None
    iterate: bool = False


@dataclass(frozen=True)
class SearchQuery:
    resource_type: str
    filters: tuple[SearchFilter, ...] = ()
    sort: tuple[SortKey, ...] = ()
    count: int = 50
    offset: int = 0
    include: tuple[IncludeSpec, ...] = ()
    revinclude: tuple[IncludeSpec, ...] = ()
    summary: str | None = None  # true, count, text, data, false
    elements: tuple[str, ...] = ()
    total: str = "accurate"  # none, estimate, accurate


@dataclass
class SearchResult:
    total: int | None
    matches: list[dict] = field(default_factory=list)
    included: list[dict] = field(default_factory=list)


def parse_search(resource_type: str, params: list[tuple[str, str]]) -> SearchQuery:
    """Parse a request's query pairs into a SearchQuery; InvalidSearch (400) names the bad parameter."""
    from adapters.storage.search_parser import parse_search as _parse

    return _parse(resource_type, params)
