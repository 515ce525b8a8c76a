"""`pulsebridge convert` (DESIGN.md contract): NDJSON out, failures on stderr, exit 0/1/2."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main

GOOD = "MSH|^~\\&|HIS|GHH|GW|PB|20240305143000+0800||ADT^A01^ADT_A01|OK1|P|2.5.1\rPID|1||1^^^GHH^MR||Doe^John\r"
BAD = "MSH|^~\\&|HIS|GHH|GW|PB|20240305143000+0800||ADT^A01^ADT_A01|BAD1|P|2.5.1\rPID|1||2^^^GHH^MR||Doe^Jane||20230230\r"


def test_convert_writes_one_bundle_per_line_and_reports_failures(tmp_path: Path) -> None:
    path = tmp_path / "two.hl7"
    path.write_text(GOOD + BAD + GOOD.replace("OK1", "OK2"))
    result = CliRunner().invoke(main, ["convert", str(path)])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2 and all(b["resourceType"] == "Bundle" and b["type"] == "transaction" for b in lines)
    assert f"{path}: message 2 (control id BAD1), at PID-7" in result.stderr


def test_convert_stdin_pretty_and_unmapped_report(tmp_path: Path) -> None:
    report = tmp_path / "unmapped.ndjson"
    result = CliRunner().invoke(main, ["convert", "--pretty", "--unmapped", str(report), "-"], input=GOOD)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["resourceType"] == "Bundle"
    item = json.loads(report.read_text().splitlines()[0])
    assert item["control_id"] == "OK1" and any(u["element"] == "PID-1" for u in item["unmapped"])


def test_convert_usage_error_exits_2() -> None:
    assert CliRunner().invoke(main, ["convert", "--no-such-option"]).exit_code == 2


def test_the_cli_runs_with_the_gateway_collector_thresholds() -> None:
    """A real process: `pulsebridge convert` converts with GC_THRESHOLDS (gateway/runtime.py), not CPython's 700."""
    import subprocess
    import sys

    from gateway.runtime import GC_THRESHOLDS

    probe = ("import atexit, gc, sys; from gateway.cli import main\n"
             "atexit.register(lambda: sys.stderr.write(repr(gc.get_threshold())))\n"
             "main(['convert', '-'])")
    result = subprocess.run([sys.executable, "-c", probe], input=GOOD.encode(), capture_output=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.decode().endswith(repr(GC_THRESHOLDS))
