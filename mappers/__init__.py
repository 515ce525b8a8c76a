"""HL7 v2 -> FHIR R4 mapping, declared as data (HL7 v2-to-FHIR IG) and interpreted by a small engine.

    from mappers import convert
    bundle, report = convert(raw_bytes)          # one message -> transaction Bundle (dicts), report

Layout: specs/ holds the mapping data (messages/, segments/, datatypes/; format in SPEC.md);
specs.py loads and checks it; engine.py interprets it; sources.py/paths.py are the row grammar
(where a value is read, where it goes); primitives.py and functions.py are the Python the data
calls by name; vocab.py is the one door to terminology/; ids.py the deterministic id rule;
report.py the unmapped-data report.
"""
from __future__ import annotations

from datetime import timezone, tzinfo
from typing import Any

from adapters.hl7v2 import Message, parse
from mappers.report import ConversionReport

__all__ = ["ConversionReport", "convert", "convert_message"]


def convert_message(message: Message, raw: bytes | None = None, *, zone: tzinfo = timezone.utc) -> tuple[dict[str, Any], ConversionReport]:
    """A parsed message -> (FHIR R4 transaction Bundle as plain dicts, unmapped report).

    zone: where times sent without an offset were taken (HL7 v2 DTM); the gateway passes its
    PULSEBRIDGE_TIMEZONE setting (gateway.settings.Settings.timezone)."""
    from mappers.engine import convert_message as _convert

    return _convert(message, raw, zone=zone)


def convert(data: bytes | str, *, zone: tzinfo = timezone.utc) -> tuple[dict[str, Any], ConversionReport]:
    """ER7 bytes (or text) of one message -> (Bundle, report). Raises adapters.hl7v2.errors.HL7Error."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8")
    return convert_message(parse(data), raw, zone=zone)
