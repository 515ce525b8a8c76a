"""One short handler per FHIR operation this server declares (FHIR R4 operations.html); routes.py lists them."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Response, request

from adapters.storage.base import Repository
from adapters.storage.dates import InvalidDate, date_range
from gateway.fhir import bundles
from gateway.fhir.capability import supported_types
from gateway.fhir.compartment import RecordFilter, linked_patient_ids, record_page
from gateway.fhir.context import fhir_base, page_size_limits, repository
from gateway.fhir.outcome import BadRequest
from gateway.fhir.representation import fhir_response, is_pretty, wants_html
from gateway.settings import current_settings

EVERYTHING_DEFINITION = "http://hl7.org/fhir/OperationDefinition/Patient-everything"
ENCOUNTER_SUMMARY_DEFINITION = "urn:pulsebridge:OperationDefinition:Encounter-summary"
PATIENT_SUMMARY_DEFINITION = "http://hl7.org/fhir/uv/ips/OperationDefinition/summary"
# The summary page loads nothing and runs nothing; the browser is told so too (CSP Level 3), in case escaping ever failed.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
                "X-Content-Type-Options": "nosniff"}


def _respond(body: dict, headers: dict[str, str] | None = None) -> Response:
    return fhir_response(body, 200, pretty=is_pretty(request), headers=headers)


def _care_date(name: str) -> str | None:
    """start/end of $everything: a FHIR date (patient-operation-everything.html, 'care dates')."""
    value = request.args.get(name)
    if value is None:
        return None
    try:
        date_range(value)
    except InvalidDate:
        raise BadRequest(f"{name} {value!r} is not a FHIR date such as 2024-01-31", expression=[name]) from None
    return value


def _since() -> datetime | None:
    value = request.args.get("_since")
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"_since {value!r} is not an instant such as 2024-01-31T08:00:00Z", expression=["_since"]) from None
    if moment.tzinfo is None:
        raise BadRequest(f"_since {value!r} needs a timezone (R4 instant)", expression=["_since"])
    return moment


def _types() -> frozenset[str] | None:
    """_type: one or more parameters, each a comma-separated list of resource types."""
    values = request.args.getlist("_type")
    if not values:
        return None
    types = frozenset(name.strip() for value in values for name in value.split(",") if name.strip())
    unknown = sorted(types - supported_types())
    if unknown:
        raise BadRequest(f"_type names resource types this server does not serve: {', '.join(unknown)}", expression=["_type"])
    return types


def _paging() -> tuple[int, int]:
    default_count, max_count = page_size_limits()
    try:
        count = int(request.args.get("_count", default_count))
        offset = int(request.args.get(bundles.OFFSET_PARAMETER, 0))
    except ValueError:
        raise BadRequest("_count and _offset must be integers") from None
    if count < 1 or offset < 0:
        raise BadRequest("_count must be at least 1 and _offset must not be negative")
    return min(count, max_count), offset


def patient_everything(resource_id: str) -> Response:
    """GET [base]/Patient/[id]/$everything (patient-operation-everything.html): the patient, every linked patient,
    their compartments and the resources those refer to, as a searchset; each page reads only what it shows
    (compartment.record_page), so `total` and the last link come with the pages that had to count everything."""
    record_filter = RecordFilter(start=_care_date("start"), end=_care_date("end"), since=_since(), types=_types())
    count, offset = _paging()
    store = repository()
    page = record_page(store, linked_patient_ids(store, resource_id), record_filter, offset, count)
    kept = [(name, value) for name in ("start", "end", "_since", "_type") for value in request.args.getlist(name)]
    url = f"{fhir_base()}/Patient/{resource_id}/$everything"
    links = bundles.paging_links(url, kept, offset=offset, count=count, total=page.total,
                                 page_size=count if page.more else 0)
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = links
    base = fhir_base()
    if page.resources:
        bundle["entry"] = [
            {"fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}", "resource": resource, "search": {"mode": "match"}}
            for resource in page.resources
        ]
    return _respond(bundle)


def _summary_response(build: Callable[[Repository, str, str, str], dict], resource_id: str) -> Response:
    """A summary document as FHIR JSON, or as its printable HTML page when `_format`/Accept ask for text/html."""
    from gateway.summary.language import negotiate
    from gateway.summary.page import document_page

    language = negotiate(request.args.get("_language"), request.headers.get("Accept-Language"),
                         current_settings().summary_language)
    document = build(repository(), resource_id, fhir_base(), language)
    headers = {"Content-Language": language, "Vary": "Accept, Accept-Language"}
    if wants_html(request):
        response = Response(document_page(document), 200, content_type="text/html; charset=utf-8")
        response.headers.update({**headers, **PAGE_HEADERS})
        return response
    return _respond(document, headers)


def encounter_summary(resource_id: str) -> Response:
    """GET [base]/Encounter/[id]/$summary: the visit summary as a FHIR document Bundle (documents.html)."""
    from gateway.summary.document import visit_summary

    return _summary_response(visit_summary, resource_id)


def patient_summary(resource_id: str) -> Response:
    """GET [base]/Patient/[id]/$summary: the International Patient Summary document (IPS OperationDefinition-summary)."""
    from gateway.summary.document import patient_summary as build

    return _summary_response(build, resource_id)
