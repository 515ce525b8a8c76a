"""Query pairs -> SearchQuery (FHIR R4 search.html): parameters, prefixes, modifiers, chains, result controls."""
from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from adapters.storage.base import InvalidSearch
from adapters.storage.dates import InvalidDate, date_range
from adapters.storage.query import IncludeSpec, SearchFilter, SearchQuery, SearchValue, SortKey
from adapters.storage.search_parameters import SearchParameter, parameter, parameters, resource_types

RULES_FILE = Path(__file__).resolve().parent / "data" / "search-rules.json"
_SPLIT_COMMA = re.compile(r"(?<!\\),")


@lru_cache(maxsize=1)
def rules() -> dict:
    return json.loads(RULES_FILE.read_text(encoding="utf-8"))


def _split_values(raw: str) -> list[str]:
    """Comma separates OR-ed values; `\\,` is a literal comma (search.html#escaping)."""
    return [v.replace("\\,", ",") for v in _SPLIT_COMMA.split(raw)]


def _number(name: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidSearch(f"parameter '{name}': '{text}' is not a number") from None
    if not value.is_finite():
        raise InvalidSearch(f"parameter '{name}': '{text}' is not a number")
    return value


def _value(name: str, param_type: str, modifier: str | None, raw: str) -> SearchValue:
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise InvalidSearch(f"parameter '{name}:missing' takes true or false, not '{raw}'")
        return SearchValue(raw)
    prefix = "eq"
    if param_type in rules()["prefixTypes"] and raw[:2] in rules()["prefixes"] and raw[2:3]:
        prefix, raw = raw[:2], raw[2:]
    if param_type == "date":
        try:
            date_range(raw)
        except InvalidDate:
            raise InvalidSearch(f"parameter '{name}': '{raw}' is not a valid date") from None
    elif param_type == "number":
        _number(name, raw)
    elif param_type == "quantity":
        _number(name, raw.split("|", 1)[0])
    elif param_type == "token" and modifier is None and raw.count("|") > 1:
        raise InvalidSearch(f"parameter '{name}': token '{raw}' has more than one '|'")
    return SearchValue(raw, prefix)


def _resolve_chain(resource_type: str, target_type: str | None, param: SearchParameter, chain: str) -> None:
    """Check a chain (`subject:Patient.name:exact`) resolves to known parameters (search.html#chaining)."""
    if param.type != "reference":
        raise InvalidSearch(f"parameter '{param.name}' is not a reference and cannot be chained")
    head, _, rest = chain.partition(".")
    leaf_name, _, leaf_modifier = head.partition(":")
    targets = [target_type] if target_type else list(param.targets)
    found = [t for t in targets if parameter(t, leaf_name)]
    if not found:
        raise InvalidSearch(f"chained parameter '{param.name}.{chain}': no target of '{param.name}' has '{leaf_name}'")
    for t in found:
        leaf = parameter(t, leaf_name)
        assert leaf is not None
        if rest:
            next_target = leaf_modifier if leaf_modifier[:1].isupper() else None
            _resolve_chain(t, next_target, leaf, rest)
        elif leaf_modifier and leaf_modifier not in rules()["modifiers"][leaf.type]:
            raise InvalidSearch(f"chained parameter '{param.name}.{chain}': modifier ':{leaf_modifier}' not supported")


def _filter(resource_type: str, name: str, raw: str) -> SearchFilter:
    head, dot, chain = name.partition(".")
    code, _, modifier_text = head.partition(":")
    param = parameter(resource_type, code)
    if param is None:
        raise InvalidSearch(f"unknown search parameter '{code}' for {resource_type}")
    modifier: str | None = modifier_text or None
    target_type: str | None = None
    if modifier and modifier[:1].isupper():
        if param.type != "reference" or modifier not in resource_types() or (
            param.targets and modifier not in param.targets
        ):
            raise InvalidSearch(f"parameter '{name}': '{modifier}' is not a target type of '{code}'")
        target_type, modifier = modifier, None
    elif modifier and modifier not in rules()["modifiers"][param.type]:
        raise InvalidSearch(f"parameter '{name}': modifier ':{modifier}' is not supported for {param.type}")
    if dot:
        if modifier:
            raise InvalidSearch(f"parameter '{name}': a chained parameter takes no ':{modifier}'")
        _resolve_chain(resource_type, target_type, param, chain)
        leaf_values = tuple(SearchValue(v) for v in _split_values(raw) if v)
        return SearchFilter(code, param.type, leaf_values, None, target_type, tuple(chain.split(".")))
    values = tuple(_value(name, param.type, modifier, v) for v in _split_values(raw) if v)
    return SearchFilter(code, param.type, values, modifier, target_type)


def _include(resource_type: str, name: str, raw: str, reverse: bool) -> IncludeSpec:
    _, _, modifier = name.partition(":")
    if modifier not in ("", "iterate", "recurse"):
        raise InvalidSearch(f"parameter '{name}': unknown modifier ':{modifier}'")
    parts = raw.split(":")
    if raw == "*":
        return IncludeSpec(resource_type, "*", None, modifier != "")
    if len(parts) not in (2, 3) or parts[0] not in resource_types():
        raise InvalidSearch(f"parameter '{name}': '{raw}' is not Type:parameter[:targetType]")
    source = parameter(parts[0], parts[1]) if parts[1] != "*" else None
    if parts[1] != "*" and (source is None or source.type != "reference"):
        raise InvalidSearch(f"parameter '{name}': '{parts[1]}' is not a reference parameter of {parts[0]}")
    target = parts[2] if len(parts) == 3 else None
    if target is not None and target not in resource_types():
        raise InvalidSearch(f"parameter '{name}': unknown target type '{target}'")
    return IncludeSpec(parts[0], parts[1], target, modifier != "")


def _sort(resource_type: str, raw: str) -> tuple[SortKey, ...]:
    keys = []
    for item in raw.split(","):
        item = item.strip()
        descending = item.startswith("-")
        name = item.lstrip("-")
        param = parameter(resource_type, name)
        if param is None:
            raise InvalidSearch(f"parameter '_sort': unknown search parameter '{name}' for {resource_type}")
        keys.append(SortKey(name, descending))
    return tuple(keys)


def _non_negative(name: str, raw: str) -> int:
    if not raw.isdigit():
        raise InvalidSearch(f"parameter '{name}' must be a non-negative integer, not '{raw}'")
    return int(raw)


def parse_search(resource_type: str, params: list[tuple[str, str]]) -> SearchQuery:
    """See adapters.storage.query.parse_search."""
    if not parameters(resource_type):
        raise InvalidSearch(f"search is not supported for resource type '{resource_type}'")
    r = rules()
    filters: list[SearchFilter] = []
    sort: tuple[SortKey, ...] = ()
    include: list[IncludeSpec] = []
    revinclude: list[IncludeSpec] = []
    elements: tuple[str, ...] = ()
    count, offset, summary, total = r["defaultCount"], 0, None, "accurate"
    for name, raw in params:
        base = name.split(":", 1)[0]
        if base in r["ignored"]:
            continue
        if base == "_count":
            count = min(_non_negative(name, raw), r["maxCount"])
        elif base == "_offset":
            offset = _non_negative(name, raw)
        elif base == "_sort":
            sort = _sort(resource_type, raw)
        elif base == "_include":
            include.append(_include(resource_type, name, raw, False))
        elif base == "_revinclude":
            revinclude.append(_include(resource_type, name, raw, True))
        elif base == "_summary":
            if raw not in r["summary"]:
                raise InvalidSearch(f"parameter '_summary': '{raw}' is not one of {', '.join(r['summary'])}")
            summary = raw
        elif base == "_elements":
            elements = tuple(e.strip() for e in raw.split(",") if e.strip())
        elif base == "_total":
            if raw not in r["total"]:
                raise InvalidSearch(f"parameter '_total': '{raw}' is not one of {', '.join(r['total'])}")
            total = raw
        elif not raw:
            continue  # an empty value is ignored (search.html#errors)
        else:
            filters.append(_filter(resource_type, name, raw))
    query = SearchQuery(
        resource_type=resource_type,
        filters=tuple(filters),
        sort=sort,
        count=count,
        offset=offset,
        include=tuple(include),
        revinclude=tuple(revinclude),
        summary=summary,
        elements=elements,
        total=total,
    )
    from adapters.storage.plan import compile_query  # validates chains and leaf values now, not at query time

    compile_query(query)
    return query
