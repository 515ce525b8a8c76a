"""Content negotiation and JSON (de)serialisation of FHIR resources (FHIR R4 http.html#mime-type, http.html#general-parameters)."""
from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

import orjson
from flask import Request, Response
from werkzeug.exceptions import RequestEntityTooLarge

from adapters.storage.engine import etag_version
from gateway.fhir.outcome import BadRequest, NotAcceptable, UnsupportedMediaType
from gateway.request_guard import check_json_strings

FHIR_JSON = "application/fhir+json"
# R4 accepts the plain JSON type and the DSTU2-era "application/json+fhir" that older clients send.
JSON_TYPES = (FHIR_JSON, "application/json", "application/json+fhir")
FORMAT_ALIASES = {"json": FHIR_JSON, "application/fhir+json": FHIR_JSON, "application/json": FHIR_JSON, "application/json+fhir": FHIR_JSON}
# Parameters of http.html#general-parameters that shape the response, never the query.
GENERAL_PARAMETERS = frozenset({"_format", "_pretty"})
# Deepest JSON nesting accepted in a request body. Real resources stay far below it (a Bundle entry's
# contained resource's nested extensions: ~15 levels); deeper input exists only to exhaust recursive
# validators, so it is refused up front with 400 instead of failing later with a RecursionError.
MAX_JSON_DEPTH = 100


# Summary documents ($summary) also have a human view: a printable HTML page (documents.html#presentation).
HTML = "text/html"
HTML_FORMATS = frozenset({"html", HTML})
HTML_VIEW_SUFFIX = "/$summary"


def wants_html(request: Request) -> bool:
    """`_format=html` (or text/html), or an Accept header that prefers text/html to every JSON type (browsers)."""
    requested = request.args.get("_format")
    if requested is not None:
        return requested.strip().split(";")[0] in HTML_FORMATS
    accept = request.accept_mimetypes
    return bool(accept) and accept.best_match((*JSON_TYPES, HTML)) == HTML


def check_acceptable(request: Request) -> None:
    """Refuse, with 406, a `_format` or Accept header that asks for anything but JSON (or HTML, for a summary)."""
    if request.path.endswith(HTML_VIEW_SUFFIX) and wants_html(request):
        return
    requested = request.args.get("_format")
    if requested is not None:
        # A '+' in a query string decodes to a space: "application/fhir json".
        if FORMAT_ALIASES.get(requested.strip().replace(" ", "+").split(";")[0]) is None:
            raise NotAcceptable(f"_format {requested!r} is not supported; this server speaks JSON only")
        return
    accept = request.accept_mimetypes
    if accept and accept.best_match(JSON_TYPES) is None:
        raise NotAcceptable(f"Accept {request.headers.get('Accept')!r} is not supported; this server speaks JSON only")


def body_bytes(request: Request) -> bytes:
    """The raw request body; 413 when it exceeds PULSEBRIDGE_MAX_BODY_BYTES (RFC 9110 15.5.14).

    werkzeug refuses a declared Content-Length over the limit, but cuts a chunked body of unknown
    length silently at the limit: such a body that reaches the limit is refused here."""
    data = request.get_data(cache=False)
    limit = request.max_content_length
    if limit is not None and request.content_length is None and len(data) >= limit:
        raise RequestEntityTooLarge()
    return data


def read_body(request: Request) -> dict:
    """The request body as a JSON object (http.html#create); 415 other media types, 400 malformed, too deep or not an object,
    422 a control character in a string.

    Bodies over PULSEBRIDGE_MAX_BODY_BYTES are refused with 413 by werkzeug before they are read."""
    mimetype = request.mimetype
    if mimetype and mimetype not in JSON_TYPES:
        raise UnsupportedMediaType(f"Content-Type {mimetype!r} is not supported; send {FHIR_JSON}")
    data = body_bytes(request)
    if not data:
        raise BadRequest("The request has no body")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"The body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise BadRequest("The body is not a JSON object")
    if data.count(b"{") + data.count(b"[") > MAX_JSON_DEPTH and json_depth_exceeds(body, MAX_JSON_DEPTH):
        raise BadRequest(f"The body nests JSON objects and arrays more than {MAX_JSON_DEPTH} levels deep")
    check_json_strings(data, body)
    return body


def json_depth_exceeds(value: object, limit: int) -> bool:
    """True when `value` nests objects/arrays deeper than `limit` (iterative: no recursion on hostile input)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def is_pretty(request: Request) -> bool:
    return request.args.get("_pretty", "false").lower() == "true"


def fhir_response(
    body: dict | None,
    status: int = 200,
    *,
    pretty: bool = False,
    headers: dict[str, str] | None = None,
) -> Response:
    """A response with a FHIR JSON body (or none, for 204/304 and Prefer: return=minimal)."""
    if body is None:
        response = Response(status=status)
        del response.headers["Content-Type"]  # no body, no media type (not Flask's text/html default)
    else:
        option = orjson.OPT_INDENT_2 if pretty else 0
        response = Response(orjson.dumps(body, option=option), status=status, content_type=f"{FHIR_JSON}; charset=utf-8")
        response.fhir_document = body  # type: ignore[attr-defined]  # read back by sent_document
    if headers:
        response.headers.update(headers)
    return response


def sent_document(response: Response) -> dict | None:
    """The FHIR JSON document a `fhir_response` serialised, so that after-request hooks need not parse the body again."""
    return getattr(response, "fhir_document", None)


def etag(version_id: int | str) -> str:
    """Weak ETag carrying the version id (http.html#versioning)."""
    return f'W/"{version_id}"'


def parse_etag(value: str) -> int:
    """The version id in an If-Match / If-None-Match value such as W/"3"; 400 if it is not one."""
    version = etag_version(value)
    if version is None:
        raise BadRequest(f"{value!r} is not a version ETag such as W/\"1\"")
    return version


def http_date(moment: datetime) -> str:
    """RFC 7231 date for Last-Modified."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_datetime(moment.astimezone(timezone.utc), usegmt=True)
