"""The generic interpreter of the mapping specs: one parsed message -> (transaction Bundle, report).

Two passes over the message (HL7 v2-to-FHIR IG, "Message" sheets):
1. Each segment is placed in its group instance (message spec `groups`), then every entry of
   the message spec for that segment id runs its map: creating a resource (`as`) or merging
   into the nearest resource of the given names (`into`: the same group or an enclosing one).
2. Ids are computed (mappers.ids), references (`refs`, `link`) resolved by scope: the nearest
   resource of that name in the same group, else in the enclosing groups outward, preferring
   the latest one before the segment. Then empty elements are pruned and the Bundle is built.

Speed (issue 3 benchmark): each map's rows are compiled once per process into one Python
function (`compile_map`; `interpret_map` is the same semantics as a plain loop, and the tests
check that both agree on the whole corpus). The generated code tests emptiness and simple `when`
clauses on the raw strings the reader split (a segment map: on its own segment's fields),
converts one component's (or its own segment's field's) text with a primitive or a function's
text form (functions.TEXT_FORMS) without making a Value, evaluates each row inline (constant,
function, converter, primitive, `format`, `vocab`), hands a datatype map row's map the value
with the row's own Context, and writes at the target path with that path's own generated
statements (mappers.paths.TargetPath.write_lines), without the first-value-wins test where
nothing can be there yet; a segment map skips rows whose field of its own segment is empty
before anything else; an own field that several `=` clauses test is read once per run, and a
component that several rows hand on is one Value. Field repetitions, scope lookups, ids and
dateTime/instant conversions are cached per conversion, never across messages; resources stay
plain dicts until orjson serialises them; the unmapped report is worked out only when read
(mappers.report).
"""
from __future__ import annotations

import linecache
import re
from dataclasses import dataclass, field
from datetime import timezone, tzinfo
from typing import Any, Callable

from adapters.hl7v2.errors import DataTypeError, Location, RequiredFieldMissing
from adapters.hl7v2.escape import unescape
from adapters.hl7v2.message import COMPONENT, NULL, Message, Segment, Value
from mappers import functions, ids, vocab
from mappers.paths import merge, prune
from mappers.primitives import PRIMITIVES, ZONED
from mappers.report import ConversionReport
from mappers.specs import Constant, Entry, Link, Map, MessageSpec, Ref, Row, Specs, load_specs

Evaluate = Callable[[Value | None, "Context"], Any]
_CTX_VALUE: Any = object()  # a compiled datatype map called without a value: it reads ctx.value

Path = tuple[int, ...]
_new_context = object.__new__


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
    seq: int = -1  # position in MessageState.records
    clean: bool = True  # no row that may write an empty element ran for it (map_clean, compile_map): no prune


class SegmentPlace:
    """A segment, its group instance path and position; field repetitions are split once per conversion."""

    __slots__ = ("segment", "path", "index", "_reps")

    def __init__(self, segment: Segment, path: Path, index: int) -> None:
        self.segment = segment
        self.path = path
        self.index = index
        self._reps: dict[int, list[Value]] = {}

    def reps(self, number: int) -> list[Value]:
        """Repetitions of a field of this segment (shared by every row that reads it; do not mutate)."""
        found = self._reps.get(number)
        if found is None:
            found = self._reps[number] = self.segment.reps(number)
        return found


@dataclass
class MessageState:
    """Everything one conversion accumulates."""

    message: Message
    raw: bytes
    specs: Specs
    spec: MessageSpec
    facility: str
    zone: tzinfo  # where v2 times sent without an offset were taken (primitives.ZONED)
    places: list[SegmentPlace] = field(default_factory=list)
    places_by_id: dict[str, list[SegmentPlace]] = field(default_factory=dict)  # segment id -> its places, in order
    records: list[Record] = field(default_factory=list)
    made: dict[str, dict[str, Any]] = field(default_factory=dict)  # datatype-made resources by "Type/id"
    group_names: dict[int, str] = field(default_factory=dict)  # group instance id -> group name
    report: ConversionReport = field(default_factory=ConversionReport)
    by_name: dict[str, list[Record]] = field(default_factory=dict)  # records with `as` names, in order
    scope: dict[tuple[int, str], SegmentPlace | None] = field(default_factory=dict)  # segment_in_scope cache
    ids: dict[str, str] = field(default_factory=dict)  # id name -> deterministic id (a practitioner recurs)
    times: dict[tuple[Callable[..., Any], str], Any] = field(default_factory=dict)  # _zoned_time results
    locations: dict[tuple[str | None, ...], str] = field(default_factory=dict)  # functions.location_hierarchy: a level -> its reference
    summary: str | None = None  # functions.message_summary, made on first use


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
        """This context for another value (a datatype map or converter reading it); made without
        __init__, the hottest allocation of a conversion."""
        ctx = _new_context(Context)
        ctx.state = self.state
        ctx.place = self.place
        ctx.segment = self.segment
        ctx.value = value
        ctx.record = self.record
        # a datatype map on the whole value (XCN -> XCN[HumanName]): split it once
        ctx._parts = self._parts if value is self.value else None
        return ctx

    def segment_in_scope(self, segment_id: str) -> Segment | None:
        """The segment with this id in the same group instance or an enclosing one (latest before, else first after)."""
        if self.place is None:
            return self.state.message.segment(segment_id)
        found = self._place_in_scope(segment_id)
        return found.segment if found is not None else None

    def reps_in_scope(self, segment_id: str, number: int) -> list[Value]:
        """Repetitions of a field of the segment in scope with this id (empty when there is none)."""
        if self.place is None:
            seg = self.state.message.segment(segment_id)
            return seg.reps(number) if seg is not None else []
        found = self._place_in_scope(segment_id)
        return found.reps(number) if found is not None else []

    def _place_in_scope(self, segment_id: str) -> SegmentPlace | None:
        place = self.place
        assert place is not None
        key = (place.index, segment_id)
        cache = self.state.scope
        if key in cache:
            return cache[key]
        path, index = place.path, place.index
        before = after = None
        for p in self.state.places_by_id.get(segment_id, ()):
            if path[: len(p.path)] != p.path:
                continue
            if p.index <= index:
                before = p
            elif after is None and p.path == path:
                after = p
        found = cache[key] = before or after
        return found

    @property
    def message(self) -> Message:
        return self.state.message

    def add_resource(self, resource_type: str, body: dict[str, Any], clean: bool = False) -> dict[str, str]:
        """Register a resource a function made from a datatype (add_resource); a Reference to it."""
        return add_resource(self.state, resource_type, body, clean)

    def convert(self, type_name: str, value: Value | None) -> Any:
        """A value through a primitive, converter or map by name, as a row's `type` (convert)."""
        return convert(type_name, value, self)


def _nearest(candidates: list[Any], path: Path, index: int) -> Any:
    """Scope rule: innermost group level first; at a level, the latest before index, else the first after."""
    if not candidates:
        return None
    if len(candidates) == 1:  # it is hit at some level (the outermost at the latest), whatever its index
        return candidates[0]
    for depth in range(len(path), -1, -1):
        prefix = path[:depth]
        hits = [c for c in candidates if c.path[:depth] == prefix]
        if hits:
            before = [c for c in hits if c.index <= index]
            return before[-1] if before else hits[0]
    return None


def _enclosing(state: MessageState, names: tuple[str, ...], path: Path, index: int) -> Record | None:
    """`into` rule: the latest resource (of these names) before index whose group is this one or an enclosing one."""
    best = None
    for name in names:
        for c in reversed(state.by_name.get(name, ())):
            if c.index <= index and path[: len(c.path)] == c.path:
                if best is None or c.seq > best.seq:
                    best = c
                break
    return best


# --- interpreting maps -------------------------------------------------------------------------


