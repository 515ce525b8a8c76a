"""Fixtures for terminology tests: the v2-to-FHIR IG tables beside the repository."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IG_DIR = ROOT.parent / "shared" / "spec" / "v2-to-fhir"

# pytest's default (prepend) import mode puts tests/ on sys.path, where tests/terminology/
# would shadow the terminology package as an empty namespace package (the editable-install
# finder runs after the path finder). The checkout root first makes the real package win.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
_loaded = sys.modules.get("terminology")
if _loaded is not None and getattr(_loaded, "__file__", None) is None:
    del sys.modules["terminology"]


@pytest.fixture(scope="session")
def ig_dir() -> Path:
    if not (IG_DIR / "mappings" / "codesystems").is_dir():
        pytest.skip(f"v2-to-FHIR IG mapping tables not found at {IG_DIR}")
    return IG_DIR
