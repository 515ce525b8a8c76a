"""Shared fixtures: paths to the public sample corpus and the IG tables beside the repository."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus" / "ms-fhir-converter"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not (CORPUS / "hl7v2").is_dir():
        pytest.skip(f"sample corpus not found at {CORPUS}")
    return CORPUS