def run_map(m: Map, ctx: Context, out: dict[str, Any] | None = None) -> Any:
    """Apply a map's rows in order (first value wins at a leaf); returns the built object or scalar."""
    if m.build is not None:
        return m.build(ctx, ctx.value, m.args)
    run = m.compiled or compile_map(m, ctx.state.specs)
    return run(ctx, {} if out is None else out)


def interpret_map(m: Map, ctx: Context, out: dict[str, Any] | None = None) -> Any:
    """`run_map` by walking the rows: the reference semantics `compile_map` reproduces (tests compare them)."""
    if m.build is not None:
        return m.build(ctx, ctx.value, m.args)
    if out is None:
        out = {}
    scalar = None
    for row in m.rows:
        part = row.part
        if part >= 0:  # datatype maps: skip a row whose component is empty before anything else
            parts = ctx._parts
            if parts is None:
                parts = ctx.parts()
            if part >= len(parts) or not parts[part].raw:
                continue
        when = row.when
        if when is not None and not when(ctx):
            continue
        source = row.source
        if source is None:
            values: Any = (ctx.value,)  # datatype maps: the value itself; segment maps: None
        else:
            values = source.read(ctx, row.every)
            if not values:
                continue
        evaluate = row.evaluate or _evaluator(row, ctx.state.specs)
        if ctx.record is not None and not _row_clean(row, ctx.state.specs):
            ctx.record.clean = False
        target = row.target
        for n, value in enumerate(values):
            try:
                result = evaluate(value, ctx)
            except DataTypeError as exc:
                raise _locate(exc, m, row, ctx, n) from None
            if result is None:
                continue
            if target is None:
                if scalar is None:
                    scalar = result
                continue
            item = target.assign(out, result)
            if item is None:
                if row.set is None and row.default is None:
                    continue
                if isinstance(result, dict):
                    item = result
                else:
                    continue
            if row.set is not None:
                item.update(row.set.get())
            if row.default is not None:
                for k, v in row.default.get().items():
                    item.setdefault(k, v)
    if scalar is not None and not out:
        return scalar
    return out or None


# --- compiled maps ------------------------------------------------------------------------------
# A map's rows become the body of one generated Python function, once per process, so the hot
# path runs straight-line code instead of looping over row objects. The generated code does
# exactly what `interpret_map` does, row by row; each row's parts (reader, condition,
# evaluator, target writer, constants) are the same compiled objects, bound as globals.
# A datatype map that reads nothing of its value but the split (_split_only: CWE[Coding], HD, CX,
# XCN...) also gets a `run_split` entry: its callers hand it their value's, a component's or
# their own segment's field's split, so no Value is made for it.


