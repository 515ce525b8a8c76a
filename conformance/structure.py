"""Walk FHIR JSON against the R4 element tables: element names, cardinality, JSON types, primitive formats, empty
values (json.html, ele-1) and required bindings; records the nodes that later checks need (references, periods ...).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.bindings import check_required_binding
from conformance.definitions import (ElementDefinition, TypeDefinition, bound_paths, primitive_patterns,
                                     primitive_types, resource_types, type_definition)
from conformance.outcome import Issue

# Datatypes whose nodes are handed to the invariant, narrative and reference checks.
RECORDED_TYPES = frozenset({
    "Reference", "Period", "Range", "ContactPoint", "Quantity", "Age", "Count", "Distance", "Duration",
    "SimpleQuantity", "MoneyQuantity", "Attachment", "Extension", "Narrative",
})
# A uri/canonical whose value starts with '#' refers to a contained resource (dom-3 counts them).
LOCAL_URI_TYPES = frozenset({"uri", "canonical", "url"})
_NUMBER = (int, float)


@dataclass(slots=True, eq=False)
class ResourceFrame:
    """A resource met during the walk: top level, a Bundle entry's resource, or a contained resource."""

    resource: dict[str, Any]
    resource_type: str
    expression: str
    container: ResourceFrame | None = None   # set for contained resources
    bundle: ResourceFrame | None = None      # the Bundle whose entry holds this resource (inherited by contained)
    entry: dict[str, Any] | None = None      # that Bundle.entry


@dataclass(slots=True)
class Node:
    """A complex-type value of a recorded type, where it is, and in which resource."""

    type_name: str
    value: dict[str, Any]
    expression: str
    frame: ResourceFrame
    targets: tuple[str, ...] = ()


@dataclass(slots=True)
class Walk:
    issues: list[Issue] = field(default_factory=list)
    resources: list[ResourceFrame] = field(default_factory=list)
    nodes: dict[str, list[Node]] = field(default_factory=dict)
    local_uris: list[tuple[str, ResourceFrame]] = field(default_factory=list)

    def error(self, code: str, expression: str, diagnostics: str, rule: str | None = None) -> None:
        self.issues.append(Issue("error", code, expression, diagnostics, rule))  # type: ignore[arg-type]


def walk_resource(resource: Any, expression: str | None = None) -> Walk:
    """Walk `resource` (a FHIR JSON object) and everything inside it, contained and Bundle entries included."""
    walk = Walk()
    _resource(walk, resource, expression, None, None, None)
    return walk


def _resource(walk: Walk, resource: Any, expression: str | None, container: ResourceFrame | None,
              bundle: ResourceFrame | None, entry: dict[str, Any] | None) -> None:
    if not isinstance(resource, dict):
        walk.error("structure", expression or "Resource", "A resource must be a JSON object")
        return
    resource_type = resource.get("resourceType")
    where = expression or (resource_type if isinstance(resource_type, str) else "Resource")
    if not isinstance(resource_type, str) or resource_type not in resource_types():
        walk.error("structure", where, f"Unknown or missing resourceType {resource_type!r}: not a FHIR R4 resource type")
        return
    frame = ResourceFrame(resource, resource_type, where, container, bundle, entry)
    walk.resources.append(frame)
    definition = type_definition(resource_type)
    assert definition is not None
    if len(resource) == 1:
        walk.error("structure", where, "A resource must have content besides resourceType", "ele-1")
    _properties(walk, definition, resource, where, frame, is_resource=True)


def _complex(walk: Walk, type_code: str, value: Any, expression: str, frame: ResourceFrame,
             element: ElementDefinition) -> None:
    if not isinstance(value, dict):
        walk.error("structure", expression, f"Expected a JSON object for {type_code}, got {_json_kind(value)}")
        return
    if not value or set(value) <= {"id"}:
        walk.error("structure", expression, "Empty element: an element must have a value or children (json.html)",
                   "ele-1")
        return
    definition = type_definition(type_code)
    if definition is None:
        return
    if type_code in RECORDED_TYPES:
        walk.nodes.setdefault(type_code, []).append(Node(type_code, value, expression, frame, element.targets))
    _properties(walk, definition, value, expression, frame, is_resource=False)


