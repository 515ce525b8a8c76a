"""The FHIRPath subset used by R4 SearchParameter.expression (FHIRPath N1; R4 searchparameter.html).

Grammar handled (everything the indexed R4 definitions use):
    expr   := branch ('|' branch)*
    branch := ( '(' branch ')' | name ) step*  [ 'as' Type ]
    step   := '.' name | '.where(resolve() is Type)' | ".where(name='literal')"
            | '.as(Type)' | '.ofType(Type)'
Choice elements (`Observation.value`) are found by their JSON names (`valueQuantity`, ...) and
carry the type taken from the suffix, which `as`/`ofType` filter on.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator

# FHIR R4 datatypes that can close a choice element name (datatypes.html#open).
CHOICE_TYPES = frozenset(
    "Base64Binary Boolean Canonical Code Date DateTime Decimal Id Instant Integer Markdown Oid "
    "PositiveInt String Time UnsignedInt Uri Url Uuid Address Age Annotation Attachment "
    "CodeableConcept Coding ContactPoint Count Distance Duration HumanName Identifier Money "
    "Period Quantity Range Ratio Reference SampledData Signature Timing ContactDetail "
    "Contributor DataRequirement Expression ParameterDefinition RelatedArtifact TriggerDefinition "
    "UsageContext Dosage Meta".split()
)


class FhirPathError(ValueError):
    """An expression outside the supported subset."""


@dataclass(frozen=True)
class Child:
    name: str


@dataclass(frozen=True)
class ResolvesTo:
    """`.where(resolve() is Type)`: keep References whose target is of that resource type."""

    resource_type: str


@dataclass(frozen=True)
class FieldEquals:
    """`.where(field='literal')`, e.g. Patient.telecom.where(system='email')."""

    field: str
    value: str


@dataclass(frozen=True)
class AsType:
    """`as Type`, `.as(Type)`, `.ofType(Type)`."""

    type_name: str


Step = Child | ResolvesTo | FieldEquals | AsType


@dataclass(frozen=True)
class Node:
    """One value reached by a path, with its FHIR type when a choice suffix revealed it."""

    value: Any
    fhir_type: str | None = None


_TOKEN = re.compile(
    r"\s*(?:(?P<where_resolve>\.where\(\s*resolve\(\)\s+is\s+(?P<rtype>[A-Za-z]+)\s*\))"
    r"|(?P<where_eq>\.where\(\s*(?P<field>[A-Za-z]+)\s*=\s*'(?P<lit>[^']*)'\s*\))"
    r"|(?P<as_fn>\.(?:as|ofType)\(\s*(?P<atype>[A-Za-z]+)\s*\))"
    r"|(?P<as_op>as\s+(?P<otype>[A-Za-z]+))"
    r"|(?P<child>\.?(?P<name>[A-Za-z][A-Za-z0-9_]*))"
    r"|(?P<open>\()|(?P<close>\))|(?P<union>\|))"
)


def _tokens(expression: str) -> Iterator[tuple[str, re.Match[str]]]:
    pos = 0
    text = expression.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FhirPathError(f"unsupported FHIRPath at {pos}: {expression!r}")
        pos = m.end()
        yield m.lastgroup if m.lastgroup in ("open", "close", "union") else _kind(m), m


def _kind(m: re.Match[str]) -> str:
    for kind in ("where_resolve", "where_eq", "as_fn", "as_op", "child"):
        if m.group(kind):
            return kind
    raise FhirPathError(m.group(0))


@lru_cache(maxsize=None)
def parse(expression: str) -> tuple[tuple[Step, ...], ...]:
    """Parse into union branches, each a tuple of steps starting at the resource root (type name dropped)."""
    branches: list[tuple[Step, ...]] = []
    steps: list[Step] = []
    first = True
    for kind, m in _tokens(expression):
        if kind == "union":
            branches.append(tuple(steps))
            steps, first = [], True
        elif kind in ("open", "close"):
            continue  # parentheses only group `(path as Type)`; precedence is already left to right
        elif kind == "child":
            name = m.group("name")
            if first and name[0].isupper():
                first = False  # the resource type that roots the path
                continue
            first = False
            steps.append(Child(name))
        elif kind == "where_resolve":
            steps.append(ResolvesTo(m.group("rtype")))
        elif kind == "where_eq":
            steps.append(FieldEquals(m.group("field"), m.group("lit")))
        else:
            steps.append(AsType(m.group("atype") or m.group("otype")))
    branches.append(tuple(steps))
    return tuple(b for b in branches if b)


def reference_type(reference: str, resource: dict | None = None) -> str | None:
    """Resource type named by a Reference.reference: relative, absolute, versioned or contained (#id)."""
    if reference.startswith("#") and resource is not None:
        for contained in resource.get("contained", ()):
            if contained.get("id") == reference[1:]:
                return contained.get("resourceType")
        return None
    parts = reference.split("?", 1)[0].split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return parts[-2]
    return None


def _children(node: Node, name: str) -> Iterator[Node]:
    value = node.value
    if not isinstance(value, dict):
        return
    if name in value:
        found = value[name]
        for item in found if isinstance(found, list) else (found,):
            yield Node(item)
        return
    # Choice element: value[x] is serialised as valueQuantity, valueString, ... (json.html#choice)
    for key, found in value.items():
        if key.startswith(name) and key[len(name):] in CHOICE_TYPES:
            for item in found if isinstance(found, list) else (found,):
                yield Node(item, key[len(name):])


def _same_type(tagged: str | None, wanted: str) -> bool:
    return tagged is not None and tagged.lower() == wanted.lower()


def evaluate(
    branches: tuple[tuple[Step, ...], ...], resource: dict, declared_types: tuple[str, ...] = ()
) -> list[Node]:
    """Values the expression selects from `resource` (a plain JSON dict)."""
    out: list[Node] = []
    for steps in branches:
        nodes = [Node(resource)]
        for step in steps:
            if not nodes:
                break
            if type(step) is Child:
                nodes = [c for n in nodes for c in _children(n, step.name)]
            elif type(step) is AsType:
                nodes = [
                    n
                    for n in nodes
                    if _same_type(n.fhir_type, step.type_name)
                    or (n.fhir_type is None and any(_same_type(t, step.type_name) for t in declared_types))
                ]
                nodes = [Node(n.value, step.type_name[0].upper() + step.type_name[1:]) for n in nodes]
            elif type(step) is ResolvesTo:
                nodes = [
                    n
                    for n in nodes
                    if isinstance(n.value, dict)
                    and isinstance(n.value.get("reference"), str)
                    and reference_type(n.value["reference"], resource) == step.resource_type
                ]
            else:
                nodes = [n for n in nodes if isinstance(n.value, dict) and n.value.get(step.field) == step.value]
        out.extend(nodes)
    return out
