"""HL7 v2 segment field names (e.g. PID-5 "Patient Name") for people reading messages (`inspect`).

The names come from hl7apy's reference tables (HL7 v2.1-v2.8.2), extracted once into
data/field_names.json so that no hl7apy import is needed at run time. Regenerate with
`python -m adapters.hl7v2.names` after an hl7apy upgrade.

Data layout: `versions` in order; `segments[version][segment]` lists the field names of a
segment only where they differ from the previous version that had it.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

DATA = "data/field_names.json"
DEFAULT_VERSION = "2.5"
_ACRONYMS = {"ID", "HL7", "SSN", "DOB", "UCUM", "NDC", "CLIA", "OID", "URL", "URI", "MIME", "UID"}


@lru_cache(maxsize=1)
def _data() -> dict:
    return json.loads(resources.files("adapters.hl7v2").joinpath(DATA).read_text("utf-8"))


def known_version(version: str) -> str:
    """The table version to use for a message's MSH-12: itself, else its major.minor, else 2.5 (or the latest above)."""
    versions: list[str] = _data()["versions"]
    version = version.strip()
    if version in versions:
        return version
    numbers = re.findall(r"\d+", version)
    if len(numbers) >= 2:
        key = (int(numbers[0]), int(numbers[1]))
        same_minor = [v for v in versions if _key(v)[:2] == key]
        if same_minor:
            return same_minor[-1]
        if key > _key(versions[-1])[:2]:
            return versions[-1]  # a newer version than hl7apy knows: its latest
    return DEFAULT_VERSION


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in version.split("."))


def _nearest_first(version: str) -> list[str]:
    """Table versions to look in: `version`'s own, then older ones, then newer ones."""
    versions: list[str] = _data()["versions"]
    index = versions.index(known_version(version))
    return versions[index::-1] + versions[index + 1 :]


def _names_in(segment_id: str, version: str) -> list[str]:
    """The segment's names as of `version` (inherited from the last version that changed them)."""
    data = _data()
    versions: list[str] = data["versions"]
    for v in versions[versions.index(version) :: -1]:
        names = data["segments"].get(v, {}).get(segment_id)
        if names is not None:
            return names
    return []


@lru_cache(maxsize=512)
def segment_field_names(segment_id: str, version: str = DEFAULT_VERSION) -> tuple[str, ...]:
    """Names of a segment's fields (index 0 is field 1) in `version`, else in the nearest version that has them."""
    for v in _nearest_first(version):
        names = _names_in(segment_id, v)
        if names:
            return tuple(names)
    return ()


@lru_cache(maxsize=4096)
def field_name(segment_id: str, field: int, version: str = DEFAULT_VERSION) -> str:
    """`field_name("PID", 5)` -> "Patient Name"; '' for Z-segments and fields no version defines.

    A field newer than the message's version (e.g. MSH-18 in a v2.1 message) takes its later name.
    """
    for v in _nearest_first(version):
        names = _names_in(segment_id, v)
        if 0 < field <= len(names) and names[field - 1]:
            return names[field - 1]
    return ""


def _pretty(long_name: str, segment_id: str, segment_ids: set[str]) -> str:
    """hl7apy's `SET_ID_PID` -> `Set ID - PID`, `MOTHER_S_MAIDEN_NAME` -> `Mother's Maiden Name`."""
    words = long_name.split("_")
    out: list[str] = []
    for i, word in enumerate(words):
        if word == "S" and out:
            out[-1] += "'s"
        elif word == "E" and i + 1 < len(words) and words[i + 1] == "G":
            out.append("e.g.")
        elif word == "G" and out and out[-1] == "e.g.":
            continue
        elif word in _ACRONYMS or word in segment_ids:
            out.append(word)
        else:
            out.append(word.capitalize())
    if len(out) > 1 and out[-1] in segment_ids:
        out[-1] = "- " + out[-1]
    return " ".join(out)


def generate() -> dict:
    """Extract the field names from hl7apy (off the hot path; needs hl7apy installed)."""
    import importlib

    from hl7apy import SUPPORTED_LIBRARIES

    versions = sorted(SUPPORTED_LIBRARIES, key=_key)
    segments: dict[str, dict[str, list[str]]] = {}
    previous: dict[str, list[str]] = {}
    for version in versions:
        table = importlib.import_module(SUPPORTED_LIBRARIES[version] + ".segments").SEGMENTS
        ids = set(table)
        changed: dict[str, list[str]] = {}
        for segment_id, definition in sorted(table.items()):
            # ('sequence', children), except a few entries: v2.1 ORO is the bare children, and
            # v2.7 QRD/QRF/URD/URS (withdrawn segments) are ('sequence',) with none.
            if definition and isinstance(definition[0], str):
                children = definition[1] if len(definition) > 1 else ()
            else:
                children = definition
            by_number: dict[int, str] = {}
            for child in children or ():
                match = re.fullmatch(r"[A-Z0-9]{3}_(\d+)", str(child[0]))
                if match and child[1] is not None:
                    by_number[int(match[1])] = _pretty(child[1][3], segment_id, ids)
            names = [by_number.get(n, "") for n in range(1, max(by_number, default=0) + 1)]
            if previous.get(segment_id) != names:
                changed[segment_id] = names
            previous[segment_id] = names
        segments[version] = changed
    return {
        "_source": "Field names of HL7 v2 segments, extracted from hl7apy's reference tables "
        "(hl7apy.v2_x.segments) by `python -m adapters.hl7v2.names`.",
        "versions": versions,
        "segments": segments,
    }


if __name__ == "__main__":
    target = Path(__file__).with_name("data") / Path(DATA).name
    target.write_text(json.dumps(generate(), ensure_ascii=False, separators=(",", ":")) + "\n", "utf-8")
    print(f"wrote {target} ({target.stat().st_size} bytes)")
