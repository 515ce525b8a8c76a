"""Content negotiation and JSON (de)serialisation of FHIR resources (FHIR R4 http.html#mime-type, http.html#general-parameters)."""
from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

import orjson
from flask import Request, Response

from gateway.fhir.outcome import BadRequest, NotAcceptable, UnsupportedMediaType

FHIR_JSON = "application/fhir+json"
# R4 accepts the plain JSON type and the DSTU2-era "application/json+fhir" that older clients send.
JSON_TYPES = (FHIR_JSON, "application/json", "application/json+fhir")
FORMAT_ALIASES = {"json": FHIR_JSON, "application/fhir+json": FHIR_JSON, "application/json": FHIR_JSON, "application/json+fhir": FHIR_JSON}
# Parameters of http.html#general-parameters that shape the response, never the query.
GENERAL_PARAMETERS = frozenset({"_format", "_pretty"})


def check_acceptable(request: Request) -> None:
    """Refuse, with 406, a `_format` or Accept header that asks for anything but JSON."""
    requested = request.args.get("_format")
    if requested is not None:
        # A '+' in a query string decodes to a space: "application/fhir json".
        if FORMAT_ALIASES.get(requested.strip().replace(" ", "+").split(";")[0]) is None:
            raise NotAcceptable(f"_format {requested!r} is not supported; this server speaks JSON only")
        return
    accept = request.accept_mimetypes
    if accept and accept.best_match(JSON_TYPES) is None:
        raise NotAcceptable(f"Accept {request.headers.get('Accept')!r} is not supported; this server speaks JSON only")


def read_body(request: Request) -> dict:
    """The request body as a JSON object; 415 for other media types, 400 for malformed JSON."""
    mimetype = request.mimetype
    if mimetype and mimetype not in JSON_TYPES:
        raise UnsupportedMediaType(f"Content-Type {mimetype!r} is not supported; send {FHIR_JSON}")
    data = request.get_data(cache=False)
    if not data:
        raise BadRequest("The request has no body")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"The body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise BadRequest("The body is not a JSON object")
    return body


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
    if headers:
        response.headers.update(headers)
    return response


def etag(version_id: int | str) -> str:
    """Weak ETag carrying the version id (http.html#versioning)."""
    return f'W/"{version_id}"'


def parse_etag(value: str) -> int:
    """The version id in an If-Match / If-None-Match value such as W/"3"; 400 if it is not one."""
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit():
        raise BadRequest(f"{value!r} is not a version ETag such as W/\"1\"")
    return int(text)


def http_date(moment: datetime) -> str:
    """RFC 7231 date for Last-Modified."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_datetime(moment.astimezone(timezone.utc), usegmt=True)
