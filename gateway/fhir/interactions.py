"""One short handler per FHIR RESTful interaction (FHIR R4 http.html); the route table lives in routes.py."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

from flask import Response, request

from adapters.storage.base import BundleEntryRequest, Gone, NotFound, Version, WriteOutcome
from adapters.storage.projection import project
from adapters.storage.query import SearchQuery, parse_search
from gateway.fhir import bundles, capability, transactions
from gateway.fhir.context import fhir_base, page_size_limits, prefer_handling, prefer_return, repository, require_type, require_writable
from gateway.fhir.outcome import BadRequest, UnsupportedMediaType, outcome
from gateway.fhir.representation import (
    GENERAL_PARAMETERS,
    etag,
    fhir_response,
    http_date,
    is_pretty,
    parse_etag,
    read_body,
)
from gateway.fhir.validation import validate_resource

# --- helpers shared by the handlers -------------------------------------------------------


def _respond(body: dict | None, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return fhir_response(body, status, pretty=is_pretty(request), headers=headers)


def _version_headers(version: Version) -> dict[str, str]:
    return {"ETag": etag(version.version_id), "Last-Modified": http_date(version.last_updated)}


def _write_response(result: WriteOutcome, status: int) -> Response:
    """Body per Prefer (http.html#ops), with Location, ETag and Last-Modified (http.html#create, http.html#update)."""
    version = result.version
    headers = _version_headers(version)
    headers["Location"] = f"{fhir_base()}/{bundles.location(version)}"
    wanted = prefer_return()
    if wanted == "minimal":
        return _respond(None, status, headers)
    if wanted == "OperationOutcome":
        verb = "Created" if result.created else ("Updated" if result.changed else "Found existing")
        message = f"{verb} {version.resource_type}/{version.id} version {version.version_id}"
        return _respond(outcome(message, severity="information", code="informational"), status, headers)
    return _respond(version.resource, status, headers)


def _incoming_resource(resource_type: str) -> dict:
    """The request body, checked to be a valid `resource_type` (400 on type mismatch, 422 when invalid)."""
    resource = read_body(request)
    if resource.get("resourceType") != resource_type:
        raise BadRequest(
            f"resourceType {resource.get('resourceType')!r} in the body does not match {resource_type!r} in the URL",
            expression=["resourceType"],
        )
    validate_resource(resource, resource_type)
    return resource


def _query(resource_type: str, pairs: list[tuple[str, str]]) -> tuple[SearchQuery, list[tuple[str, str]]]:
    """Parse search parameters; returns the query (paged) and the parameters paging links repeat."""
    default_count, max_count = page_size_limits()
    params = [(name, value) for name, value in pairs if name not in GENERAL_PARAMETERS]
    if prefer_handling() == "lenient":
        # search.html#errors: Prefer: handling=lenient asks the server to ignore parameters it does not know.
        known = capability.search_parameter_names(resource_type)
        params = [(name, value) for name, value in params if name.split(":", 1)[0].split(".", 1)[0] in known]
    query = parse_search(resource_type, params)
    paging = ("_count", bundles.OFFSET_PARAMETER)
    count = query.count if any(name == "_count" for name, _ in params) else default_count
    return replace(query, count=min(count, max_count)), [(name, value) for name, value in params if name not in paging]


def _conditional_query(resource_type: str, query_string: str) -> SearchQuery:
    """The search of If-None-Exist or of a conditional update (http.html#ccreate, http.html#cond-update)."""
    params = [(name, value) for name, value in parse_qsl(query_string, keep_blank_values=True) if name not in GENERAL_PARAMETERS]
    if not params:
        raise BadRequest("A conditional interaction needs at least one search parameter")
    return parse_search(resource_type, params)


def _criteria_in_url() -> str:
    """The query string without the general parameters (_format, _pretty)."""
    pairs = [(name, value) for name, value in request.args.items(multi=True) if name not in GENERAL_PARAMETERS]
    return urlencode(pairs)


def _not_modified(version: Version) -> bool:
    """If-None-Match / If-Modified-Since on a read (http.html#cread)."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match:
        return if_none_match.strip() == "*" or parse_etag(if_none_match) == version.version_id
    since = request.if_modified_since
    return since is not None and version.last_updated.replace(microsecond=0) <= since


def _since() -> datetime | None:
    value = request.args.get("_since")
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"_since {value!r} is not an instant such as 2024-01-31T08:00:00Z") from None
    if moment.tzinfo is None:
        raise BadRequest(f"_since {value!r} needs a timezone (R4 instant)")
    return moment


def _history(resource_type: str | None, resource_id: str | None, url: str) -> Response:
    default_count, max_count = page_size_limits()
    try:
        count = min(int(request.args.get("_count", default_count)), max_count)
        offset = int(request.args.get(bundles.OFFSET_PARAMETER, 0))
    except ValueError:
        raise BadRequest("_count and _offset must be integers") from None
    if count < 0 or offset < 0:
        raise BadRequest("_count and _offset must not be negative")
    since = _since()
    total, versions = repository().history(resource_type, resource_id, since=since, count=count, offset=offset)
    if resource_id is not None and total == 0 and since is None:
        raise NotFound(f"{resource_type}/{resource_id} is not known")
    params = [("_since", request.args["_since"])] if since else []
    links = bundles.paging_links(url, params, offset=offset, count=count, total=total, page_size=len(versions))
    return _respond(bundles.history_bundle(total, versions, fhir_base(), links))


# --- the interactions ----------------------------------------------------------------------


def capabilities() -> Response:
    """GET [base]/metadata (http.html#capabilities)."""
    return _respond(capability.capability_statement(fhir_base()))


def read(resource_type: str, resource_id: str) -> Response:
    """GET [base]/[type]/[id] (http.html#read); 304 when If-None-Match or If-Modified-Since say the client is current."""
    require_type(resource_type)
    version = repository().read(resource_type, resource_id)
    if _not_modified(version):
        return _respond(None, 304, _version_headers(version))
    elements = tuple(name.strip() for name in request.args.get("_elements", "").split(",") if name.strip())
    return _respond(project(version.resource, request.args.get("_summary"), elements), 200, _version_headers(version))


def vread(resource_type: str, resource_id: str, version_id: str) -> Response:
    """GET [base]/[type]/[id]/_history/[vid] (http.html#vread); 410 for the version that deleted it."""
    require_type(resource_type)
    if not version_id.isdigit():
        raise NotFound(f"{resource_type}/{resource_id} has no version {version_id!r}")
    version = repository().vread(resource_type, resource_id, int(version_id))
    if version.deleted:
        raise Gone(f"{resource_type}/{resource_id} version {version_id} is a deletion")
    return _respond(version.resource, 200, _version_headers(version))


def create(resource_type: str) -> Response:
    """POST [base]/[type] (http.html#create), conditional with If-None-Exist (http.html#ccreate)."""
    require_writable(resource_type)
    resource = _incoming_resource(resource_type)
    resource.pop("id", None)  # http.html#create: the server ignores an id sent on create
    # The header holds "[parameters]"; some clients send "[type]?[parameters]". fhirpy's
    # get_or_create puts the criteria in the query string of the POST instead: same meaning.
    condition = request.headers.get("If-None-Exist", "").split("?", 1)[-1] or _criteria_in_url()
    if_none_exist = _conditional_query(resource_type, condition) if condition else None
    result = repository().create(resource, if_none_exist=if_none_exist)
    return _write_response(result, 201 if result.created else 200)


def update(resource_type: str, resource_id: str) -> Response:
    """PUT [base]/[type]/[id] (http.html#update): update-as-create, If-Match for version-aware updates (412)."""
    require_writable(resource_type)
    resource = _incoming_resource(resource_type)
    if resource.get("id") != resource_id:
        raise BadRequest(f"id {resource.get('id')!r} in the body does not match {resource_id!r} in the URL", expression=[f"{resource_type}.id"])
    if_match = request.headers.get("If-Match")
    result = repository().update(resource, if_match=parse_etag(if_match) if if_match else None)
    return _write_response(result, 201 if result.created else 200)


def conditional_update(resource_type: str) -> Response:
    """PUT [base]/[type]?[search] (http.html#cond-update): 0 matches create, 1 updates it, more are 412."""
    require_writable(resource_type)
    resource = _incoming_resource(resource_type)
    criteria = _criteria_in_url()
    query = _conditional_query(resource_type, criteria)
    if "id" in resource:
        matches = repository().search(replace(query, count=2, offset=0, include=(), revinclude=())).matches
        if len(matches) == 1 and matches[0]["id"] != resource["id"]:
            raise BadRequest(f"id {resource['id']!r} in the body is not the matching {resource_type}/{matches[0]['id']}", expression=[f"{resource_type}.id"])
    # The store resolves the criteria and writes in one transaction, so concurrent updates cannot both create.
    entry = BundleEntryRequest("PUT", f"{resource_type}?{criteria}", resource, if_match=request.headers.get("If-Match"))
    result = repository().transaction([entry])[0]
    assert isinstance(result, WriteOutcome)
    return _write_response(result, 201 if result.created else 200)


def delete(resource_type: str, resource_id: str) -> Response:
    """DELETE [base]/[type]/[id] (http.html#delete): 200 with an OperationOutcome, or 204 for Prefer: return=minimal."""
    require_writable(resource_type)
    version = repository().delete(resource_type, resource_id)
    headers = {"ETag": etag(version.version_id)} if version is not None else {}
    if prefer_return() == "minimal":
        return _respond(None, 204, headers)
    message = f"Deleted {resource_type}/{resource_id}" if version is not None else f"{resource_type}/{resource_id} did not exist; nothing deleted"
    return _respond(outcome(message, severity="information", code="informational"), 200, headers)


def search_type(resource_type: str) -> Response:
    """GET [base]/[type]?[parameters] (http.html#search, search.html)."""
    require_type(resource_type)
    return _search(resource_type, list(request.args.items(multi=True)))


def search_type_post(resource_type: str) -> Response:
    """POST [base]/[type]/_search with form-encoded parameters (http.html#search)."""
    require_type(resource_type)
    if request.mimetype not in ("application/x-www-form-urlencoded", ""):
        raise UnsupportedMediaType("POST _search takes application/x-www-form-urlencoded parameters")
    return _search(resource_type, [*request.args.items(multi=True), *request.form.items(multi=True)])


def _search(resource_type: str, pairs: list[tuple[str, str]]) -> Response:
    query, link_params = _query(resource_type, pairs)
    result = repository().search(query)
    url = f"{fhir_base()}/{resource_type}"
    links = bundles.paging_links(url, link_params, offset=query.offset, count=query.count, total=result.total, page_size=len(result.matches))
    return _respond(bundles.searchset(result, query, fhir_base(), links))


def history_instance(resource_type: str, resource_id: str) -> Response:
    """GET [base]/[type]/[id]/_history (http.html#history)."""
    require_type(resource_type)
    return _history(resource_type, resource_id, f"{fhir_base()}/{resource_type}/{resource_id}/_history")


def history_type(resource_type: str) -> Response:
    """GET [base]/[type]/_history (http.html#history)."""
    require_type(resource_type)
    return _history(resource_type, None, f"{fhir_base()}/{resource_type}/_history")


def history_system() -> Response:
    """GET [base]/_history (http.html#history)."""
    return _history(None, None, f"{fhir_base()}/_history")


def transaction_or_batch() -> Response:
    """POST [base] with a transaction or batch Bundle (http.html#transaction)."""
    bundle = read_body(request)
    response = transactions.process(bundle, base=fhir_base(), representation=prefer_return() != "minimal")
    return _respond(response)