def compile_map(m: Map, specs: Specs) -> Callable[[Context, dict[str, Any]], Any]:
    """Generate, compile and cache (on m.compiled) the function applying m's rows in order."""
    env: dict[str, Any] = {"DataTypeError": DataTypeError, "_locate": _locate, "isinstance": isinstance, "M": m,
                           "unescape": unescape,
                           "_component_text": _component_text, "_raw_text": _raw_text, "Context": Context, "compile_map": compile_map,
                           "add_resource": add_resource, "merge": merge, "_zoned_time": _zoned_time, "_translate": _translate,
                           "_convert_map": _convert_map, "_CTX_VALUE": _CTX_VALUE}
    scalars = any(row.target is None for row in m.rows)
    lines = ["    scalar = None"] if scalars else []
    calls_with_ctx = 0  # calls of what reads the value through ctx (W, C, S: a clause or a read not inlined)
    # datatype maps handed the value or a component as split below (_split_callee), not as a Value
    callees = [_row_callee(m, row, specs) for row in m.rows]
    prologue: list[str] = []
    if (any(row.part >= 0 for row in m.rows) or any(_inline_condition(row.when) for row in m.rows if row.when is not None)
            or not m.is_segment and any(callees)):
        # the value's components as sent (raw strings), split once; Values are made only for rows that need them
        prologue = ["    " + line for line in _SPLIT_LINES]
        lines.append("    nparts = len(pieces)")
    own_rows = m.is_segment and any(r.source is not None and r.source.segment == m.datatype for r in m.rows)
    own = m.datatype if m.is_segment else None
    own_conditions = own is not None and any(_inline_condition(row.when, own=own) for row in m.rows if row.when is not None)
    if own_rows or own_conditions:  # a row reading an empty field of the map's own segment is skipped before anything else
        lines += ["    seg = ctx.segment", f"    fields = seg.fields if seg is not None and seg.fields[0] == {m.datatype!r} else None",
                  "    nfields = len(fields) if fields is not None else 0",
                  "    place = ctx.place", "    placed = place._reps if fields is not None and place is not None else None",
                  "    sd = seg._d if fields is not None else None"]
    # an own field several `=` clauses test (OBX-2, the value type, in ~20 rows), or a component of a
    # datatype map's value (HD.3, the universal id type): its text read once per run, when first tested
    hoisted = _hoisted_equals(m, own) if own_rows or own_conditions or not m.is_segment else {}
    lines += [f"    {local} = None" for local in hoisted.values()]
    # first-value-wins needs no test where nothing can be under the target's first step yet: out is
    # new (not an `into` resource), no earlier row writes that name, `$this` or a row that may write
    # into the record directly (not _row_clean) ran before, and the row writes one value at most
    written: set[str] = set()
    entries = _entries_of(m, specs)
    anything = any(entry.into for entry in entries)
    record_out = m.is_segment or bool(entries)  # out may be ctx.record.resource, which functions write into
    # components that several rows hand on as a Value (CX.4 to system and assigner): made once per run, when first read
    shared: dict[int, int] = {}
    for row, callee in zip(m.rows, callees):
        if (row.part >= 0 and row.source is not None and row.source.subcomponent is None and row.value is None
                and _text_evaluator(row) is None and callee is None):
            shared[row.part] = shared.get(row.part, 0) + 1
    lines += [f"    _c{k} = None" for k, n in shared.items() if n > 1]
    for i, row in enumerate(m.rows):
        env[f"R{i}"] = row
        lines.append(f"    # row {i + 1}: {(row.label or '-')!s:.40} -> {row.target.text if row.target else '-'!s:.60}".replace("\n", " ").replace("\r", " "))
        indent = "    "
        k = row.part
        if own_rows and row.source is not None and row.source.segment == m.datatype:
            lines.append(f"{indent}if nfields > {row.source.field} and fields[{row.source.field}] or fields is None:")
            indent += "    "
        # a text row of one component with no condition: one test for empty and `""`, binding its text
        text_first = (k >= 0 and row.when is None and row.source is not None and row.source.subcomponent is None
                      and _text_evaluator(row) is not None)
        if text_first:
            lines.append(f"{indent}if nparts > {k} and (text := pieces[{k}]) and text != '\"\"':")
            indent += "    "
        elif k >= 0:  # a component of the value: skip at once when it is empty
            lines.append(f"{indent}if nparts > {k} and pieces[{k}]:")
            indent += "    "
        if row.when is not None:
            inline = _inline_condition(row.when, env, f"C{i}_", own, hoisted)
            if inline is None:
                env[f"W{i}"] = row.when
                inline = f"W{i}(ctx)"
            calls_with_ctx += "(ctx)" in inline
            lines.append(f"{indent}if {inline}:")
            indent += "    "
        single = row.source is None or (k >= 0 and row.source.subcomponent is None)
        text_row = k >= 0 and single and _text_evaluator(row) is not None
        src = row.source
        own_first = (own_rows and src is not None and src.segment == m.datatype and src.repetition is None
                     and src.component is None and not row.every)  # the first repetition of a field of its own segment
        n_expr = "0" if single or k >= 0 or own_first else "n"  # the value's position among those read, for _locate
        if own_first and _text_evaluator(row) is not None and not (m.datatype == "MSH" and src.field <= 2):
            # a primitive from it: its decoded text from the field as sent, without a Value (= Source.read, Value.text)
            text_row = True
            env[f"S{i}"] = src.read
            # (`in` before each partition: most fields are one repetition of one leaf)
            lines += [f"{indent}if fields is not None:",
                      f"{indent}    text = fields[{src.field}]",
                      f"{indent}    if sd.repetition in text:",
                      f"{indent}        text = text.partition(sd.repetition)[0]",
                      f"{indent}    if text != '' and text != '\"\"':",
                      f"{indent}        if sd.component in text:  # a first leaf split off as the null `\"\"` reads as '' (v2.5 2.5.3)",
                      f"{indent}            text = text.partition(sd.component)[0]",
                      f"{indent}            if text == '\"\"':",
                      f"{indent}                text = ''",
                      f"{indent}        if sd.subcomponent in text:",
                      f"{indent}            text = text.partition(sd.subcomponent)[0]",
                      f"{indent}            if text == '\"\"':",
                      f"{indent}                text = ''",
                      f"{indent}        if sd.escape in text:",
                      f"{indent}            text = unescape(text, sd)",
                      f"{indent}    else:",
                      f"{indent}        text = None",
                      f"{indent}else:",
                      f"{indent}    text = _vs[0].text if (_vs := S{i}(ctx, False)) else None",
                      f"{indent}if text is not None:"]
            indent += "    "
        elif callees[i] is not None and m.is_segment:
            # a split-only map of a field of its own segment: handed the split of each repetition read
            # from the field as sent (Source.read, Segment.reps and Value.pieces inlined), no Values made
            env[f"S{i}"] = src.read
            if row.every:
                lines += [f"{indent}if fields is not None:",
                          f"{indent}    _raws, _d = fields[{src.field}].split(sd.repetition), sd",
                          f"{indent}else:",
                          f"{indent}    _vs = S{i}(ctx, True)",
                          f"{indent}    _raws = [v.raw for v in _vs]",
                          f"{indent}    _d = _vs[0]._d if _vs else None",
                          f"{indent}_n = -1  # the position among the valued repetitions, as Source.read counts",
                          f"{indent}for _raw in _raws:",
                          f"{indent}    if _raw != '' and _raw != '\"\"':",
                          f"{indent}        _n += 1"]
                indent += "        "
                n_expr = "_n"
            else:
                lines += [f"{indent}if fields is not None:",
                          f"{indent}    _raw, _d = fields[{src.field}], sd",
                          f"{indent}    if sd.repetition in _raw:",
                          f"{indent}        _raw = _raw.partition(sd.repetition)[0]",
                          f"{indent}else:",
                          f"{indent}    _raw, _d = (_vs[0].raw, _vs[0]._d) if (_vs := S{i}(ctx, False)) else ('', None)",
                          f"{indent}if _raw != '' and _raw != '\"\"':"]
                indent += "    "
        elif row.source is None:
            if callees[i] is None and row.value is None:
                lines.append(f"{indent}value = whole")  # datatype maps: the value itself; segment maps: None
        elif single:
            if not text_first:
                lines.append(f"{indent}if pieces[{k}] != '\"\"':")
                indent += "    "
            if text_row:  # a primitive from one component: its decoded text, without a Value (= Value.text)
                lines += [*([] if text_first else [f"{indent}text = pieces[{k}]"]),
                          f"{indent}if not plain:  # not plain: delims is not None",
                          f"{indent}    if leaf_sep and leaf_sep in text:",
                          f"{indent}        text = text.partition(leaf_sep)[0]",
                          f"{indent}        if text == '\"\"':  # a first subcomponent sent as the null (v2.5 2.5.3)",
                          f"{indent}            text = ''",
                          f"{indent}    if delims.escape in text:",
                          f"{indent}        text = unescape(text, delims)"]
            elif row.value is None and callees[i] is None:  # a constant needs no Value; rows sharing a component share its Value
                if shared.get(k, 0) > 1:
                    lines.append(f"{indent}value = _c{k} if _c{k} is not None else (_c{k} := whole[{k + 1}])")
                else:
                    lines.append(f"{indent}value = whole[{k + 1}]")
        elif k >= 0 and _text_evaluator(row) is not None:
            # a primitive from a subcomponent (XPN.1.1): its text from the component as sent, without a
            # Value (= whole[k][s].text: a component of a component-level value is a leaf, its own first part)
            text_row, sub = True, row.source.subcomponent
            first = f"pieces[{k}].partition(leaf_sep)[0]" if sub == 1 else f"(_p[{sub - 1}] if len(_p := pieces[{k}].split(leaf_sep)) > {sub - 1} else '')"
            plain_text = f"pieces[{k}]" if sub == 1 else repr("")  # no leaf separator in it: the component is its first leaf
            lines += [f"{indent}text = {plain_text} if plain else {first} if leaf_sep else {plain_text}",
                      f"{indent}if text != '' and text != '\"\"':",
                      f"{indent}    if not plain and delims is not None and delims.escape in text:",
                      f"{indent}        text = unescape(text, delims)"]
            indent += "    "
        elif k >= 0:  # a subcomponent of a valued component (XPN.1.1): Source.read, inlined, without splitting the other components
            lines += [f"{indent}value = whole[{k + 1}][{row.source.subcomponent}]",
                      f"{indent}if value.raw != '' and value.raw != '\"\"':"]
            indent += "    "
        elif own_first:
            # the first repetition of a field of the map's own segment (the commonest read): Source.read, inlined
            env[f"S{i}"] = row.source.read
            lines += [f"{indent}_vs = S{i}(ctx, False) if placed is None else {_own_reps(row.source.field)}",
                      f"{indent}if _vs and (value := _vs[0]).raw != '' and value.raw != '\"\"':"]
            indent += "    "
        elif own_rows and row.source.segment == m.datatype and row.source.repetition is None and row.source.component is None:
            # every valued repetition of a field of the map's own segment: Source.read, inlined (the
            # position among the valued ones, as Source.read counts, is worked out only for an error)
            env[f"S{i}"] = row.source.read
            lines += [f"{indent}_vs = S{i}(ctx, True) if placed is None else {_own_reps(row.source.field)}",
                      f"{indent}for value in _vs:", f"{indent}    if value.raw != '' and value.raw != '\"\"':"]
            indent += "        "
            n_expr = "[v for v in _vs if v.raw != '' and v.raw != '\"\"'].index(value)"
        else:
            env[f"S{i}"] = row.source.read
            calls_with_ctx += 1
            lines.append(f"{indent}for n, value in enumerate(S{i}(ctx, {row.every})):")
            indent += "    "
        clean = _row_clean(row, specs)
        if text_row:
            env[f"T{i}"], call = _text_evaluator(row)  # type: ignore[misc]
            env[f"A{i}"] = row.args
            body = [f"result = {call.format(F=f'T{i}', A=f'A{i}')}", *_format_vocab_lines(row, i, env)]
        elif callees[i] is not None:
            body = [*_split_call_lines(callees[i], row, i, env, specs), *_format_vocab_lines(row, i, env)]
        else:
            body = _evaluation_lines(row, i, env, specs)
        if not clean:  # what it writes (or writes itself) gets the full prune
            body += ["if ctx.record is not None:", "    ctx.record.clean = False"]
        first_step = row.target.steps[0][0] if row.target is not None else None
        fresh = not anything and first_step not in written and not (row.every and row.source is not None)
        if first_step is not None:
            written.add(first_step)
        if row.target is not None and row.target.text == "$this" or record_out and not clean:
            anything = True
        lines += [
            f"{indent}try:",
            *(f"{indent}    {line}" for line in body),
            f"{indent}except DataTypeError as exc:",
            f"{indent}    raise _locate(exc, M, R{i}, ctx, {n_expr}) from None",
            f"{indent}if result is not None:",
        ]
        indent += "    "
        if row.target is None:
            lines += [f"{indent}if scalar is None:", f"{indent}    scalar = result"]
            continue
        items = row.set is not None or row.default is not None
        # the target path's writer, inlined
        write = row.target.write_lines("out", "result", "item" if items else None, fresh=fresh, listy=_gives_list(row, specs))
        if not items:
            lines += [f"{indent}{line}" for line in write]
            continue
        lines += [
            f"{indent}item = None",
            *(f"{indent}{line}" for line in write),
            f"{indent}if item is None and isinstance(result, dict):",
            f"{indent}    item = result",
            f"{indent}if item is not None:",
        ]
        if row.set is not None:
            env[f"SET{i}"] = row.set.get
            lines.append(f"{indent}    item.update(SET{i}())")
        if row.default is not None:
            env[f"DEF{i}"] = row.default.get
            lines += [f"{indent}    for k, v in DEF{i}().items():", f"{indent}        item.setdefault(k, v)"]
    lines += [*(["    if scalar is not None and not out:", "        return scalar"] if scalars else []), "    return out or None"]
    # the map reads `whole`: ctx.value, or the value a compiled map hands it with that map's context
    # (a datatype map gets a Context of its own only when something reads its value through ctx)
    own_context = ["    elif whole is not ctx.value:", "        ctx = ctx.with_value(whole)"] if m.is_segment or calls_with_ctx else []
    split_only = _split_only(m, specs)
    body = lines
    lines = ["def run(ctx, out, whole=_CTX_VALUE):", "    if whole is _CTX_VALUE:", "        whole = ctx.value", *own_context, *prologue, *body]
    if split_only:  # the same rows on a split a caller hands over (_split_call_lines)
        lines += ["", "", "def run_split(ctx, out, pieces, leaf_sep, delims, plain):", *body]
    source, filename = "\n".join(lines) + "\n", f"<map {m.name}>"
    exec(compile(source, filename, "exec"), env)  # noqa: S102 - code generated above from checked specs
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # readable tracebacks
    m.compiled = env["run"]
    if split_only:
        m.compiled.split = env["run_split"]  # type: ignore[attr-defined]
    return m.compiled


