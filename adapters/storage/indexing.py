"""Turn a resource into search-index rows, one list per parameter type (R4 search.html#ptypes).

Rows are plain tuples, first column the parameter key (`Observation.code`):
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
from functools import lru_cache
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.storage.dates import MAX_INSTANT, MIN_INSTANT, InvalidDate, date_range
from adapters.storage.fhirpath import CHOICE_TYPES, AsType, Child, Node, evaluate, reference_type
from adapters.storage.search_parameters import SearchParameter, parameters

INF = float("inf")
TABLES = ("token", "string", "date", "reference", "quantity", "number", "uri")


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
        return {t: getattr(self, t) for t in TABLES}


def normalise(text: str) -> str:
    """Case- and accent-insensitive form for string search (R4 search.html#string)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _node_type(node: Node, branch_types: tuple[str, ...]) -> str | None:
    if node.fhir_type:
        return node.fhir_type
    return branch_types[0] if len(branch_types) == 1 else None


def _token_rows(key: str, value: Any, fhir_type: str | None, out: list[tuple]) -> None:
    if isinstance(value, bool):
        out.append((key, None, "true" if value else "false", None))
    elif isinstance(value, (str, int)):
        out.append((key, None, str(value), None))
    elif isinstance(value, dict):
        kind = (fhir_type or "").lower()
        if "coding" in value or kind == "codeableconcept":
            for coding in value.get("coding", ()):
                display = coding.get("display")
                out.append((key, coding.get("system"), coding.get("code"), normalise(display) if display else None))
            if value.get("text"):
                out.append((key, None, None, normalise(value["text"])))
        elif kind == "contactpoint":
            out.append((key, value.get("system"), value.get("value"), None))
        elif kind == "identifier" or ("value" in value and "code" not in value):
            type_text = (value.get("type") or {}).get("text")
            out.append((key, value.get("system"), value.get("value"), normalise(type_text) if type_text else None))
        elif "code" in value or "system" in value:
            display = value.get("display") or value.get("unit")
            out.append((key, value.get("system"), value.get("code"), normalise(display) if display else None))


_STRING_PARTS = {
    "humanname": ("text", "family", "given", "prefix", "suffix"),
    "address": ("text", "line", "city", "district", "state", "postalCode", "country"),
}


def _string_rows(key: str, value: Any, fhir_type: str | None, out: list[tuple]) -> None:
    if isinstance(value, str):
        out.append((key, normalise(value), value))
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
                out.append((key, normalise(text), text))


def _bounds(text: Any) -> tuple[int, int] | None:
    if not isinstance(text, str):
        return None
    try:
        return date_range(text)
    except InvalidDate:
        return None


def _date_rows(key: str, value: Any, out: list[tuple]) -> None:
    if isinstance(value, str):
        bounds = _bounds(value)
        if bounds:
            out.append((key, *bounds))
    elif isinstance(value, dict):
        if "start" in value or "end" in value:  # Period: an open end is unbounded (R4 datatypes.html#Period)
            start, end = _bounds(value.get("start")), _bounds(value.get("end"))
            out.append((key, start[0] if start else MIN_INSTANT, end[1] if end else MAX_INSTANT))
        elif "event" in value or "repeat" in value:  # Timing: only the outer limits count (search.html#date)
            ranges = [b for b in map(_bounds, value.get("event", ())) if b]
            bounds_period = (value.get("repeat") or {}).get("boundsPeriod")
            if bounds_period:
                start, end = _bounds(bounds_period.get("start")), _bounds(bounds_period.get("end"))
                ranges.append((start[0] if start else MIN_INSTANT, end[1] if end else MAX_INSTANT))
            if ranges:
                out.append((key, min(r[0] for r in ranges), max(r[1] for r in ranges)))


def _reference_rows(key: str, value: Any, resource: dict, out: list[tuple]) -> None:
    if isinstance(value, str):  # canonical / uri used as a reference target
        out.append((key, reference_type(value), value.rstrip("/").split("/")[-1].split("|")[0], value))
        return
    if not isinstance(value, dict):
        return
    reference = value.get("reference")
    if not isinstance(reference, str):
        return
    if reference.startswith("#"):
        out.append((key, reference_type(reference, resource), reference, None))
        return
    if reference.startswith("urn:"):
        out.append((key, None, None, reference))
        return
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    absolute = "://" in reference
    target_type = parts[-2] if len(parts) >= 2 else value.get("type")
    url = "/".join(parts) if absolute else None
    out.append((key, target_type, parts[-1], url))


def _decimal(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def _quantity_rows(key: str, value: Any, out: list[tuple]) -> None:
    if not isinstance(value, dict):
        return
    if "low" in value or "high" in value:  # Range
        low, high = value.get("low") or {}, value.get("high") or {}
        unit_of = low or high
        lo, hi = _decimal(low.get("value")), _decimal(high.get("value"))
        out.append((key, -INF if lo is None else lo, INF if hi is None else hi,
                    unit_of.get("system"), unit_of.get("code"), unit_of.get("unit")))
        return
    number = _decimal(value.get("value"))
    if number is None:
        return
    comparator = value.get("comparator")
    low = -INF if comparator in ("<", "<=") else number
    high = INF if comparator in (">", ">=") else number
    out.append((key, low, high, value.get("system"), value.get("code"), value.get("unit")))


Branch = tuple[SearchParameter, tuple, tuple[str, ...]]


@lru_cache(maxsize=None)
def _branches_by_element(resource_type: str) -> dict[str, tuple[Branch, ...]]:
    """Expression branches grouped by the top-level element they start from, so absent elements cost nothing."""
    grouped: dict[str, list[Branch]] = {}
    for param in parameters(resource_type).values():
        if param.name == "_id":
            continue  # served from the resource's own id column
        for steps, branch_types in zip(param.branches, param.element_types):
            first = steps[0]
            if not isinstance(first, Child):
                continue
            name = first.name
            if len(steps) > 1 and isinstance(steps[1], AsType):  # `(value as Quantity)` reads only valueQuantity
                name += steps[1].type_name[0].upper() + steps[1].type_name[1:]
            grouped.setdefault(name, []).append((param, steps, branch_types))
    return {name: tuple(branches) for name, branches in grouped.items()}


@lru_cache(maxsize=4096)
def _element_name(json_key: str) -> str:
    """`valueQuantity` -> `value` for choice elements (json.html#choice); other keys unchanged."""
    for i in range(1, len(json_key)):
        if json_key[i].isupper() and json_key[i:] in CHOICE_TYPES:
            return json_key[:i]
    return json_key


def index_resource(resource: dict) -> IndexRows:
    """Every index row of one resource, for every parameter of its type."""
    rows = IndexRows()
    grouped = _branches_by_element(resource["resourceType"])
    for json_key in resource:
        branches = grouped.get(json_key, ())
        element = _element_name(json_key)
        if element != json_key:
            branches += grouped.get(element, ())
        for param, steps, branch_types in branches:
            _index_nodes(param, evaluate((steps,), resource), branch_types, resource, rows)
    return rows


def index_parameter(param: SearchParameter, resource: dict, rows: IndexRows) -> None:
    """Index rows of one parameter (all its branches)."""
    for steps, branch_types in zip(param.branches, param.element_types):
        _index_nodes(param, evaluate((steps,), resource), branch_types, resource, rows)


def _index_nodes(
    param: SearchParameter, nodes: list[Node], branch_types: tuple[str, ...], resource: dict, rows: IndexRows
) -> None:
    key, kind = param.key, param.type
    if nodes:
        for node in nodes:
            value = node.value
            if kind == "token":
                _token_rows(key, value, _node_type(node, branch_types), rows.token)
            elif kind == "string":
                _string_rows(key, value, _node_type(node, branch_types), rows.string)
            elif kind == "date":
                _date_rows(key, value, rows.date)
            elif kind == "reference":
                _reference_rows(key, value, resource, rows.reference)
            elif kind == "quantity":
                _quantity_rows(key, value, rows.quantity)
            elif kind == "number":
                number = _decimal(value)
                if number is not None:
                    rows.number.append((key, number, number))
            elif kind == "uri" and isinstance(value, str):
                rows.uri.append((key, value))
