"""Generate terminology/data/*.json from published sources; nothing here is typed by hand.

    python -m terminology.generate /work/shared/spec/v2-to-fhir \
        [--tho hl7.terminology.r4-7.0.1.tgz] [--ucum lhncbc-ucum-lhc-7.1.10.tgz]

Sources:
- HL7 v2-to-FHIR IG (Apache-2.0), mappings/codesystems/*.csv: the vocabulary ConceptMaps,
  written to concept-maps.json, named after their FHIR target as the IG's segment and datatype
  sheets reference them ("AdministrativeSex", "AddressType[Use]", "Yes/NoIndicator").
- HL7 Terminology THO 7.0.1 (npm hl7.terminology.r4, CC0): v2 table code systems (displays)
  to v2-tables.json; table 0396 + NamingSystems to coding-systems.json.
- UCUM via @lhncbc/ucum-lhc (its data/ucumDefs.json is generated from ucum-essence.xml): atoms
  and prefixes to ucum.json.
Without --tho / --ucum those outputs are left as committed.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
CODESYSTEMS_DIR = "mappings/codesystems"
INVENTORY = "mappings/v2-to-FHIR Map Inventory - Code System.csv"
FILE_RE = re.compile(r"^HL7 Concept Map_ (?P<name>.+) - Sheet1\.csv$")
V2_TABLE_RE = re.compile(r"^HL7-?(?P<num>\d{4})$")
THO_V2_BASE = "http://terminology.hl7.org/CodeSystem/v2-"

# Tables whose displays ship in v2-tables.json beyond those the IG ConceptMaps use; these are
# the tables the v2-to-FHIR segment/datatype sheets bind most often (CWE/ID/IS fields).
EXTRA_V2_TABLES = (
    "0001", "0002", "0004", "0005", "0007", "0063", "0078", "0085", "0119", "0123", "0125",
    "0136", "0162", "0163", "0164", "0189", "0190", "0200", "0201", "0202", "0203", "0204",
    "0038", "0292", "0396", "0443", "0008", "0076", "0070", "0104", "0155", "0301", "0354",
    "0369", "0371", "0487", "0488", "0489", "0490", "0491", "0493", "0497", "0549", "0080",
)


def name_key(name: str) -> str:
    """Lookup key for a map name: case and punctuation outside brackets do not matter."""
    return re.sub(r"[^0-9a-z\[\]]", "", name.lower())


def _clean(value: str | None) -> str:
    return (value or "").strip()


def _v2_table(raw: str) -> str | None:
    """'HL70001', 'HL7-0354', 'HL0207' (sic, in ProcessingMode) -> '0001'."""
    value = _clean(raw).upper()
    if value.startswith("HL0"):
        value = "HL7" + value[2:]
    match = V2_TABLE_RE.match(value)
    return match.group("num").zfill(4) if match else None


def _target_system(raw: str) -> str:
    """Tidy a target system cell: stray spaces (ContainerType), UCUM's trailing slash."""
    system = _clean(raw)
    if system == "http://unitsofmeasure.org/":
        return "http://unitsofmeasure.org"
    return system


def _looks_like_uri(value: str) -> bool:
    # ParticipantOrganizationUnitType has definitions in its Code System column.
    return bool(value) and " " not in value and (":" in value)


