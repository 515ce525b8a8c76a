"""The generic interpreter of the mapping specs: one parsed message -> (transaction Bundle, report).

Two passes over the message (HL7 v2-to-FHIR IG, "Message" sheets):
1. Each segment is placed in its group instance (message spec `groups`), then every entry of
   the message spec for that segment id runs its map: creating a resource (`as`) or merging
   into the nearest resource of the given names (`into`: the same group or an enclosing one).
2. Ids are computed (mappers.ids), references (`refs`, `link`) resolved by scope: the nearest
   resource of that name in the same group, else in the enclosing groups outward, preferring
   the latest one before the segment. Then empty elements are pruned and the Bundle is built.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.hl7v2.errors import DataTypeError, Location
from adapters.hl7v2.message import Message, Segment, Value
from mappers import functions, ids, vocab
from mappers.paths import merge, prune
from mappers.primitives import PRIMITIVES, string
from mappers.report import ConversionReport
from mappers.specs import Entry, Map, MessageSpec, Row, Specs, load_specs

Path = tuple[int, ...]


@dataclass(slots=True)
class Record:
    """A resource made from a segment, with where it came from (for scope lookups)."""

    name: str | None
    path: Path
    index: int
    resource: dict[str, Any]
    map: Map
    segment: Segment
    entry: Entry
    id: str | None = None


@dataclass(slots=True)
class SegmentPlace:
    segment: Segment
    path: Path
    index: int


@dataclass
class MessageState:
    """Everything one conversion accumulates."""

    message: Message
    raw: bytes
    specs: Specs
    spec: MessageSpec
    facility: str
    places: list[SegmentPlace] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    made: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # datatype-made resources
    group_names: dict[int, str] = field(default_factory=dict)  # group instance id -> group name
    report: ConversionReport = field(default_factory=ConversionReport)


class Context:
    """What a row sees: the message state, the current segment and its place, the current value."""

    __slots__ = ("state", "segment", "place", "value", "record", "_parts")

    def __init__(self, state: MessageState, place: SegmentPlace | None, value: Value | None = None, record: Record | None = None) -> None:
        self.state = state
        self.place = place
        self.segment = place.segment if place is not None else None
        self.value = value
        self.record = record
        self._parts: list[Value] | None = None

    def parts(self) -> list[Value]:
        """The current value's children (components or subcomponents), split once."""
        parts = self._parts
        if parts is None:
            parts = self._parts = self.value.parts() if self.value is not None else []
        return parts

    def with_value(self, value: Value | None) -> Context:
        return Context(self.state, self.place, value, self.record)

    def segment_in_scope(self, segment_id: str) -> Segment | None:
        """The segment with this id in the same group instance or an enclosing one (latest before, else first after)."""
        if self.place is None:
            return self.state.message.segment(segment_id)
        path, index = self.place.path, self.place.index
        before = after = None
        for p in self.state.places:
            if p.segment.id != segment_id or path[: len(p.path)] != p.path:
                continue
            if p.index <= index:
                before = p
            elif after is None and p.path == path:
                after = p
        found = before or after
        return found.segment if found is not None else None

    @property
    def message(self) -> Message:
        return self.state.message


def _nearest(candidates: list[Any], path: Path, index: int) -> Any:
    """Scope rule: innermost group level first; at a level, the latest before index, else the first after."""
    if not candidates:
        return None
    for depth in range(len(path), -1, -1):
        prefix = path[:depth]
        hits = [c for c in candidates if c.path[:depth] == prefix]
        if hits:
            before = [c for c in hits if c.index <= index]
            return before[-1] if before else hits[0]
    return None


def _enclosing(candidates: list[Record], path: Path, index: int) -> Record | None:
    """`into` rule: the latest resource before index whose group is this one or an enclosing one."""
    best = None
    for c in candidates:
        if c.index <= index and path[: len(c.path)] == c.path:
            best = c
    return best


# --- interpreting maps -------------------------------------------------------------------------


