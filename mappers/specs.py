"""Loads and checks the mapping specs (YAML under mappers/specs/), compiling them once per process.

Three kinds, one directory each (format in mappers/SPEC.md):
- datatypes/*.yaml: maps named like the IG's datatype sheets, `CX[Identifier]`;
- segments/*.yaml:  maps named like the IG's segment sheets, `PID[Patient]`;
- messages/*.yaml:  per message structure, which maps run on which segments, groups, references.
Every name a spec uses (map, vocabulary map, function, type) is checked at load time, so a typo
fails loudly when the gateway starts, not when the first message arrives.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import orjson
import yaml

from mappers import functions, vocab
from mappers.paths import TargetPath, compile_path
from mappers.primitives import PRIMITIVES
from mappers.sources import Predicate, Source, compile_condition, compile_source

SPEC_DIR = Path(__file__).resolve().parent / "specs"
_UNSET: Any = object()
_JSON_SCALARS = (str, int, float, bool, type(None))
_ROW_KEYS = {"from", "to", "type", "vocab", "when", "value", "fn", "args", "set", "default", "format", "note"}
_MAP_KEYS = {"segment", "resource", "key", "rows", "fn", "args", "target_all", "names", "required", "ig", "note"}
_ENTRY_KEYS = {"map", "as", "into", "refs", "link", "when", "note"}
_MAP_NAME = re.compile(r"^([A-Z][A-Z0-9]{1,2})\[([^\]]+)\]$")


class SpecError(ValueError):
    """A spec file that cannot be used; the message names the file and the item."""


class Constant:
    """A constant from a spec, as JSON has it; objects are copied on use so resources never share them."""

    __slots__ = ("_value", "get")

    def __init__(self, value: Any) -> None:
        self._value = value
        if not isinstance(value, (dict, list)):
            self.get = self._scalar
        elif isinstance(value, dict) and all(v.__class__ in _JSON_SCALARS for v in value.values()):
            self.get = value.copy  # a flat object of JSON scalars (a Coding): a shallow copy is a full copy
        else:
            self.get = _literal(orjson.loads(orjson.dumps(value)))

    def _scalar(self) -> Any:
        return self._value


def _literal(value: Any) -> Callable[[], Any]:
    """A function building a new copy of a JSON value at each call: the value's Python literal, compiled
    once (the repr of JSON's strings, finite numbers, booleans, null, objects and arrays is one)."""
    return eval(compile(f"lambda: {value!r}", "<spec constant>", "eval"), {})  # noqa: S307


@dataclass(slots=True)
class Row:
    """One mapping row: read `source`, convert with `type`/`fn`/`value`, translate `vocab`, write at `target`."""

    label: str
    source: Source | None
    target: TargetPath | None
    type: str | None
    vocab: str | None
    when: Predicate | None
    value: Constant | None
    fn: Callable[..., Any] | None
    args: dict[str, Any]
    set: Constant | None
    default: Constant | None
    format: str | None
    every: bool
    part: int = -1  # datatype maps: 0-based component this row reads (-1: none), for a quick emptiness check
    evaluate: Callable[..., Any] | None = None  # compiled by the engine on first use (engine._evaluator)


@dataclass(slots=True)
class Map:
    """A segment map (reads fields of one segment) or a datatype map (reads components of one value)."""

    name: str
    datatype: str  # the v2 segment id or datatype this map reads
    is_segment: bool
    resource: str | None
    key: list[str]
    rows: list[Row]
    fields: frozenset[int]
    build: Callable[..., Any] | None = None
    args: dict[str, Any] = field(default_factory=dict)
    target_all: bool = False
    names: bool = False  # the resource is only named (a parent known by its identifier): ConversionReport.named
    required: tuple[tuple[str, int], ...] = ()  # (FHIR element, v2 field): no element means the field is missing (_compile_required)
    file: str = ""
    compiled: Callable[..., Any] | None = None  # the rows as one Python function (engine.compile_map), made on first use
    clean: bool | None = None  # whether what it builds never holds an empty element (engine.map_clean), settled on first use
    id_keys: tuple[tuple[str | None, str, int], ...] | None = None  # `key` parsed (engine._id_keys), settled on first use


@dataclass(slots=True)
class Ref:
    """`refs`: put a Reference to the nearest resource named `name` at `target` of this one."""

    target: TargetPath
    name: str
    set: Constant | None
    within: str | None = None
    with_map: str | None = None  # `with`: a map run on this segment, its result merged into the item
    map: Map | None = None
    clean: bool | None = None  # whether `set` and `with` never add an empty element (engine.item_clean), settled on first use


@dataclass(slots=True)
class Link:
    """`link`: put a Reference to this resource at `target` of the nearest resource named `name`."""

    name: str
    target: TargetPath
    set: Constant | None
    within: str | None = None
    with_map: str | None = None  # `with`: a map run on this segment, its result merged into the item
    map: Map | None = None
    clean: bool | None = None  # whether `set` and `with` never add an empty element (engine.item_clean), settled on first use


@dataclass(slots=True)
class Entry:
    """What a message spec does with one segment: run `map`, creating a resource (`as`) or merging (`into`)."""

    map_name: str
    as_name: str | None
    into: tuple[str, ...]
    refs: list[Ref]
    links: list[Link]
    when: Predicate | None
    map: Map | None = None
    with_fields: frozenset[int] = frozenset()  # fields of this segment the refs/links' `with` maps read


@dataclass(slots=True)
class Group:
    name: str
    heads: tuple[str, ...]
    parent: str | None


@dataclass(slots=True)
class MessageSpec:
    name: str
    structures: tuple[str, ...]
    groups: list[Group]
    entries: dict[str, list[Entry]]
    file: str
    heads: dict[str, list[tuple[Group, int]]] = field(default_factory=dict)


@dataclass
class Specs:
    """All compiled specs: maps by name and message specs by structure."""

    maps: dict[str, Map]
    messages: dict[str, MessageSpec]
    default: MessageSpec

    def message_spec(self, structure: str, message_code: str = "", event: str = "") -> MessageSpec:
        """The spec for a structure (or CODE_EVENT), else the default spec every message can use."""
        for name in (structure, f"{message_code}_{event}", message_code):
            spec = self.messages.get(name)
            if spec is not None:
                return spec
        return self.default


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc


def _compile_row(raw: dict[str, Any], datatype: str, is_segment: bool, where: str) -> Row:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a row must be a mapping, got {raw!r}")
    unknown = set(raw) - _ROW_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown row keys {sorted(unknown)} (allowed: {sorted(_ROW_KEYS)})")
    try:
        source = compile_source(raw["from"], None if is_segment else datatype) if "from" in raw else None
        target = compile_path(raw["to"]) if raw.get("to") else None
        when = compile_condition(raw["when"], None if is_segment else datatype, functions.PREDICATES) if raw.get("when") else None
    except ValueError as exc:
        raise SpecError(f"{where}: {exc}") from exc
    if source is None and "value" not in raw and "fn" not in raw and not ("type" in raw and not is_segment):
        raise SpecError(f"{where}: a row needs `from`, `value` or `fn` (or `type` on the whole value in a datatype map)")
    fn = None
    if "fn" in raw:
        fn = functions.FUNCTIONS.get(raw["fn"])
        if fn is None:
            raise SpecError(f"{where}: no function named {raw['fn']!r} in mappers.functions")
    vocab_name = raw.get("vocab")
    if vocab_name and not vocab.known_map(vocab_name):
        raise SpecError(f"{where}: no IG vocabulary map named {vocab_name!r} in terminology")
    every = bool(target and target.appends and source is not None and source.repetition is None and (is_segment or source.segment is not None))
    return Row(
        label=str(raw.get("from", "")),
        source=source,
        target=target,
        type=raw.get("type"),
        vocab=vocab_name,
        when=when,
        value=Constant(raw["value"]) if "value" in raw else None,
        fn=fn,
        args=raw.get("args") or {},
        set=Constant(raw["set"]) if raw.get("set") else None,
        default=Constant(raw["default"]) if raw.get("default") else None,
        format=raw.get("format"),
        every=every,
        part=source.component - 1 if source is not None and source.segment is None and source.component else -1,
    )


def _compile_map(name: str, raw: dict[str, Any], is_segment: bool, file: str) -> Map:
    where = f"{file}: {name}"
    m = _MAP_NAME.match(name)
    if not m:
        raise SpecError(f"{where}: map names look like PID[Patient] or CX[Identifier]")
    unknown = set(raw) - _MAP_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(_MAP_KEYS)})")
    datatype = raw.get("segment", m.group(1)) if is_segment else m.group(1)
    rows = [_compile_row(r, datatype, is_segment, f"{where} row {i + 1}") for i, r in enumerate(raw.get("rows") or [])]
    build = None
    if raw.get("fn"):
        build = functions.FUNCTIONS.get(raw["fn"])
        if build is None:
            raise SpecError(f"{where}: no function named {raw['fn']!r} in mappers.functions")
    fields = frozenset(
        r.source.field for r in rows if r.source is not None and r.source.segment == datatype and r.source.field is not None
    ) | frozenset(int(f) for f in (raw.get("args") or {}).get("reads", []))
    return Map(
        name=name,
        datatype=datatype,
        is_segment=is_segment,
        resource=raw.get("resource"),
        key=[str(k) for k in raw.get("key") or []],
        rows=rows,
        fields=fields,
        build=build,
        args=raw.get("args") or {},
        target_all=bool(raw.get("target_all")),
        names=bool(raw.get("names")),
        required=_compile_required(raw.get("required"), datatype, is_segment, where),
        file=file,
    )


