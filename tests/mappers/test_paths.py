"""Target path grammar (mappers.paths): [] appends, [=] reuses, (url) finds extensions, first value wins."""
from __future__ import annotations

from mappers.paths import compile_path, prune


def test_append_and_last() -> None:
    root: dict = {}
    item = compile_path("contact[].name").assign(root, {"family": "Wang"})
    compile_path("contact[=].gender").assign(root, "female")
    assert root == {"contact": [{"name": {"family": "Wang"}, "gender": "female"}]}
    assert item is root["contact"][0]


def test_extension_by_url_is_found_again() -> None:
    root: dict = {}
    url = "http://hl7.org/fhir/StructureDefinition/patient-animal"
    compile_path(f"extension({url}).extension(species).valueString").assign(root, "goat")
    compile_path(f"extension({url}).extension(breed).valueString").assign(root, "beagle")
    assert root == {"extension": [{"url": url, "extension": [{"url": "species", "valueString": "goat"}, {"url": "breed", "valueString": "beagle"}]}]}


def test_first_value_wins_and_objects_merge() -> None:
    root: dict = {}
    compile_path("status").assign(root, "finished")
    compile_path("status").assign(root, "unknown")
    compile_path("code").assign(root, {"coding": [{"code": "a"}]})
    compile_path("code.text").assign(root, "A")
    assert root == {"status": "finished", "code": {"coding": [{"code": "a"}], "text": "A"}}


def test_prune_drops_empty_elements_and_valueless_extensions() -> None:
    assert prune({"a": "", "b": [], "c": {}, "extension": [{"url": "x", "valueString": ""}], "d": [{"url": "u"}]}) == {"d": [{"url": "u"}]}
