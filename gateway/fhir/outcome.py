"""OperationOutcome building and the one place where an error becomes an HTTP status (FHIR R4 operationoutcome.html, http.html#5)."""
from __future__ import annotations

from werkzeug.exceptions import HTTPException

from adapters.storage.base import StorageError


class FhirError(Exception):
    """An error of the REST layer; carries the OperationOutcome issue code and, when known, the element at fault."""

    http_status = 400
    issue_code = "invalid"

    def __init__(self, diagnostics: str, *, expression: list[str] | None = None) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics
        self.expression = expression or []


class BadRequest(FhirError):
    """Malformed request, bad parameter, id or resourceType mismatch (http.html#update: 400)."""


class UnknownResourceType(FhirError):
    """Resource type not served here (http.html#read: 404 for an unknown type)."""

    http_status = 404
    issue_code = "not-supported"


class NotAcceptable(FhirError):
    """Accept or _format asks for a representation other than JSON (http.html#mime-type: 406)."""

    http_status = 406
    issue_code = "not-supported"


class ReadOnlyType(FhirError):
    """A write to a type the server records itself (AuditEvent: the trail is append-only, IHE BALP)."""

    http_status = 405
    issue_code = "not-supported"


class UnsupportedMediaType(FhirError):
    """The request body is not FHIR JSON (http.html#mime-type: 415)."""

    http_status = 415
    issue_code = "not-supported"


class InvalidResource(FhirError):
    """The resource does not conform to R4 (http.html#create, http.html#update: 422)."""

    http_status = 422
    issue_code = "structure"


def http_status(error: BaseException) -> int:
    """The HTTP status for any error that reaches the API; everything unknown is a 500."""
    if isinstance(error, (FhirError, StorageError)):
        return error.http_status
    if isinstance(error, HTTPException) and error.code is not None:
        return error.code
    return 500


def issue_code(error: BaseException) -> str:
    """The OperationOutcome.issue.code (R4 valueset-issue-type) for an error."""
    if isinstance(error, (FhirError, StorageError)):
        return error.issue_code
    status = http_status(error)
    return {404: "not-found", 405: "not-supported", 413: "too-costly"}.get(status, "invalid" if status < 500 else "exception")


def outcome(
    diagnostics: str, *, severity: str = "error", code: str = "processing", expression: list[str] | None = None
) -> dict:
    """A one-issue OperationOutcome."""
    issue: dict = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def error_outcome(error: BaseException) -> dict:
    """The OperationOutcome for an error; 5xx never reveal internals."""
    status = http_status(error)
    if status >= 500:
        return outcome("Internal server error", severity="fatal", code="exception")
    if isinstance(error, HTTPException) and not isinstance(error, FhirError):
        return outcome(error.description or error.name, code=issue_code(error))
    expression = getattr(error, "expression", None)
    return outcome(str(error) or type(error).__name__, code=issue_code(error), expression=expression)
