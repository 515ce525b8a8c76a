"""What a conversion did not map, for the auditor: populated fields no map read, codes no map knew.

Each unmapped field carries the IG checklist rows for that element (from
mappers/data/ig-checklist.json, derived from the IG's v2-to-fhir-checklist.jsonl), so an auditor
sees what the IG would do with it. A conversion only notes which fields its maps read per
segment; the unmapped list is worked out on first access and the IG rows are looked up only
when the report is rendered (`as_dict`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from adapters.hl7v2.message import Segment

if TYPE_CHECKING:
    from mappers.engine import Context, Record

CHECKLIST = Path(__file__).resolve().parent / "data" / "ig-checklist.json"
UPDATE, FILL = "update", "fill"
"""How a stored copy takes a resource the message only names (ConversionReport.named)."""


@cache
def ig_rows() -> dict[str, list[dict[str, str]]]:
    """IG checklist rows by v2 element, e.g. "PID-10" -> [{map, fhir_path, ...}]."""
    return orjson.loads(CHECKLIST.read_bytes())["rows"]


@dataclass(eq=False)
class ConversionReport:
    """Unmapped fields, vocabulary misses and segments no map placed, for one message.

    `unmapped` is worked out on first access from what `segment_done` recorded, so a caller
    that never reads the report (the benchmark, `convert` without --unmapped) does not pay for it."""

    message_spec: str = ""
    _unmapped: list[tuple[str, int, int]] | None = field(default=None, repr=False)
    vocabulary: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _done: list[tuple[Segment, list[frozenset[int]]]] = field(default_factory=list, repr=False, compare=False)
    _made: tuple[list[Record], list[str], dict[str, Any]] | None = field(default=None, repr=False, compare=False)

    @property
    def unmapped(self) -> list[tuple[str, int, int]]:
        """(segment id, sequence, field) of each populated field no applied map reads, in message order."""
        found = self._unmapped
        if found is None:
            found = self._unmapped = []
        if self._done:
            for seg, reads in self._done:
                read = reads[0] if len(reads) == 1 else frozenset().union(*reads)
                fields = seg.fields
                sid = fields[0]
                start = 3 if sid == "MSH" else 1  # MSH-1/MSH-2 are the delimiters
                seq = seg.sequence
                found += [(sid, seq, n) for n in range(start, len(fields)) if n not in read and fields[n] and fields[n] != '""']
            self._done.clear()
        return found

    @unmapped.setter
    def unmapped(self, value: list[tuple[str, int, int]]) -> None:
        self._done.clear()
        self._unmapped = list(value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConversionReport):
            return NotImplemented
        return (self.message_spec, self.unmapped, self.vocabulary, self.notes) == (other.message_spec, other.unmapped, other.vocabulary, other.notes)

    @property
    def named(self) -> dict[str, str]:
        """The resources the message only names, "Type/id" -> how a stored copy takes them (gateway.identity.merge_named).

        UPDATE: made from a datatype in another segment's field (XCN -> Practitioner, PL -> Location):
        what it carries replaces, what it lacks is kept (v2.5 2.5.3). FILL: made by a map marked
        `names` (a parent Condition known only by its identifier, its required status a placeholder):
        it only adds what the stored copy lacks. A resource that another map states is not listed."""
        if self._made is None:
            return {}
        records, keys, made = self._made
        stated = {key for record, key in zip(records, keys) if not record.map.names}
        named = {key: FILL for record, key in zip(records, keys) if record.map.names and key not in stated}
        return named | {key: UPDATE for key in made if key not in stated and key not in named}

    def resources_made(self, records: list[Record], keys: list[str], made: dict[str, Any]) -> None:
        """Note the message's records (with their "Type/id") and datatype-made resources; `named` is worked out on access."""
        self._made = (records, keys, made)

    def segment_done(self, seg: Segment, reads: list[frozenset[int]]) -> None:
        """Note the field sets of the maps applied to seg (joined only on access, like the unmapped list)."""
        self._done.append((seg, reads))

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
