"""Validation with the fhir.resources R4B pydantic models, errors located as FHIRPath-like expressions.

R4B (4.3.0) is R4 with a few resources reworked; data/r4-r4b-differences.json lists what differs for the
resources (generated from the R4 definitions and these models). How the difference is handled:
- element names, minimum cardinality and primitive formats are judged by the R4 walk (conformance.structure),
  so the models' `extra_forbidden`, `missing` and `string_pattern_mismatch` errors are not reported (Evidence,
  EvidenceVariable, and the R4B-only `subjectCanonical` of ActivityDefinition/PlanDefinition differ; the models
  treat U+00A0 as whitespace in code/string patterns where the R4 regexes do not);
- R4 resource types without an R4B model (MedicinalProduct*, EffectEvidenceSynthesis, RiskEvidenceSynthesis,
  Substance{NucleicAcid,Polymer,Protein,ReferenceInformation,SourceMaterial,Specification}) are checked by the
  R4 walk alone;
- Bundle entries are validated one resource at a time, so one bad or unknown entry does not hide the others.
"""
from __future__ import annotations

from functools import cache
from typing import Any

from conformance.outcome import Issue

# Judged against the R4 definitions instead (see module docstring). string_pattern_mismatch: the models apply the
# primitive regexes with Unicode \s (U+00A0 counts as whitespace), the R4 regexes are XML Schema/Java ones.
_R4_AUTHORITATIVE = frozenset({"extra_forbidden", "missing", "string_pattern_mismatch"})
_NOT_PATH = frozenset({"root", "__root__", "resource_type"})


@cache
def model_class(resource_type: str) -> Any | None:
    """The fhir.resources R4B model of `resource_type`, imported on first use; None when R4B has no such type."""
    from fhir.resources.R4B import get_fhir_model_class  # heavy: ~0.2 s, only when validating

    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        return None


def model_issues(resource: dict[str, Any], expression: str) -> list[Issue]:
    """Issues the R4B model of `resource` raises, located under `expression` (Bundle entries checked one by one)."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return []
    entries = resource.get("entry") if resource_type == "Bundle" else None
    if isinstance(entries, list):
        shell = dict(resource)
        shell["entry"] = [_without_resource(entry) for entry in entries]
        issues = _validate(shell, resource_type, expression)
        for index, entry in enumerate(entries):
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                issues += model_issues(entry["resource"], f"{expression}.entry[{index}].resource")
        return issues
    return _validate(resource, resource_type, expression)


def _without_resource(entry: Any) -> Any:
    if isinstance(entry, dict) and "resource" in entry:
        return {key: value for key, value in entry.items() if key != "resource"}
    return entry


def _validate(resource: dict[str, Any], resource_type: str, expression: str) -> list[Issue]:
    from pydantic import ValidationError

    model = model_class(resource_type)
    if model is None:
        return []
    try:
        model.model_validate(resource)
    except ValidationError as error:
        return [Issue("error", "structure" if problem["type"].endswith("_type") else "value",
                      location_expression(expression, problem["loc"]), _message(problem), "fhir.resources")
                for problem in error.errors(include_url=False, include_input=False)
                if problem["type"] not in _R4_AUTHORITATIVE]
    except (KeyError, ValueError, TypeError) as error:
        # e.g. a contained resource of a type R4B does not know: the R4 walk names it precisely.
        return [Issue("error", "structure", expression, f"R4B model rejected the resource: {error}", "fhir.resources")]
    return []


def location_expression(expression: str, location: tuple[int | str, ...]) -> str:
    """FHIRPath-like expression of a pydantic error location: ('name', 0, 'given') -> Patient.name[0].given."""
    parts = [expression]
    for part in location:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part in _NOT_PATH or part.startswith("function-"):
            continue
        else:
            parts.append("." + (part[1:] if part.startswith("_") else part))
    return "".join(parts)


def _message(problem: dict[str, Any]) -> str:
    text = str(problem["msg"])
    return text.removeprefix("Value error, ")
