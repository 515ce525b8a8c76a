"""Source paths and conditions of spec rows: which v2 value a row reads, and when it applies.

A source path is relative to what the map reads:
- a segment map reads fields: `PID-3` (every repetition when the target appends, else the
  first), `PID-3(2)` (one repetition), `PID-3.4`, `PID-3.4.2`; a path naming another segment
  (`ORC-12` in the OBR map) reads that segment from the same group (engine.Context.segment_in_scope);
- a datatype map reads components of one value: `CX.4`, `CX.4.2` (the type prefix is checked).

Conditions (`when`) are deliberately tiny: clauses joined by ` and `, each one of
  PATH valued | PATH not valued | PATH = A|B | PATH != A|B | NAME(PATH) | not NAME(PATH)
where NAME is a predicate registered in mappers.functions. Anything cleverer is a named function.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import TYPE_CHECKING, Callable, Sequence

from adapters.hl7v2.message import Value

if TYPE_CHECKING:
    from mappers.engine import Context

_SEGMENT_PATH = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d+)(?:\((\d+)\))?(?:\.(\d+)(?:\.(\d+))?)?$")
_COMPONENT_PATH = re.compile(r"^(?:([A-Z][A-Z0-9]{1,2})\.)?(\d+)(?:\.(\d+))?$")


_EMPTY: tuple[Value, ...] = ()


@dataclass(frozen=True, slots=True)
class Source:
    """A compiled source path; `read(ctx, every)` is the fast reader the engine calls."""

    text: str
    segment: str | None  # segment maps: the segment id; None in datatype maps
    field: int | None
    repetition: int | None  # None: the row decides (all or first)
    component: int | None
    subcomponent: int | None
    read: Callable[[Context, bool], Sequence[Value]] = dc_field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        reader = _component_reader(self) if self.segment is None else _field_reader(self)
        object.__setattr__(self, "read", reader)

    def values(self, ctx: Context, every: bool) -> list[Value]:
        """The Values this path names in the current context (empty list when not valued)."""
        return list(self.read(ctx, every))

    def first(self, ctx: Context) -> Value | None:
        found = self.read(ctx, False)
        return found[0] if found else None


def _component_reader(src: Source) -> Callable[[Context, bool], Sequence[Value]]:
    """Datatype maps: a component (or subcomponent) of the value being mapped, split once per map run."""
    component, subcomponent = src.component, src.subcomponent
    if component is None:

        def whole(ctx: Context, every: bool) -> Sequence[Value]:
            value = ctx.value
            if value is None:
                return _EMPTY
            raw = value.raw
            return (value,) if raw and raw != '""' else _EMPTY

        return whole
    index = component - 1

    def part(ctx: Context, every: bool) -> Sequence[Value]:
        parts = ctx._parts
        if parts is None:
            if ctx.value is None:
                return _EMPTY
            parts = ctx.parts()  # the value split once per map run, not once per row
        if index >= len(parts):
            return _EMPTY
        value = parts[index]
        if subcomponent is not None:
            if not value.raw:
                return _EMPTY
            value = value[subcomponent]
        raw = value.raw
        return (value,) if raw and raw != '""' else _EMPTY

    return part


def _field_reader(src: Source) -> Callable[[Context, bool], Sequence[Value]]:
    """Segment maps: repetitions of a field of this segment (or of one in scope), then components."""
    segment_id, number = src.segment, src.field
    repetition, component, subcomponent = src.repetition, src.component, src.subcomponent

    def read(ctx: Context, every: bool) -> Sequence[Value]:
        seg = ctx.segment
        if seg is not None and seg.fields[0] == segment_id:
            place = ctx.place
            reps = place.reps(number) if place is not None else seg.reps(number)  # type: ignore[arg-type]
        else:
            reps = ctx.reps_in_scope(segment_id, number)  # type: ignore[arg-type]
        if not reps:
            return _EMPTY
        if repetition is not None:
            reps = reps[repetition - 1 : repetition]
        elif not every:
            if component is None:  # the commonest read: the first repetition, whole
                value = reps[0]
                raw = value.raw
                return (value,) if raw and raw != '""' else _EMPTY
            reps = reps[:1]
        if component is None:
            return [v for v in reps if v.raw and v.raw != '""']
        out = []
        for value in reps:
            value = value[component]
            if subcomponent is not None:
                value = value[subcomponent]
            raw = value.raw
            if raw and raw != '""':
                out.append(value)
        return out

    return read


def compile_source(text: str, datatype: str | None) -> Source:
    """Parse a `from` path; datatype is the map's v2 type for component paths (None in segment maps)."""
    text = str(text).strip()
    m = _SEGMENT_PATH.match(text)
    if m:
        seg, field, rep, comp, sub = m.groups()
        return Source(text, seg, int(field), int(rep) if rep else None, int(comp) if comp else None, int(sub) if sub else None)
    m = _COMPONENT_PATH.match(text)
    if m and datatype is not None:
        prefix, comp, sub = m.groups()
        if prefix and prefix != datatype:
            raise ValueError(f"source {text!r} names type {prefix} inside a {datatype} map")
        return Source(text, None, None, None, int(comp), int(sub) if sub else None)
    raise ValueError(f"bad source path {text!r} (expected PID-3(2).4.1 in segment maps, CX.4.2 in datatype maps)")


