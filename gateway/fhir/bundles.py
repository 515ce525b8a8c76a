"""Bundles the API answers with: searchset with paging links, history, and entry responses (FHIR R4 bundle.html, search.html#paging, http.html#history)."""
from __future__ import annotations

from urllib.parse import urlencode

from adapters.storage.base import Version, WriteOutcome
from adapters.storage.query import SearchQuery, SearchResult
from gateway.fhir.representation import etag

# The page offset is this server's own parameter; clients only follow the links that carry it.
OFFSET_PARAMETER = "_offset"


def paging_links(
    url: str, params: list[tuple[str, str]], *, offset: int, count: int, total: int | None, page_size: int
) -> list[dict]:
    """self/first/prev/next/last as absolute URLs on the host the client called (search.html#paging)."""

    prefix = f"{url}?{urlencode(params)}&" if params else f"{url}?"

    def link(relation: str, at: int) -> dict:
        return {"relation": relation, "url": f"{prefix}_count={count}&{OFFSET_PARAMETER}={at}"}

    links = [link("self", offset), link("first", 0)]
    if offset > 0 and count > 0:
        links.append(link("previous", max(offset - count, 0)))
    has_next = (offset + count < total) if total is not None else page_size >= count > 0
    if has_next:
        links.append(link("next", offset + count))
    if total is not None and count > 0:
        links.append(link("last", max((total - 1) // count * count, 0)))
    return links


def searchset(result: SearchResult, query: SearchQuery, base: str, links: list[dict]) -> dict:
    """A searchset Bundle: matches (search.mode=match) then _include/_revinclude (search.mode=include)."""
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None and query.total != "none":
        bundle["total"] = result.total
    bundle["link"] = links
    if query.summary == "count":
        return bundle
    # The store has already applied _summary and _elements (adapters.storage.projection).
    entries = [_search_entry(resource, base, "match") for resource in result.matches]
    entries += [_search_entry(resource, base, "include") for resource in result.included]
    if entries:
        bundle["entry"] = entries
    return bundle


def _search_entry(resource: dict, base: str, mode: str) -> dict:
    return {
        "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }


def history_bundle(total: int, versions: list[Version], base: str, links: list[dict]) -> dict:
    """A history Bundle: each version with the request that made it and its response (http.html#history)."""
    entries = []
    for version in versions:
        entry: dict = {"fullUrl": f"{base}/{version.resource_type}/{version.id}"}
        if version.resource is not None:
            entry["resource"] = version.resource
        method = "DELETE" if version.deleted else version.method
        url = version.resource_type if method == "POST" else f"{version.resource_type}/{version.id}"
        entry["request"] = {"method": method, "url": url}
        entry["response"] = {
            "status": "204 No Content" if version.deleted else ("201 Created" if method == "POST" else "200 OK"),
            "etag": etag(version.version_id),
            "lastModified": version.last_updated.isoformat(),
        }
        entries.append(entry)
    bundle: dict = {"resourceType": "Bundle", "type": "history", "total": total, "link": links}
    if entries:
        bundle["entry"] = entries
    return bundle


def location(version: Version) -> str:
    """Relative versioned location, as Bundle.entry.response.location and (with the base) the Location header."""
    return f"{version.resource_type}/{version.id}/_history/{version.version_id}"


def write_entry_response(result: WriteOutcome, *, representation: bool) -> dict:
    """Bundle.entry for a create/update inside a transaction or batch response."""
    version = result.version
    entry: dict = {
        "response": {
            "status": "201 Created" if result.created else "200 OK",
            "location": location(version),
            "etag": etag(version.version_id),
            "lastModified": version.last_updated.isoformat(),
        }
    }
    if representation and version.resource is not None:
        entry["resource"] = version.resource
    return entry
