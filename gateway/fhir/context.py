"""Per-request context of the FHIR API: the app's repository, the base URL the client called, Prefer (FHIR R4 http.html#root, http.html#ops)."""
from __future__ import annotations

from flask import current_app, g, request

from adapters.storage.base import Repository
from gateway.fhir.capability import SERVER_RECORDED_TYPES, supported_types
from gateway.fhir.outcome import ReadOnlyType, UnknownResourceType
from gateway.settings import current_settings

REPOSITORY_KEY = "pulsebridge.repository"  # the store as FHIR handlers see it (confined per caller when auth is on)
STORE_KEY = "pulsebridge.store"  # the store itself: ingest and the audit trail write through it, never confined


def repository() -> Repository:
    return current_app.extensions[REPOSITORY_KEY]


def fhir_base() -> str:
    """The service base URL on the host and scheme the client used (http.html#root); computed once per request."""
    base = g.get("fhir_base")
    if base is None:
        base = g.fhir_base = request.host_url + "fhir"
    return base


def require_type(resource_type: str) -> None:
    """404 for a resource type this server does not serve (http.html#read)."""
    if resource_type not in supported_types():
        raise UnknownResourceType(f"Resource type {resource_type!r} is not supported by this server")


def require_writable(resource_type: str) -> None:
    """404 for an unknown type, 405 for a type only the server records (the audit trail is append-only)."""
    require_type(resource_type)
    if resource_type in SERVER_RECORDED_TYPES:
        raise ReadOnlyType(f"{resource_type} is recorded by the server and cannot be created, changed or deleted through the API")


def _preference(name: str) -> str | None:
    """One preference of the Prefer header (RFC 7240), e.g. return=minimal."""
    for token in request.headers.get("Prefer", "").replace(",", ";").split(";"):
        key, _, value = token.strip().partition("=")
        if key.strip() == name:
            return value.strip().strip('"')
    return None


def prefer_return() -> str:
    """minimal, representation (the default) or OperationOutcome (http.html#ops)."""
    wanted = _preference("return")
    return wanted if wanted in ("minimal", "representation", "OperationOutcome") else "representation"


def prefer_handling() -> str:
    """strict (the default here) or lenient about unknown search parameters (search.html#errors)."""
    return "lenient" if _preference("handling") == "lenient" else "strict"


def page_size_limits() -> tuple[int, int]:
    """Default and maximum _count (settings PULSEBRIDGE_PAGE_SIZE, PULSEBRIDGE_MAX_PAGE_SIZE)."""
    settings = current_settings()
    return settings.page_size, settings.max_page_size