def _split_only(m: Map, specs: Specs, seen: frozenset[int] = frozenset()) -> bool:
    """Whether a datatype map reads nothing of its value but the split (_SPLIT_LINES): its rows are
    text rows, constants of the value or a component, and split-only maps of either, under
    conditions inlined on components (so it never reads the value through ctx)."""
    if m.is_segment or m.build is not None or id(m) in seen:
        return False
    seen = seen | {id(m)}
    for row in m.rows:
        if row.when is not None and "(ctx)" in (_inline_condition(row.when) or "(ctx)"):
            return False
        src, k = row.source, row.part
        if src is not None and k < 0:
            return False
        if k >= 0 and _text_evaluator(row) is not None:
            continue
        if src is not None and src.subcomponent is not None:
            return False
        if row.value is None and _split_callee(row, specs, seen) is None:
            return False
    return True


def _own_whole_field(m: Map, row: Row) -> bool:
    """Whether a segment map's row reads the whole first (or every) repetition of a field of its own
    segment, MSH-1 and MSH-2 (literals) aside."""
    src = row.source
    return (src is not None and src.segment == m.datatype and src.repetition is None and src.component is None
            and not (m.datatype == "MSH" and src.field <= 2))


def _row_callee(m: Map, row: Row, specs: Specs) -> Map | None:
    """The split-only map a row of m hands its value, a component or (segment maps) its own field to."""
    if m.is_segment:
        return _split_callee(row, specs) if _own_whole_field(m, row) else None
    src = row.source
    return _split_callee(row, specs) if src is None or (row.part >= 0 and src.subcomponent is None) else None


def _split_callee(row: Row, specs: Specs, seen: frozenset[int] = frozenset()) -> Map | None:
    """The datatype map a row hands what it reads to, when that map is split-only: given the value (no
    source), a component or a field of a segment map's own segment, it is then called with the split
    (_split_call_lines) instead of a Value."""
    if row.value is not None or row.fn is not None or row.type is None or row.type in PRIMITIVES or row.type in functions.CONVERTERS:
        return None
    m = specs.maps[row.type]
    return m if _split_only(m, specs, seen) else None


def _split_call_lines(callee: Map, row: Row, i: int, env: dict[str, Any], specs: Specs) -> list[str]:
    """Statements setting `result` from the callee's run_split on the value's split (no source) or on
    component k's, as Value.pieces would split whole[k + 1] (a child holds the escape only where its parent does)."""
    env[f"SP{i}"] = (callee.compiled or compile_map(callee, specs)).split  # type: ignore[attr-defined]
    if row.source is not None and row.source.component is None:  # a repetition of a field of a segment map's own segment
        call = [f"result = SP{i}(ctx, {{}}, _raw.split(_d.component), _d.subcomponent, _d, _d.subcomponent not in _raw and _d.escape not in _raw)"]
    elif row.source is None:
        call = [f"result = SP{i}(ctx, {{}}, pieces, leaf_sep, delims, plain) if nparts else None"]
    else:
        k = row.part
        call = [f"_raw = pieces[{k}]",
                f"result = SP{i}(ctx, {{}}, [_raw] if plain or not leaf_sep else _raw.split(leaf_sep), None, delims, "
                "plain or delims.escape not in _raw)"]
    if callee.resource is not None:
        call += ["if result is not None:", f"    result = add_resource(ctx.state, {callee.resource!r}, result, {map_clean(callee, specs)})"]
    return call


# The value a datatype map reads, split in the compiled map: `pieces` its raw children (a leaf is its
# own only child, as in Value.parts), `leaf_sep` the separator ending a child's first leaf (None for
# a leaf), `delims` its delimiters (None for a literal). A child's text is then
# `raw.partition(leaf_sep)[0]`, unescaped when it holds the escape character: Value.text, inlined.
# `plain`: the value as sent holds neither, so each child is its own text (two scans of the whole
# instead of a partition and a scan per child read).
_SPLIT_LINES = (
    "if whole is None:",
    "    pieces, leaf_sep, delims, plain = (), None, None, True",
    "else:",
    "    pieces = whole._pieces",
    "    if pieces is None:",
    "        pieces = whole.pieces()",
    "    delims = whole._d",
    "    raw = whole.raw",
    "    if pieces is None:",
    "        pieces, leaf_sep = [raw], None",
    "        plain = delims is None or delims.escape not in raw",
    f"    elif whole._level == {COMPONENT - 1}:",
    "        leaf_sep = delims.subcomponent",
    "        plain = leaf_sep not in raw and delims.escape not in raw",
    "    else:",
    "        leaf_sep = None",
    "        plain = delims.escape not in raw",
)


