"""Transaction and batch Bundles posted to the base URL (FHIR R4 http.html#transaction, bundle.html#transaction)."""
from __future__ import annotations

import logging
from http import HTTPStatus

from adapters.storage.base import BundleEntryRequest, Version, WriteOutcome
from adapters.storage.query import SearchQuery, SearchResult
from gateway.fhir import bundles
from gateway.fhir.capability import SERVER_RECORDED_TYPES, supported_types
from gateway.fhir.context import repository
from gateway.fhir.outcome import BadRequest, ReadOnlyType, UnknownResourceType, error_outcome, http_status
from gateway.fhir.representation import etag
from gateway.fhir.validation import validate_resource

log = logging.getLogger(__name__)
METHODS = ("GET", "POST", "PUT", "DELETE")


def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def _relative(url: str, base: str) -> str:
    """An entry URL relative to the base (bundle.html#transaction allows both forms)."""
    if url.startswith(base + "/"):
        return url[len(base) + 1 :]
    return url.lstrip("/")


def entry_request(entry: dict, index: int, base: str) -> BundleEntryRequest:
    """Bundle.entry[index] as a storage request; 400 for a malformed request, 404 for an unknown type, 422 for an invalid resource."""
    where = f"Bundle.entry[{index}]"
    request = entry.get("request")
    if not isinstance(request, dict) or request.get("method") not in METHODS or not request.get("url"):
        raise BadRequest(f"{where}.request needs a method ({', '.join(METHODS)}) and a url", expression=[f"{where}.request"])
    method, url = request["method"], _relative(str(request["url"]), base)
    path, _, query = url.partition("?")
    segments = path.split("/")
    resource_type = segments[0]
    if resource_type not in supported_types():
        raise UnknownResourceType(f"{where}.request.url: resource type {resource_type!r} is not supported", expression=[f"{where}.request.url"])
    if method != "GET" and resource_type in SERVER_RECORDED_TYPES:
        raise ReadOnlyType(f"{where}.request.url: {resource_type} is recorded by the server and cannot be written", expression=[f"{where}.request.url"])
    resource = entry.get("resource")
    if method in ("POST", "PUT"):
        if not isinstance(resource, dict):
            raise BadRequest(f"{where} has no resource to {method}", expression=[f"{where}.resource"])
        if resource.get("resourceType") != resource_type:
            raise BadRequest(f"{where}.resource is a {resource.get('resourceType')!r}, the url names {resource_type!r}", expression=[f"{where}.resource.resourceType"])
        if method == "PUT" and not query and (len(segments) != 2 or resource.get("id") != segments[1]):
            raise BadRequest(f"{where}.resource.id must match the id in {url!r}", expression=[f"{where}.resource.id"])
        validate_resource(resource, resource_type, path=f"{where}.resource", in_transaction=True)
    return BundleEntryRequest(
        method=method,
        url=url,
        resource=resource if method in ("POST", "PUT") else None,
        full_url=entry.get("fullUrl"),
        if_none_exist=request.get("ifNoneExist"),
        if_match=request.get("ifMatch"),
    )


def entry_response(result: WriteOutcome | Version | SearchResult | None, request: BundleEntryRequest, base: str, representation: bool) -> dict:
    """The response entry for one processed request entry."""
    if isinstance(result, WriteOutcome):
        return bundles.write_entry_response(result, representation=representation)
    if request.method == "DELETE":
        response: dict = {"status": _status_line(204)}
        if isinstance(result, Version):
            response["etag"] = etag(result.version_id)
        return {"response": response}
    if isinstance(result, Version):
        return {
            "resource": result.resource,
            "response": {"status": _status_line(200), "etag": etag(result.version_id), "lastModified": result.last_updated.isoformat()},
        }
    if isinstance(result, SearchResult):
        self_link = [{"relation": "self", "url": f"{base}/{request.url}"}]
        searched = SearchQuery(resource_type=request.url.partition("?")[0])
        return {"resource": bundles.searchset(result, searched, base, self_link), "response": {"status": _status_line(200)}}
    return {"response": {"status": _status_line(200)}}


def _failed_entry(error: Exception) -> dict:
    status = http_status(error)
    if status >= 500:
        log.exception("batch entry failed")
    return {"response": {"status": _status_line(status), "outcome": error_outcome(error)}}


def process(bundle: dict, *, base: str, representation: bool = True) -> dict:
    """Apply a transaction atomically, or a batch entry by entry; the response Bundle lists entries in request order."""
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") not in ("transaction", "batch"):
        raise BadRequest("POST to the base URL takes a Bundle of type transaction or batch", expression=["Bundle.type"])
    entries = bundle.get("entry") or []
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise BadRequest("Bundle.entry must be a list of entries", expression=["Bundle.entry"])
    if bundle["type"] == "transaction":
        requests = [entry_request(entry, index, base) for index, entry in enumerate(entries)]
        results = repository().transaction(requests) if requests else []
        response_entries = [entry_response(result, request, base, representation) for result, request in zip(results, requests)]
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": response_entries}
    response_entries = []
    for index, entry in enumerate(entries):
        # bundle.html#transaction: batch entries succeed or fail on their own.
        try:
            request = entry_request(entry, index, base)
            result = repository().transaction([request])[0]
            response_entries.append(entry_response(result, request, base, representation))
        except Exception as error:  # noqa: BLE001 - each failure becomes that entry's outcome
            response_entries.append(_failed_entry(error))
    return {"resourceType": "Bundle", "type": "batch-response", "entry": response_entries}
