"""`pulsebridge validate` (DESIGN.md contract): OperationOutcome per resource, file:line on failures, exit 0/1/2."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "fhir-examples"


def _outcomes(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_valid_files_exit_0_with_one_outcome_each():
    result = CliRunner().invoke(main, ["validate", str(EXAMPLES / "Patient-example.json"),
                                       str(EXAMPLES / "Bundle-bundle-transaction.json")])
    assert result.exit_code == 0, result.output
    outcomes = _outcomes(result.stdout)
    assert [o["issue"][0]["severity"] for o in outcomes] == ["information", "information"]


def test_ndjson_names_file_and_line_of_each_failure(tmp_path):
    path = tmp_path / "resources.ndjson"
    path.write_text('{"resourceType":"Patient","id":"a"}\n\n{"resourceType":"Patient","gender":"F"}\n'
                    '{"resourceType":"Patient",\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    outcomes = _outcomes(result.stdout)
    assert len(outcomes) == 3
    assert outcomes[1]["issue"][0]["expression"] == ["Patient.gender"]
    assert outcomes[2]["issue"][0]["severity"] == "fatal"
    assert f"{path}:3: Patient.gender:" in result.stderr
    assert f"{path}:4:" in result.stderr and "invalid JSON" in result.stderr


def test_bad_json_in_a_single_document_gives_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "resourceType": "Patient",\n  "id": x\n}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{path}:3:9: invalid JSON")


def test_stdin_summary_and_strict_references():
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b1d4a0e-6f5b-4a53-9f1a-3d1b7a1c1f00",
         "resource": {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": "Patient/absent"}},
         "request": {"method": "PUT", "url": "Observation/o"}}]}
    text = json.dumps(bundle)
    lenient = CliRunner().invoke(main, ["validate", "--summary", "-"], input=text)
    assert lenient.exit_code == 0 and "valid, 1 warning(s)" in lenient.stdout
    strict = CliRunner().invoke(main, ["validate", "--summary", "--strict-references", "-"], input=text)
    assert strict.exit_code == 1
    assert "<stdin>:1 Bundle: 1 error(s)" in strict.stdout
    assert "Bundle.entry[0].resource.subject.reference" in strict.stdout
    assert strict.stdout.rstrip().endswith("1 checked, 0 valid, 1 with errors")


def test_usage_errors_exit_2(tmp_path):
    assert CliRunner().invoke(main, ["validate"]).exit_code == 2
    assert CliRunner().invoke(main, ["validate", str(tmp_path / "missing.json")]).exit_code == 2


def test_installed_console_script(tmp_path):
    script = shutil.which("pulsebridge", path=str(Path(sys.executable).parent))
    assert script, "the pulsebridge console script is installed with the package (pip install -e .)"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"resourceType": "Observation", "status": "done", "code": {"text": "x"}}))
    completed = subprocess.run([script, "validate", str(EXAMPLES / "Observation-example.json"), str(path)],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 1
    outcomes = _outcomes(completed.stdout)
    assert outcomes[0]["issue"][0]["severity"] == "information"
    assert outcomes[1]["issue"][0]["expression"] == ["Observation.status"]
    assert f"{path}:1: Observation.status:" in completed.stderr