def _inline_condition(when: Any, env: dict[str, Any] | None = None, name: str = "", own: str | None = None,
                      hoisted: dict[tuple[int | None, int | None], str] | None = None) -> str | None:
    """Python source for a map's `when`, testing `CWE.1 valued` / `not valued` / `HD.3 = ISO|UUID` clauses
    on the raw components of a datatype map's value, and `OBX-2 = NM|SN` / `PID-3.4 valued` clauses on
    the first repetition of a field of a segment map's own segment (`own`), as sources.Source.read would
    (valued: neither empty nor `\"\"`); other clauses are called (put in env as name0, name1...).
    `hoisted`: own fields and components whose `=` text the generated function reads once (_hoisted_equals).
    None when no clause can be inlined."""
    clauses = getattr(when, "clauses", None) or [when]
    tests = []
    inlined = False
    for j, clause in enumerate(clauses):
        valued = getattr(clause, "valued", None)
        equals = getattr(clause, "equals", None)
        src = (valued or equals or (None,))[0]
        if (src is not None and own is not None and src.segment == own and src.repetition is None
                and src.subcomponent is None):
            inlined = True
            if env is not None:
                env[f"{name}{j}"] = clause
                if equals is not None:
                    env[f"{name}{j}_values"] = equals[1]
            local = (hoisted or {}).get((src.field, src.component)) if equals is not None else None
            tests.append(_own_field_test(src, valued, equals, f"{name}{j}", local))
            continue
        if src is None or src.segment is not None or src.component is None or src.subcomponent is not None:
            if env is not None:
                env[f"{name}{j}"] = clause
            tests.append(f"{name}{j}(ctx)")
            continue
        inlined = True
        k = src.component - 1
        if valued is not None:
            test = f"(nparts > {k} and pieces[{k}] != '' and pieces[{k}] != '\"\"')"
            tests.append(test if valued[1] else f"not {test}")
        else:
            if env is not None:
                env[f"{name}{j}"] = equals[1]
            text = _read_once((hoisted or {}).get((src.field, src.component)), _plain_component_text(k))
            tests.append(f"{text} {'in' if equals[2] else 'not in'} {name}{j}")
    return " and ".join(tests) if inlined else None


def _own_field_test(src: Any, valued: Any, equals: Any, name: str, local: str | None = None) -> str:
    """A `valued` / `=` clause on the first repetition (or a component of it) of a field of the segment
    map's own segment, read from its place (`placed`) as Source.read would (an `=` clause's text from
    `local` when hoisted); the clause itself (`name`) when the map runs on another segment (placed is None)."""
    literal = src.segment == "MSH" and src.field <= 2  # MSH-1, MSH-2: read through their Values
    if valued is not None:
        is_valued = _own_field_valued(src.field, src.component) if literal else _own_raw_valued(src.field, src.component)
        test = is_valued if valued[1] else f"not {is_valued}"
    else:
        text = _read_once(local, _own_field_text(src.field, src.component) if literal else _own_raw_text(src.field, src.component))
        test = f"{text} {'in' if equals[2] else 'not in'} {name}_values"
    return f"({name}(ctx) if placed is None else {test})"


def _own_field_valued(fld: int, comp: int | None) -> str:
    """Whether the first repetition (or its component) of an own field is valued, as Source.read (binds _v)."""
    first = f"(_v := _r[0]{'' if comp is None else f'[{comp}]'})"
    return f"(bool(_r := {_own_reps(fld)}) and {first}.raw != '' and _v.raw != '\"\"')"


def _own_raw_valued(fld: int, comp: int | None) -> str:
    """_own_field_valued from the field as sent, without Values (binds _f to the repetition's or component's raw text)."""
    first = (f"(_f := fields[{fld}] if nfields > {fld} else '') != '' "
             "and (sd.repetition not in _f or (_f := _f.partition(sd.repetition)[0]) != '')")
    if comp is None:
        return f"({first} and _f != '\"\"')"
    return f"({first} and len(_p := _f.split(sd.component)) >= {comp} and (_f := _p[{comp - 1}]) != '' and _f != '\"\"')"


def _own_raw_text(fld: int, comp: int | None) -> str:
    """_own_field_text from the field as sent, without Values."""
    return f"(_raw_text(_f, sd).strip() if {_own_raw_valued(fld, comp)} else '')"


def _raw_text(raw: str, d: Any) -> str:
    """Value.text of a valued repetition or component as sent (not `\"\"` itself): its first leaf, decoded."""
    if d.component in raw:
        raw = raw.partition(d.component)[0]
    if d.subcomponent in raw:
        raw = raw.partition(d.subcomponent)[0]
    if raw == NULL:  # a first leaf split off as the null (v2.5 2.5.3)
        return ""
    return unescape(raw, d) if d.escape in raw else raw


def _own_reps(fld: int) -> str:
    """The repetitions of an own field: SegmentPlace.reps on the place's cache (`placed`), inlined."""
    return f"(placed[{fld}] if {fld} in placed else placed.setdefault({fld}, seg.reps({fld})))"


def _own_field_text(fld: int, comp: int | None) -> str:
    """The stripped text an `=` clause compares for an own field ('' when not valued)."""
    return f"(_v.text.strip() if {_own_field_valued(fld, comp)} else '')"


def _read_once(local: str | None, text: str) -> str:
    """The expression text, kept in local on first use when local is not None (a hoisted `=` text)."""
    return text if local is None else f"({local} if {local} is not None else ({local} := {text}))"


def _hoisted_equals(m: Map, own: str | None) -> dict[tuple[int | None, int | None], str]:
    """Own fields (field, component) of a segment map, or components (None, component) of a datatype
    map's value, that `=` clauses of two rows or more test, each with a local name."""
    counts: dict[tuple[int | None, int | None], int] = {}
    for row in m.rows:
        for clause in getattr(row.when, "clauses", None) or ([row.when] if row.when is not None else []):
            equals = getattr(clause, "equals", None)
            src = equals[0] if equals is not None else None
            if (src is not None and src.segment == own and src.repetition is None and src.subcomponent is None
                    and (own is not None or src.component is not None)):
                key = (src.field, src.component)
                counts[key] = counts.get(key, 0) + 1
    return {key: f"_eq{key[0] or 0}_{key[1] or 0}" for key, n in counts.items() if n > 1}


def _plain_component_text(k: int) -> str:
    """The expression for `_component_text` of component k, inlined when the value is `plain`."""
    # parenthesized whole: a conditional expression binds looser than the `in` the caller puts after it
    return (f"(((pieces[{k}].strip() if pieces[{k}] != '\"\"' else '') if nparts > {k} else '') if plain "
            f"else _component_text(pieces, {k}, leaf_sep, delims))")


def _component_text(pieces: list[str], k: int, leaf_sep: str | None, delims: Any) -> str:
    """Stripped decoded text of component k (see _SPLIT_LINES); '' when empty or `\"\"`."""
    if k >= len(pieces):
        return ""
    raw = pieces[k]
    if not raw or raw == '""':
        return ""
    if leaf_sep:
        raw = raw.partition(leaf_sep)[0]
        if raw == NULL:
            return ""
    if delims is not None and delims.escape in raw:
        raw = unescape(raw, delims)
    return raw.strip()


def _text_evaluator(row: Row) -> tuple[Callable[..., Any] | None, str] | None:
    """(function, call with {F} for it and {A} for the row's args) when a row converts the decoded text
    of its value with a primitive or a function's text form (functions.TEXT_FORMS), as `_evaluator`'s
    base for the row would; format/vocab follow it."""
    if row.value is not None:
        return None
    if row.fn is not None:
        form = functions.TEXT_FORMS.get(row.fn)
        return (form, "{F}(text, {A})") if form is not None else None
    if row.type is None:
        return None, "(text.strip() or None)"  # no type: the stripped text, as primitives.string
    primitive = PRIMITIVES.get(row.type)
    if primitive is None:
        form = functions.TEXT_FORMS.get(functions.CONVERTERS.get(row.type))  # type: ignore[arg-type]
        return (form, "{F}(text, {{}})") if form is not None else None  # a converter gets no args
    return primitive, ("_zoned_time({F}, text, ctx.state)" if row.type in ZONED else "{F}(text)")