def _compile_required(raw: Any, segment: str, is_segment: bool, where: str) -> tuple[tuple[str, int], ...]:
    """`required: {code: OBX-3}`: the resource's FHIR element (cardinality 1..) comes only from that
    field of the segment, which HL7 v2 makes required (R) too; a segment whose field gives no such
    element makes no resource but a RequiredFieldMissing at the field (HL7 table 0357 code 101)."""
    if not raw:
        return ()
    if not is_segment or not isinstance(raw, dict):
        raise SpecError(f"{where}: `required` is a mapping of FHIR element to a field of the segment, in segment maps only")
    out = []
    for element, path in raw.items():
        source = compile_source(str(path), None)
        if source.segment != segment or source.field is None or source.component is not None:
            raise SpecError(f"{where}: `required` {element}: {path!r} is not a field of {segment}")
        out.append((str(element), source.field))
    return tuple(out)


def _compile_refs(raw: Any, where: str) -> list[Ref]:
    out = []
    for path, spec in (raw or {}).items():
        if isinstance(spec, str):
            spec = {"to": spec}
        out.append(Ref(compile_path(path), spec["to"], Constant(spec["set"]) if spec.get("set") else None, spec.get("within"), spec.get("with")))
    return out


def _compile_links(raw: Any, where: str) -> list[Link]:
    out = []
    for name, spec in (raw or {}).items():
        if isinstance(spec, str):
            spec = {"path": spec}
        out.append(Link(name, compile_path(spec["path"]), Constant(spec["set"]) if spec.get("set") else None, spec.get("within"), spec.get("with")))
    return out


