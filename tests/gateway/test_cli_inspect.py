"""`pulsebridge inspect` (issue 2): decoded messages for people, `--json` for tools, errors on stderr."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "hl7v2"

GOOD = "MSH|^~\\&|HIS|H|GW|GW|20240101||ADT^A03|G{n}|P|2.5\rPID|1||{n}^^^H^MR||ROE^RICHARD\r"


def run(*args: str, input: bytes | None = None, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["inspect", *args], input=input, env=env)


def test_text_shows_charset_decision_header_and_named_fields() -> None:
    result = run(str(DATA / "adt_a01_gb18030.hl7"))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "adt_a01_gb18030.hl7 message 1" in out
    assert "charset:    gb18030 (MSH-18 'GB 18030-2000')" in out
    assert "version:    2.5" in out
    assert "structure:  ADT_A01" in out
    assert "control id: CN0001" in out
    lines = out.splitlines()
    assert any(line.split() == ["PID-5", "Patient", "Name:", "张三^建国^㐀"] for line in lines)
    assert any(line.startswith("PID-3(2)") and line.endswith("Patient Identifier List: MRN88^^^BJXH^MR") for line in lines)
    assert any(line.startswith("MSH-10") and line.endswith("Message Control ID: CN0001") for line in lines)
    assert not any(line.startswith("PID-2 ") for line in lines)  # empty fields are not listed


def test_text_records_the_gbk_fallback() -> None:
    result = run(str(DATA / "adt_a04_gbk_no_msh18.hl7"))
    assert result.exit_code == 0
    assert "charset:    gb18030 (no MSH-18: not UTF-8, fallback gb18030)" in result.stdout
    assert "structure:  ADT_A01 (MSH-9 ADT^A04)" in result.stdout
    assert "李四^小龙" in result.stdout


def test_text_decodes_escapes_and_names_repeated_segments() -> None:
    result = run(str(DATA / "oru_escapes_utf8.hl7"), str(DATA / "oru_custom_delimiters.hl7"))
    assert result.exit_code == 0
    out = result.stdout
    assert "Line one\\nLine two bold normalA | B ^ C & D ~ E \\ F" in out
    assert "OBX[2]-5   Observation Value: A 张 三" in out
    assert "OBX[2]-5   Observation Value: Ratio 1#2 ! sub*rep@esc" in out
    assert "MSH-2      Encoding Characters: $*@!" in out


def test_json_one_object_per_message() -> None:
    result = run("--json", str(DATA / "oru_custom_delimiters.hl7"), str(DATA / "adt_a04_gbk_no_msh18.hl7"))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert set(first) == {"charset", "version", "structure", "control_id", "segments"}
    assert (first["charset"], first["version"], first["structure"], first["control_id"]) == ("utf-8", "2.5.1", "ORU_R01", "LAB7")
    msh_id, msh = first["segments"][0]
    assert msh_id == "MSH" and msh[0] == "MSH" and msh[1] == "#" and msh[2] == "$*@!"
    assert msh[9] == [[["ORU"], ["R01"], ["ORU_R01"]]]
    pid = dict(first["segments"])["PID"]
    assert pid[3] == [[["P100"], [""], [""], ["HOSP"], ["MR"]], [["P200"], [""], [""], ["OTHER"], ["MR"]]]
    assert pid[2] == []
    obx2 = [fields for sid, fields in first["segments"] if sid == "OBX"][1]
    assert obx2[5] == [[["Ratio 1#2 ! sub*rep@esc"]]]
    second = json.loads(lines[1])
    assert second["charset"] == "gb18030"
    assert dict(second["segments"])["PID"][5] == [[["李四"], ["小龙"]]]


def test_stdin_with_several_messages_and_a_bad_one() -> None:
    data = (GOOD.format(n=1) + "\n" + "MSH|^~\\&|X\rbad segment\r" + GOOD.format(n=3)).encode()
    result = run("--json", "-", input=data)
    assert result.exit_code == 1
    assert [json.loads(line)["control_id"] for line in result.stdout.splitlines()] == ["G1", "G3"]
    assert "<stdin>: message 2" in result.stderr
    assert "error 100" in result.stderr and "segment 2" in result.stderr and "byte" in result.stderr


def test_batch_envelope_is_split(tmp_path: Path) -> None:
    path = tmp_path / "batch.hl7"
    path.write_bytes(
        ("FHS|^~\\&|HIS\rBHS|^~\\&|HIS\r" + GOOD.format(n=1) + GOOD.format(n=2) + "BTS|2\rFTS|1\r").encode()
    )
    result = run("--json", str(path))
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["control_id"] for line in result.stdout.splitlines()] == ["G1", "G2"]
    text = run(str(path))
    assert "BHS batch envelope segment" in text.stdout


def test_limits_come_from_settings(tmp_path: Path) -> None:
    path = tmp_path / "m.hl7"
    path.write_bytes(GOOD.format(n=1).encode())
    result = run(str(path), env={"PULSEBRIDGE_MAX_SEGMENTS": "1"})
    assert result.exit_code == 1
    assert "error 207" in result.stderr and "more than 1 segments" in result.stderr
    result = run(str(path), env={"PULSEBRIDGE_MAX_MESSAGE_BYTES": "10"})
    assert result.exit_code == 1 and "exceeds" in result.stderr


def test_fallback_charset_setting(tmp_path: Path) -> None:
    path = tmp_path / "latin.hl7"
    path.write_bytes("MSH|^~\\&|A|B|C|D|1||ADT^A08|L1|P|2.5\rPID|1||1||MÜLLER\r".encode("latin-1"))
    result = run("--json", str(path), env={"PULSEBRIDGE_FALLBACK_CHARSET": "latin-1"})
    assert result.exit_code == 0
    assert json.loads(result.stdout)["charset"] == "iso8859-1"
    assert dict(json.loads(result.stdout)["segments"])["PID"][5] == [[["MÜLLER"]]]


def test_empty_input_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.hl7"
    path.write_bytes(b"")
    result = run(str(path))
    assert result.exit_code == 1
    assert "no HL7 v2 message found" in result.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [
        ((), None),
        (("/nonexistent/file.hl7",), None),
        (("--bogus", "x"), None),
        ((str(DATA / "adt_a01_gb18030.hl7"),), {"PULSEBRIDGE_MAX_SEGMENTS": "many"}),
        ((str(DATA / "adt_a01_gb18030.hl7"),), {"PULSEBRIDGE_FALLBACK_CHARSET": "no-such-codec"}),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], env: dict[str, str] | None) -> None:
    result = run(*args, env=env)
    assert result.exit_code == 2
    assert result.stdout == ""


def test_corpus_through_stdin(corpus_dir: Path) -> None:
    data = b"".join(p.read_bytes().rstrip(b"\r\n") + b"\r" for p in sorted((corpus_dir / "hl7v2").iterdir()))
    result = run("--json", "-", input=data)
    assert result.exit_code == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(objects) == 139
    assert all(o["control_id"] and o["structure"] for o in objects)


def test_python_dash_m_gateway_inspect() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "inspect", "--json", str(DATA / "adt_a08_8859_1.hl7")],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["charset"] == "latin-1"
