"""conformance.validation: valid resources pass; every kind of problem is reported once, at its element."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from conformance.outcome import to_operation_outcome
from conformance.validation import has_errors, validate_bundle, validate_resource

EXAMPLES = sorted(p.name for p in (Path(__file__).resolve().parent.parent / "data" / "fhir-examples").glob("*.json"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_official_r4_examples_are_valid(example, name):
    issues = validate_resource(example(name), strict_references=True)
    assert [issue for issue in issues if issue.is_error] == []


def test_mapper_shaped_transaction_bundle_is_valid_when_strict(bundle):
    assert validate_bundle(bundle, strict_references=True) == []


def test_errors_come_first_and_name_the_element(bundle):
    patient = bundle["entry"][0]["resource"]
    patient["name"][0]["family"] = ""
    patient["gender"] = "F"
    bundle["entry"][5]["resource"]["subject"] = {"reference": "Patient/elsewhere"}
    issues = validate_bundle(bundle)
    by_expression = {issue.expression: issue for issue in issues}
    assert by_expression["Bundle.entry[0].resource.name[0].family"].code == "value"
    assert by_expression["Bundle.entry[0].resource.gender"].code == "code-invalid"
    assert by_expression["Bundle.entry[5].resource.subject.reference"].severity == "warning"
    assert [issue.severity for issue in issues] == sorted((i.severity for i in issues), key=["error", "warning"].index)
    assert has_errors(issues)


def test_one_problem_is_reported_once_even_if_both_r4_walk_and_model_see_it():
    issues = validate_resource({"resourceType": "Patient", "birthDate": "2020-13-01"})
    assert [issue.expression for issue in issues] == ["Patient.birthDate"]


def test_a_choice_conflict_is_reported_once():
    # Found by the R4 walk at the element and by the R4B model at its parent: one issue.
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "bp"},
                   "component": [{"code": {"text": "x"}, "valueString": "a", "valueInteger": 1}]}
    issues = validate_resource(observation)
    assert {issue.expression for issue in issues} == {"Observation.component[0].valueInteger"}


def test_validate_bundle_refuses_a_non_bundle():
    issues = validate_bundle({"resourceType": "Patient", "id": "p"})
    assert [(issue.code, issue.expression) for issue in issues] == [("structure", "Bundle")]


def test_not_a_json_object():
    issues = validate_resource(["not", "a", "resource"])
    assert [issue.code for issue in issues] == ["structure"]


def test_without_models_the_r4_checks_still_run():
    issues = validate_resource({"resourceType": "Patient", "gender": "F"}, models=False)
    assert [issue.expression for issue in issues] == ["Patient.gender"]


def test_operation_outcome_of_issues_and_of_none(bundle):
    broken = copy.deepcopy(bundle)
    broken["entry"][1]["resource"]["name"] = ""
    outcome = to_operation_outcome(validate_bundle(broken))
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["Bundle.entry[1].resource.name"]
    assert outcome["issue"][0]["severity"] == "error"
    assert validate_resource(outcome) == []
    assert to_operation_outcome([])["issue"][0]["severity"] == "information"