def parse_concept_map_csv(text: str) -> dict[str, Any]:
    """One IG vocabulary sheet -> {elements, unmapped_targets}, columns found by header.

    The sheets share a two-row header: row 1 groups ("HL7 v2", "Condition (IF True)", "HL7 FHIR",
    "Comments"), row 2 names columns ("Code", "Text", "Code System", ...). Column positions
    vary between sheets, so every column is located from the headers.
    """
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2:
        raise ValueError("sheet has no two-row header")
    groups, names = rows[0], rows[1]
    width = max(len(groups), len(names))
    groups += [""] * (width - len(groups))
    names += [""] * (width - len(names))
    fhir_at = next(i for i, g in enumerate(groups) if g.strip().upper() == "HL7 FHIR")
    cond_at = next(i for i, g in enumerate(groups) if g.strip().upper().startswith("CONDITION"))
    comment_at = next((i for i, g in enumerate(groups) if g.strip().lower().startswith("comment")), None)
    v2_code, v2_text, v2_system = 0, 1, 2
    t_code = fhir_at
    t_display = names.index("Display", fhir_at)
    t_system = names.index("Code System", fhir_at)
    # The unnamed column between target Code and Display sometimes carries the display
    # (PatientClass[EncounterClass]); used only when Display is empty.
    t_alt_display = [i for i in range(t_code + 1, t_display) if not names[i].strip()]
    cond_cols = {names[i].strip() or f"col{i}": i for i in range(cond_at, fhir_at)}

    elements: list[dict[str, Any]] = []
    by_code: dict[str, dict[str, Any]] = {}
    unmapped_targets: list[dict[str, Any]] = []
    for raw in rows[2:]:
        row = list(raw) + [""] * (width - len(raw))
        if not any(c.strip() for c in row):
            continue
        code = _clean(row[v2_code])
        target: dict[str, Any] | None = None
        target_code = _clean(row[t_code])
        if target_code:
            display = _clean(row[t_display]) or next((_clean(row[i]) for i in t_alt_display if _clean(row[i])), "")
            system = _target_system(row[t_system])
            target = {"code": target_code}
            if system and _looks_like_uri(system):
                target["system"] = system
            if display:
                target["display"] = display
        condition = {k: _clean(row[i]) for k, i in cond_cols.items() if _clean(row[i])}
        comment = _clean(row[comment_at]) if comment_at is not None and comment_at < len(row) else ""
        if not code:
            # Target-only row: a FHIR code no v2 code maps to (kept so counts match the sheet).
            entry = dict(target or {})
            if _clean(row[v2_text]):
                entry["v2_text"] = _clean(row[v2_text])
            if comment:
                entry["comment"] = comment
            unmapped_targets.append(entry)
            continue
        element = by_code.get(code)
        if element is None:
            element = {"code": code}
            if _clean(row[v2_text]):
                element["display"] = _clean(row[v2_text])
            if _v2_table(row[v2_system]):
                element["v2_table"] = _v2_table(row[v2_system])
            element["targets"] = []
            by_code[code] = element
            elements.append(element)
        if target is not None:
            if condition:
                target["condition"] = condition
            if comment:
                target["comment"] = comment
            element["targets"].append(target)
        else:
            if condition:
                element.setdefault("condition", condition)
            if comment:
                element.setdefault("comment", comment)
    source_rows = sum(1 for r in rows[2:] if any(c.strip() for c in r))
    return {"elements": elements, "unmapped_targets": unmapped_targets, "source_rows": source_rows}


def read_inventory(ig_dir: Path) -> list[dict[str, str]]:
    """The IG's 'Code System' inventory: map name, v2 table, status."""
    path = ig_dir / INVENTORY
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [
            {"name": _clean(r["Code System"]), "v2_table": _v2_table(r["v2 Table"]) or "", "status": _clean(r["Status"])}
            for r in csv.DictReader(fh)
            if _clean(r.get("Code System"))
        ]


def referenced_map_names(ig_dir: Path) -> set[str]:
    """Map names as the IG's segment/datatype sheets spell them in 'Vocabulary Mapping'."""
    found: set[str] = set()
    for sheet in sorted((ig_dir / "mappings").glob("*/*.csv")):
        if sheet.parent.name == "codesystems":
            continue
        with sheet.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
        if len(rows) < 2:
            continue
        cols = [i for i, h in enumerate(rows[1]) if h.strip().lower().startswith("vocabulary")]
        for row in rows[2:]:
            for i in cols:
                if i < len(row) and row[i].strip():
                    found.add(row[i].strip())
    return found


def build_concept_maps(ig_dir: Path) -> dict[str, Any]:
    """All IG vocabulary sheets -> one document keyed by map name."""
    inventory = read_inventory(ig_dir)
    inv_by_key: dict[str, list[dict[str, str]]] = {}
    for item in inventory:
        inv_by_key.setdefault(name_key(item["name"]), []).append(item)
    referenced = referenced_map_names(ig_dir)
    ref_by_key: dict[str, set[str]] = {}
    for ref in referenced:
        ref_by_key.setdefault(name_key(ref), set()).add(ref)

    maps: dict[str, Any] = {}
    for path in sorted((ig_dir / CODESYSTEMS_DIR).glob("*.csv")):
        match = FILE_RE.match(path.name)
        if not match:
            continue
        file_name = match.group("name")
        key = name_key(file_name)
        # Sheet names drop '/' (file system); the IG's sheets and inventory keep it.
        # "InterpretationCodes" is "InterpretationCode" in the inventory only.
        inv = inv_by_key.get(key) or inv_by_key.get(key.rstrip("s")) or []
        refs = sorted(ref_by_key.get(key, set()))
        name = next((r for r in refs if r.replace(" ", "") == r), None) or (inv[0]["name"] if inv else file_name)
        parsed = parse_concept_map_csv(path.read_text(encoding="utf-8-sig"))
        tables = sorted({e["v2_table"] for e in parsed["elements"] if "v2_table" in e})
        v2_table = (inv[0]["v2_table"] if inv and inv[0]["v2_table"] else None) or (tables[0] if len(tables) == 1 else None)
        target_systems: list[str] = []
        for element in parsed["elements"]:
            for target in element["targets"]:
                if target.get("system") and target["system"] not in target_systems:
                    target_systems.append(target["system"])
        aliases = sorted({file_name, *(i["name"] for i in inv), *refs} - {name})
        maps[name] = {
            "name": name,
            "aliases": aliases,
            "v2_table": v2_table,
            "source_system": f"{THO_V2_BASE}{v2_table}" if v2_table else None,
            "target_systems": target_systems,
            "status": inv[0]["status"] if inv else None,
            "source": f"{CODESYSTEMS_DIR}/{path.name}",
            "source_rows": parsed["source_rows"],
            "elements": parsed["elements"],
            "unmapped_targets": parsed["unmapped_targets"],
        }
    return {
        "source": "HL7 Version 2 to FHIR IG, mappings/codesystems (Apache-2.0); see LICENSE-v2-to-fhir.txt",
        "generator": "python -m terminology.generate",
        "maps": maps,
    }


