"""SearchQuery -> backend-neutral conditions over the index rows (R4 search.html per parameter type).

Both executors (the in-memory double and SQL) read these, so matching semantics live here once.
A condition is: IdMatch (the resource id), IndexMatch (a row of one index table for one parameter
satisfying any of several AND-ed comparisons, or none when negated) or ChainMatch (a reference whose
target matches conditions of its own).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from adapters.storage.base import InvalidSearch
from adapters.storage.dates import date_range, now_micros
from adapters.storage.indexing import RESOURCE_COLUMNS, normalise, reference_view, stored_keys
from adapters.storage.query import SearchFilter, SearchQuery, SearchValue
from adapters.storage.search_parameters import SearchParameter, parameter

# Columns of each index table after the parameter key (see adapters.storage.indexing).
COLUMNS = {
    "token": ("system", "code", "text"),
    "string": ("norm", "exact"),
    "date": ("low", "high"),
    "reference": ("target_type", "target_id", "url"),
    "quantity": ("low", "high", "system", "code", "unit"),
    "number": ("low", "high"),
    "uri": ("value",),
}
SORT_COLUMN = {
    "token": ("code", "code"),
    "string": ("norm", "norm"),
    "date": ("low", "high"),
    "reference": ("target_id", "target_id"),
    "quantity": ("low", "high"),
    "number": ("low", "high"),
    "uri": ("value", "value"),
}


@dataclass(frozen=True)
class Cmp:
    """column op value; op is = < <= > >= isnull startswith contains prefix_of."""

    column: str
    op: str
    value: Any = None


Clause = tuple[Cmp, ...]  # AND


@dataclass(frozen=True)
class IdMatch:
    ids: tuple[str, ...]
    negate: bool = False


@dataclass(frozen=True)
class IndexMatch:
    table: str
    keys: tuple[str, ...]  # index keys holding the parameter's rows (indexing.stored_keys)
    alternatives: tuple[Clause, ...]  # OR; an empty clause matches any row of the parameter
    negate: bool = False


@dataclass(frozen=True)
class ChainMatch:
    key: str  # reference parameter key on the searched type
    targets: tuple[tuple[str, tuple["Condition", ...]], ...]  # (target type, conditions on it)


@dataclass(frozen=True)
class LastUpdatedMatch:
    """_lastUpdated against the resources.last_updated column (R4 search.html#lastUpdated).

    The column holds the stamped instant, whose millisecond precision makes it the range
    [last_updated, last_updated + LAST_UPDATED_SPAN]; clauses compare `low`/`high` of that range
    exactly as date clauses compare an index row's.
    """

    alternatives: tuple[Clause, ...]
    negate: bool = False


LAST_UPDATED_SPAN = 999  # microseconds after the stamped millisecond (engine.VersionedStore._now)

Condition = IdMatch | IndexMatch | ChainMatch | LastUpdatedMatch


@dataclass(frozen=True)
class SortSpec:
    """ORDER BY one parameter: `column` of `table` rows with one of `keys`, or a resource column (id, last_updated)."""

    table: str | None
    keys: tuple[str, ...]
    column: str
    descending: bool


def _precision(text: str) -> Decimal:
    """Half a unit of the last given digit: 100 -> 0.5, 5.40 -> 0.005 (search.html#number)."""
    exponent = Decimal(text).normalize().as_tuple().exponent if "e" in text.lower() else -len(text.partition(".")[2])
    return Decimal(5) * Decimal(10) ** (int(exponent) - 1)


def _ordered(prefix: str, value: float, low: float, high: float) -> tuple[Clause, ...]:
    """Prefix semantics on [low, high] resource ranges against search value range [low, high]."""
    if prefix == "eq":
        return ((Cmp("low", ">=", low), Cmp("high", "<=", high)),)
    if prefix == "ne":
        return ((Cmp("low", "<", low),), (Cmp("high", ">", high),))
    if prefix == "gt":
        return ((Cmp("high", ">", high),),)
    if prefix == "lt":
        return ((Cmp("low", "<", low),),)
    if prefix == "ge":
        return ((Cmp("high", ">", high),), (Cmp("low", ">=", low), Cmp("high", "<=", high)))
    if prefix == "le":
        return ((Cmp("low", "<", low),), (Cmp("low", ">=", low), Cmp("high", "<=", high)))
    if prefix == "sa":
        return ((Cmp("low", ">", high),),)
    if prefix == "eb":
        return ((Cmp("high", "<", low),),)
    # ap: within 10% of the value (search.html#prefix leaves the width to the server)
    margin = abs(value) * 0.1
    return ((Cmp("low", ">=", low - margin), Cmp("high", "<=", high + margin)),)


def _date_clauses(value: SearchValue) -> tuple[Clause, ...]:
    low, high = date_range(value.raw)
    if value.prefix == "ap":
        margin = max(abs(now_micros() - low) // 10, 86_400_000_000)
        return ((Cmp("high", ">=", low - margin), Cmp("low", "<=", high + margin)),)
    return _ordered(value.prefix, low, low, high)


def _number_clauses(prefix: str, text: str) -> tuple[Clause, ...]:
    number = Decimal(text)
    delta = _precision(text)
    if prefix in ("eq", "ne"):
        low, high = float(number - delta), float(number + delta)
        if prefix == "eq":
            return ((Cmp("low", ">=", low), Cmp("high", "<", high)),)
        return ((Cmp("low", "<", low),), (Cmp("high", ">=", high),))
    exact = float(number)
    if prefix == "gt":
        return ((Cmp("high", ">", exact),),)
    if prefix == "lt":
        return ((Cmp("low", "<", exact),),)
    if prefix == "ge":
        return ((Cmp("high", ">=", exact),),)
    if prefix == "le":
        return ((Cmp("low", "<=", exact),),)
    if prefix == "sa":
        return ((Cmp("low", ">", exact),),)
    if prefix == "eb":
        return ((Cmp("high", "<", exact),),)
    margin = abs(exact) * 0.1
    return ((Cmp("low", ">=", exact - margin), Cmp("high", "<=", exact + margin)),)


def _token_clause(raw: str, modifier: str | None) -> tuple[Clause, ...]:
    if modifier == "text":
        return ((Cmp("text", "startswith", normalise(raw)),),)
    if "|" not in raw:
        return ((Cmp("code", "=", raw),),)
    system, code = raw.split("|", 1)
    system_cmp = Cmp("system", "isnull") if system == "" else Cmp("system", "=", system)
    if code == "":
        return ((system_cmp,),)
    return ((system_cmp, Cmp("code", "=", code)),)


def _reference_clause(raw: str, param: SearchParameter, target_type: str | None) -> tuple[Clause, ...]:
    if "://" in raw:
        parts = raw.rstrip("/").split("/")
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        by_url: Clause = (Cmp("url", "=", "/".join(parts)),)
        if len(parts) >= 2:
            local = (Cmp("url", "isnull"), Cmp("target_type", "=", parts[-2]), Cmp("target_id", "=", parts[-1]))
            return (by_url, local)
        return (by_url,)
    if raw.startswith("urn:"):
        return ((Cmp("url", "=", raw),),)
    parts = raw.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2:
        if target_type and parts[-2] != target_type:
            raise InvalidSearch(f"parameter '{param.name}:{target_type}': '{raw}' names another type")
        return ((Cmp("target_type", "=", parts[-2]), Cmp("target_id", "=", parts[-1])),)
    if target_type:
        return ((Cmp("target_type", "=", target_type), Cmp("target_id", "=", raw)),)
    return ((Cmp("target_id", "=", raw),),)


def _quantity_clauses(value: SearchValue) -> tuple[Clause, ...]:
    number, _, unit_part = value.raw.partition("|")
    system, _, code = unit_part.partition("|") if "|" in unit_part else ("", "", unit_part)
    unit: list[Clause] = [()]
    if system and code:
        unit = [(Cmp("system", "=", system), Cmp("code", "=", code))]
    elif code:
        unit = [(Cmp("code", "=", code),), (Cmp("unit", "=", code),)]
    elif system:
        unit = [(Cmp("system", "=", system),)]
    return tuple(n + u for n in _number_clauses(value.prefix, number) for u in unit)


def compile_filter(resource_type: str, flt: SearchFilter) -> Condition:
    """One SearchFilter -> one Condition (R4 search.html, per parameter type)."""
    if flt.chain:
        return _compile_chain(resource_type, flt)
    if flt.name == "_id":
        if flt.modifier == "missing":
            return IdMatch((), negate=flt.values[0].raw == "false")
        return IdMatch(tuple(v.raw for v in flt.values), negate=flt.modifier == "not")
    param = parameter(resource_type, flt.name)
    if param is None:
        raise InvalidSearch(f"unknown search parameter '{flt.name}' for {resource_type}")
    if RESOURCE_COLUMNS.get(flt.name) == "last_updated":
        if flt.modifier == "missing":  # every stored resource has one
            return LastUpdatedMatch(((),), negate=flt.values[0].raw == "true")
        return LastUpdatedMatch(tuple(c for value in flt.values for c in _date_clauses(value)))
    match = _row_match(resource_type, flt, param)
    narrowed_to = reference_view(resource_type, param.name)[1] if param.type == "reference" else None
    if narrowed_to is None:
        return match
    # rows of the wider parameter (patient -> subject), restricted to the one target type
    restrict = Cmp("target_type", "=", narrowed_to)
    return IndexMatch(match.table, match.keys, tuple(c + (restrict,) for c in match.alternatives), match.negate)


def _row_match(resource_type: str, flt: SearchFilter, param: SearchParameter) -> IndexMatch:
    """The IndexMatch of a parameter answered by index rows (every type but _id and _lastUpdated)."""
    table, keys = param.type, stored_keys(resource_type, param.name)
    if flt.modifier == "missing":
        return IndexMatch(table, keys, ((),), negate=flt.values[0].raw == "true")
    alternatives: list[Clause] = []
    for value in flt.values:
        if table == "token":
            alternatives += _token_clause(value.raw, flt.modifier)
        elif table == "string":
            if flt.modifier == "exact":
                alternatives.append((Cmp("exact", "=", value.raw),))
            elif flt.modifier == "contains":
                alternatives.append((Cmp("norm", "contains", normalise(value.raw)),))
            else:
                alternatives.append((Cmp("norm", "startswith", normalise(value.raw)),))
        elif table == "date":
            alternatives += _date_clauses(value)
        elif table == "number":
            alternatives += _number_clauses(value.prefix, value.raw)
        elif table == "quantity":
            alternatives += _quantity_clauses(value)
        elif table == "reference":
            alternatives += _reference_clause(value.raw, param, flt.target_type)
        elif table == "uri":
            op = {"below": "startswith", "above": "prefix_of"}.get(flt.modifier or "", "=")
            alternatives.append((Cmp("value", op, value.raw),))
    return IndexMatch(table, keys, tuple(alternatives), negate=flt.modifier == "not")


def _compile_chain(resource_type: str, flt: SearchFilter) -> ChainMatch:
    from adapters.storage.search_parser import _filter  # the leaf is parsed like a top-level parameter

    param = parameter(resource_type, flt.name)
    assert param is not None
    head, _, rest = ".".join(flt.chain).partition(".")
    leaf_name = head.split(":", 1)[0]
    targets = [flt.target_type] if flt.target_type else list(param.targets)
    raw = ",".join(v.raw.replace(",", "\\,") for v in flt.values)
    out = []
    for target in targets:
        if parameter(target, leaf_name) is None:
            continue
        leaf = _filter(target, head + ("." + rest if rest else ""), raw)
        out.append((target, (compile_filter(target, leaf),)))
    if not out:
        raise InvalidSearch(f"chained parameter '{flt.name}.{head}' matches no target type")
    return ChainMatch(stored_keys(resource_type, param.name)[0], tuple(out))  # targets narrow a reference_view


@lru_cache(maxsize=4096)
def compile_query(query: SearchQuery) -> tuple[Condition, ...]:
    return tuple(compile_filter(query.resource_type, f) for f in query.filters)


def sort_specs(query: SearchQuery) -> tuple[SortSpec, ...]:
    specs = []
    for key in query.sort:
        if key.name == "_id":
            specs.append(SortSpec(None, (), "id", key.descending))
            continue
        if key.name == "_lastUpdated":
            specs.append(SortSpec(None, (), "last_updated", key.descending))
            continue
        param = parameter(query.resource_type, key.name)
        if param is None:
            raise InvalidSearch(f"parameter '_sort': unknown search parameter '{key.name}'")
        asc_col, desc_col = SORT_COLUMN[param.type]
        keys = stored_keys(query.resource_type, param.name)
        specs.append(SortSpec(param.type, keys, desc_col if key.descending else asc_col, key.descending))
    return tuple(specs)