Predicate = Callable[["Context"], bool]
_CLAUSE = re.compile(r"^(?P<path>\S+)\s+(?:(?P<not>not\s+)?valued|(?P<op>!?=)\s*(?P<vals>.+))$")
_CALL = re.compile(r"^(?P<neg>not\s+)?(?P<name>[a-z_][a-z0-9_]*)\((?P<path>[^)]*)\)$")


def compile_condition(text: str, datatype: str | None, predicates: dict[str, Callable[..., bool]]) -> Predicate:
    """Compile a `when` string into a predicate over the context. A `valued` clause carries
    `.valued = (Source, wanted)`, an `=`/`!=` clause `.equals = (Source, values, is_equal)` and an
    `and` its `.clauses`, so generated code can test them inline."""
    clauses = [c.strip() for c in re.split(r"\s+and\s+", str(text).strip()) if c.strip()]
    tests = [_clause(c, datatype, predicates, text) for c in clauses]
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        both: Predicate = lambda ctx: first(ctx) and second(ctx)  # noqa: E731
        both.clauses = tests  # type: ignore[attr-defined]
        return both
    every: Predicate = lambda ctx: all(t(ctx) for t in tests)  # noqa: E731
    every.clauses = tests  # type: ignore[attr-defined]
    return every


def _clause(clause: str, datatype: str | None, predicates: dict[str, Callable[..., bool]], whole: str) -> Predicate:
    call = _CALL.match(clause)
    if call:
        fn = predicates.get(call["name"])
        if fn is None:
            raise ValueError(f"condition {whole!r}: no predicate named {call['name']!r} in mappers.functions")
        src = compile_source(call["path"], datatype) if call["path"].strip() else None
        negate = bool(call["neg"])
        if src is None:
            return lambda ctx: fn(ctx, None) != negate
        read = src.read

        def call_test(ctx: Context) -> bool:
            found = read(ctx, False)
            return fn(ctx, found[0] if found else None) != negate

        return call_test
    m = _CLAUSE.match(clause)
    if not m:
        raise ValueError(f"condition {whole!r}: cannot read {clause!r} (PATH valued | PATH not valued | PATH = A|B | PATH != A|B)")
    src = compile_source(m["path"], datatype)
    if m["op"] is None:
        read = src.read
        if m["not"]:
            test: Predicate = lambda ctx: not read(ctx, False)  # noqa: E731
        else:
            test = lambda ctx: bool(read(ctx, False))  # noqa: E731
        test.valued = (src, not m["not"])  # type: ignore[attr-defined]  # for engine.compile_map to inline
        return test
    wanted = frozenset(v.strip().strip('"') for v in m["vals"].split("|"))
    read = src.read
    if m["op"] == "=":
        test = lambda ctx: ((found := read(ctx, False)) and found[0].text.strip() or "") in wanted  # noqa: E731
    else:
        test = lambda ctx: ((found := read(ctx, False)) and found[0].text.strip() or "") not in wanted  # noqa: E731
    test.equals = (src, wanted, m["op"] == "=")  # type: ignore[attr-defined]  # for engine.compile_map to inline
    return test