def run_map(m: Map, ctx: Context, out: dict[str, Any] | None = None) -> Any:
    """Apply a map's rows in order (first value wins at a leaf); returns the built object or scalar."""
    if m.build is not None:
        return m.build(ctx, ctx.value, m.args)
    if out is None:
        out = {}
    scalar = None
    for row in m.rows:
        if row.when is not None and not row.when(ctx):
            continue
        if row.source is None:
            values: list[Value | None] = [ctx.value]  # datatype maps: the value itself; segment maps: None
        else:
            values = row.source.values(ctx, row.every)  # type: ignore[assignment]
            if not values:
                continue
        for n, value in enumerate(values):
            try:
                result = _evaluate(row, value, ctx)
            except DataTypeError as exc:
                raise _locate(exc, m, row, ctx, n) from None
            if result is None:
                continue
            if row.target is None:
                if scalar is None:
                    scalar = result
                continue
            item = row.target.assign(out, result)
            if item is None and isinstance(result, dict):
                item = result
            if item is not None:
                if row.set is not None:
                    item.update(row.set.get())
                if row.default is not None:
                    for k, v in row.default.get().items():
                        item.setdefault(k, v)
    if scalar is not None and not out:
        return scalar
    return out or None


def _locate(exc: DataTypeError, m: Map, row: Row, ctx: Context, n: int) -> DataTypeError:
    """Give a DataTypeError its segment/field/component location (ERR-2 style)."""
    comps: list[int] = list(getattr(exc, "components", []))
    src = row.source
    if not m.is_segment:
        if src is not None and src.component is not None:
            comps = [src.component, *([src.subcomponent] if src.subcomponent else []), *comps]
        exc.components = comps  # type: ignore[attr-defined]
        return exc
    if exc.location is not None or ctx.segment is None or src is None:
        return exc
    if src.component is not None:
        comps = [src.component, *([src.subcomponent] if src.subcomponent else []), *comps]
    rep = src.repetition or (n + 1 if row.every else 1)
    loc = Location(ctx.segment.id, ctx.segment.sequence, src.field, rep, comps[0] if comps else None, comps[1] if len(comps) > 1 else None)
    new = DataTypeError(exc.reason, location=loc)
    return new


def _evaluate(row: Row, value: Value | None, ctx: Context) -> Any:
    if row.value is not None:
        result = row.value.get()
    elif row.fn is not None:
        result = row.fn(ctx, value, row.args)
    elif row.type is not None:
        result = convert(row.type, value, ctx)
    else:
        result = string(value.text) if value is not None else None
    if result is None:
        return None
    if row.format is not None:
        result = row.format.format(result)
    if row.vocab is not None:
        result = _translate(row.vocab, result, ctx, row)
    return result


def convert(type_name: str, value: Value | None, ctx: Context) -> Any:
    """Convert a value with a primitive, a named converter, or a datatype map (which may make a resource)."""
    if value is None:
        return None
    primitive = PRIMITIVES.get(type_name)
    if primitive is not None:
        return primitive(value.text)
    converter = functions.CONVERTERS.get(type_name)
    if converter is not None:
        return converter(ctx.with_value(value), value, {})
    m = ctx.state.specs.maps[type_name]
    built = run_map(m, ctx.with_value(value))
    if built is None or m.resource is None:
        return built
    return add_resource(ctx.state, m.resource, built)


def add_resource(state: MessageState, resource_type: str, body: dict[str, Any]) -> dict[str, str]:
    """Register a resource made from a datatype (Practitioner, Organization, Location...); dedupe by id."""
    body = prune(body)
    if not body:
        return None  # type: ignore[return-value]
    rid = _identifier_id(resource_type, body, state.facility) or ids.content_id(resource_type, body)
    key = (resource_type, rid)
    have = state.made.get(key)
    if have is None:
        state.made[key] = {"resourceType": resource_type, "id": rid, **body}
    else:
        merge(have, body)
    return {"reference": f"{resource_type}/{rid}"}