def _evaluation_lines(row: Row, i: int, env: dict[str, Any], specs: Specs) -> list[str]:
    """Python statements setting `result` from `value` (and `ctx`) as `_evaluator`'s closure for the row
    would: a constant, a named function, a `type:` (primitive, converter or datatype map), else the
    stripped text; then `format` and `vocab`. What they call is bound in env under names ending in i."""
    if row.value is not None:
        env[f"K{i}"] = row.value.get
        body = [f"result = K{i}()"]
    elif row.fn is not None:
        env[f"FN{i}"], env[f"ARGS{i}"] = row.fn, row.args
        body = [f"result = FN{i}(ctx, value, ARGS{i})"]
    elif row.type is not None:
        body = _type_lines(row.type, i, env, specs, whole=row.source is None)  # a read value is never None
    else:  # primitives.string
        body = [f"result = (value.text.strip() or None){' if value is not None else None' if row.source is None else ''}"]
    return body + _format_vocab_lines(row, i, env)


def _format_vocab_lines(row: Row, i: int, env: dict[str, Any]) -> list[str]:
    """Statements applying a row's `format` then `vocab` to a result that is not None."""
    body = []
    if row.format is not None:
        env[f"FMT{i}"] = row.format
        body += ["if result is not None:", f"    result = FMT{i}.format(result)"]
    if row.vocab is not None:
        env[f"VOCAB{i}"] = row.vocab
        body += ["if result is not None:", f"    result = _translate(VOCAB{i}, result, ctx, R{i})"]
    return body


def _with_sub_context(whole: bool, call: list[str]) -> list[str]:
    """`call` (statements setting result from `value`), skipped for a missing whole value (a value read
    from a source is never None). A converter gets this context (functions read the value they are
    given, not ctx.value), a compiled datatype map this context and the value (see compile_map)."""
    if not whole:
        return call
    return ["if value is None:", "    result = None", "else:", *("    " + line for line in call)]


def _type_lines(type_name: str, i: int, env: dict[str, Any], specs: Specs, *, whole: bool = False) -> list[str]:
    """`_type_converter` as statements: a primitive on the value's text, a named converter, or a datatype
    map run on the value (inline: its compiled rows, given the value, add_resource for a resource)."""
    primitive = PRIMITIVES.get(type_name)
    if primitive is not None:
        env[f"P{i}"] = primitive
        test = " if value is not None else None" if whole else ""
        if type_name in ZONED:
            return [f"result = _zoned_time(P{i}, value.text, ctx.state){test}"]
        return [f"result = P{i}(value.text){test}"]
    converter = functions.CONVERTERS.get(type_name)
    if converter is not None:
        env[f"CV{i}"] = converter
        return _with_sub_context(whole, [f"result = CV{i}(ctx, value, {{}})"])
    m = specs.maps[type_name]
    env[f"D{i}"] = m
    if m.build is not None:
        return [f"result = _convert_map(D{i}, value, ctx){' if value is not None else None' if whole else ''}"]
    call = [f"result = (D{i}.compiled or compile_map(D{i}, ctx.state.specs))(ctx, {{}}, value)"]
    if m.resource is not None:
        clean = map_clean(m, specs)
        call += ["if result is not None:", f"    result = add_resource(ctx.state, {m.resource!r}, result, {clean})"]
    return _with_sub_context(whole, call)


def _entries_of(m: Map, specs: Specs) -> list[Entry]:
    """The message spec entries running m on a segment (out: a record's resource, for `into` one made before)."""
    return [entry for spec in (*specs.messages.values(), specs.default) for entries in spec.entries.values()
            for entry in entries if entry.map is m]


def _gives_list(row: Row, specs: Specs) -> bool:
    """Whether a row's result may be a list (an array target then extends with it): not for a
    primitive, the text, a format, a resource's Reference or a datatype map without scalar rows."""
    if row.format is not None:
        return False
    if row.value is not None:
        return isinstance(row.value.get(), list)
    if row.fn is not None:
        return True
    if row.type is None or row.type in PRIMITIVES:
        return False
    if row.type in functions.CONVERTERS:
        return True
    m = specs.maps[row.type]
    return m.build is not None or (m.resource is None and any(r.target is None for r in m.rows))


def _zoned_time(primitive: Callable[[str, tzinfo], Any], text: str, state: MessageState) -> Any:
    """A dateTime/instant primitive of text in the conversion's zone, worked out once per conversion
    for each text: a message repeats its times (MSH-7 and EVN-2, OBX-14 of every result)."""
    key = (primitive, text)
    found = state.times.get(key)
    if found is None:
        found = state.times[key] = primitive(text, state.zone)
    return found


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


def _evaluator(row: Row, specs: Specs) -> Evaluate:
    """Compile what a row does with one source value (constant, function, type, format, vocabulary) into
    one closure, once per process; the spec data stays the single description of the row."""
    if row.value is not None:
        constant = row.value
        base: Evaluate = lambda value, ctx: constant.get()  # noqa: E731
    elif row.fn is not None:
        fn, args = row.fn, row.args
        base = lambda value, ctx: fn(ctx, value, args)  # noqa: E731
    elif row.type is not None:
        base = _type_converter(row.type, specs)
    else:
        base = lambda value, ctx: (value.text.strip() or None) if value is not None else None  # noqa: E731 - primitives.string
    template, vocab_name = row.format, row.vocab
    if template is None and vocab_name is None:
        row.evaluate = base
        return base

    def evaluate(value: Value | None, ctx: Context) -> Any:
        result = base(value, ctx)
        if result is None:
            return None
        if template is not None:
            result = template.format(result)
        if vocab_name is not None:
            result = _translate(vocab_name, result, ctx, row)
        return result

    row.evaluate = evaluate
    return evaluate


def _type_converter(type_name: str, specs: Specs) -> Evaluate:
    """`type:` of a row as a closure: a primitive, a named converter or a datatype map (see `convert`)."""
    primitive = PRIMITIVES.get(type_name)
    if primitive is not None:
        if type_name in ZONED:
            return lambda value, ctx: primitive(value.text, ctx.state.zone) if value is not None else None
        return lambda value, ctx: primitive(value.text) if value is not None else None
    converter = functions.CONVERTERS.get(type_name)
    if converter is not None:
        return lambda value, ctx: converter(ctx, value, {}) if value is not None else None  # functions read value, not ctx.value
    m = specs.maps[type_name]
    if m.build is not None:
        return lambda value, ctx: _convert_map(m, value, ctx) if value is not None else None
    resource = m.resource
    clean = map_clean(m, specs)

    def through_map(value: Value | None, ctx: Context) -> Any:  # _convert_map, inlined: the hottest call
        if value is None:
            return None
        sub = ctx.with_value(value)
        built = (m.compiled or compile_map(m, ctx.state.specs))(sub, {})
        if built is None or resource is None:
            return built
        return add_resource(ctx.state, resource, built, clean)

    return through_map


def _convert_map(m: Map, value: Value, ctx: Context) -> Any:
    built = run_map(m, ctx.with_value(value))
    if built is None or m.resource is None:
        return built
    return add_resource(ctx.state, m.resource, built)


def convert(type_name: str, value: Value | None, ctx: Context) -> Any:
    """Convert a value with a primitive, a named converter, or a datatype map (which may make a resource)."""
    return _type_converter(type_name, ctx.state.specs)(value, ctx)


def add_resource(state: MessageState, resource_type: str, body: dict[str, Any], clean: bool = False) -> dict[str, str]:
    """Register a resource made from a datatype (Practitioner, Organization, Location...); dedupe by id.
    `clean`: body was built by a map that never writes an empty element (map_clean), so is not pruned."""
    if not clean:
        body = prune(body)
        if not body:
            return None  # type: ignore[return-value]
    name = ids.identifier_name(resource_type, body, state.facility) or ids.content_name(resource_type, body)
    cache = state.ids  # _named_id inline (a call per made resource): a datatype repeated in a message is hashed once
    rid = cache.get(name)
    if rid is None:
        rid = cache[name] = ids.uuid5_text(name)
    reference = f"{resource_type}/{rid}"
    made = state.made
    have = made.get(reference)
    if have is None:
        made[reference] = {"resourceType": resource_type, "id": rid, **body}
    else:
        merge(have, body)
    return {"reference": reference}


