"""The CapabilityStatement, generated from the route table and the search parameters the store indexes (FHIR R4 capabilitystatement.html)."""
from __future__ import annotations

from datetime import datetime, timezone
from functools import cache, lru_cache
from importlib.metadata import PackageNotFoundError, version

from adapters.storage import search_parameters as indexed

# Types only the server writes: clients may read and search them, never create, change or delete them.
SERVER_RECORDED_TYPES = frozenset({"AuditEvent"})
WRITE_INTERACTIONS = frozenset({"create", "update", "patch", "delete"})


@cache
def supported_types() -> frozenset[str]:
    """The resource types this server serves: those whose search parameters the store indexes."""
    return frozenset(indexed.resource_types())


# search.html#return: the parameters that shape results rather than select them.
RESULT_PARAMETERS = frozenset({"_count", "_offset", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total"})


@cache
def search_parameter_names(resource_type: str) -> frozenset[str]:
    """Every parameter name a search on this type understands."""
    return frozenset(indexed.parameters(resource_type)) | RESULT_PARAMETERS


def _software_version() -> str:
    try:
        return version("pulsebridge")
    except PackageNotFoundError:
        return "0"


def _resource(resource_type: str, routes: tuple) -> dict:
    """CapabilityStatement.rest.resource for one type."""
    levels = [route for route in routes if route.level in ("type", "instance")]
    interactions = sorted({code for route in levels for code in route.interactions})
    if resource_type in SERVER_RECORDED_TYPES:
        interactions = [code for code in interactions if code not in WRITE_INTERACTIONS]
    conditional = {code for route in levels if route.conditional for code in route.interactions}
    parameters = indexed.parameters(resource_type)
    search_param = [{"name": name, "definition": spec.url, "type": spec.type} for name, spec in sorted(parameters.items())]
    includes = [f"{resource_type}:{name}" for name, spec in sorted(parameters.items()) if spec.type == "reference"]
    revincludes = sorted(
        f"{source}:{name}"
        for source in supported_types()
        for name, spec in indexed.parameters(source).items()
        if spec.type == "reference" and resource_type in spec.targets
    )
    entry: dict = {
        "type": resource_type,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
        "interaction": [{"code": code} for code in interactions],
        "versioning": "versioned-update",
        "readHistory": "vread" in interactions,
        "updateCreate": "update" in interactions,
        "conditionalCreate": "create" in conditional,
        "conditionalRead": "full-support" if "read" in conditional else "not-supported",
        "conditionalUpdate": "update" in conditional,
        "conditionalDelete": "not-supported",
        "searchInclude": includes,
        "searchRevInclude": revincludes,
        "searchParam": search_param,
    }
    operations = [{"name": route.operation.name, "definition": route.operation.definition}
                  for route in routes if getattr(route, "operation", None) and route.operation.resource_type == resource_type]
    if operations:
        entry["operation"] = operations
    if not includes:
        del entry["searchInclude"]
    if not revincludes:
        del entry["searchRevInclude"]
    return entry


def capability_statement(base: str, routes: tuple | None = None) -> dict:
    """What this server does, per type and system-wide, and rest.security when the app checks bearer tokens."""
    from flask import has_app_context

    from gateway.security.access import authentication_configured

    return _capability_statement(base, routes, has_app_context() and authentication_configured())


@lru_cache(maxsize=8)  # keyed by the base URL, which the Host header decides
def _capability_statement(base: str, routes: tuple | None, secured: bool) -> dict:
    """What this server does, per type and system-wide; nothing is declared that routes.py does not serve."""
    if routes is None:
        from gateway.fhir.routes import ROUTES  # the route table imports the handlers, which import this module

        routes = ROUTES
    system = sorted({code for route in routes if route.level == "system" for code in route.interactions})
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "publisher": "PulseBridge",
        "kind": "instance",
        "software": {"name": "PulseBridge", "version": _software_version()},
        "implementation": {"description": "PulseBridge FHIR R4 gateway", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json", "application/json"],
        "rest": [
            {
                "mode": "server",
                "resource": [_resource(resource_type, routes) for resource_type in sorted(supported_types())],
                "interaction": [{"code": code} for code in system],
                **({"security": _security()} if secured else {}),
            }
        ],
    }


def _security() -> dict:
    """rest.security: SMART-on-FHIR bearer tokens (gateway.security.smart)."""
    from gateway.security.smart import security_element

    return security_element()
