"""Reference checks: literal reference format, target types, contained references (ref-1) and resolution inside
Bundles (FHIR R4 references.html, bundle.html#references)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from conformance.definitions import invariant, resource_types
from conformance.outcome import Issue
from conformance.structure import Node, ResourceFrame, Walk

# Bundle types whose references must resolve inside the Bundle (or, when not strict, are reported as warnings).
RESOLVING_BUNDLE_TYPES = frozenset({"transaction", "document", "collection"})
# In these, an unresolved reference is an error when strict (a transaction or document stands as a whole; a
# collection may point anywhere, so there it stays a warning).
STRICT_BUNDLE_TYPES = frozenset({"transaction", "document"})
_RELATIVE = re.compile(r"(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?\Z")
_ABSOLUTE_RESTFUL = re.compile(r"(?P<base>(?:https?)://[^?#]*?/)(?P<relative>[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}"
                               r"(?:/_history/[A-Za-z0-9\-.]{1,64})?)\Z")
_CONDITIONAL = re.compile(r"(?P<type>[A-Z][A-Za-z]+)\?(?P<query>.+)\Z")
_URN = re.compile(r"urn:(?:uuid|oid):\S+\Z")


@dataclass(slots=True)
class _BundleIndex:
    full_urls: dict[str, dict[str, Any]]   # fullUrl -> resource
    by_type_id: dict[str, dict[str, Any]]  # "Type/id" -> resource (resource.id, PUT request.url, RESTful fullUrl)
    local_type_id: dict[str, dict[str, Any]]  # the same for entries without a RESTful fullUrl (urn:uuid, none)
    resources: list[dict[str, Any]]


def reference_issues(walk: Walk, *, strict: bool) -> tuple[list[Issue], dict[int, set[str]]]:
    """Issues for every Reference met by the walk, and the '#...' local references found per container resource
    (plus '#' under each contained resource that refers to its container).

    strict: an unresolved reference in a transaction/document/collection Bundle is an error, not a warning.
    """
    issues: list[Issue] = []
    local: dict[int, set[str]] = {}
    indexes: dict[int, _BundleIndex] = {}
    for value, frame in walk.local_uris:
        local.setdefault(id(_container(frame).resource), set()).add(value)
    for node in walk.nodes.get("Reference", ()):
        reference = node.value.get("reference")
        if not isinstance(reference, str) or not reference:
            continue
        if reference.startswith("#"):
            local.setdefault(id(_container(node.frame).resource), set()).add(reference)
            if reference == "#":  # dom-3: a contained resource that refers to its container
                local.setdefault(id(node.frame.resource), set()).add(reference)
            issues += _local(node, reference)
            continue
        issues += _resolve(node, reference, indexes, strict)
    return issues, local


def _container(frame: ResourceFrame) -> ResourceFrame:
    return frame.container if frame.container is not None else frame


def _local(node: Node, reference: str) -> list[Issue]:
    """ref-1: '#id' SHALL resolve to a resource contained in the same container; '#' alone is the container."""
    container = _container(node.frame)
    if reference == "#":
        return []
    contained = container.resource.get("contained")
    for resource in contained if isinstance(contained, list) else []:
        if isinstance(resource, dict) and resource.get("id") == reference[1:]:
            return _type_issues(node, resource.get("resourceType"))
    rule = invariant("ref-1")
    return [Issue(rule["severity"], "not-found", f"{node.expression}.reference",
                  f"{rule['human']} (no contained resource with id {reference[1:]!r})", "ref-1")]


def _resolve(node: Node, reference: str, indexes: dict[int, _BundleIndex], strict: bool) -> list[Issue]:
    where = f"{node.expression}.reference"
    relative = _RELATIVE.match(reference)
    absolute = _ABSOLUTE_RESTFUL.match(reference)
    conditional = _CONDITIONAL.match(reference)
    bundle = node.frame.bundle
    bundle_type = bundle.resource.get("type") if bundle is not None else None
    if relative is None and absolute is None and not _URN.match(reference) and not reference.startswith(("http://", "https://")):
        if conditional is not None and bundle_type in ("transaction", "batch"):
            pass  # conditional references are resolved by the server when processing a transaction (http.html#trules)
        else:
            return [Issue("error", "invalid", where, f"{reference!r} is not a valid literal reference (Type/id, an "
                          "absolute URL, urn:uuid: or urn:oid:, or #id for a contained resource)", "reference-format")]
    literal_type = _literal_type(relative, absolute, conditional)
    if absolute is not None and literal_type not in resource_types():
        literal_type = None  # an absolute URL that is not a FHIR RESTful one (e.g. another IG's Network/x)
    if literal_type is not None and literal_type not in resource_types():
        return [Issue("error", "invalid", where, f"{literal_type!r} in reference {reference!r} is not an R4 resource type",
                      "reference-format")]
    issues = _type_issues(node, literal_type) if literal_type else []
    if bundle is None or bundle_type not in RESOLVING_BUNDLE_TYPES:
        return issues
    index = indexes.get(id(bundle.resource))
    if index is None:
        index = indexes[id(bundle.resource)] = _index(bundle.resource)
    target = _lookup(index, reference, node.frame, relative, absolute, conditional)
    if target is None:
        severity = "error" if strict and bundle_type in STRICT_BUNDLE_TYPES else "warning"
        issues.append(Issue(severity, "not-found", where, f"Reference {reference!r} does not resolve to an entry of "
                            f"this {bundle_type} Bundle (by fullUrl, or Type/id of an entry)", "bundle-reference"))
    elif literal_type is None:
        issues += _type_issues(node, target.get("resourceType"))
    return issues


def _literal_type(relative: re.Match[str] | None, absolute: re.Match[str] | None,
                  conditional: re.Match[str] | None) -> str | None:
    """The resource type a literal reference names, if it names one (not for urn:uuid: or other URLs)."""
    if relative is not None:
        return relative.group("type")
    if absolute is not None:
        return absolute.group("relative").split("/", 1)[0]
    if conditional is not None:
        return conditional.group("type")
    return None


def _index(bundle: dict[str, Any]) -> _BundleIndex:
    full_urls: dict[str, dict[str, Any]] = {}
    by_type_id: dict[str, dict[str, Any]] = {}
    local_type_id: dict[str, dict[str, Any]] = {}
    resources: list[dict[str, Any]] = []
    for entry in bundle.get("entry") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            continue
        resource = entry["resource"]
        resources.append(resource)
        full_url = entry.get("fullUrl")
        keys = []
        restful = _ABSOLUTE_RESTFUL.match(full_url) if isinstance(full_url, str) else None
        if isinstance(full_url, str):
            full_urls[full_url] = resource
            if restful:
                keys.append(restful.group("relative"))
        if isinstance(resource.get("id"), str) and isinstance(resource.get("resourceType"), str):
            keys.append(f"{resource['resourceType']}/{resource['id']}")
        request = entry.get("request")
        if isinstance(request, dict) and request.get("method") == "PUT" and isinstance(request.get("url"), str):
            url = request["url"].split("?", 1)[0].lstrip("/")
            if _RELATIVE.match(url):
                keys.append(url)
        for key in keys:
            by_type_id.setdefault(key, resource)
            if restful is None:
                local_type_id.setdefault(key, resource)
    return _BundleIndex(full_urls, by_type_id, local_type_id, resources)


def _lookup(index: _BundleIndex, reference: str, frame: ResourceFrame, relative: re.Match[str] | None,
            absolute: re.Match[str] | None, conditional: re.Match[str] | None) -> dict[str, Any] | None:
    if reference in index.full_urls:
        return index.full_urls[reference]
    if relative is not None:
        type_id = reference.split("/_history/", 1)[0]
        entry_url = frame.entry.get("fullUrl") if frame.entry is not None else None
        base = _ABSOLUTE_RESTFUL.match(entry_url) if isinstance(entry_url, str) else None
        if base is None:
            return index.by_type_id.get(type_id)
        # bundle.html#references: relative to the RESTful base of the referring entry's fullUrl, or an entry
        # without a RESTful fullUrl that a transaction creates on that same server.
        return index.full_urls.get(base.group("base") + type_id) or index.local_type_id.get(type_id)
    if absolute is not None:
        unversioned = reference.split("/_history/", 1)[0]
        return index.full_urls.get(unversioned)
    if conditional is not None:
        return _conditional_match(index, conditional.group("type"), conditional.group("query"))
    return None


def _conditional_match(index: _BundleIndex, resource_type: str, query: str) -> dict[str, Any] | None:
    """A conditional reference Type?identifier=system|value matched against the entries' identifiers."""
    from urllib.parse import parse_qsl

    wanted = [value for key, value in parse_qsl(query) if key == "identifier"]
    if not wanted:
        return None
    for resource in index.resources:
        if resource.get("resourceType") != resource_type:
            continue
        identifiers = [(i.get("system"), i.get("value")) for i in resource.get("identifier") or []
                       if isinstance(i, dict)]
        if all(_identifier_matches(token, identifiers) for token in wanted):
            return resource
    return None


def _identifier_matches(token: str, identifiers: list[tuple[Any, Any]]) -> bool:
    """Token search semantics (search.html#token): [system]|[value], |[value] (no system) or [value]."""
    if "|" not in token:
        return any(value == token for _, value in identifiers)
    system, value = token.split("|", 1)
    return any((system_ == (system or None)) and value_ == value for system_, value_ in identifiers)


def _type_issues(node: Node, target_type: Any) -> list[Issue]:
    """The referenced type must be one the element allows (ElementDefinition.type.targetProfile)."""
    issues: list[Issue] = []
    allowed = node.targets
    if isinstance(target_type, str) and allowed and "Resource" not in allowed and target_type not in allowed:
        issues.append(Issue("error", "invalid", f"{node.expression}.reference",
                            f"Reference to {target_type} is not allowed here (allowed: {', '.join(allowed)})",
                            "reference-target"))
    declared = node.value.get("type")
    if isinstance(declared, str) and isinstance(target_type, str) and declared != target_type:
        issues.append(Issue("error", "invalid", f"{node.expression}.type",
                            f"Reference.type {declared} does not match the referenced {target_type}", "reference-type"))
    return issues
