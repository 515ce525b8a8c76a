"""The generator reproduces the committed concept-maps.json from the IG sheets, byte for byte."""
from __future__ import annotations

from pathlib import Path

from terminology.generate import DATA_DIR, _v2_table, main, parse_concept_map_csv


def test_regenerated_concept_maps_equal_committed(ig_dir: Path, tmp_path: Path) -> None:
    assert main([str(ig_dir), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "concept-maps.json").read_bytes() == (DATA_DIR / "concept-maps.json").read_bytes()


def test_v2_table_cells_as_the_sheets_write_them() -> None:
    assert _v2_table("HL70001") == "0001"
    assert _v2_table("HL7-0354") == "0354"
    assert _v2_table("HL0207") == "0207"
    assert _v2_table("") is None
    assert _v2_table("LN") is None


def test_columns_are_found_by_header_not_position() -> None:
    sheet = (
        "HL7 v2,,,Condition (IF TRUE),,HL7 FHIR,,\n"
        "Code,Text,Code System,Computable,Narrative,Code,Display,Code System\n"
        "H,Home,HL70406,,,home-code,Home display, http://example.org/cs \n"
        ",,,,,orphan,Orphan,http://example.org/cs\n"
    )
    parsed = parse_concept_map_csv(sheet)
    assert parsed["elements"] == [
        {"code": "H", "display": "Home", "v2_table": "0406",
         "targets": [{"code": "home-code", "system": "http://example.org/cs", "display": "Home display"}]}
    ]
    assert parsed["unmapped_targets"] == [{"code": "orphan", "system": "http://example.org/cs", "display": "Orphan"}]
    assert parsed["source_rows"] == 2