def _identifier_id(resource_type: str, body: dict[str, Any], facility: str) -> str | None:
    for identifier in body.get("identifier") or ():
        parts = ids.identifier_parts(identifier, facility)
        if parts is not None:
            return ids.resource_id(resource_type, parts)
    return None


def _translate(map_name: str, result: Any, ctx: Context, row: Row) -> Any:
    """Apply an IG vocabulary map to a code, a Coding or a CodeableConcept (mapped coding first)."""
    if isinstance(result, str):
        mapped = vocab.translate(map_name, result)
        if mapped is None:
            ctx.state.report.vocabulary_miss(ctx, row.label, map_name, result)
            return None
        return mapped.get("code")
    if isinstance(result, dict):
        codings = result.get("coding")
        if codings is None and "code" in result:  # a Coding
            mapped = vocab.translate(map_name, result["code"])
            if mapped is None:
                ctx.state.report.vocabulary_miss(ctx, row.label, map_name, result["code"])
                return result
            return mapped
        if codings:
            first = codings[0].get("code")
            mapped = vocab.translate(map_name, first) if first else None
            if mapped is None:
                if first:
                    ctx.state.report.vocabulary_miss(ctx, row.label, map_name, first)
                return result
            if not any(c.get("system") == mapped.get("system") and c.get("code") == mapped.get("code") for c in codings):
                codings.insert(0, mapped)
    return result


# --- the message walk --------------------------------------------------------------------------


def _place_segments(state: MessageState) -> None:
    """Assign each segment to its group instance by the message spec's group heads."""
    spec = state.spec
    stack: list[list[Any]] = [[None, 0, -1]]  # frames: [group, instance id, last head position]
    counter = 0
    for index, seg in enumerate(state.message.segments):
        candidates = spec.heads.get(seg.id)
        if candidates:
            placed = False
            for level in range(len(stack) - 1, -1, -1):
                level_group = stack[level][0]
                level_name = level_group.name if level_group is not None else None
                for group, pos in candidates:
                    if group.parent != level_name:
                        continue
                    child = stack[level + 1] if level + 1 < len(stack) else None
                    if child is not None and child[0] is group and pos > child[2]:
                        del stack[level + 2 :]
                        child[2] = pos
                    else:
                        counter += 1
                        state.group_names[counter] = group.name
                        del stack[level + 1 :]
                        stack.append([group, counter, pos])
                    placed = True
                    break
                if placed:
                    break
            if not placed:
                group, pos = candidates[0]
                counter += 1
                state.group_names[counter] = group.name
                del stack[1:]
                stack.append([group, counter, pos])
        state.places.append(SegmentPlace(seg, tuple(f[1] for f in stack[1:]), index))


def convert_message(message: Message, raw: bytes | None = None, *, specs: Specs | None = None) -> tuple[dict[str, Any], ConversionReport]:
    """Map one parsed message to a FHIR R4 transaction Bundle (plain dicts) and its unmapped report."""
    specs = specs or load_specs()
    spec = specs.message_spec(message.structure, message.message_code, message.trigger_event)
    msh = message.msh
    facility = msh.get(4) or msh.get(3)  # HD.1 namespace id of the sending facility (or application)
    if raw is None:
        raw = message.encode().encode("utf-8")
    state = MessageState(message, raw, specs, spec, facility)
    state.report.message_spec = spec.file
    _place_segments(state)
    for place in state.places:
        seg = place.segment
        read: set[int] = set()
        for entry in spec.entries.get(seg.id, ()):
            ctx = Context(state, place)
            if entry.when is not None and not entry.when(ctx):
                continue
            m = entry.map
            assert m is not None
            read |= m.fields
            if entry.into:
                target = _enclosing([r for r in state.records if r.name in entry.into], place.path, place.index)
                if target is not None:
                    ctx.record = target
                    run_map(m, ctx, target.resource)
                    continue
                if entry.as_name is None:
                    state.report.unplaced(seg, entry.map_name, entry.into)
                    continue
            record = Record(entry.as_name, place.path, place.index, {}, m, seg, entry)
            ctx.record = record
            built = run_map(m, ctx, record.resource)
            if not built and not record.resource:
                continue
            state.records.append(record)
        state.report.segment_done(seg, read)
    return _finish(state), state.report


