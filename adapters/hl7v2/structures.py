"""Message structure from MSH-9.1/9.2 when MSH-9.3 is empty, by the standard's table 0354."""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def _by_event() -> dict[tuple[str, str], str]:
    data = json.loads(resources.files("adapters.hl7v2").joinpath("data/structures.json").read_text("utf-8"))
    table: dict[tuple[str, str], str] = {}
    for structure, events in data["table_0354"].items():
        code = structure.split("_", 1)[0]
        for event in events:
            # RRI_I12 shares events with REF_I12; the first listed structure for a code wins.
            table.setdefault((code, event), structure)
    return table


def structure_for(message_code: str, trigger_event: str, version: str = "") -> str:
    """`ADT`, `A04` -> `ADT_A01`; an unknown pair gives `CODE_EVENT` (the usual naming) or the code alone."""
    if message_code == "ACK":
        return "ACK"
    found = _by_event().get((message_code, trigger_event))
    if found:
        return found
    return f"{message_code}_{trigger_event}" if trigger_event else message_code
