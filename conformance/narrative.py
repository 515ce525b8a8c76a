"""Narrative XHTML checks txt-1 and txt-2 (FHIR R4 narrative.html#xhtml): well-formed XHTML rooted at an XHTML
<div>, only the permitted elements and attributes, no scripts, event handlers or external references."""
from __future__ import annotations

import html.entities
import re
import xml.etree.ElementTree as ET
from functools import cache
from typing import Any

import orjson

from conformance.definitions import DATA, invariant
from conformance.outcome import Issue

_XML_NS = "{http://www.w3.org/XML/1998/namespace}"
_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
# CSS that pulls content from elsewhere or runs code: url(...) other than data:, @import, expression(), behaviors.
_STYLE_EXTERNAL = re.compile(r"url\s*\(\s*['\"]?\s*(?!data:)|@import|expression\s*\(|behavior\s*:|-moz-binding",
                             re.IGNORECASE)


@cache
def _rules() -> dict[str, Any]:
    rules = orjson.loads((DATA / "xhtml-narrative.json").read_bytes())
    return {
        "namespace": rules["namespace"],
        "elements": frozenset(rules["elements"]),
        "attributes": frozenset(rules["attributes"]),
        "element_attributes": frozenset(rules["element_attributes"]),
        "url_attributes": frozenset(rules["url_attributes"]),
        "forbidden_url_schemes": frozenset(rules["forbidden_url_schemes"]),
        "data_url_attributes": frozenset(rules["data_url_attributes"]),
    }


def check_narrative_div(div: Any, expression: str) -> list[Issue]:
    """txt-1 and txt-2 issues for the xhtml of Narrative.div found at `expression`."""
    if not isinstance(div, str) or not div:
        return []  # the structure walk reports a missing or non-string div
    txt1 = invariant("txt-1")["severity"]
    if re.search(r"<!(DOCTYPE|ENTITY)|<\?", div, re.IGNORECASE):
        return [Issue(txt1, "invalid", expression, "XHTML must not contain DOCTYPE, entity declarations or "
                      "processing instructions", "txt-1")]
    rules = _rules()
    try:
        root = ET.fromstring(_ENTITY.sub(_numeric_entity, div))
    except ET.ParseError as error:
        return [Issue(txt1, "invalid", expression, f"Narrative is not well-formed XHTML: {error}", "txt-1")]
    namespace = "{" + rules["namespace"] + "}"
    issues: list[Issue] = []
    if root.tag != namespace + "div":
        issues.append(Issue(txt1, "invalid", expression, f"Narrative root must be a <div> in the XHTML namespace "
                            f"{rules['namespace']}, found {_name(root.tag)}", "txt-1"))
    for element in root.iter():
        issues += _element_issues(element, namespace, expression, txt1, rules)
    text = "".join(root.itertext()).strip()
    if not text and root.find(f".//{namespace}img") is None:
        issues.append(Issue(invariant("txt-2")["severity"], "invalid", expression,
                            "The narrative SHALL have some non-whitespace content", "txt-2"))
    return issues


def _numeric_entity(match: re.Match[str]) -> str:
    """HTML named entities (&nbsp; ...) are accepted in narrative, as by the HL7 validator: made numeric for XML."""
    name = match.group(1)
    code = html.entities.name2codepoint.get(name)
    return match.group(0) if name in _XML_ENTITIES or code is None else f"&#{code};"


def _element_issues(element: ET.Element, namespace: str, expression: str, severity: Any,
                    rules: dict[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    if not element.tag.startswith(namespace):
        issues.append(Issue(severity, "invalid", expression,
                            f"Element {_name(element.tag)} is not in the XHTML namespace", "txt-1"))
        return issues
    tag = element.tag[len(namespace):]
    if tag not in rules["elements"]:
        issues.append(Issue(severity, "invalid", expression, f"Element <{tag}> is not permitted in narrative "
                            "(scripts, forms, frames, objects, head/body, style/link are not allowed)", "txt-1"))
    for raw_name, value in element.attrib.items():
        attribute = "xml:" + raw_name[len(_XML_NS):] if raw_name.startswith(_XML_NS) else _name(raw_name)
        qualified = f"{tag}.{attribute}"
        if attribute.lower().startswith("on"):
            issues.append(Issue(severity, "invalid", expression,
                                f"Event handler attribute {attribute} on <{tag}> is not permitted", "txt-1"))
        elif attribute not in rules["attributes"] and qualified not in rules["element_attributes"]:
            issues.append(Issue(severity, "invalid", expression,
                                f"Attribute {attribute} is not permitted on <{tag}>", "txt-1"))
        elif qualified in rules["url_attributes"]:
            problem = _url_problem(value, qualified in rules["data_url_attributes"], rules)
            if problem:
                issues.append(Issue(severity, "invalid", expression, f"<{tag} {attribute}>: {problem}", "txt-1"))
        elif attribute == "style" and _STYLE_EXTERNAL.search(value):
            issues.append(Issue(severity, "invalid", expression, f"style on <{tag}> refers to external content or "
                                "runs code (url(), @import, expression()); only internal styles are allowed", "txt-1"))
    return issues


def _url_problem(url: str, data_allowed: bool, rules: dict[str, Any]) -> str | None:
    compact = re.sub(r"\s+", "", url).lower()  # browsers ignore embedded whitespace: "java script:" runs too
    match = _SCHEME.match(compact)
    if match is None:
        return None  # fragment (#id of a contained resource) or relative reference
    scheme = match.group(1)
    if scheme == "data" and data_allowed and compact.startswith("data:image/"):
        return None
    if scheme == "data":
        return "data: URLs are only allowed for images"
    if scheme in rules["forbidden_url_schemes"]:
        return f"URL scheme '{scheme}:' is not permitted (scripts and local files)"
    return None


def _name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag
