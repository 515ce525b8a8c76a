"""Every corpus message converts and validates; golden Bundles per structure stay as reviewed.

Corpus: ../shared/corpus/ms-fhir-converter/hl7v2 (139 messages, MIT). Golden files:
tests/data/golden/<STRUCTURE>/<name>.hl7 with <name>.expected.json, written for this project
and checked row by row against the IG sheets (PID/PV1/NK1/AL1/DG1/MSH/EVN/MRG for ADT,
ORC/OBR/OBX/NTE/SPM for ORU), not copied from another converter.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.hl7v2.batch import split_messages
from mapper_helpers import validation_errors
from mappers import convert

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "ms-fhir-converter" / "hl7v2"
GOLDEN = ROOT / "tests" / "data" / "golden"
CORPUS_FILES = sorted(CORPUS.glob("*.hl7")) if CORPUS.is_dir() else []


@pytest.mark.skipif(not CORPUS_FILES, reason=f"corpus not found at {CORPUS}")
def test_every_corpus_message_converts_to_a_valid_bundle() -> None:
    problems: list[str] = []
    count = 0
    for path in CORPUS_FILES:
        for chunk in split_messages(path.read_bytes()):
            count += 1
            bundle, _ = convert(chunk.payload)
            assert bundle["type"] == "transaction" and bundle["entry"]
            ids = [e["fullUrl"] for e in bundle["entry"]]
            assert len(ids) == len(set(ids)), f"{path.name}: duplicate entries"
            problems += [f"{path.name}: {p}" for p in validation_errors(bundle)]
    assert count == 139
    assert problems == []


GOLDEN_CASES = sorted(GOLDEN.glob("*/*.hl7"))


@pytest.mark.parametrize("message", GOLDEN_CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden_bundle(message: Path) -> None:
    expected = json.loads(message.with_suffix(".expected.json").read_text("utf-8"))
    bundle, _ = convert(message.read_bytes())
    assert bundle == expected
    assert validation_errors(bundle) == []


def test_golden_files_cover_the_families_built_here() -> None:
    assert {p.parent.name for p in GOLDEN_CASES} >= {"ADT_A01", "ADT_A40", "ORU_R01"}
