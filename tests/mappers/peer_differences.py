"""Which of a peer converter's facts fall in a deliberate-difference class (mappers/data/peer-differences.yaml).

A fact is (path, value) as ../shared/tools/fhir_facts.py counts it. The classes are data; this
module only reads them and tests one fact against them, given our own facts for the same
message (`same_instant_as_ours`) and the source message (`segments`).
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType

import yaml

from adapters.hl7v2 import parse

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "mappers" / "data" / "peer-differences.yaml"
SHARED = ROOT.parent / "shared"
TOOL = SHARED / "tools" / "fhir_facts.py"
CORPUS = SHARED / "corpus" / "ms-fhir-converter"

Fact = tuple[str, str]


@dataclass(frozen=True)
class DifferenceClass:
    """One class of peer facts we deliberately do not produce, with the IG reason."""

    name: str
    reason: str
    value: re.Pattern[str] | None = None
    path: re.Pattern[str] | None = None
    same_instant: re.Pattern[str] | None = None
    moved_to: str | None = None
    ours_differ: bool = False
    structures: re.Pattern[str] | None = None
    segments: frozenset[str] = field(default_factory=frozenset)


def fhir_facts_tool() -> ModuleType:
    """../shared/tools/fhir_facts.py, the recall measure, loaded as a module."""
    spec = importlib.util.spec_from_file_location("fhir_facts", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def corpus_pairs(family: str) -> list[tuple[Path, Path]]:
    """(message, peer bundle) pairs of the corpus for the structures of one family, paired by file stem."""
    pairs = []
    for ref in sorted((CORPUS / "expected").glob(f"{family}_*/*-expected.json")):
        message = CORPUS / "hl7v2" / (ref.name.removesuffix("-expected.json") + ".hl7")
        if message.is_file():
            pairs.append((message, ref))
    return pairs


def load_classes(path: Path = DATA) -> list[DifferenceClass]:
    """The classes of the data file, regexes compiled; a class must say why and match something."""
    doc = yaml.safe_load(path.read_text("utf-8"))
    out = []
    for raw in doc["classes"]:
        unknown = set(raw) - {"name", "reason", "value", "path", "same_instant_as_ours", "moved_to", "ours_differ", "structures", "segments"}
        if unknown or not raw.get("reason") or not ({"value", "path", "same_instant_as_ours", "moved_to", "segments"} & set(raw)):
            raise ValueError(f"{path}: class {raw.get('name')!r}: needs a reason and a matcher (unknown keys: {sorted(unknown)})")
        compile_ = lambda key: re.compile(raw[key]) if key in raw else None  # noqa: E731
        out.append(DifferenceClass(raw["name"], " ".join(raw["reason"].split()), compile_("value"), compile_("path"),
                                   compile_("same_instant_as_ours"), raw.get("moved_to"), bool(raw.get("ours_differ")),
                                   compile_("structures"), frozenset(raw.get("segments", ()))))
    return out


def _instant(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


_DTM = re.compile(r"^(\d{4})(\d\d)?(\d\d)?(\d\d)?(\d\d)?(\d\d)?(\.\d+)?([+-]\d{4})?$")


def _leaf_forms(leaf: str) -> set[str]:
    """A v2 leaf as the fact values it can become: itself, a number, a FHIR date or dateTime."""
    forms = {" ".join(leaf.split()), "urn:oid:" + leaf, "urn:uuid:" + leaf}  # HD.2/EI.3 as a URI (IG HD[uri])
    try:
        forms.add(repr(float(leaf)))
    except ValueError:
        pass
    m = _DTM.match(leaf)
    if m and m.group(2) and m.group(3):
        y, mo, d, h, mi, s, frac, off = m.groups()
        forms.add(f"{y}-{mo}-{d}")
        if h and off:
            stamp = f"{y}-{mo}-{d}T{h}:{mi or '00'}:{s or '00'}{frac or ''}{off[:3]}:{off[3:]}"
            moment = _instant(stamp)
            if moment is not None:
                forms.add("@" + moment.isoformat())
    return forms


# ROL/PRT belong to the segment before them (v2.8 3.3.1): `PR1.ROL` names a ROL of a procedure
_ATTACHED = frozenset({"ROL", "PRT"})


class MessageLeaves:
    """The leaf values of each field of one message, known by segment (`GT1`), field (`PID-27`)
    and, for ROL/PRT, the segment they follow (`PR1.ROL`), for `segments` classes."""

    def __init__(self, raw: bytes) -> None:
        message = parse(raw)
        self.by_field: dict[tuple[str, str, str], set[str]] = {}
        anchor = ""
        for seg in message.segments:
            if seg.id not in _ATTACHED:
                anchor = seg.id
            for number in range(1, len(seg.fields)):
                leaves = self.by_field.setdefault((seg.id, f"{anchor}.{seg.id}", f"{seg.id}-{number}"), set())
                for rep in seg.reps(number):
                    for component in rep.decoded():
                        for text in component:
                            if text.strip():
                                leaves |= _leaf_forms(text.strip())

    def only_in(self, value: str, names: frozenset[str]) -> bool:
        """The value is a leaf of the named segments or fields (`GT1`, `PID-27`) and of nothing else."""
        keys = {value}
        moment = _instant(value) if "T" in value else None
        if moment is not None:
            keys.add("@" + moment.isoformat())
        inside = outside = False
        for (segment, anchored, name), leaves in self.by_field.items():
            if keys & leaves:
                if segment in names or anchored in names or name in names:
                    inside = True
                else:
                    outside = True
        return inside and not outside


def classify(fact: Fact, classes: list[DifferenceClass], structure: str, ours: set[Fact], leaves: MessageLeaves) -> DifferenceClass | None:
    """The first class the peer fact falls in, or None (a fact the adjusted recall counts)."""
    path, value = fact
    for c in classes:
        if c.structures is not None and not c.structures.search(structure):
            continue
        if c.path is not None and not c.path.search(path):
            continue
        if c.value is not None and not c.value.search(value):
            continue
        if c.same_instant is not None:
            moment = _instant(value) if c.same_instant.search(value) else None
            if moment is None or not any(p == path and "T" in v and _instant(v) == moment for p, v in ours):
                continue
        if c.moved_to is not None and (c.moved_to, value) not in ours:
            continue
        if c.ours_differ and not any(p == path for p, _ in ours):
            continue
        if c.segments and not leaves.only_in(value, c.segments):
            continue
        return c
    return None
