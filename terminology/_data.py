"""Loads the committed JSON under terminology/data/ once per process (lazy, cached)."""
from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson

DATA_DIR = Path(__file__).resolve().parent / "data"


class TerminologyError(Exception):
    """Base error of the terminology package (missing data file, unknown map name)."""


class UnknownConceptMap(TerminologyError, KeyError):
    """A map name that is not one of the IG's vocabulary ConceptMaps."""


@cache
def load(name: str) -> Any:
    """Parsed content of terminology/data/<name> (read once, then shared: do not mutate)."""
    path = DATA_DIR / name
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise TerminologyError(f"terminology data file missing: {path}") from exc
