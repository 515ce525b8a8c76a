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
from typing import Any

import orjson

ONE, APPEND, LAST, KEYED = 0, 1, 2, 3
_STEP = re.compile(r"^([A-Za-z_$][A-Za-z0-9_]*)(?:(\[\])|(\[=\])|\((.+)\))?$")


class TargetPath:
    """A compiled target path; `assign(root, value)` writes a value and returns the row's item.

    The write is generated Python (`write_lines`), specialised to the path's steps once, so
    nothing interprets the steps per value; the engine inlines the same lines in compiled maps."""

    __slots__ = ("text", "steps", "appends", "assign")

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
        self.assign = self._compile_assign  # compiled on first use: most paths are only inlined in compiled maps

    def _compile_assign(self, root: dict[str, Any], value: Any) -> dict[str, Any] | None:
        """Generate the writer from `write_lines`, keep it as `assign`, and apply it."""
        lines = ["def assign(root, value):", "    item = None", *("    " + line for line in self.write_lines("root", "value", "item")), "    return item"]
        env: dict[str, Any] = {"merge": merge}
        exec(compile("\n".join(lines) + "\n", f"<target {self.text}>", "exec"), env)  # noqa: S102 - from the checked grammar
        self.assign = env["assign"]
        return self.assign(root, value)

    def __repr__(self) -> str:
        return f"TargetPath({self.text!r})"

    def write_lines(self, root: str, value: str, item: str | None, tmp: str = "_t", *, fresh: bool = False,
                    listy: bool = True) -> list[str]:
        """Python statements putting `value` at this path under `root` and setting `item` to the
        element made by the first `[]` (left unchanged when there is none; callers start it at
        None; item None: nobody reads it). Names starting with `tmp` are scratch; `merge` must be in
        scope. Settled by the caller at compile time: `fresh`, root holds nothing under this path's
        first step yet (every container is made, no first-value-wins test); `listy`, value may be a
        list (an array leaf extends with it)."""
        if self.text == "$this":  # merge an object into the element being built
            return [f"if isinstance({value}, dict):", f"    merge({root}, {value})"]
        if fresh:
            return self._fresh_lines(root, value, item, tmp, listy)
        seq, have = f"{tmp}s", f"{tmp}h"
        *head, (leaf, leaf_mode, _) = self.steps
        node = f"{tmp}n" if head else root  # `name` and `name[]`, the commonest shapes, write into root itself
        out: list[str] = [f"{node} = {root}"] if head else []
        item_set = item is None  # whether a head `[]` step has set item (only the first one does)
        for name, mode, key in head:
            if mode == ONE:
                out += [f"{have} = {node}.get({name!r})", f"if {have} is None:", f"    {have} = {node}[{name!r}] = {{}}",
                        f"elif isinstance({have}, list):  # an array reached without [] or [=]: its last element",
                        f"    if not {have}:", f"        {have}.append({{}})", f"    {have} = {have}[-1]", f"{node} = {have}"]
            elif mode == APPEND:
                out += [f"{have} = {{}}", f"{node}.setdefault({name!r}, []).append({have})"]
                if not item_set:
                    out.append(f"{item} = {have}")
                    item_set = True
                out.append(f"{node} = {have}")
            elif mode == LAST:
                out += [f"{seq} = {node}.setdefault({name!r}, [])", f"if not {seq}:", f"    {seq}.append({{}})", f"{node} = {seq}[-1]"]
            else:
                out += [f"{seq} = {node}.setdefault({name!r}, [])", f"for {have} in {seq}:", f"    if {have}.get('url') == {key!r}:",
                        f"        {node} = {have}", "        break", "else:", f"    {node} = {{'url': {key!r}}}", f"    {seq}.append({node})"]
        if leaf_mode == APPEND:
            out += [f"{seq} = {node}.get({leaf!r})", f"if {seq} is None:", f"    {seq} = {node}[{leaf!r}] = []"]
            if not listy:
                out.append(f"{seq}.append({value})")
            else:
                out += [f"if isinstance({value}, list):", f"    {seq}.extend({value})", "else:", f"    {seq}.append({value})"]
            if not item_set:
                out += [f"{'    ' if listy else ''}if isinstance({value}, dict):", f"{'    ' if listy else ''}    {item} = {value}"]
        elif leaf_mode == LAST:
            out += [f"{seq} = {node}.setdefault({leaf!r}, [])",
                    f"if {seq} and isinstance({seq}[-1], dict) and isinstance({value}, dict):", f"    merge({seq}[-1], {value})",
                    f"elif not {seq}:", f"    {seq}.append({value})"]
        else:
            out += [f"{have} = {node}.get({leaf!r})", f"if {have} is None:", f"    {node}[{leaf!r}] = {value}",
                    f"elif isinstance({have}, dict) and isinstance({value}, dict):", f"    merge({have}, {value})"]
        return out

    def _fresh_lines(self, root: str, value: str, item: str | None, tmp: str, listy: bool) -> list[str]:
        """write_lines when nothing is under the first step yet: each step's container is new, so
        the value goes in without looking (the same tree the general lines build)."""
        *head, (leaf, leaf_mode, _) = self.steps
        node, out, item_set = root, [], item is None
        for depth, (name, mode, key) in enumerate(head):
            made, have = "{}" if mode != KEYED else f"{{'url': {key!r}}}", f"{tmp}{depth}"
            if mode == ONE:
                out.append(f"{have} = {node}[{name!r}] = {made}")
            else:
                out += [f"{have} = {made}", f"{node}[{name!r}] = [{have}]"]
                if mode == APPEND and not item_set:
                    out.append(f"{item} = {have}")
                    item_set = True
            node = have
        if leaf_mode == ONE:
            out.append(f"{node}[{leaf!r}] = {value}")
        elif leaf_mode == LAST or not listy:
            out.append(f"{node}[{leaf!r}] = [{value}]")
        else:
            out.append(f"{node}[{leaf!r}] = list({value}) if isinstance({value}, list) else [{value}]")
        if leaf_mode == APPEND and not item_set:
            out += [f"if isinstance({value}, dict):", f"    {item} = {value}"]
        return out


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
        return node if node and _clean(node) else _prune_dict(node)
    if cls is list:
        return node if node and _clean(node) else _prune_list(node)
    if isinstance(node, dict):
        return _prune_dict(node)
    if isinstance(node, list):
        return _prune_list(node)
    if node is None or node == "":
        return None
    return node


def _clean(node: dict[str, Any] | list[Any]) -> bool:
    """Nothing to prune in node (most built resources): told from its JSON in C instead of a walk in
    Python, as any empty element shows there as "", [], {} or null. Such text inside a string (or a
    value orjson refuses) only costs the full walk, which decides."""
    try:
        text = orjson.dumps(node)
    except orjson.JSONEncodeError:
        return False
    return not (b'""' in text or b"[]" in text or b"{}" in text or b"null" in text)


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
