"""Bundle invariants bdl-1..bdl-12 and the transaction rules a server enforces (FHIR R4 bundle.html, http.html)."""
from __future__ import annotations

import re
from typing import Any, Iterator

from conformance.invariants import invariant_issue
from conformance.outcome import Issue
from conformance.structure import ResourceFrame, Walk

_RESTFUL_TAIL = re.compile(r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})\Z")
_REQUEST_TYPES = frozenset({"batch", "transaction", "history"})
_RESPONSE_TYPES = frozenset({"batch-response", "transaction-response", "history"})


def bundle_issues(walk: Walk) -> list[Issue]:
    """Issues for every Bundle met by the walk (top level and nested)."""
    issues: list[Issue] = []
    for frame in walk.resources:
        if frame.resource_type == "Bundle":
            issues += [_violation(key, where, detail) for key, where, detail in _bundle_violations(frame)]
    return issues


def _violation(key: str, expression: str, detail: str) -> Issue:
    if key.startswith("bdl-"):
        return invariant_issue(key, expression, detail)
    return Issue("error", "invalid", expression, detail, key)


def _bundle_violations(frame: ResourceFrame) -> Iterator[tuple[str, str, str]]:
    bundle, where = frame.resource, frame.expression
    bundle_type = bundle.get("type")
    entries = [(index, entry) for index, entry in enumerate(bundle.get("entry") or []) if isinstance(entry, dict)]
    if "total" in bundle and bundle_type not in ("searchset", "history"):
        yield "bdl-1", f"{where}.total", f"type is {bundle_type}"
    first = entries[0][1].get("resource") if entries else None
    first_type = first.get("resourceType") if isinstance(first, dict) else None
    if bundle_type == "document":
        identifier = bundle.get("identifier")
        if not (isinstance(identifier, dict) and "system" in identifier and "value" in identifier):
            yield "bdl-9", f"{where}.identifier", ""
        if "timestamp" not in bundle:
            yield "bdl-10", f"{where}.timestamp", ""
        if first_type != "Composition":
            yield "bdl-11", f"{where}.entry[0].resource", f"first resource is {first_type}"
    if bundle_type == "message" and first_type != "MessageHeader":
        yield "bdl-12", f"{where}.entry[0].resource", f"first resource is {first_type}"
    seen: dict[tuple[str, Any], int] = {}
    for index, entry in entries:
        at = f"{where}.entry[{index}]"
        if "search" in entry and bundle_type != "searchset":
            yield "bdl-2", f"{at}.search", f"type is {bundle_type}"
        if ("request" in entry) != (bundle_type in _REQUEST_TYPES):
            yield "bdl-3", f"{at}.request", f"type is {bundle_type}"
        if ("response" in entry) != (bundle_type in _RESPONSE_TYPES):
            yield "bdl-4", f"{at}.response", f"type is {bundle_type}"
        if not {"resource", "request", "response"} & entry.keys():
            yield "bdl-5", at, ""
        full_url = entry.get("fullUrl")
        resource = entry.get("resource") if isinstance(entry.get("resource"), dict) else {}
        if isinstance(full_url, str):
            if "/_history/" in full_url:
                yield "bdl-8", f"{at}.fullUrl", full_url
            meta = resource.get("meta")
            version = meta.get("versionId") if isinstance(meta, dict) else None
            if bundle_type != "history":
                if (full_url, version) in seen:
                    yield "bdl-7", f"{at}.fullUrl", f"{full_url} repeats entry[{seen[(full_url, version)]}]"
                seen.setdefault((full_url, version), index)
            yield from _full_url_matches_id(full_url, resource, at)
        yield from _request_matches_resource(entry, resource, at, bundle_type)


def _full_url_matches_id(full_url: str, resource: dict[str, Any], at: str) -> Iterator[tuple[str, str, str]]:
    """bundle.html#bundle-unique: a RESTful fullUrl ends with the resource's type and id."""
    tail = _RESTFUL_TAIL.search(full_url)
    if tail is None or not full_url.startswith(("http://", "https://")) or not resource:
        return
    if tail.group("type") != resource.get("resourceType") or \
            ("id" in resource and tail.group("id") != resource.get("id")):
        yield "fullurl-id", f"{at}.fullUrl", (f"fullUrl {full_url} disagrees with the resource "
                                              f"{resource.get('resourceType')}/{resource.get('id')}")


def _request_matches_resource(entry: dict[str, Any], resource: dict[str, Any], at: str,
                              bundle_type: Any) -> Iterator[tuple[str, str, str]]:
    """http.html#update: a PUT to Type/id carries a resource of that Type whose id is that id."""
    request = entry.get("request")
    if bundle_type not in ("transaction", "batch") or not isinstance(request, dict) or not resource:
        return
    method, url = request.get("method"), request.get("url")
    if not isinstance(url, str):
        return
    path = url.split("?", 1)[0].strip("/")
    if method == "PUT" and "?" not in url:
        target = _RESTFUL_TAIL.fullmatch(path) or _RESTFUL_TAIL.search(path)
        if target is None:
            yield "request-url", f"{at}.request.url", f"PUT url {url!r} is not Type/id"
            return
        if target.group("type") != resource.get("resourceType"):
            yield "request-url", f"{at}.request.url", \
                f"PUT {url} carries a {resource.get('resourceType')} resource"
        elif resource.get("id") != target.group("id"):
            yield "request-url", f"{at}.resource.id", \
                f"PUT {url} requires resource.id {target.group('id')!r}, found {resource.get('id')!r}"
    elif method == "POST" and "$" not in path and path != resource.get("resourceType"):
        yield "request-url", f"{at}.request.url", f"POST url {url!r} must be the resource type {resource.get('resourceType')}"