def _compile_message(raw: dict[str, Any], file: str) -> MessageSpec:
    groups = [Group(g["name"], tuple(g["heads"]), g.get("parent")) for g in raw.get("groups") or []]
    entries: dict[str, list[Entry]] = {}
    for seg_id, items in (raw.get("segments") or {}).items():
        for i, item in enumerate(items):
            where = f"{file}: {seg_id} entry {i + 1}"
            unknown = set(item) - _ENTRY_KEYS
            if unknown:
                raise SpecError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(_ENTRY_KEYS)})")
            into = item.get("into") or ()
            try:
                when = compile_condition(item["when"], None, functions.PREDICATES) if item.get("when") else None
            except ValueError as exc:
                raise SpecError(f"{where}: {exc}") from exc
            entries.setdefault(seg_id, []).append(
                Entry(
                    map_name=item["map"],
                    as_name=item.get("as"),
                    into=(into,) if isinstance(into, str) else tuple(into),
                    refs=_compile_refs(item.get("refs"), where),
                    links=_compile_links(item.get("link"), where),
                    when=when,
                )
            )
    spec = MessageSpec(Path(file).stem, tuple(raw.get("structures") or ()), groups, entries, file)
    for group in groups:
        for pos, head in enumerate(group.heads):
            spec.heads.setdefault(head, []).append((group, pos))
    return spec


@lru_cache(maxsize=4)
def load_specs(spec_dir: Path = SPEC_DIR) -> Specs:
    """Read and check every spec file under spec_dir (cached per directory)."""
    maps: dict[str, Map] = {}
    for kind in ("datatypes", "segments"):
        for path in sorted((spec_dir / kind).glob("*.yaml")):
            doc = _load_yaml(path) or {}
            rel = f"{kind}/{path.name}"
            for name, raw in doc.items():
                if name in maps:
                    raise SpecError(f"{rel}: map {name} is also defined in {maps[name].file}")
                maps[name] = _compile_map(name, raw or {}, kind == "segments", rel)
    messages: dict[str, MessageSpec] = {}
    default: MessageSpec | None = None
    for path in sorted((spec_dir / "messages").glob("*.yaml")):
        rel = f"messages/{path.name}"
        spec = _compile_message(_load_yaml(path) or {}, rel)
        for structure in spec.structures:
            if structure == "*":
                default = spec
            elif structure in messages:
                raise SpecError(f"{rel}: structure {structure} is also claimed by {messages[structure].file}")
            else:
                messages[structure] = spec
    if default is None:
        raise SpecError(f"{spec_dir}/messages: no spec lists structure '*' (the default for other messages)")
    for spec in [*messages.values(), default]:
        for seg_entries in spec.entries.values():
            for entry in seg_entries:
                found = maps.get(entry.map_name)
                if found is None:
                    raise SpecError(f"{spec.file}: no map named {entry.map_name!r}")
                entry.map = found
                for ref in (*entry.refs, *entry.links):
                    if ref.with_map is not None:
                        ref.map = maps.get(ref.with_map)
                        if ref.map is None:
                            raise SpecError(f"{spec.file}: {entry.map_name}: no map named {ref.with_map!r} (refs/link `with`)")
                        entry.with_fields |= ref.map.fields
    for m in maps.values():
        for row in m.rows:
            if row.type and row.type not in PRIMITIVES and row.type not in functions.CONVERTERS and row.type not in maps:
                raise SpecError(f"{m.file}: {m.name} row {row.label or row.target}: unknown type {row.type!r}")
    return Specs(maps, messages, default)
