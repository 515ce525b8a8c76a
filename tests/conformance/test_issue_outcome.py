"""conformance.outcome: Issue and its OperationOutcome form."""
from __future__ import annotations

from conformance.outcome import Issue, has_errors, to_operation_outcome


def test_invariant_key_prefixes_diagnostics_and_expression_is_a_list():
    outcome = to_operation_outcome([Issue("error", "invariant", "Observation", "dataAbsentReason ...", "obs-6"),
                                    Issue("warning", "code-invalid", "", "check name not shown", "binding")])
    assert outcome["issue"] == [
        {"severity": "error", "code": "invariant", "diagnostics": "obs-6: dataAbsentReason ...",
         "expression": ["Observation"]},
        {"severity": "warning", "code": "code-invalid", "diagnostics": "check name not shown"}]


def test_has_errors():
    assert has_errors([Issue("fatal", "structure", "", "bad JSON")])
    assert not has_errors([Issue("warning", "not-found", "Bundle.entry[0]", "unresolved")])
