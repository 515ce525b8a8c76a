"""Turn a resource into search-index rows, one list per parameter type (R4 search.html#ptypes).

Rows are plain tuples, first column the parameter key (`Observation.code`), or the key's id in a
SQL store's search_params table (schema 3: small integers keep index rows and their indexes small):
    token     (key, system, code, text)          text = normalised display/text, for :text
    string    (key, norm, exact)                 norm = case- and accent-folded, for default matching
    date      (key, low, high)                   inclusive UTC microseconds (adapters.storage.dates)
    reference (key, target_type, target_id, url) url = the reference as written when absolute/canonical
    quantity  (key, low, high, system, code, unit)
    number    (key, low, high)
    uri       (key, value)
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Callable, NamedTuple

from adapters.storage.dates import MAX_INSTANT, MIN_INSTANT, InvalidDate, date_range
from adapters.storage.fhirpath import CHOICE_TYPES, AsType, Child, FieldEquals, ResolvesTo, Step, evaluate, reference_type
from adapters.storage.search_parameters import SearchParameter, parameters

INF = float("inf")
TABLES = ("token", "string", "date", "reference", "quantity", "number", "uri")
# Parameters answered from the resources table instead of index rows (R4 search.html#all):
# _id is the id column, _lastUpdated the last_updated column the store stamps itself.
RESOURCE_COLUMNS = {"_id": "id", "_lastUpdated": "last_updated"}


@dataclass
class IndexRows:
    token: list[tuple] = field(default_factory=list)
    string: list[tuple] = field(default_factory=list)
    date: list[tuple] = field(default_factory=list)
    reference: list[tuple] = field(default_factory=list)
    quantity: list[tuple] = field(default_factory=list)
    number: list[tuple] = field(default_factory=list)
    uri: list[tuple] = field(default_factory=list)

    def tables(self) -> dict[str, list[tuple]]:
        """Table name -> rows: the instance's own field dict (no copy: this runs once per indexed resource)."""
        return vars(self)


