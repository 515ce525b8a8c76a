"""Helpers for the mapper tests: convert ER7 text, find resources, validate Bundles."""
from __future__ import annotations

from typing import Any

from mappers import convert


def er7(*segments: str) -> bytes:
    return ("\r".join(segments) + "\r").encode("utf-8")


def resources(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def only(bundle: dict[str, Any], resource_type: str) -> dict[str, Any]:
    found = resources(bundle, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return found[0]


def validation_errors(bundle: dict[str, Any]) -> list[str]:
    from conformance.validation import validate_bundle

    return [f"{i.expression}: {i.diagnostics}" for i in validate_bundle(bundle, strict_references=True) if i.is_error]

