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
from typing import Any

ONE, APPEND, LAST, KEYED = 0, 1, 2, 3
_STEP = re.compile(r"^([A-Za-z_$][A-Za-z0-9_]*)(?:(\[\])|(\[=\])|\((.+)\))?$")


class TargetPath:
    """A compiled target path; `assign` writes a value and returns the row's item."""

    __slots__ = ("text", "steps", "appends")

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

    def __repr__(self) -> str:
        return f"TargetPath({self.text!r})"

    def assign(self, root: dict[str, Any], value: Any) -> dict[str, Any] | None:
        """Put value at the path under root; return the element created by the first `[]` (the item)."""
        node = root
        item: dict[str, Any] | None = None
        steps = self.steps
        if self.text == "$this":  # merge an object into the element being built
            if isinstance(value, dict):
                merge(root, value)
            return None
        last = len(steps) - 1
        for i, (name, mode, key) in enumerate(steps):
            if i == last:
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
    """Drop empty strings, lists and objects recursively (FHIR forbids empty elements); None if empty."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if value.__class__ is str:
                if value:
                    out[key] = value
                continue
            if value is None:
                continue
            if isinstance(value, (dict, list)):
                value = prune(value)
                if value is None:
                    continue
            out[key] = value
        if not out or (len(out) == 1 and "url" in out and any(k.startswith(("value", "extension")) for k in node)):
            return None  # an extension whose value was empty is dropped with it
        return out
    if isinstance(node, list):
        out_list = []
        for value in node:
            if isinstance(value, (dict, list)):
                value = prune(value)
            if value is not None and value != "":
                out_list.append(value)
        return out_list or None
    if node is None or node == "":
        return None
    return node
