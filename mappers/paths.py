"""FHIR target paths of spec rows: where a mapped value goes in the resource being built.

Grammar (see mappers/SPEC.md), dot-separated steps:
  name        a single element (created on demand)
  name[]      a new array element per value (the row's "item")
  name[=]     the last element of the array (created if the array is empty)
  name(URL)   the element of the array `name` whose url is URL (extensions), created if absent
A leaf that already holds a value keeps it (first row wins), except that two objects merge.
"""
from __future__ import annotations

import re
from functools import lru_cache
from itertools import islice
from collections.abc import Iterable
from typing import Any

ONE, APPEND, LAST, KEYED = 0, 1, 2, 3
_STEP = re.compile(r"^([A-Za-z_$][A-Za-z0-9_]*)(?:(\[\])|(\[=\])|\((.+)\))?$")


class TargetPath:
    """A compiled target path; `assign` writes a value and returns the row's item."""

    __slots__ = ("text", "steps", "appends", "assign", "_head")

    def __init__(self, text: str) -> None:
        self.text = text
        self.steps: list[tuple[str, int, str | None]] = []
        for part in _split(text):
            m = _STEP.match(part)
            if not m:
                raise ValueError(f"bad FHIR target path step {part!r} in {text!r}")
            name, app, last, key = m.groups()
            mode = APPEND if app else LAST if last else KEYED if key else ONE
            self.steps.append((name, mode, key))
        if self.steps[-1][1] == KEYED:
            raise ValueError(f"{text!r}: a keyed step (extension(url)) needs a value element after it")
        self.appends = sum(1 for s in self.steps if s[1] == APPEND)
        self._head = tuple(self.steps[:-1])  # the steps down to the leaf's parent
        self.assign = self._fast_assign() or self._assign

    def _fast_assign(self) -> Any:
        """Specialised writers for the commonest shapes (`name`, `name[]`, `a.b`); None for the rest."""
        if self.text == "$this":
            return None
        if len(self.steps) == 1:
            name, mode, _ = self.steps[0]
            if mode == ONE:

                def one(root: dict[str, Any], value: Any) -> None:
                    have = root.get(name)
                    if have is None:
                        root[name] = value
                    elif isinstance(have, dict) and isinstance(value, dict):
                        merge(have, value)
                    return None

                return one
            if mode == APPEND:

                def append(root: dict[str, Any], value: Any) -> dict[str, Any] | None:
                    seq = root.get(name)
                    if seq is None:
                        seq = root[name] = []
                    if isinstance(value, list):
                        seq.extend(value)
                        return None
                    seq.append(value)
                    return value if isinstance(value, dict) else None

                return append
        return None

    def __repr__(self) -> str:
        return f"TargetPath({self.text!r})"

    def _assign(self, root: dict[str, Any], value: Any) -> dict[str, Any] | None:
        """Put value at the path under root; return the element created by the first `[]` (the item)."""
        if self.text == "$this":  # merge an object into the element being built
            if isinstance(value, dict):
                merge(root, value)
            return None
        node = root
        item: dict[str, Any] | None = None
        for name, mode, key in self._head:
            if mode == ONE:
                child = node.get(name)
                if child is None:
                    child = node[name] = {}
                elif isinstance(child, list):  # an array reached without [] or [=]: its last element
                    if not child:
                        child.append({})
                    child = child[-1]
                node = child
            elif mode == APPEND:
                child = {}
                node.setdefault(name, []).append(child)
                if item is None:
                    item = child
                node = child
            elif mode == LAST:
                seq = node.setdefault(name, [])
                if not seq:
                    seq.append({})
                node = seq[-1]
            else:
                seq = node.setdefault(name, [])
                for element in seq:
                    if element.get("url") == key:
                        node = element
                        break
                else:
                    element = {"url": key}
                    seq.append(element)
                    node = element
        name, mode, _ = self.steps[-1]
        if mode == APPEND:
            seq = node.setdefault(name, [])
            if isinstance(value, list):
                seq.extend(value)
            else:
                seq.append(value)
            if item is None and isinstance(value, dict):
                item = value
        elif mode == LAST:
            seq = node.setdefault(name, [])
            if seq and isinstance(seq[-1], dict) and isinstance(value, dict):
                merge(seq[-1], value)
            elif not seq:
                seq.append(value)
        else:
            have = node.get(name)
            if have is None:
                node[name] = value
            elif isinstance(have, dict) and isinstance(value, dict):
                merge(have, value)
        return item


