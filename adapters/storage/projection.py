"""_summary and _elements applied to a returned resource (R4 search.html#summary, #elements)."""
from __future__ import annotations

from adapters.storage.fhirpath import CHOICE_TYPES
from adapters.storage.search_parameters import summary_elements

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
_ALWAYS = ("resourceType", "id", "meta")


def _keeps(key: str, wanted: set[str]) -> bool:
    if key in wanted:
        return True
    for name in wanted:
        if name.endswith("[x]") and key.startswith(name[:-3]) and key[len(name) - 3 :] in CHOICE_TYPES:
            return True
    return False


def _subset(resource: dict, wanted: set[str]) -> dict:
    out = {k: v for k, v in resource.items() if k in _ALWAYS or _keeps(k, wanted) or _keeps(k.lstrip("_"), wanted)}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*meta.get("tag", ()), SUBSETTED]
    out["meta"] = meta
    return out


def project(resource: dict, summary: str | None, elements: tuple[str, ...]) -> dict:
    """The resource as the client asked to see it; marked SUBSETTED when anything was left out."""
    if elements and summary in (None, "false"):
        return _subset(resource, {e.split(".", 1)[0] for e in elements})
    if summary == "true":
        return _subset(resource, set(summary_elements(resource["resourceType"])))
    if summary == "text":
        return _subset(resource, {"text"})
    if summary == "data":
        return _subset(resource, {k for k in resource if k != "text"})
    return resource
