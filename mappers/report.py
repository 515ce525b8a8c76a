"""What a conversion did not map, for the auditor: populated fields no map read, codes no map knew.

Each unmapped field carries the IG checklist rows for that element (from
mappers/data/ig-checklist.json, derived from the IG's v2-to-fhir-checklist.jsonl), so an auditor
sees what the IG would do with it. Building the report costs a set difference per segment;
the IG rows are looked up only when the report is rendered (`as_dict`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from adapters.hl7v2.message import Segment

if TYPE_CHECKING:
    from mappers.engine import Context

CHECKLIST = Path(__file__).resolve().parent / "data" / "ig-checklist.json"


@cache
def ig_rows() -> dict[str, list[dict[str, str]]]:
    """IG checklist rows by v2 element, e.g. "PID-10" -> [{map, fhir_path, ...}]."""
    return orjson.loads(CHECKLIST.read_bytes())["rows"]


@dataclass
class ConversionReport:
    """Unmapped fields, vocabulary misses and segments no map placed, for one message."""

    message_spec: str = ""
    unmapped: list[tuple[str, int, int]] = field(default_factory=list)  # (segment id, sequence, field)
    vocabulary: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def segment_done(self, seg: Segment, read: set[int] | frozenset[int]) -> None:
        """Record the populated fields of seg that no applied map reads."""
        fields = seg.fields
        sid = fields[0]
        start = 3 if sid == "MSH" else 1  # MSH-1/MSH-2 are the delimiters
        seq = seg.sequence
        self.unmapped += [(sid, seq, n) for n in range(start, len(fields)) if n not in read and fields[n] and fields[n] != '""']

    def vocabulary_miss(self, ctx: Context, source: str, map_name: str, code: str) -> None:
        seg = ctx.segment
        where = f"{seg.id}[{seg.sequence}]" if seg is not None else ""
        self.vocabulary.append({"segment": where, "source": source, "map": map_name, "code": code})

    def unplaced(self, seg: Segment, map_name: str, into: tuple[str, ...]) -> None:
        self.notes.append(f"{seg.id}[{seg.sequence}]: {map_name} found no {'/'.join(into)} to merge into")

    def as_dict(self, *, with_ig: bool = True) -> dict[str, Any]:
        rows = ig_rows() if with_ig else {}
        unmapped = []
        for sid, seq, n in self.unmapped:
            element = f"{sid}-{n}"
            item: dict[str, Any] = {"location": element if seq == 1 else f"{sid}[{seq}]-{n}", "element": element}
            if with_ig:
                item["ig"] = rows.get(element, [])
            unmapped.append(item)
        return {"message_spec": self.message_spec, "unmapped": unmapped, "vocabulary": self.vocabulary, "notes": self.notes}


def build_checklist(jsonl: Path, out: Path = CHECKLIST) -> int:
    """Regenerate mappers/data/ig-checklist.json from the IG's v2-to-fhir-checklist.jsonl; returns rows kept."""
    rows: dict[str, list[dict[str, str]]] = {}
    kept = 0
    for line in jsonl.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        r = orjson.loads(line)
        if r.get("kind") != "segment" or not r.get("v2_element"):
            continue
        item = {k: r[k] for k in ("map", "fhir_path", "datatype_map", "vocab_map", "condition_antlr") if r.get(k)}
        rows.setdefault(r["v2_element"], []).append(item)
        kept += 1
    doc = {
        "source": "HL7 Version 2 to FHIR IG mapping tables (Apache-2.0), v2-to-fhir-checklist.jsonl, segment rows",
        "rows": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return kept


if __name__ == "__main__":
    import sys

    print(build_checklist(Path(sys.argv[1])), "rows")