@lru_cache(maxsize=65536)  # displays and names repeat across resources
def normalise(text: str) -> str:
    """Case- and accent-insensitive form for string search (R4 search.html#string)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


# Row makers share one signature, (value, fhir_type, resource, name, out): each appends complete
# rows, `name` (the parameter key or its id) first, so no row is rebuilt to prefix it.


def _token_rows(value: Any, fhir_type: str | None, resource: dict, name: Any, out: list[tuple]) -> None:
    if isinstance(value, dict):  # first: CodeableConcept, Coding and Identifier are most token values
        if "coding" in value or (fhir_type or "").lower() == "codeableconcept":
            for coding in value.get("coding", ()):
                display = coding.get("display")
                out.append((name, coding.get("system"), coding.get("code"), normalise(display) if display else None))
            if value.get("text"):
                out.append((name, None, None, normalise(value["text"])))
            return
        kind = (fhir_type or "").lower()
        if kind == "contactpoint":
            out.append((name, value.get("system"), value.get("value"), None))
        elif kind == "identifier" or ("value" in value and "code" not in value):
            type_text = (value.get("type") or {}).get("text")
            out.append((name, value.get("system"), value.get("value"), normalise(type_text) if type_text else None))
        elif "code" in value or "system" in value:
            display = value.get("display") or value.get("unit")
            out.append((name, value.get("system"), value.get("code"), normalise(display) if display else None))
    elif isinstance(value, bool):
        out.append((name, None, "true" if value else "false", None))
    elif isinstance(value, (str, int)):
        out.append((name, None, str(value), None))


_STRING_PARTS = {
    "humanname": ("text", "family", "given", "prefix", "suffix"),
    "address": ("text", "line", "city", "district", "state", "postalCode", "country"),
}


def _string_rows(value: Any, fhir_type: str | None, resource: dict, name: Any, out: list[tuple]) -> None:
    if isinstance(value, str):
        out.append((name, normalise(value), value))
        return
    if not isinstance(value, dict):
        return
    parts = _STRING_PARTS.get((fhir_type or "").lower())
    if parts is None:
        parts = _STRING_PARTS["humanname"] if "family" in value or "given" in value else _STRING_PARTS["address"]
    for part in parts:
        found = value.get(part)
        for text in found if isinstance(found, list) else (found,):
            if isinstance(text, str) and text:
                out.append((name, normalise(text), text))


def _bounds(text: Any) -> tuple[int, int] | None:
    if not isinstance(text, str):
        return None
    try:
        return date_range(text)
    except InvalidDate:
        return None


def _date_rows(value: Any, fhir_type: str | None, resource: dict, name: Any, out: list[tuple]) -> None:
    if isinstance(value, str):
        try:
            low, high = date_range(value)
        except InvalidDate:
            return
        out.append((name, low, high))
    elif isinstance(value, dict):
        if "start" in value or "end" in value:  # Period: an open end is unbounded (R4 datatypes.html#Period)
            start, end = _bounds(value.get("start")), _bounds(value.get("end"))
            out.append((name, start[0] if start else MIN_INSTANT, end[1] if end else MAX_INSTANT))
        elif "event" in value or "repeat" in value:  # Timing: only the outer limits count (search.html#date)
            ranges = [b for b in map(_bounds, value.get("event", ())) if b]
            bounds_period = (value.get("repeat") or {}).get("boundsPeriod")
            if bounds_period:
                start, end = _bounds(bounds_period.get("start")), _bounds(bounds_period.get("end"))
                ranges.append((start[0] if start else MIN_INSTANT, end[1] if end else MAX_INSTANT))
            if ranges:
                out.append((name, min(r[0] for r in ranges), max(r[1] for r in ranges)))


def _reference_rows(value: Any, fhir_type: str | None, resource: dict, name: Any, out: list[tuple]) -> None:
    if isinstance(value, str):  # canonical / uri used as a reference target
        out.append((name, reference_type(value), value.rstrip("/").split("/")[-1].split("|")[0], value))
        return
    if not isinstance(value, dict):
        return
    reference = value.get("reference")
    if not isinstance(reference, str):
        return
    if reference.startswith("#"):
        out.append((name, reference_type(reference, resource), reference, None))
        return
    if reference.startswith("urn:"):
        out.append((name, None, None, reference))
        return
    target_type, target_id, url = _literal_reference(reference)
    out.append((name, value.get("type") if target_type is None else target_type, target_id, url))


@lru_cache(maxsize=4096)  # the resources of a load reference the same few patients and encounters
def _literal_reference(reference: str) -> tuple[str | None, str, str | None]:
    """(type, id, absolute URL) of `Type/id`, `Type/id/_history/n` or `http://.../Type/id`
    (R4 references.html#literal); type None when the reference has no `Type/` part."""
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    url = "/".join(parts) if "://" in reference else None
    return (parts[-2] if len(parts) >= 2 else None), parts[-1], url


def _decimal(value: Any) -> float | None:
    if type(value) is float or type(value) is int:  # JSON numbers: float() rounds like Decimal would
        return float(value)
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def _quantity_rows(value: Any, fhir_type: str | None, resource: dict, name: Any, out: list[tuple]) -> None:
    if not isinstance(value, dict):
        return
    if "low" in value or "high" in value:  # Range
        low, high = value.get("low") or {}, value.get("high") or {}
        unit_of = low or high
        lo, hi = _decimal(low.get("value")), _decimal(high.get("value"))
        out.append((name, -INF if lo is None else lo, INF if hi is None else hi,
                    unit_of.get("system"), unit_of.get("code"), unit_of.get("unit")))
        return
    number = _decimal(value.get("value"))
    if number is None:
        return
    comparator = value.get("comparator")
    low = -INF if comparator in ("<", "<=") else number
    high = INF if comparator in (">", ">=") else number
    out.append((name, low, high, value.get("system"), value.get("code"), value.get("unit")))


def _number_rows(value: Any, fhir_type: str | None, resource: dict, name: Any, out: list[tuple]) -> None:
    number = _decimal(value)
    if number is not None:
        out.append((name, number, number))


def _uri_rows(value: Any, fhir_type: str | None, resource: dict, name: Any, out: list[tuple]) -> None:
    if isinstance(value, str):
        out.append((name, value))


# -- compiled extraction ----------------------------------------------------------------------
#
# Each parameter's FHIRPath branches are compiled once per resource type into closures over
# (value, fhir_type) pairs. Branches are grouped by the top-level JSON key they start from, so an
# absent element costs nothing, and identical branches of several parameters (`Observation.code`
# in code and combo-code, `(value as Quantity)` in value-quantity and combo-value-quantity) are
# walked and turned into rows once, then written under each parameter's key.

Pair = tuple[Any, "str | None"]  # a value and its FHIR type, when a choice suffix or `as` named it
Walk = Callable[[list[Pair], dict], list[Pair]]
RowMaker = Callable[[Any, "str | None", dict, Any, list], None]


def _walk_child(name: str) -> Walk:
    cut = len(name)
    choice_keys = frozenset(name + suffix for suffix in CHOICE_TYPES)  # value[x] as JSON names it (json.html#choice)

    def walk(nodes: list[Pair], resource: dict) -> list[Pair]:
        out: list[Pair] = []
        for value, _ in nodes:
            if type(value) is not dict:
                continue
            if name in value:
                found = value[name]
                if type(found) is list:
                    out += [(item, None) for item in found]
                else:
                    out.append((found, None))
                continue
            if choice_keys.isdisjoint(value):
                continue
            for key, found in value.items():
                if key in choice_keys:
                    suffix = key[cut:]
                    if type(found) is list:
                        out += [(item, suffix) for item in found]
                    else:
                        out.append((found, suffix))
        return out

    return walk


def _walk_as(type_name: str) -> Walk:
    wanted, tagged = type_name.lower(), type_name[0].upper() + type_name[1:]

    def walk(nodes: list[Pair], resource: dict) -> list[Pair]:
        return [(value, tagged) for value, fhir_type in nodes if fhir_type is not None and fhir_type.lower() == wanted]

    return walk


def _walk_resolves(resource_type: str) -> Walk:
    def walk(nodes: list[Pair], resource: dict) -> list[Pair]:
        return [
            (value, fhir_type) for value, fhir_type in nodes
            if type(value) is dict and isinstance(value.get("reference"), str)
            and reference_type(value["reference"], resource) == resource_type
        ]

    return walk


def _walk_field(name: str, literal: str) -> Walk:
    def walk(nodes: list[Pair], resource: dict) -> list[Pair]:
        return [(value, t) for value, t in nodes if type(value) is dict and value.get(name) == literal]

    return walk


def _compile_steps(steps: tuple[Step, ...]) -> tuple[Walk, ...]:
    walks: list[Walk] = []
    for step in steps:
        if isinstance(step, Child):
            walks.append(_walk_child(step.name))
        elif isinstance(step, AsType):
            walks.append(_walk_as(step.type_name))
        elif isinstance(step, ResolvesTo):
            walks.append(_walk_resolves(step.resource_type))
        else:
            assert isinstance(step, FieldEquals)
            walks.append(_walk_field(step.field, step.value))
    return tuple(walks)


_ROW_MAKERS: dict[str, RowMaker] = {
    "token": _token_rows, "string": _string_rows, "date": _date_rows, "reference": _reference_rows,
    "quantity": _quantity_rows, "number": _number_rows, "uri": _uri_rows,
}


def _row_maker(kind: str) -> RowMaker:
    """The row maker of one parameter type (columns as in the module docstring)."""
    make = _ROW_MAKERS.get(kind)
    if make is None:
        raise ValueError(f"unknown search parameter type {kind}")
    return make


def _default_type(branch_types: tuple[str, ...]) -> str | None:
    """The FHIR type a branch's values have when no choice suffix or `as` names one: its only declared type."""
    return branch_types[0] if len(branch_types) == 1 else None


class _Extractor(NamedTuple):
    """One distinct branch (after its top-level element): how to walk it, make rows, and under which keys."""

    walks: tuple[Walk, ...]
    make: RowMaker
    default_type: str | None
    table: str
    keys: tuple[str, ...]
    first_child: str | None  # the element the first walk reads, when it reads one (a Child step)



def _group_name(steps: tuple[Step, ...]) -> str | None:
    first = steps[0]
    if not isinstance(first, Child):
        return None
    if len(steps) > 1 and isinstance(steps[1], AsType):  # `(value as Quantity)` reads only valueQuantity
        return first.name + steps[1].type_name[0].upper() + steps[1].type_name[1:]
    return first.name


@lru_cache(maxsize=None)
def reference_view(resource_type: str, name: str) -> tuple[str, str | None]:
    """(index key, target type) whose reference rows answer parameter `name`.

    A parameter that is another reference parameter narrowed to one target type
    (Observation patient = `Observation.subject.where(resolve() is Patient)`) reads that
    parameter's rows whose target_type is the type, so a bulk load writes the reference once.
    Any other reference parameter: (its own key, None).
    """
    params = parameters(resource_type)
    param = params[name]
    narrowed = {b[-1].resource_type for b in param.branches if b and isinstance(b[-1], ResolvesTo)}
    if param.type == "reference" and len(narrowed) == 1 and all(isinstance(b[-1], ResolvesTo) for b in param.branches):
        wanted = {b[:-1] for b in param.branches}
        for other in params.values():
            if other is not param and other.type == "reference" and set(other.branches) == wanted:
                return other.key, narrowed.pop()
    return param.key, None


@lru_cache(maxsize=None)
def stored_keys(resource_type: str, name: str) -> tuple[str, ...]:
    """Index keys whose rows answer parameter `name`: its own key, or for a union of other
    parameters (Observation combo-code = code | component-code) their keys, so those rows are
    written once. Reference parameters keep their own rows unless they narrow another one
    (reference_view).
    """
    params = parameters(resource_type)
    param = params[name]
    if param.type == "reference":
        return (reference_view(resource_type, name)[0],)
    mine = set(zip(param.branches, param.element_types))
    if len(mine) < 2:
        return (param.key,)
    parts = []
    for other in params.values():
        theirs = set(zip(other.branches, other.element_types))
        if other is not param and other.type == param.type and theirs <= mine and len(theirs) < len(mine):
            parts.append(other)
    if set().union(*(set(zip(o.branches, o.element_types)) for o in parts)) != mine:
        return (param.key,)
    return tuple(sorted(o.key for o in parts))


@lru_cache(maxsize=None)
def _extractors(resource_type: str) -> dict[str, tuple[_Extractor, ...]]:
    """Per top-level JSON key (or choice element name), the distinct extractors starting there."""
    keys_of: dict[tuple, list[str]] = {}
    for param in parameters(resource_type).values():
        if param.name in RESOURCE_COLUMNS or stored_keys(resource_type, param.name) != (param.key,):
            continue  # resource columns answer _id and _lastUpdated; unions: their parts' rows
        for steps, branch_types in zip(param.branches, param.element_types):
            name = _group_name(steps)
            if name is None:
                continue
            # `(value as Quantity)` is grouped under valueQuantity, whose choice suffix already is the type
            as_suffix = name[len(steps[0].name):]  # type: ignore[union-attr]
            rest = steps[2:] if as_suffix in CHOICE_TYPES else steps[1:]
            keys = keys_of.setdefault((name, rest, param.type, branch_types), [])
            if param.key not in keys:
                keys.append(param.key)
    grouped: dict[str, list[_Extractor]] = {}
    for (name, rest, kind, branch_types), keys in keys_of.items():
        grouped.setdefault(name, []).append(
            _Extractor(_compile_steps(rest), _row_maker(kind), _default_type(branch_types), kind, tuple(keys),
                       rest[0].name if rest and isinstance(rest[0], Child) else None)
        )
    return {name: tuple(extractors) for name, extractors in grouped.items()}


@lru_cache(maxsize=4096)
def _element_name(json_key: str) -> str:
    """`valueQuantity` -> `value` for choice elements (json.html#choice); other keys unchanged."""
    for i in range(1, len(json_key)):
        if json_key[i].isupper() and json_key[i:] in CHOICE_TYPES:
            return json_key[:i]
    return json_key


class _Bound(NamedTuple):
    """An extractor as one JSON key meets it: parameter names resolved (key or a store's id), and the
    FHIR type its values have when no walk tags them (the key's choice suffix, else the declared one)."""

    walks: tuple[Walk, ...]
    make: RowMaker
    fhir_type: str | None
    table: str
    name: Any
    more: tuple  # further names the same rows are written under (shared branches)


KeyEntry = tuple[tuple[_Bound, ...], "str | None", "frozenset[str] | None"]
_NOTHING: KeyEntry = ((), None, None)
_KNOWN: dict[tuple[str, int], tuple["dict[str, int] | None", dict[str, KeyEntry]]] = {}


def _known_keys(resource_type: str, param_ids: dict[str, int] | None) -> dict[str, KeyEntry]:
    """Per resource type and parameter naming (keys, or one store's ids), filled as keys are met:
    JSON key -> (bound extractors, choice type suffix, child keys)."""
    slot = _KNOWN.get((resource_type, id(param_ids)))
    if slot is None or slot[0] is not param_ids:
        if len(_KNOWN) >= 1024:  # stores come and go (tests open hundreds): do not keep their ids forever
            _KNOWN.clear()
        slot = _KNOWN[(resource_type, id(param_ids))] = (param_ids, {})
    return slot[1]


def _child_keys(extractors: tuple[_Extractor, ...]) -> frozenset[str] | None:
    """JSON keys of an element's children that some extractor reads first (choice names included),
    or None when one reads the element itself: an element without any of them yields no rows."""
    names = [e.first_child for e in extractors]
    if None in names:
        return None
    return frozenset(k for n in names for k in (n, *(n + suffix for suffix in CHOICE_TYPES)))  # type: ignore[operator]


def _for_key(resource_type: str, json_key: str, param_ids: dict[str, int] | None) -> KeyEntry:
    grouped = _extractors(resource_type)
    element = _element_name(json_key)
    extractors = grouped.get(json_key, ())
    if element != json_key:
        extractors += grouped.get(element, ())
    if not extractors:
        return _NOTHING
    suffix = json_key[len(element):] or None
    bound = []
    for e in extractors:
        names = e.keys if param_ids is None else tuple(param_ids[key] for key in e.keys)
        fhir_type = e.default_type if e.walks else suffix or e.default_type
        bound.append(_Bound(e.walks, e.make, fhir_type, e.table, names[0], names[1:]))
    return tuple(bound), suffix, _child_keys(extractors)


def index_resource(resource: dict, param_ids: dict[str, int] | None = None) -> IndexRows:
    """Every index row of one resource, for every parameter of its type (R4 search.html#ptypes).

    Rows name their parameter by key (`Observation.code`), or by the key's id in `param_ids`.
    """
    rows = IndexRows()
    tables = rows.tables()
    resource_type = resource["resourceType"]
    known = _known_keys(resource_type, param_ids)
    for json_key, found in resource.items():
        entry = known.get(json_key)
        if entry is None:
            entry = _for_key(resource_type, json_key, param_ids)
            if len(known) < 1024:  # element names are finite; do not let unknown keys grow it
                known[json_key] = entry
        extractors, suffix, children = entry
        if not extractors or (children is not None and type(found) is dict and children.isdisjoint(found)):
            continue  # e.g. meta with only versionId and lastUpdated: no profile, security, source or tag
        values = found if type(found) is list else (found,)
        for walks, make, fhir_type, table, name, more in extractors:
            out = tables[table]
            first = len(out)
            if walks:
                nodes: list[Pair] = [(item, suffix) for item in values]
                for walk in walks:
                    nodes = walk(nodes, resource)
                    if not nodes:
                        break
                for value, node_type in nodes:
                    make(value, node_type or fhir_type, resource, name, out)
            else:
                for value in values:
                    make(value, fhir_type, resource, name, out)
            if more and len(out) > first:  # shared rows, written under each further name too
                made = out[first:]
                for other in more:
                    out += [(other,) + row[1:] for row in made]
    return rows


def index_parameter(param: SearchParameter, resource: dict, rows: IndexRows) -> None:
    """Index rows of one parameter (all its branches), through the same row makers as index_resource."""
    out = rows.tables()[param.type]
    make = _row_maker(param.type)
    for steps, branch_types in zip(param.branches, param.element_types):
        default_type = _default_type(branch_types)
        for node in evaluate((steps,), resource):
            make(node.value, node.fhir_type or default_type, resource, param.key, out)