# --- THO (hl7.terminology.r4) -------------------------------------------------------------


def _tar_json(tar: tarfile.TarFile, member: str) -> dict[str, Any] | None:
    try:
        fh = tar.extractfile(member)
    except KeyError:
        return None
    return json.load(fh) if fh else None


def _walk_concepts(concepts: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for concept in concepts:
        yield concept
        yield from _walk_concepts(concept.get("concept", []))


def build_v2_tables(tho: tarfile.TarFile, tables: Iterable[str]) -> dict[str, Any]:
    """v2 table -> FHIR code system (per THO's ValueSet v2-nnnn) and code -> display."""
    out: dict[str, Any] = {}
    for table in sorted(set(tables)):
        valueset = _tar_json(tho, f"package/ValueSet-v2-{table}.json")
        system = f"{THO_V2_BASE}{table}"
        only: set[str] | None = None
        if valueset:
            includes = valueset.get("compose", {}).get("include", [])
            if len(includes) == 1 and includes[0].get("system"):
                system = includes[0]["system"]
                if includes[0].get("concept"):
                    only = {c["code"] for c in includes[0]["concept"]}
        entry: dict[str, Any] = {"system": system, "concepts": {}}
        codesystem = None
        if system.startswith(THO_V2_BASE):
            codesystem = _tar_json(tho, f"package/CodeSystem-v2-{system[len(THO_V2_BASE):]}.json")
        elif system.startswith("http://terminology.hl7.org/CodeSystem/"):
            codesystem = _tar_json(tho, f"package/CodeSystem-{system.rsplit('/', 1)[1]}.json")
        if codesystem is None and valueset is None:
            continue
        if codesystem:
            entry["title"] = codesystem.get("title") or codesystem.get("name")
            for concept in _walk_concepts(codesystem.get("concept", [])):
                if only is not None and concept["code"] not in only:
                    continue
                if concept.get("display"):
                    entry["concepts"][concept["code"]] = concept["display"]
        elif valueset:
            entry["title"] = valueset.get("title") or valueset.get("name")
        out[table] = entry
    return {
        "source": "HL7 Terminology (THO) 7.0.1, npm hl7.terminology.r4 (CC0); see LICENSE-THO.txt",
        "tables": out,
    }


def build_coding_systems(tho: tarfile.TarFile, curated: dict[str, Any]) -> dict[str, Any]:
    """HL7 table 0396 coding-system names (and OIDs) -> FHIR system URI.

    THO's v2-0396 gives the names; a code-system NamingSystem whose id, name or v2-mnemonic
    uniqueId equals the name gives its preferred uri. Names THO leaves unlinked are listed in
    coding-systems-curated.json by NamingSystem id, so every uri still comes from THO.
    """
    table = _tar_json(tho, "package/CodeSystem-v2-0396.json") or {}
    names = {c["code"]: c.get("display", "") for c in _walk_concepts(table.get("concept", []))}
    by_label: dict[str, str] = {}
    by_id: dict[str, str] = {}
    oids: dict[str, str] = {}
    for member in sorted(tho.getnames()):
        if not member.startswith("package/NamingSystem-") or not member.endswith(".json"):
            continue
        ns = _tar_json(tho, member) or {}
        if ns.get("kind") != "codesystem":
            continue
        uris = [u for u in ns.get("uniqueId", []) if u.get("type") == "uri"]
        preferred = next((u["value"] for u in uris if u.get("preferred")), uris[0]["value"] if uris else None)
        if not preferred:
            continue
        by_id[ns["id"]] = preferred
        for u in ns.get("uniqueId", []):
            if u.get("type") == "oid":
                oids.setdefault(u["value"].removeprefix("urn:oid:"), preferred)
        labels = {ns.get("id"), ns.get("name")} | {u["value"] for u in ns.get("uniqueId", []) if u.get("type") == "other"}
        for label in labels:
            if label:
                by_label.setdefault(label, preferred)
    systems: dict[str, Any] = {}
    for name, display in sorted(names.items()):
        if name in by_label:
            systems[name] = {"uri": by_label[name], "display": display, "source": "THO NamingSystem named " + name}
    for name, item in curated["systems"].items():
        if item["naming_system"] not in by_id:
            raise SystemExit(f"curated coding system {name}: no THO NamingSystem {item['naming_system']!r}")
        entry = {"uri": by_id[item["naming_system"]], "display": names.get(name, ""), "source": item["source"]}
        if item.get("alias"):
            entry["alias"] = True
        systems[name] = entry
    return {
        "source": "HL7 table 0396 and NamingSystems from THO 7.0.1 (CC0), plus coding-systems-curated.json",
        "systems": dict(sorted(systems.items())),
        "oids": dict(sorted(oids.items())),
    }


# --- UCUM ---------------------------------------------------------------------------------


def build_ucum(ucum_tgz: tarfile.TarFile) -> dict[str, Any]:
    """UCUM prefixes and atoms (with metric flag) from ucum-lhc's ucumDefs (from ucum-essence.xml)."""
    defs = _tar_json(ucum_tgz, "package/data/ucumDefs.min.json")
    if defs is None:
        raise SystemExit("package/data/ucumDefs.min.json not found in the UCUM tarball")

    def unpack(section: dict[str, Any]) -> list[dict[str, Any]]:
        fields = [f if isinstance(f, str) else f[0] for f in section["config"]]
        return [dict(zip(fields, row)) for row in section["data"]]

    prefixes = {p["code_"]: p["name_"] for p in unpack(defs["prefixes"])}
    atoms: dict[str, dict[str, Any]] = {}
    for unit in unpack(defs["units"]):
        # ucum-lhc adds LOINC property combinations and synonyms; keep UCUM's own atoms.
        if unit.get("source_") != "UCUM":
            continue
        # Base units (m, s, g, rad, K, C, cd) are metric by definition (UCUM §4.2).
        metric = bool(unit["isMetric_"]) or bool(unit["isBase_"])
        atoms[unit["csCode_"]] = {"name": unit["name_"], "metric": metric}
    return {
        "source": "UCUM (ucum-essence.xml) as packaged by @lhncbc/ucum-lhc 7.1.10; see LICENSE-UCUM.txt",
        "prefixes": dict(sorted(prefixes.items())),
        "atoms": dict(sorted(atoms.items())),
    }


def _write(out_dir: Path, name: str, document: dict[str, Any]) -> None:
    path = out_dir / name
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m terminology.generate", description=__doc__.splitlines()[0])
    parser.add_argument("ig_dir", type=Path, help="v2-to-FHIR IG directory holding mappings/")
    parser.add_argument("--tho", type=Path, help="hl7.terminology.r4-7.0.1.tgz (npm pack)")
    parser.add_argument("--ucum", type=Path, help="lhncbc-ucum-lhc-7.1.10.tgz (npm pack)")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output directory (default: terminology/data)")
    args = parser.parse_args(argv)
    if not (args.ig_dir / CODESYSTEMS_DIR).is_dir():
        parser.error(f"{args.ig_dir / CODESYSTEMS_DIR} not found")
    concept_maps = build_concept_maps(args.ig_dir)
    _write(args.out, "concept-maps.json", concept_maps)
    if args.tho:
        with tarfile.open(args.tho) as tho:
            tables = set(EXTRA_V2_TABLES)
            for cmap in concept_maps["maps"].values():
                if cmap["v2_table"]:
                    tables.add(cmap["v2_table"])
            _write(args.out, "v2-tables.json", build_v2_tables(tho, tables))
            curated = json.loads((DATA_DIR / "coding-systems-curated.json").read_text(encoding="utf-8"))
            _write(args.out, "coding-systems.json", build_coding_systems(tho, curated))
    if args.ucum:
        with tarfile.open(args.ucum) as ucum:
            _write(args.out, "ucum.json", build_ucum(ucum))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