def _identifier_id(resource_type: str, body: dict[str, Any], facility: str, cache: dict[str, str]) -> str | None:
    """The id from the first identifier with a value (mappers.ids rule); cache: MessageState.ids."""
    name = ids.identifier_name(resource_type, body, facility)
    return _named_id(name, cache) if name is not None else None


def _named_id(name: str, cache: dict[str, str]) -> str:
    """uuid5 of an id name, hashed once per conversion (cache: MessageState.ids)."""
    rid = cache.get(name)
    if rid is None:
        rid = cache[name] = ids.uuid5_text(name)
    return rid


def _translate(map_name: str, result: Any, ctx: Context, row: Row) -> Any:
    """Apply an IG vocabulary map to a code, a Coding or a CodeableConcept (mapped coding first)."""
    if isinstance(result, str):
        mapped = vocab.translation(map_name, result)  # read only: its code is what is kept
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
            # each sent coding (CWE.1, then the alternates CWE.4/CWE.10) adds its mapped Coding, in
            # the same order, before the sender's; only the first one's miss is reported
            added = 0
            for n in range(len(codings)):
                code = codings[n + added].get("code")  # the n-th sent coding, behind the ones added
                mapped = vocab.translation(map_name, code) if code else None  # copied when added
                if mapped is None:
                    if n == 0 and code:
                        ctx.state.report.vocabulary_miss(ctx, row.label, map_name, code)
                    continue
                system, target = mapped.get("system"), mapped.get("code")
                for c in codings:
                    if c.get("code") == target and c.get("system") == system:
                        break
                else:
                    codings.insert(added, mapped.copy())
                    added += 1
    return result


# --- which maps need no prune -----------------------------------------------------------------
# A compiled map never makes an empty container itself (a target path's steps are made only to
# hold the value written), so what it builds is free of empty elements when every value a row can
# write is: primitives and the stripped text are None or not empty; a datatype map that makes a
# resource gives a Reference; constants and vocabulary maps are checked here; the functions not
# listed in functions.CLEAN_RESULTS (among them those writing into the resource directly) are not.
# A datatype map's resource is pruned when the map is not clean (add_resource); a record, when a
# row that is not clean ran for it (the compiled row marks ctx.record), and in _finish's cases.


def map_clean(m: Map, specs: Specs) -> bool:
    """Whether nothing m builds can hold an empty string, array or object (settled once, on m.clean)."""
    if m.clean is None:
        m.clean = False  # a map reaching itself again is not proven clean
        if m.build is not None:
            m.clean = _clean_function(m.build)
        else:
            m.clean = all(_row_clean(row, specs) for row in m.rows)
    return m.clean


def _clean_function(fn: Callable[..., Any]) -> bool:
    return any(fn is functions.FUNCTIONS.get(name) for name in functions.CLEAN_RESULTS)


def item_clean(ref: Ref | Link, specs: Specs) -> bool:
    """Whether what a ref or link adds to its Reference item (`set`, `with`) never holds an empty element."""
    if ref.clean is None:
        ref.clean = _constant_clean(ref.set) and (ref.map is None or map_clean(ref.map, specs))
    return ref.clean


def _constant_clean(constant: Constant | None) -> bool:
    if constant is None:
        return True
    value = constant.get()
    return value is not None and prune(value) is value  # prune hands back what has nothing to drop


def _row_clean(row: Row, specs: Specs) -> bool:
    if not (_constant_clean(row.value) and _constant_clean(row.set) and _constant_clean(row.default)):
        return False
    if row.vocab is not None and not vocab.translations_clean(row.vocab):
        return False
    if row.format is not None and not _FORMAT_FIELD.sub("", row.format):
        return False  # a template with text of its own is never empty
    if row.fn is not None:
        return _clean_function(row.fn)
    if row.type is None or row.type in PRIMITIVES:
        return True
    converter = functions.CONVERTERS.get(row.type)
    if converter is not None:
        return _clean_function(converter)
    m = specs.maps[row.type]
    return m.resource is not None or map_clean(m, specs)


_FORMAT_FIELD = re.compile(r"\{[^}]*\}")


# --- the message walk --------------------------------------------------------------------------


def _place_segments(state: MessageState) -> None:
    """Assign each segment to its group instance by the message spec's group heads."""
    heads = state.spec.heads
    group_names = state.group_names
    places = state.places
    places_by_id = state.places_by_id
    stack: list[list[Any]] = [[None, 0, -1, None]]  # frames: [group, instance id, last head position, group name]
    path: Path = ()  # the instance ids of stack[1:], cut or extended only when a head changes the stack
    counter = 0
    new_place = object.__new__
    for index, seg in enumerate(state.message.segments):
        sid = seg.fields[0]
        candidates = heads.get(sid)
        if candidates:
            for level in range(len(stack) - 1, -1, -1):
                level_name = stack[level][3]
                for group, pos in candidates:
                    if group.parent == level_name:
                        break
                else:
                    continue
                child = stack[level + 1] if level + 1 < len(stack) else None
                if child is not None and child[0] is group and pos > child[2]:
                    del stack[level + 2 :]
                    child[2] = pos
                    path = path[: level + 1]
                else:
                    counter += 1
                    group_names[counter] = group.name
                    del stack[level + 1 :]
                    stack.append([group, counter, pos, group.name])
                    path = (*path[:level], counter)
                break
            else:  # no open group takes it: a new instance of its first group, at the top
                group, pos = candidates[0]
                counter += 1
                group_names[counter] = group.name
                del stack[1:]
                stack.append([group, counter, pos, group.name])
                path = (counter,)
        place = new_place(SegmentPlace)  # SegmentPlace(seg, path, index) without its __init__ call
        place.segment = seg
        place.path = path
        place.index = index
        place._reps = {}
        places.append(place)
        same = places_by_id.get(sid)
        if same is None:
            places_by_id[sid] = [place]
        else:
            same.append(place)


def convert_message(
    message: Message, raw: bytes | None = None, *, specs: Specs | None = None, zone: tzinfo = timezone.utc
) -> tuple[dict[str, Any], ConversionReport]:
    """Map one parsed message to a FHIR R4 transaction Bundle (plain dicts) and its unmapped report;
    times sent without an offset are read in `zone` (the gateway's PULSEBRIDGE_TIMEZONE setting)."""
    specs = specs or load_specs()
    spec = specs.message_spec(message.structure, message.message_code, message.trigger_event)
    msh = message.msh
    facility = msh.get(4) or msh.get(3)  # HD.1 namespace id of the sending facility (or application)
    if raw is None:
        raw = message.encode().encode("utf-8")
    state = MessageState(message, raw, specs, spec, facility, zone)
    state.report.message_spec = spec.file
    _place_segments(state)
    entries_by_segment = spec.entries
    report = state.report
    segment_done = report.segment_done
    records = state.records
    by_name = state.by_name
    for place in state.places:
        seg = place.segment
        entries = entries_by_segment.get(seg.fields[0])
        if not entries:
            segment_done(seg, [])
            continue
        reads: list[frozenset[int]] = []  # the field sets of the maps applied, joined by the report if read
        ctx = Context(state, place)  # one per segment: each entry sets the record it builds or merges into
        for entry in entries:
            ctx.record = None
            if entry.when is not None and not entry.when(ctx):
                continue
            m = entry.map
            assert m is not None
            reads.append(m.fields)
            if entry.with_fields:
                reads.append(entry.with_fields)
            if entry.into:
                target = _enclosing(state, entry.into, place.path, place.index)
                if target is not None:
                    ctx.record = target
                    run_map(m, ctx, target.resource)
                    if m.build is not None and not map_clean(m, specs):
                        target.clean = False
                    continue
                if entry.as_name is None:
                    report.unplaced(seg, entry.map_name, entry.into)
                    continue
            record = Record(entry.as_name, place.path, place.index, {}, m, seg, entry)
            ctx.record = record
            built = run_map(m, ctx, record.resource)
            if not built and not record.resource:
                continue
            if m.required:
                _check_required(m, record.resource, seg)
            if m.build is not None and not map_clean(m, specs):
                record.clean = False
            record.seq = len(records)
            records.append(record)
            if record.name:
                by_name.setdefault(record.name, []).append(record)
        segment_done(seg, reads)
    return _finish(state), report


