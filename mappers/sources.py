"""Source paths and conditions of spec rows: which v2 value a row reads, and when it applies.

A source path is relative to what the map reads:
- a segment map reads fields: `PID-3` (every repetition when the target appends, else the
  first), `PID-3(2)` (one repetition), `PID-3.4`, `PID-3.4.2`; a path naming another segment
  (`ORC-12` in the OBR map) reads that segment from the same group (see engine.Scope);
- a datatype map reads components of one value: `CX.4`, `CX.4.2` (the type prefix is checked).

Conditions (`when`) are deliberately tiny: clauses joined by ` and `, each one of
  PATH valued | PATH not valued | PATH = A|B | PATH != A|B | NAME(PATH) | not NAME(PATH)
where NAME is a predicate registered in mappers.functions. Anything cleverer is a named function.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from adapters.hl7v2.message import Value

if TYPE_CHECKING:
    from mappers.engine import Context

_SEGMENT_PATH = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d+)(?:\((\d+)\))?(?:\.(\d+)(?:\.(\d+))?)?$")
_COMPONENT_PATH = re.compile(r"^(?:([A-Z]{2,3})\.)?(\d+)(?:\.(\d+))?$")


@dataclass(frozen=True, slots=True)
class Source:
    """A compiled source path."""

    text: str
    segment: str | None  # segment maps: the segment id; None in datatype maps
    field: int | None
    repetition: int | None  # None: the row decides (all or first)
    component: int | None
    subcomponent: int | None

    def values(self, ctx: Context, every: bool) -> list[Value]:
        """The Values this path names in the current context (empty list when not valued)."""
        if self.segment is None:
            if ctx.value is None:
                return []
            parts = ctx.parts()  # the value split once per map run, not once per row
            if self.component is None:
                value = ctx.value
            elif self.component <= len(parts):
                value = parts[self.component - 1]
                if self.subcomponent is not None:
                    value = value[self.subcomponent]
            else:
                return []
            return [value] if value.raw and value.raw != '""' else []
        seg = ctx.segment if ctx.segment is not None and ctx.segment.id == self.segment else ctx.segment_in_scope(self.segment)
        if seg is None:
            return []
        reps = seg.reps(self.field)  # type: ignore[arg-type]
        if not reps:
            return []
        if self.repetition is not None:
            reps = reps[self.repetition - 1 : self.repetition]
        elif not every:
            reps = reps[:1]
        out = []
        for value in reps:
            if self.component is not None:
                value = value[self.component]
                if self.subcomponent is not None:
                    value = value[self.subcomponent]
            if value.raw and not value.is_null:
                out.append(value)
        return out

    def first(self, ctx: Context) -> Value | None:
        found = self.values(ctx, False)
        return found[0] if found else None


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
    """Compile a `when` string into a predicate over the context."""
    clauses = [c.strip() for c in re.split(r"\s+and\s+", str(text).strip()) if c.strip()]
    tests = [_clause(c, datatype, predicates, text) for c in clauses]
    if len(tests) == 1:
        return tests[0]
    return lambda ctx: all(t(ctx) for t in tests)


def _clause(clause: str, datatype: str | None, predicates: dict[str, Callable[..., bool]], whole: str) -> Predicate:
    call = _CALL.match(clause)
    if call:
        fn = predicates.get(call["name"])
        if fn is None:
            raise ValueError(f"condition {whole!r}: no predicate named {call['name']!r} in mappers.functions")
        src = compile_source(call["path"], datatype) if call["path"].strip() else None
        negate = bool(call["neg"])
        return lambda ctx: fn(ctx, src.first(ctx) if src else None) != negate
    m = _CLAUSE.match(clause)
    if not m:
        raise ValueError(f"condition {whole!r}: cannot read {clause!r} (PATH valued | PATH not valued | PATH = A|B | PATH != A|B)")
    src = compile_source(m["path"], datatype)
    if m["op"] is None:
        want = not m["not"]
        return lambda ctx: bool(src.values(ctx, False)) == want
    wanted = frozenset(v.strip().strip('"') for v in m["vals"].split("|"))
    if m["op"] == "=":
        return lambda ctx: _text(src, ctx) in wanted
    return lambda ctx: _text(src, ctx) not in wanted


def _text(src: Source, ctx: Context) -> str:
    value = src.first(ctx)
    return value.text.strip() if value is not None else ""
