"""Full R4 validation of inbound writes at the API edge (FHIR R4 http.html#create, #update: 422; validation.html).

Every resource written through the REST API (create, update, transaction and batch entries) is
checked with conformance.validation: structure and cardinality against the R4 definitions,
required bindings, invariants, references and the fhir.resources R4B models. Errors refuse the
write with 422 and an OperationOutcome whose expressions name each element at fault; warnings
do not refuse it.
"""
from __future__ import annotations

from adapters.storage.engine import conditional_references, rewrite_references
from conformance.validation import validate_resource as conformance_issues
from gateway.fhir.outcome import InvalidResource


def _located(expression: str, resource_type: str, path: str | None) -> str:
    """`Patient.name[0]` as seen from where the resource sits, e.g. `Bundle.entry[2].resource.name[0]`."""
    if path is None or not expression.startswith(resource_type):
        return expression or path or resource_type
    rest = expression[len(resource_type):]
    return path + rest if rest[:1] in ("", ".", "[") else expression


def validate_resource(
    resource: dict, resource_type: str, *, path: str | None = None, in_transaction: bool = False
) -> None:
    """Raise InvalidResource (422) naming each element at fault when `resource` is not a valid R4 `resource_type`.

    `path` is where the resource sits, e.g. Bundle.entry[2].resource; by default its type.
    `in_transaction`: conditional references (`Patient?identifier=...`) are allowed, the
    transaction resolves them (R4 bundle.html#transaction, "conditional references").
    """
    checked = resource
    if in_transaction:
        found = conditional_references(resource)
        if found:  # validate the resolved form: `Type?query` -> a literal reference to that type
            checked = rewrite_references(resource, {ref: f"{ref.split('?', 1)[0]}/conditional" for ref in found})
    errors = [issue for issue in conformance_issues(checked, models=True) if issue.is_error]
    if not errors:
        return
    expressions = list(dict.fromkeys(_located(issue.expression, resource_type, path) for issue in errors))
    messages = "; ".join(
        f"{_located(issue.expression, resource_type, path)}: {issue.to_fhir()['diagnostics']}" for issue in errors
    )
    raise InvalidResource(f"Invalid {resource_type}: {messages}", expression=expressions)
