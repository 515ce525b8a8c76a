"""The FHIR REST route table, in one place; the CapabilityStatement is generated from it (FHIR R4 http.html#summary)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from flask import Blueprint, request

from gateway.fhir import interactions as on
from gateway.fhir import operations as op
from gateway.fhir.representation import check_acceptable


@dataclass(frozen=True)
class Operation:
    """A named operation on one resource type and its OperationDefinition (CapabilityStatement.rest.resource.operation)."""

    name: str
    resource_type: str
    definition: str


@dataclass(frozen=True)
class Route:
    """One URL pattern and method, the handler, and the R4 interaction code(s) it implements (valueset-type-restful-interaction)."""

    rule: str
    method: str
    handler: Callable
    interactions: tuple[str, ...]
    level: str  # "instance", "type" or "system"
    conditional: bool = False  # If-None-Exist on create, search criteria on update, If-None-Match on read
    operation: Operation | None = None

    @property
    def endpoint(self) -> str:
        """The Flask endpoint name of this route inside the `fhir` blueprint."""
        return f"{self.handler.__name__}_{self.method.lower()}"


ROUTES: tuple[Route, ...] = (
    Route("/metadata", "GET", on.capabilities, (), "system"),
    Route("/", "POST", on.transaction_or_batch, ("transaction", "batch"), "system"),
    Route("/_history", "GET", on.history_system, ("history-system",), "system"),
    Route("/<resource_type>", "GET", on.search_type, ("search-type",), "type"),
    Route("/<resource_type>/_search", "POST", on.search_type_post, ("search-type",), "type"),
    Route("/<resource_type>", "POST", on.create, ("create",), "type", conditional=True),
    Route("/<resource_type>", "PUT", on.conditional_update, ("update",), "type", conditional=True),
    Route("/<resource_type>/_history", "GET", on.history_type, ("history-type",), "type"),
    Route("/<resource_type>/<resource_id>", "GET", on.read, ("read",), "instance", conditional=True),
    Route("/<resource_type>/<resource_id>", "PUT", on.update, ("update",), "instance"),
    Route("/<resource_type>/<resource_id>", "DELETE", on.delete, ("delete",), "instance"),
    Route("/<resource_type>/<resource_id>/_history", "GET", on.history_instance, ("history-instance",), "instance"),
    Route("/<resource_type>/<resource_id>/_history/<version_id>", "GET", on.vread, ("vread",), "instance"),
    Route("/Patient/<resource_id>/$everything", "GET", op.patient_everything, (), "instance",
          operation=Operation("everything", "Patient", op.EVERYTHING_DEFINITION)),
    Route("/Encounter/<resource_id>/$summary", "GET", op.encounter_summary, (), "instance",
          operation=Operation("summary", "Encounter", op.ENCOUNTER_SUMMARY_DEFINITION)),
    Route("/Patient/<resource_id>/$summary", "GET", op.patient_summary, (), "instance",
          operation=Operation("summary", "Patient", op.PATIENT_SUMMARY_DEFINITION)),
)


def blueprint(routes: tuple[Route, ...] = ROUTES) -> Blueprint:
    """A blueprint serving `routes` under /fhir; every request is first checked to ask for JSON."""
    fhir = Blueprint("fhir", __name__, url_prefix="/fhir")
    fhir.before_request(lambda: check_acceptable(request))
    for route in routes:
        fhir.add_url_rule(route.rule, endpoint=route.endpoint, view_func=route.handler, methods=[route.method], strict_slashes=False)
    return fhir

