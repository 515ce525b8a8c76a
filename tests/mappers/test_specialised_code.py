"""The code specialised for speed (issue 3) agrees with the general rule it replaces.

mappers.paths.TargetPath writes through statements generated per path (`write_lines`); a DTM of
plain digits is sliced instead of matched (mappers.primitives.Timestamp); compiled segment maps
test `valued` / `=` clauses on their own segment's fields inline (mappers.engine). Each is checked
here against the rule as SPEC.md states it, on shapes the corpus may not hold.
"""
from __future__ import annotations

import pytest

from adapters.hl7v2.errors import DataTypeError
from mappers import primitives
from mappers.paths import compile_path

_URL = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"


def test_each_step_kind_writes_and_returns_the_first_new_element_as_item() -> None:
    root: dict = {"name": [], "telecom": [{"system": "phone"}]}
    item = compile_path("contact[].telecom[].value").assign(root, "555")
    assert root["contact"] == [{"telecom": [{"value": "555"}]}] and item is root["contact"][0]
    assert compile_path("name.family").assign(root, "Wang") is None  # an empty array reached by name: one element made
    assert root["name"] == [{"family": "Wang"}]
    compile_path("telecom[=].value").assign(root, "123")
    compile_path(f"extension({_URL}).valueAddress.city").assign(root, "Beijing")
    compile_path(f"extension({_URL}).valueAddress.country").assign(root, "CN")
    assert root["telecom"] == [{"system": "phone", "value": "123"}]
    assert root["extension"] == [{"url": _URL, "valueAddress": {"city": "Beijing", "country": "CN"}}]


def test_a_leaf_keeps_its_first_value_and_objects_and_lists_merge_or_extend() -> None:
    root: dict = {}
    appended = {"system": "email"}
    assert compile_path("telecom[]").assign(root, appended) is appended
    assert compile_path("telecom[]").assign(root, [{"system": "fax"}]) is None  # a list extends, no item
    compile_path("gender").assign(root, "female")
    compile_path("gender").assign(root, "male")
    compile_path("maritalStatus").assign(root, {"text": "M"})
    compile_path("maritalStatus").assign(root, {"coding": [{"code": "M"}]})
    compile_path("link[=]").assign(root, {"type": "seealso"})
    compile_path("link[=]").assign(root, {"other": {"reference": "Patient/1"}})
    compile_path("$this").assign(root, {"active": True, "gender": "other"})
    assert root == {
        "telecom": [appended, {"system": "fax"}],
        "gender": "female",
        "maritalStatus": {"text": "M", "coding": [{"code": "M"}]},
        "link": [{"type": "seealso", "other": {"reference": "Patient/1"}}],
        "active": True,
    }


def test_write_lines_start_from_the_given_names() -> None:
    env: dict = {"merge": dict.update, "out": {}, "result": "x", "item": None}
    exec("\n".join(compile_path("a.b[].c").write_lines("out", "result", "item")), env)  # noqa: S102
    assert env["out"] == {"a": {"b": [{"c": "x"}]}} and env["item"] is env["out"]["a"]["b"][0]


@pytest.mark.parametrize("text", ["2024", "202403", "20240305", "2024030514", "202403051430", "20240305143015", " 20240305 ", "２０２４"])
def test_plain_digits_are_split_as_the_dtm_pattern_splits_them(text: str) -> None:
    """Full-width digits are not ASCII: they take the pattern itself (its \\d accepts them, as before)."""
    stamp = primitives.Timestamp(text)
    groups = primitives._DTM.match(text.strip()).groups()  # the general rule
    assert [stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second, stamp.fraction] == list(groups[:7])
    assert stamp.offset is None


@pytest.mark.parametrize("text", ["20240230", "20241305", "2024030525", "202403051460", "12345", "2024030514301"])
def test_impossible_or_odd_digits_are_refused_as_before(text: str) -> None:
    with pytest.raises(DataTypeError):
        primitives.Timestamp(text)


def test_a_condition_on_the_own_segment_is_the_same_inline_and_called(convert_er7) -> None:
    """OBX[Observation] tests `OBX-2 = ...` inline; on a message whose OBX-2 is absent, empty or `""`
    the value rows that depend on it stay out, as the called clause decides."""
    base = ("MSH|^~\\&|LAB|FAC|||20240101120000||ORU^R01|1|P|2.5", "PID|1||123^^^HOSP^MR||DOE^JOHN", "OBR|1||F1|GLU^Glucose")
    numeric, _ = convert_er7(*base, "OBX|1|NM|GLU^Glucose||5.5|mmol/L|||||F")
    for value_type in ("", '""'):
        bundle, _ = convert_er7(*base, f"OBX|1|{value_type}|GLU^Glucose||5.5|mmol/L|||||F")
        observation = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
        assert "valueQuantity" not in observation
    observation = next(e["resource"] for e in numeric["entry"] if e["resource"]["resourceType"] == "Observation")
    assert observation["valueQuantity"]["value"] == 5.5
