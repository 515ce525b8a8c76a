"""conformance/data/build_r4_definitions.py and the digests it generated from the R4 core package."""
from __future__ import annotations

import importlib.util
import io
import json
import tarfile
from pathlib import Path

from conformance.definitions import DATA, primitive_patterns, required_binding, resource_types, type_definition


def _generator():
    spec = importlib.util.spec_from_file_location("build_r4_definitions", DATA / "build_r4_definitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tgz(path: Path, resources: list[dict]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for resource in resources:
            data = json.dumps(resource).encode()
            info = tarfile.TarInfo(f"package/{resource['resourceType']}-{resource['id']}.json")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_generator_reads_definitions_value_sets_and_code_systems(tmp_path):
    structure = {"resourceType": "StructureDefinition", "id": "Thing", "url": "http://x/Thing", "kind": "resource",
                 "type": "Thing", "derivation": "specialization", "abstract": False,
                 "baseDefinition": "http://hl7.org/fhir/StructureDefinition/DomainResource",
                 "snapshot": {"element": [
                     {"path": "Thing", "min": 0, "max": "*"},
                     {"path": "Thing.id", "min": 0, "max": "1", "type": [{"code": "http://hl7.org/fhirpath/System.String"}]},
                     {"path": "Thing.status", "min": 1, "max": "1", "type": [{"code": "code"}],
                      "binding": {"strength": "required", "valueSet": "http://x/vs|4.0.1"},
                      "constraint": [{"key": "thg-1", "severity": "error", "human": "Be good", "expression": "true"}]},
                     {"path": "Thing.value[x]", "min": 0, "max": "1", "type": [{"code": "string"}, {"code": "Reference",
                      "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Patient"]}]},
                     {"path": "Thing.part", "min": 0, "max": "*", "type": [{"code": "BackboneElement"}]},
                     {"path": "Thing.part.part", "min": 0, "max": "*", "contentReference": "#Thing.part"},
                 ]}}
    value_set = {"resourceType": "ValueSet", "id": "vs", "url": "http://x/vs", "compose": {"include": [
        {"system": "http://x/cs", "filter": [{"property": "concept", "op": "is-a", "value": "done"}]}]}}
    code_system = {"resourceType": "CodeSystem", "id": "cs", "url": "http://x/cs", "content": "complete",
                   "concept": [{"code": "open"}, {"code": "done", "concept": [{"code": "done-well"}]}]}
    generator = _generator()
    generator.main(_tgz(tmp_path / "core.tgz", [structure, value_set, code_system]), tmp_path)
    types = json.loads((tmp_path / "r4-structure.json").read_text())["types"]
    assert types["Thing"]["elements"]["id"]["type"] == ["id"]
    assert types["Thing"]["elements"]["value"] == {"min": 0, "max": "1", "type": ["string", "Reference"],
                                                   "targets": ["Patient"], "choice": True}
    assert types["Thing"]["elements"]["part"]["type"] == ["Thing.part"]
    assert types["Thing.part"]["elements"]["part"]["type"] == ["Thing.part"]
    bindings = json.loads((tmp_path / "r4-required-bindings.json").read_text())
    assert bindings["bindings"] == {"Thing.status": "http://x/vs"}
    assert bindings["valueSets"]["http://x/vs"] == {"http://x/cs": ["done", "done-well"]}
    invariants = json.loads((tmp_path / "r4-invariants.json").read_text())["invariants"]
    assert invariants["thg-1"]["human"] == "Be good"


def test_shipped_digests_cover_r4():
    assert len(resource_types()) == 146 and "Patient" in resource_types() and "SubscriptionStatus" not in resource_types()
    assert type_definition("Bundle.entry.request").elements["method"].min == 1
    assert type_definition("Observation").elements["valueQuantity"].type_code == "Quantity"
    assert primitive_patterns()["instant"].match("2024-05-01T08:30:00+08:00")
    assert required_binding("Observation.code") is None  # example binding, not required
    assert json.loads((DATA / "r4-structure.json").read_text())["_licence"].startswith("Derived from HL7 FHIR R4")