def _split(text: str) -> list[str]:
    """Split on dots outside parentheses (extension URLs contain dots)."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "." and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


@lru_cache(maxsize=2048)
def compile_path(text: str) -> TargetPath:
    return TargetPath(text)


def merge(into: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: keys absent in `into` are added; objects merge; arrays extend with new items."""
    for key, value in other.items():
        have = into.get(key)
        if have is None:
            into[key] = value
        elif isinstance(have, dict) and isinstance(value, dict):
            merge(have, value)
        elif isinstance(have, list) and isinstance(value, list):
            for element in value:
                if element not in have:
                    have.append(element)
    return into


def prune(node: Any) -> Any:
    """Drop empty strings, lists and objects recursively (FHIR forbids empty elements); None if empty.

    Containers with nothing to drop are returned as they are (not copied): callers hand over trees
    they built for this purpose."""
    cls = node.__class__
    if cls is dict:
        return node if node and _clean(node.values()) else _prune_dict(node)
    if cls is list:
        return node if node and _clean(node) else _prune_list(node)
    if isinstance(node, dict):
        return _prune_dict(node)
    if isinstance(node, list):
        return _prune_list(node)
    if node is None or node == "":
        return None
    return node


def _clean(values: Iterable[Any]) -> bool:
    """Nothing to prune among values (a dict's values or a list's items), checked without copying;
    most built resources are clean."""
    for value in values:
        cls = value.__class__
        if cls is str:
            if not value:
                return False
        elif cls is dict:
            if not value or not _clean(value.values()):
                return False
        elif cls is list:
            if not value or not _clean(value):
                return False
        elif value is None or isinstance(value, (dict, list)):
            return False  # None, or a dict/list subclass: let _prune_dict/_prune_list decide
    return True


def _prune_dict(node: dict[str, Any]) -> dict[str, Any] | None:
    """Pruned copy of node, or node itself when nothing in it is empty (copied only from the first change)."""
    out: dict[str, Any] | None = None
    i = 0
    for key, value in node.items():
        cls = value.__class__
        if cls is str:
            new = value if value else None
        elif cls is dict:
            new = _prune_dict(value)
        elif cls is list:
            new = _prune_list(value)
        elif value is None:
            new = None
        elif isinstance(value, (dict, list)):
            new = prune(value)
        else:
            new = value
        if out is not None:
            if new is not None:
                out[key] = new
        elif new is not value or new is None:
            out = dict(islice(node.items(), i))
            if new is not None:
                out[key] = new
        i += 1
    result = node if out is None else out
    if not result or (len(result) == 1 and "url" in result and any(k.startswith(("value", "extension")) for k in node)):
        return None  # an extension whose value was empty is dropped with it
    return result


def _prune_list(node: list[Any]) -> list[Any] | None:
    """Pruned copy of node, or node itself when nothing in it is empty."""
    out: list[Any] | None = None
    for i, value in enumerate(node):
        cls = value.__class__
        if cls is dict:
            new = _prune_dict(value)
        elif cls is list:
            new = _prune_list(value)
        elif isinstance(value, (dict, list)):
            new = prune(value)
        else:
            new = value if value is not None and value != "" else None
        if out is not None:
            if new is not None:
                out.append(new)
        elif new is not value or new is None:
            out = node[:i]
            if new is not None:
                out.append(new)
    result = node if out is None else out
    return result or None
