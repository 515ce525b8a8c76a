"""The narrative language of a summary, from `_language` or Accept-Language (RFC 9110 12.5.4; FHIR R4 narrative.html#lang)."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

TRANSLATIONS_FILE = Path(__file__).resolve().parent / "data" / "translations.json"
FALLBACK_LANGUAGE = "en"


@cache
def translations() -> dict[str, dict]:
    """Language tag -> its section titles, column labels and code texts."""
    data = json.loads(TRANSLATIONS_FILE.read_text(encoding="utf-8"))
    return {tag: table for tag, table in data.items() if not tag.startswith("_")}


def _match(tag: str) -> str | None:
    """The supported language for a tag: exact (case-insensitive), then by primary subtag (zh-Hans-CN -> zh-CN)."""
    wanted = tag.strip().lower()
    for supported in translations():
        if supported.lower() == wanted:
            return supported
    primary = wanted.split("-", 1)[0]
    for supported in translations():
        if supported.lower().split("-", 1)[0] == primary:
            return supported
    return None


def _accept_language(header: str) -> list[str]:
    """Language ranges of an Accept-Language header, best first (q=0 ranges dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag.strip() and tag.strip() != "*" and quality > 0:
            ranked.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(explicit: str | None, accept_language: str | None, default: str | None) -> str:
    """`_language` wins, then Accept-Language, then the configured default (PULSEBRIDGE_SUMMARY_LANGUAGE), then English."""
    candidates = [explicit] if explicit else []
    candidates += _accept_language(accept_language or "")
    candidates += [default or FALLBACK_LANGUAGE, FALLBACK_LANGUAGE]
    for candidate in candidates:
        if candidate and (found := _match(candidate)):
            return found
    return FALLBACK_LANGUAGE