def _properties(walk: Walk, definition: TypeDefinition, obj: dict[str, Any], expression: str,
                frame: ResourceFrame, *, is_resource: bool) -> None:
    elements = definition.elements
    seen_choices: dict[str, str] = {}
    for key, value in obj.items():
        if is_resource and key == "resourceType":
            continue
        extension_part = key.startswith("_")
        name = key[1:] if extension_part else key
        element = elements.get(name)
        where = f"{expression}.{name}"
        if element is None:
            walk.error("structure", where, f"Unknown element '{key}' in {definition.name} (FHIR R4)")
            continue
        if element.json_name != element.name:
            other = seen_choices.setdefault(element.name, element.json_name)
            if other != element.json_name:
                walk.error("structure", where,
                           f"Only one of {element.name}[x] may be present; found {other} and {element.json_name}")
        is_primitive = element.type_code in primitive_types()
        if extension_part and not is_primitive:
            walk.error("structure", where, f"'{key}' is only allowed for primitive elements")
            continue
        if element.is_array:
            if not isinstance(value, list):
                walk.error("structure", where, f"'{key}' must be a JSON array (cardinality 0..*)")
                continue
            if not value:
                walk.error("structure", where, "Empty array: arrays must have content (json.html)", "ele-1")
                continue
            partner = obj.get(("" if extension_part else "_") + name) if is_primitive else None
            for index, item in enumerate(value):
                item_where = f"{where}[{index}]"
                if item is None:
                    paired = isinstance(partner, list) and index < len(partner) and partner[index] is not None
                    if not paired:
                        walk.error("structure", item_where, "null is only allowed in a primitive array paired with "
                                   "its '_' extension array (json.html#primitive)", "ele-1")
                    continue
                _item(walk, definition, element, item, item_where, frame, extension_part, obj)
        else:
            if isinstance(value, list):
                walk.error("structure", where, f"'{key}' must not be an array (cardinality 0..1)")
                continue
            if value is None:
                walk.error("structure", where, "null is not a valid value (json.html)", "ele-1")
                continue
            _item(walk, definition, element, value, where, frame, extension_part, obj)
    for alternatives in definition.required:
        if not any(name in obj or f"_{name}" in obj for name in alternatives):
            shown = alternatives[0] if len(alternatives) == 1 else elements[alternatives[0]].name + "[x]"
            walk.error("required", f"{expression}.{shown}", f"Missing required element {definition.name}.{shown} "
                       "(minimum cardinality 1)")


def _item(walk: Walk, definition: TypeDefinition, element: ElementDefinition, value: Any, where: str,
          frame: ResourceFrame, extension_part: bool, parent: dict[str, Any]) -> None:
    type_code = element.type_code
    if extension_part:
        _complex(walk, "Element", value, where, frame, element)
        return
    if type_code == "Resource":
        if element.name == "contained":
            _resource(walk, value, where, frame, frame.bundle, frame.entry)
        elif definition.name == "Bundle.entry":
            _resource(walk, value, where, None, frame, parent)  # parent is the entry; frame the Bundle
        else:  # Parameters.parameter.resource and the like: a resource of its own
            _resource(walk, value, where, None, None, None)
        return
    if type_code in primitive_types():  # xhtml included: a non-empty string, checked further by narrative.py
        _primitive(walk, type_code, value, where, frame)
    else:
        _complex(walk, type_code, value, where, frame, element)
    path = f"{definition.name}.{element.name}"
    if path in bound_paths():
        issue = check_required_binding(path, type_code, value, where)
        if issue is not None:
            walk.issues.append(issue)


def _primitive(walk: Walk, type_code: str, value: Any, where: str, frame: ResourceFrame) -> None:
    if type_code == "boolean":
        if not isinstance(value, bool):
            walk.error("value", where, f"boolean must be JSON true or false, got {_json_kind(value)}")
        return
    if type_code in ("integer", "positiveInt", "unsignedInt", "decimal"):
        if isinstance(value, bool) or not isinstance(value, _NUMBER if type_code == "decimal" else int):
            walk.error("value", where, f"{type_code} must be a JSON number, got {_json_kind(value)}")
            return
        if type_code == "decimal":
            return
        if type_code == "positiveInt" and value < 1 or type_code == "unsignedInt" and value < 0:
            walk.error("value", where, f"{value} is not a valid {type_code}")
        elif not -2**31 <= value < 2**31:
            walk.error("value", where, f"{value} is outside the 32-bit range of {type_code}")
        return
    if not isinstance(value, str):
        walk.error("value", where, f"{type_code} must be a JSON string, got {_json_kind(value)}")
        return
    if value == "":
        walk.error("value", where, "Empty string: primitive values must not be empty (json.html)", "ele-1")
        return
    pattern = primitive_patterns().get(type_code)
    if pattern is not None and not pattern.match(value):
        walk.error("value", where, f"'{_clip(value)}' is not a valid {type_code} (R4 datatypes.html#{type_code})")
    if type_code in LOCAL_URI_TYPES and value.startswith("#"):
        walk.local_uris.append((value, frame))


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, _NUMBER):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return "an object"


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
