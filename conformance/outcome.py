"""Validation issues and their OperationOutcome form (FHIR R4 operationoutcome.html), free of HTTP concerns."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Literal

Severity = Literal["fatal", "error", "warning", "information"]
# A subset of http://hl7.org/fhir/issue-type (R4 valueset-issue-type.html) used by the validator.
IssueType = Literal[
    "invalid", "structure", "required", "value", "invariant", "code-invalid",
    "not-found", "not-supported", "business-rule", "security", "processing", "informational",
]
_INVARIANT_KEY = re.compile(r"[a-z]{2,5}-\d+[a-z]?\Z")  # obs-6, ele-1, sdf-8b


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome.issue: `expression` is a FHIRPath-like location, e.g. Bundle.entry[3].resource.name[0].family."""

    severity: Severity
    code: IssueType
    expression: str
    diagnostics: str
    rule: str | None = None  # invariant key (e.g. obs-6) or check name, kept for reports

    @property
    def is_error(self) -> bool:
        return self.severity in ("fatal", "error")

    def to_fhir(self) -> dict[str, Any]:
        """The OperationOutcome.issue element (R4 OperationOutcome.issue: severity, code, diagnostics, expression)."""
        text = f"{self.rule}: {self.diagnostics}" if self.rule and _INVARIANT_KEY.match(self.rule) else self.diagnostics
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": text}
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


def has_errors(issues: Iterable[Issue]) -> bool:
    """True when any issue is fatal or an error (the resource is not valid)."""
    return any(issue.is_error for issue in issues)


def to_operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """An OperationOutcome resource for `issues`; with none it states success (issue is 1..*, R4 operationoutcome.html)."""
    entries = [issue.to_fhir() for issue in issues]
    if not entries:
        entries = [{"severity": "information", "code": "informational", "diagnostics": "No issues detected"}]
    return {"resourceType": "OperationOutcome", "issue": entries}