def _record_id(record: Record, state: MessageState, busy: set[int]) -> str:
    if record.id is not None:
        return record.id
    rtype = record.map.resource or "Basic"
    keys = record.map.key
    rid = None
    if not keys or keys[0] == "identifier":
        rid = _identifier_id(rtype, record.resource, state.facility)
    if rid is None and keys:
        busy.add(id(record))
        parts = [state.facility]
        for key in keys:
            if key == "identifier":
                continue
            if key.startswith("@"):
                other = _nearest([r for r in state.records if r.name == key[1:] and id(r) not in busy], record.path, record.index)
                parts.append(_record_id(other, state, busy) if other is not None else "")
            else:
                seg_id, _, rest = key.partition("-")
                seg = record.segment if seg_id == record.segment.id else Context(state, _place_of(state, record)).segment_in_scope(seg_id)
                parts.append(seg.raw(int(rest)) if seg is not None else "")
        busy.discard(id(record))
        if any(parts[1:]):
            rid = ids.resource_id(rtype, parts)
    if rid is None:
        rid = ids.content_id(rtype, record.resource)
    record.id = rid
    return rid


def _within(state: MessageState, candidates: list[Record], path: Path, group: str | None) -> list[Record]:
    """Keep the candidates inside the enclosing instance of `group` (all of them when group is None)."""
    if group is None:
        return candidates
    for depth in range(len(path) - 1, -1, -1):
        if state.group_names.get(path[depth]) == group:
            prefix = path[: depth + 1]
            return [c for c in candidates if c.path[: depth + 1] == prefix]
    return []


def _place_of(state: MessageState, record: Record) -> SegmentPlace:
    return state.places[record.index]


def _ref(record: Record) -> dict[str, str]:
    return {"reference": f"{record.map.resource}/{record.id}"}


def _finish(state: MessageState) -> dict[str, Any]:
    records = state.records
    busy: set[int] = set()
    for record in records:
        _record_id(record, state, busy)
    by_name: dict[str, list[Record]] = {}
    for record in records:
        if record.name:
            by_name.setdefault(record.name, []).append(record)
    for record in records:
        for ref in record.entry.refs:
            other = _nearest(_within(state, by_name.get(ref.name, []), record.path, ref.within), record.path, record.index)
            if other is None or other is record:
                continue
            item = ref.target.assign(record.resource, _ref(other))
            if item is not None and ref.set is not None:
                item.update(ref.set.get())
        for link in record.entry.links:
            other = _nearest(_within(state, by_name.get(link.name, []), record.path, link.within), record.path, record.index)
            if other is None or other is record:
                continue
            item = link.target.assign(other.resource, _ref(record))
            if item is not None and link.set is not None:
                item.update(link.set.get())
    resources: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        rtype = record.map.resource or "Basic"
        key = (rtype, record.id or "")
        have = resources.get(key)
        if have is None:
            resources[key] = {"resourceType": rtype, "id": record.id, **record.resource}
        else:
            merge(have, record.resource)
    for key, made in state.made.items():
        if key in resources:
            merge(resources[key], made)
        else:
            resources[key] = made
    everything = [f"{t}/{i}" for (t, i) in resources]
    for record in records:
        if record.map.target_all:
            res = resources[(record.map.resource or "Basic", record.id or "")]
            own = f"{res['resourceType']}/{res['id']}"
            res["target"] = [{"reference": r} for r in everything if r != own]
    entries = []
    for (rtype, rid), resource in resources.items():
        body = prune(resource)
        if not body or len(body) <= 2:  # only resourceType and id: nothing was mapped
            continue
        entries.append({"fullUrl": f"urn:uuid:{rid}", "resource": body, "request": {"method": "PUT", "url": f"{rtype}/{rid}"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