def _check_required(m: Map, resource: dict[str, Any], seg: Segment) -> None:
    """A map's `required` elements (specs._compile_required): the first one the segment left empty is
    the sender's RequiredFieldMissing at its field, whether the field was empty or held nothing usable."""
    for element, fld in m.required:
        if element not in resource:
            raise RequiredFieldMissing(
                f"{seg.id}-{fld} gives no {m.resource}.{element}, which FHIR R4 requires",
                location=Location(seg.id, seg.sequence, fld))


def _record_id(record: Record, state: MessageState, busy: set[int], *, by_identifier: bool = True) -> str:
    if record.id is not None:
        return record.id
    m = record.map
    rtype = m.resource or "Basic"
    keys = m.key
    rid = None
    if by_identifier and (not keys or keys[0] == "identifier"):
        rid = _identifier_id(rtype, record.resource, state.facility, state.ids)
    if rid is None and keys:
        id_keys = m.id_keys
        if id_keys is None:
            id_keys = m.id_keys = _id_keys(keys)
        busy.add(id(record))
        parts = [state.facility]
        segment = record.segment
        for seg_id, name, number in id_keys:
            if seg_id is None:
                named = [r for r in state.by_name.get(name, ()) if id(r) not in busy]
                other = _nearest(named, record.path, record.index)
                parts.append(_record_id(other, state, busy) if other is not None else "")
            else:
                seg = segment if seg_id == segment.id else Context(state, _place_of(state, record)).segment_in_scope(seg_id)
                parts.append(seg.raw(number) if seg is not None else "")
        busy.discard(id(record))
        if any(parts[1:]):
            rid = ids.resource_id(rtype, parts)
    if rid is None:
        rid = ids.content_id(rtype, record.resource)
    record.id = rid
    return rid


def _id_keys(keys: list[str]) -> tuple[tuple[str | None, str, int], ...]:
    """A map's `key` entries other than `identifier`: `@name` -> (None, name, 0), `SEG-n` -> (SEG, "", n)."""
    parsed: list[tuple[str | None, str, int]] = []
    for key in keys:
        if key == "identifier":
            continue
        if key.startswith("@"):
            parsed.append((None, key[1:], 0))
        else:
            seg_id, _, rest = key.partition("-")
            parsed.append((seg_id, "", int(rest)))
    return tuple(parsed)


def _within(state: MessageState, candidates: list[Record], path: Path, group: str | None) -> list[Record]:
    """Keep the candidates inside the enclosing instance of `group` (all of them when group is None)."""
    if group is None:
        return candidates
    for depth in range(len(path) - 1, -1, -1):
        if state.group_names.get(path[depth]) == group:
            prefix = path[: depth + 1]
            return [c for c in candidates if c.path[: depth + 1] == prefix]
    return []


def _referenced(candidates: list[Record] | None, state: MessageState, record: Record, within: str | None) -> Record | None:
    """The record a ref or link of record names: the nearest candidate (inside `within`), never record itself."""
    if not candidates:
        return None
    if within is not None:
        candidates = _within(state, candidates, record.path, within)
    # one candidate (the common case) is the nearest at some level, whatever its place
    other = candidates[0] if len(candidates) == 1 else _nearest(candidates, record.path, record.index)
    return None if other is record else other


def _place_of(state: MessageState, record: Record) -> SegmentPlace:
    return state.places[record.index]


def _separate_reused_identifiers(state: MessageState) -> None:
    """Two segments read by the same map stay two resources even when the sender reused an
    identifier (e.g. one OBX-21 on several OBX): later ones take the id of their key fields.
    Records of different maps sharing an identifier (ORC and OBR of one order) still merge."""
    owners: dict[tuple[str, str | None], Record] = {}
    for record in state.records:
        first = owners.setdefault((record.map.name, record.id), record)
        if first is record or first.index == record.index:
            continue
        record.id = None
        rid = _record_id(record, state, set(), by_identifier=False)
        if (record.map.name, rid) in owners:  # identical key fields too: the segment's position decides
            rid = record.id = ids.resource_id(record.map.resource or "Basic", [rid, str(record.index)])
        owners[(record.map.name, rid)] = record


def _complete_item(state: MessageState, record: Record, item: dict[str, Any], ref: Ref | Link) -> None:
    """A Reference's item gets the constant `set` of its ref/link, then what its `with` map
    computes from the referring segment (Encounter.diagnosis.use/rank from DG1-6/DG1-15)."""
    if ref.set is not None:
        item.update(ref.set.get())
    if ref.map is not None:
        built = run_map(ref.map, Context(state, state.places[record.index], None, record))
        if built:
            merge(item, built)


def _finish(state: MessageState) -> dict[str, Any]:
    records = state.records
    busy: set[int] = set()
    for record in records:
        _record_id(record, state, busy)
    _separate_reused_identifiers(state)
    by_name = state.by_name
    for record in records:
        entry = record.entry
        for ref in entry.refs:
            other = _referenced(by_name.get(ref.name), state, record, ref.within)
            if other is None:
                continue
            item = ref.target.assign(record.resource, {"reference": f"{other.map.resource}/{other.id}"})
            if item is not None and (ref.set is not None or ref.map is not None):
                _complete_item(state, record, item, ref)
                if not item_clean(ref, state.specs):
                    record.clean = False
        for link in entry.links:
            other = _referenced(by_name.get(link.name), state, record, link.within)
            if other is None:
                continue
            item = link.target.assign(other.resource, {"reference": f"{record.map.resource}/{record.id}"})
            if item is not None and (link.set is not None or link.map is not None):
                _complete_item(state, record, item, link)
                if not item_clean(link, state.specs):
                    other.clean = False
    # keyed by the reference string "Type/id": it is also the Provenance target and the entry's request url
    resources: dict[str, dict[str, Any]] = {}
    dirty: set[str] = set()  # resources some record of which may hold an empty element
    keys: list[str] = []  # each record's key, by record.seq
    for record in records:
        rtype = record.map.resource or "Basic"
        key = f"{rtype}/{record.id}"
        keys.append(key)
        have = resources.get(key)
        if have is None:
            resources[key] = {"resourceType": rtype, "id": record.id, **record.resource}
        else:
            merge(have, record.resource)
        if not record.clean:
            dirty.add(key)
    made_by_key = state.made  # datatype-made resources are pruned when added (add_resource)
    shared = made_by_key.keys() & resources.keys()  # a record's resource a datatype also made (rare)
    for key in shared:
        merge(resources[key], made_by_key[key])
        dirty.add(key)  # located_at_address writes into made resources after they were added
    resources.update(made_by_key if not shared else {k: v for k, v in made_by_key.items() if k not in shared})
    for record in records:
        if record.map.target_all:
            own = keys[record.seq]
            res = resources[own]
            res["target"] = [{"reference": r} for r in resources if r != own]
            if not res["target"]:
                dirty.add(own)
    state.report.resources_made(records, keys, state.made)
    for key in dirty:
        resources[key] = prune(resources[key])  # keeps the key's place; None when nothing is left
    entries = [
        {"fullUrl": f"urn:uuid:{body['id']}", "resource": body, "request": {"method": "PUT", "url": key}}
        for key, body in resources.items()
        if body is not None and len(body) > 2  # only resourceType and id: nothing was mapped
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
