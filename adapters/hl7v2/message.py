"""The parsed HL7 v2 message: segments, fields, repetitions, components, subcomponents (v2.5 2.5-2.6).

Parsing splits segments and fields only; repetitions, components and escapes are resolved on
access, so the hot path pays only for what a mapping reads.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterator, NamedTuple, Sequence

from adapters.hl7v2.charset import CharsetDecision
from adapters.hl7v2.delimiters import Delimiters
from adapters.hl7v2.errors import Location, ParseError
from adapters.hl7v2.escape import unescape
from adapters.hl7v2.structures import structure_for

REPETITION, COMPONENT, SUBCOMPONENT = 0, 1, 2


NULL = '""'  # the explicit null (v2.5 2.5.3): a field, component or subcomponent sent as exactly ""


class Value:
    """One repetition of a field, or one component, or one subcomponent; children are 1-based.

    `text` is the decoded first leaf: reading a primitive where a composite was sent takes its
    first component, as HL7 receivers do (v2.5 2.6.3). A leaf sent as `""` (the null) reads as
    '' in every text helper: it deletes a value and is never a value itself (v2.5 2.5.3).
    """

    __slots__ = ("raw", "_d", "_level", "_pieces", "_kids")

    def __init__(self, raw: str, delimiters: Delimiters | None, level: int = REPETITION) -> None:
        self.raw = raw
        self._d = delimiters  # None: a literal (MSH-1, MSH-2), never split or unescaped
        self._level = level
        self._pieces: list[str] | None = None  # raw children, split on first use (values are immutable)
        self._kids: list[Value | None] | None = None  # children by position, made one by one by __getitem__ (all by parts())

    def pieces(self) -> list[str] | None:
        """The raw (undecoded) children, split once per Value; None for a leaf (a subcomponent or a literal)."""
        pieces = self._pieces
        if pieces is None:
            d = self._d
            if d is None:
                return None
            level = self._level
            if level == REPETITION:
                pieces = self._pieces = self.raw.split(d.component)
            elif level == COMPONENT:
                pieces = self._pieces = self.raw.split(d.subcomponent)
        return pieces

    def parts(self) -> list[Value]:
        """The children (components of a repetition, subcomponents of a component); do not mutate."""
        kids = self._kids
        if kids is None or None in kids:
            pieces = self._pieces
            if pieces is None:
                pieces = self.pieces()
                if pieces is None:
                    return [self]
            d, level = self._d, self._level + 1
            if kids is None:
                kids = [_made(p, d, level) for p in pieces]
            else:  # children already made keep their identity (and what they split)
                kids = [_made(p, d, level) if kid is None else kid for kid, p in zip(kids, pieces)]
            self._kids = kids  # __getitem__ answers from it
        return kids  # type: ignore[return-value]

    def __getitem__(self, index: int) -> Value:
        kids = self._kids
        if kids is not None and 0 < index <= len(kids):  # a mapping reads the same component again and again
            kid = kids[index - 1]
            if kid is None:
                kid = kids[index - 1] = _Made()  # Value(pieces[index - 1], d, level + 1), inlined
                kid.raw = self._pieces[index - 1]  # type: ignore[index]
                kid._d = self._d
                kid._level = self._level + 1
                kid._pieces = kid._kids = None
            return kid
        pieces = self._pieces
        if pieces is None:
            pieces = self.pieces()
            if pieces is None:
                return self if index == 1 else _empty(self._d, SUBCOMPONENT)
        if index < 1:
            raise IndexError("HL7 positions are 1-based")
        if index > len(pieces):
            return _empty(self._d, self._level + 1)
        kids = self._kids = [None] * len(pieces)  # children made one by one, by position
        kid = kids[index - 1] = _Made()
        kid.raw = pieces[index - 1]
        kid._d = self._d
        kid._level = self._level + 1
        kid._pieces = kid._kids = None
        return kid

    @property
    def text(self) -> str:
        """Decoded text of the first leaf; '' when empty."""
        raw = self.raw
        d = self._d
        if d is None or not raw:
            return raw
        # `in` before partition: nearly every value read as text is a single leaf (no new strings then)
        level = self._level
        if level == REPETITION and d.component in raw:
            raw = raw.partition(d.component)[0]
        if level != SUBCOMPONENT and d.subcomponent in raw:
            raw = raw.partition(d.subcomponent)[0]
        if d.escape in raw:
            return unescape(raw, d)
        return raw if raw != NULL else ""

    def get(self, component: int, subcomponent: int = 1) -> str:
        """Decoded text at component (and subcomponent) of this repetition."""
        return self[component][subcomponent].text

    @property
    def is_null(self) -> bool:
        """The explicit HL7 null `""`: the receiver deletes the value (v2.5 2.5.3)."""
        return self.raw == NULL

    def __bool__(self) -> bool:
        return bool(self.raw)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Value({self.raw!r})"

    def texts(self, upto: int) -> list[str]:
        """["", self[1].text, ... self[upto].text]: the decoded first subcomponent of each component
        (index k is component k), split from the raw text without making Values."""
        d = self._d
        pieces = self.pieces()
        if d is None or pieces is None or self._level != REPETITION:  # a component or a leaf: through Values
            return ["", *(self[k].text for k in range(1, upto + 1))]
        sub, esc = d.subcomponent, d.escape
        whole = self.raw
        if sub not in whole and esc not in whole and NULL not in whole:  # the usual: each component is its own text
            texts = ["", *pieces] if len(pieces) <= upto else ["", *pieces[:upto]]
        else:
            texts = [""]
            for raw in pieces[:upto]:
                if sub in raw:
                    raw = raw.partition(sub)[0]
                texts.append(unescape(raw, d) if esc in raw else raw if raw != NULL else "")
        if len(texts) <= upto:
            texts += [""] * (upto + 1 - len(texts))
        return texts

    def subtexts(self, component: int) -> Sequence[str]:
        """The decoded subcomponents of a component (self[component][n].text for n = 1, 2 ...), split
        from the raw text without making Values; () when the component is empty."""
        d = self._d
        pieces = self.pieces()
        if d is None or pieces is None or self._level != REPETITION:  # a component or a leaf: through Values
            part = self[component]
            return (part.text, part[2].text, part[3].text) if part.raw else ()
        raw = pieces[component - 1] if component <= len(pieces) else ""
        if not raw:
            return ()
        subs = raw.split(d.subcomponent)
        if NULL in raw:
            subs = [sub if sub != NULL else "" for sub in subs]
        return [unescape(sub, d) for sub in subs] if d.escape in raw else subs

    def decoded(self) -> list[list[str]]:
        """All components, each as a list of decoded subcomponents."""
        d = self._d
        if d is None:
            return [[self.raw]]
        comps = self.raw.split(d.component) if self._level == REPETITION else [self.raw]
        return [[unescape(s, d) for s in c.split(d.subcomponent)] for c in comps]


class _Made(Value):
    """A Value made by this module, which sets the five slots itself: calling a class with a
    Python __init__ costs about twice the allocation (a conversion makes ~370 Values)."""

    __slots__ = ()
    __init__ = object.__init__  # type: ignore[assignment]


def _made(raw: str, d: Delimiters | None, level: int) -> Value:
    value = _Made()
    value.raw = raw
    value._d = d
    value._level = level
    value._pieces = value._kids = None
    return value


def _empty(d: Delimiters | None, level: int) -> Value:
    """An absent child (past the last component sent): empty, at that level."""
    return _made("", d, level)


class Segment:
    """One segment; `fields[n]` is field n (MSH is renumbered so MSH-1 is the field separator)."""

    __slots__ = ("fields", "_d", "sequence")

    def __init__(self, fields: list[str], delimiters: Delimiters, sequence: int = 1) -> None:
        self.fields = fields
        self._d = delimiters
        self.sequence = sequence  # 1-based occurrence among segments with the same id

    @property
    def id(self) -> str:
        return self.fields[0]

    def __len__(self) -> int:
        """The number of the last field present."""
        return len(self.fields) - 1

    def raw(self, field: int) -> str:
        """The field as sent, undecoded ('' when absent)."""
        return self.fields[field] if 0 < field < len(self.fields) else ""

    def _literal(self, field: int) -> bool:
        return field <= 2 and self.fields[0] == "MSH"

    def reps(self, field: int) -> list[Value]:
        """Each repetition of the field (empty list when the field is empty)."""
        fields = self.fields
        try:  # a try costs nothing until a field past the last is asked for
            raw = fields[field]
        except IndexError:
            return []
        if not raw or field < 1:
            return []
        if field <= 2 and fields[0] == "MSH":  # MSH-1, MSH-2: literals
            return [Value(raw, None)]
        d = self._d
        if d.repetition not in raw:
            value = _Made()  # _made(raw, d, REPETITION), inlined: most fields are sent once
            value.raw = raw
            value._d = d
            value._level = REPETITION
            value._pieces = value._kids = None
            return [value]
        return [_made(r, d, REPETITION) for r in raw.split(d.repetition)]

    def __getitem__(self, field: int) -> Value:
        """First repetition of a field."""
        fields = self.fields
        raw = fields[field] if 0 < field < len(fields) else ""
        if field <= 2 and fields[0] == "MSH":  # MSH-1, MSH-2: literals
            return Value(raw, None)
        d = self._d
        return _made(raw.partition(d.repetition)[0], d, REPETITION)

    def get(self, field: int, component: int = 1, subcomponent: int = 1, repetition: int = 1) -> str:
        """Decoded text at a position; '' when absent."""
        if repetition == 1 and subcomponent == 1 and component >= 1:  # hot path: no Value objects
            fields = self.fields
            raw = fields[field] if 0 < field < len(fields) else ""
            if field <= 2 and fields[0] == "MSH":  # MSH-1, MSH-2: literals, no components
                return raw if component == 1 else ""
            d = self._d
            raw = raw.partition(d.repetition)[0]
            if component == 1:
                raw = raw.partition(d.component)[0]
            else:  # MSH-9.2, MSH-9.3
                comps = raw.split(d.component)
                raw = comps[component - 1] if component <= len(comps) else ""
            raw = raw.partition(d.subcomponent)[0]
            if d.escape in raw:
                return unescape(raw, d)
            return raw if raw != NULL else ""
        if repetition == 1:
            value = self[field]
        else:
            reps = self.reps(field)
            if repetition > len(reps):
                return ""
            value = reps[repetition - 1]
        return value[component][subcomponent].text

    def location(self, field: int | None = None) -> Location:
        return Location(self.id, self.sequence, field)

    def decoded(self) -> list[object]:
        """All fields decoded: fields[n] -> repetitions -> components -> subcomponents (MSH-1/2 as strings)."""
        out: list[object] = [self.id]
        for n in range(1, len(self.fields)):
            if self._literal(n):
                out.append(self.fields[n])
            else:
                out.append([rep.decoded() for rep in self.reps(n)])
        return out

    def __repr__(self) -> str:
        return f"Segment({self._d.field.join(self.fields)!r})"


_new_segment = object.__new__


class Path(NamedTuple):
    segment: str
    segment_rep: int
    field: int
    repetition: int
    component: int | None
    subcomponent: int | None


_PATH = re.compile(
    r"^(?P<seg>[A-Z][A-Z0-9]{2})(?:\[(?P<segrep>\d+)\])?"
    r"(?:[-.](?P<field>\d+)(?:\((?P<rep>\d+)\))?(?:\.(?P<comp>\d+)(?:\.(?P<sub>\d+))?)?)?$"
)


@lru_cache(maxsize=4096)
def parse_path(path: str) -> Path:
    """`PID-3(2).4.1`, `OBX[3]-5`, `MSH.9.2`: segment[occurrence]-field(repetition).component.subcomponent."""
    m = _PATH.match(path.strip())
    if not m or m["field"] is None:
        raise ValueError(f"not an HL7 v2 field path: {path!r} (expected e.g. PID-3(2).4.1)")
    return Path(
        m["seg"],
        int(m["segrep"] or 1),
        int(m["field"]),
        int(m["rep"] or 1),
        int(m["comp"]) if m["comp"] else None,
        int(m["sub"]) if m["sub"] else None,
    )


class Message:
    """A parsed message; build one with `adapters.hl7v2.parse`."""

    __slots__ = ("_rows", "delimiters", "charset", "_segments", "_msh")

    def __init__(self, rows: list[list[str]], delimiters: Delimiters, charset: CharsetDecision) -> None:
        self._rows = rows
        self.delimiters = delimiters
        self.charset = charset
        self._segments: list[Segment] | None = None
        self._msh: Segment | None = None  # MSH before the segments are made

    @property
    def segments(self) -> list[Segment]:
        segs = self._segments
        if segs is None:
            seen: dict[str, int] = {}
            segs = []
            d = self.delimiters
            for row in self._rows:
                n = seen[row[0]] = seen.get(row[0], 0) + 1
                seg = _new_segment(Segment)  # Segment(row, d, n) without the Python __init__ call
                seg.fields = row
                seg._d = d
                seg.sequence = n
                segs.append(seg)
            self._segments = segs
        return segs

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    def segment(self, segment_id: str, occurrence: int = 1) -> Segment | None:
        """The n-th segment with this id, or None."""
        if self._segments is not None:
            for seg in self._segments:
                if seg.fields[0] == segment_id and seg.sequence == occurrence:
                    return seg
            return None
        seen = 0
        for row in self._rows:  # without building every Segment (hot path)
            if row[0] == segment_id:
                seen += 1
                if seen == occurrence:
                    return Segment(row, self.delimiters, seen)
        return None

    def all(self, segment_id: str) -> list[Segment]:
        """Every segment with this id, in order."""
        if self._segments is not None:
            return [s for s in self._segments if s.fields[0] == segment_id]
        d = self.delimiters
        return [Segment(row, d, n) for n, row in enumerate([r for r in self._rows if r[0] == segment_id], 1)]

    @property
    def msh(self) -> Segment:
        segs = self._segments
        if segs is not None:
            return segs[0]
        msh = self._msh
        if msh is None:  # read several times a message (header properties): made once
            msh = self._msh = Segment(self._rows[0], self.delimiters, 1)
        return msh

    def value(self, path: str) -> Value:
        """The Value at a path (a whole repetition, component or subcomponent)."""
        p = parse_path(path)
        seg = self.segment(p.segment, p.segment_rep)
        if seg is None:
            return Value("", self.delimiters)
        reps = seg.reps(p.field)
        if p.repetition > len(reps):
            return Value("", self.delimiters)
        value = reps[p.repetition - 1]
        if p.component is not None:
            value = value[p.component]
            if p.subcomponent is not None:
                value = value[p.subcomponent]
        return value

    def get(self, path: str) -> str:
        """Decoded text at a path; '' when absent."""
        return self.value(path).text

    # MSH header fields (v2.5 2.14.9)
    @property
    def control_id(self) -> str:
        return self.msh.get(10)

    @property
    def version(self) -> str:
        return self.msh.get(12)

    @property
    def message_code(self) -> str:
        return self.msh.get(9, 1)

    @property
    def trigger_event(self) -> str:
        return self.msh.get(9, 2)

    @property
    def message_type(self) -> str:
        """MSH-9 as `ADT^A01`."""
        texts = self.msh[9].texts(2)  # message_code, trigger_event
        return f"{texts[1]}^{texts[2]}" if texts[2] else texts[1]

    @property
    def structure(self) -> str:
        """MSH-9.3, or the structure the standard assigns to MSH-9.1/9.2 (table 0354), e.g. ADT^A04 -> ADT_A01."""
        declared = self.msh.get(9, 3)
        if declared:
            return declared
        return structure_for(self.message_code, self.trigger_event, self.version)

    @property
    def processing_id(self) -> str:
        return self.msh.get(11)

    @property
    def accept_ack_type(self) -> str:
        return self.msh.get(15)

    @property
    def application_ack_type(self) -> str:
        return self.msh.get(16)

    def require(self, path: str) -> str:
        """Like get, but a missing value raises ParseError naming the location."""
        text = self.get(path)
        if not text:
            p = parse_path(path)
            raise ParseError(f"{path} is required", location=Location(p.segment, p.segment_rep, p.field))
        return text

    def encode(self) -> str:
        """ER7 text with CR segment terminators (MSH-1 renumbering undone)."""
        d = self.delimiters
        lines = []
        for row in self._rows:
            if row[0] == "MSH":
                lines.append("MSH" + d.field + d.field.join(row[2:]))
            else:
                lines.append(d.field.join(row))
        return "\r".join(lines) + "\r"
