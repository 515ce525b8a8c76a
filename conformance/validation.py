"""FHIR R4 resource and Bundle validation: structure against the R4 definitions, fhir.resources R4B models,
empty elements, required bindings, invariants, narrative, and reference resolution (FHIR R4 validation.html).

    issues = validate_bundle(bundle, strict_references=True)
    outcome = to_operation_outcome(issues)
"""
from __future__ import annotations

from typing import Any

from conformance.bundle_rules import bundle_issues
from conformance.invariants import dom_3_issues, invariant_issues
from conformance.outcome import Issue, has_errors, to_operation_outcome
from conformance.r4b_models import model_issues
from conformance.references import reference_issues
from conformance.structure import walk_resource

__all__ = ["Issue", "has_errors", "to_operation_outcome", "validate_resource", "validate_bundle"]

_SEVERITY_ORDER = {"fatal": 0, "error": 1, "warning": 2, "information": 3}


def validate_resource(resource: Any, *, strict_references: bool = False, models: bool = True) -> list[Issue]:
    """All issues of one FHIR R4 resource (a Bundle too, entries included), errors first.

    strict_references: in transaction/document/collection Bundles, a reference that resolves to no entry is an
    error instead of a warning. models: also validate with the fhir.resources R4B models (the slower part).
    """
    walk = walk_resource(resource)
    issues = list(walk.issues)
    found_references, local_references = reference_issues(walk, strict=strict_references)
    issues += found_references
    issues += invariant_issues(walk)
    issues += dom_3_issues(walk, local_references)
    issues += bundle_issues(walk)
    if models and isinstance(resource, dict) and walk.resources:
        located = {issue.expression for issue in issues if issue.is_error}
        # The R4 walk names most problems already; keep the model's findings about elements it did not flag.
        issues += [issue for issue in model_issues(resource, walk.resources[0].expression)
                   if not _related_to_flagged(issue.expression, located)]
    return sorted(_unique(issues), key=lambda issue: _SEVERITY_ORDER[issue.severity])


def validate_bundle(bundle: Any, *, strict_references: bool = False, models: bool = True) -> list[Issue]:
    """validate_resource for a Bundle; a non-Bundle is itself an error (Bundle.entry references are resolved)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        found = bundle.get("resourceType") if isinstance(bundle, dict) else type(bundle).__name__
        return [Issue("error", "structure", "Bundle", f"Expected a Bundle, found {found!r}")]
    return validate_resource(bundle, strict_references=strict_references, models=models)


def _related_to_flagged(expression: str, located: set[str]) -> bool:
    """True when `expression`, an ancestor or a descendant already has an error (one report per broken subtree)."""
    if expression in located or any(flagged.startswith((expression + ".", expression + "[")) for flagged in located):
        return True
    cut = len(expression)
    while True:
        cut = max(expression.rfind(".", 0, cut), expression.rfind("[", 0, cut))
        if cut <= 0:
            return False
        if expression[:cut] in located:
            return True


def _unique(issues: list[Issue]) -> list[Issue]:
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for issue in issues:
        key = (issue.severity, issue.expression, issue.diagnostics)
        if key not in seen:
            seen.add(key)
            unique.append(issue)
    return unique
