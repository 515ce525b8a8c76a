"""IG vocabulary ConceptMaps: every sheet generated, counts match, known rows map as the IG says."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from terminology import (
    UnknownConceptMap,
    concept_map,
    is_mapped_source,
    map_names,
    resolve_map_name,
    translate,
    translate_all,
)
from terminology._data import load
from terminology.generate import referenced_map_names

SHEET = re.compile(r"^HL7 Concept Map_ (.+) - Sheet1\.csv$")


def _sheets(ig_dir: Path) -> dict[str, Path]:
    return {
        m.group(1): p
        for p in sorted((ig_dir / "mappings" / "codesystems").glob("*.csv"))
        if (m := SHEET.match(p.name))
    }


def test_every_ig_sheet_is_a_generated_map(ig_dir: Path) -> None:
    sheets = _sheets(ig_dir)
    assert len(sheets) == len(map_names()) == 99
    for file_name in sheets:
        assert resolve_map_name(file_name) in map_names()


def test_row_counts_match_the_sheets(ig_dir: Path) -> None:
    for file_name, path in _sheets(ig_dir).items():
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = [r for r in list(csv.reader(fh))[2:] if any(c.strip() for c in r)]
        with_code = [r for r in rows if r[0].strip()]
        cmap = concept_map(file_name)
        assert cmap["source_rows"] == len(rows), file_name
        targets = sum(max(1, len(e["targets"])) for e in cmap["elements"])
        assert targets == len(with_code), file_name
        assert len({r[0].strip() for r in with_code}) == len(cmap["elements"]), file_name
        assert len(cmap["unmapped_targets"]) == len(rows) - len(with_code), file_name


def test_every_name_the_ig_segment_sheets_reference_resolves(ig_dir: Path) -> None:
    names = referenced_map_names(ig_dir)
    assert len(names) > 90
    for name in names:
        resolve_map_name(name)


@pytest.mark.parametrize(
    ("map_name", "code", "expected"),
    [
        ("AdministrativeSex", "F", {"system": "http://hl7.org/fhir/administrative-gender", "code": "female", "display": "Female"}),
        ("AdministrativeSex", "A", {"system": "http://hl7.org/fhir/administrative-gender", "code": "other", "display": "Other"}),
        ("AddressType[Use]", "H", {"system": "http://hl7.org/fhir/address-use", "code": "home", "display": "Home"}),
        ("AddressType[Use]", "BA", {"system": "http://hl7.org/fhir/address-use", "code": "old", "display": "Old / Incorrect"}),
        ("MaritalStatus", "A", {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "L", "display": "Legally Separated"}),
        ("IdentifierType", "MR", {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical record number"}),
        ("PatientClass[EncounterClass]", "E", {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER", "display": "emergency"}),
        ("PatientClass[EncounterClass]", "O", {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"}),
        ("ResultStatus[Non-Queries]", "F", {"system": "http://hl7.org/fhir/diagnostic-report-status", "code": "final", "display": "Final"}),
        ("ResultStatus[Non-Queries]", "R", {"system": "http://hl7.org/fhir/diagnostic-report-status", "code": "partial", "display": "Partial"}),
        ("ObservationResultStatusCodesInterpretation", "D", {"system": "http://hl7.org/fhir/observation-status", "code": "entered-in-error", "display": "Entered in Error"}),
        ("Yes/NoIndicator", "Y", {"system": "http://terminology.hl7.org/CodeSystem/special-values", "code": "true"}),
        ("HospitalService", "MED", {"system": "http://terminology.hl7.org/CodeSystem/service-type", "code": "382", "display": "Medical Services"}),
        ("Test/ServiceDefaultDurationUnits", "nothing", None),
    ],
)
def test_known_rows_map_exactly_as_the_ig_says(map_name: str, code: str, expected: dict | None) -> None:
    assert translate(map_name, code) == expected


def test_names_resolve_through_aliases_and_spelling() -> None:
    assert resolve_map_name("YesNoIndicator") == "Yes/NoIndicator"
    assert resolve_map_name("Contact Role") == "ContactRole"
    assert resolve_map_name("InterpretationCode") == "InterpretationCodes"
    assert resolve_map_name("addresstype[use]") == "AddressType[Use]"
    assert resolve_map_name("AddressType[Use]") != resolve_map_name("AddressType[Type]")
    with pytest.raises(UnknownConceptMap):
        resolve_map_name("NoSuchMap")
    with pytest.raises(KeyError):
        translate("NoSuchMap", "F")


def test_listed_but_unmapped_code_is_known_but_untranslated() -> None:
    assert translate("AddressType[Use]", "N") is None
    assert is_mapped_source("AddressType[Use]", "N")
    assert not is_mapped_source("AddressType[Use]", "ZZ")


def test_lower_case_code_folds_only_when_unambiguous() -> None:
    assert translate("AdministrativeSex", "f")["code"] == "female"
    assert translate("AdministrativeSex", " M ")["code"] == "male"


def test_conditional_targets_are_all_reported() -> None:
    rows = translate_all("SegmentActionCode", "U")
    assert [r["code"] for r in rows] == ["PUT", "PATCH"]
    assert all(r["condition"] == {"Narrative": "local assessment"} for r in rows)
    assert translate("SegmentActionCode", "U")["code"] == "PUT"
    assert translate_all("ResultStatus[Non-Queries]", "Y") == []
    assert concept_map("ResultStatus[Non-Queries]")["elements"][9]["condition"] == {"Computable ANTLR": "IF NOT MAPPED ERROR"}


def test_maps_note_v2_table_and_target_systems() -> None:
    sex = concept_map("AdministrativeSex")
    assert sex["v2_table"] == "0001"
    assert sex["source_system"] == "http://terminology.hl7.org/CodeSystem/v2-0001"
    assert sex["target_systems"] == ["http://hl7.org/fhir/administrative-gender"]
    assert concept_map("Test/ServiceDefaultDurationUnits")["unmapped_targets"][0]["system"] == "http://unitsofmeasure.org"
    for name in map_names():
        cmap = concept_map(name)
        for system in cmap["target_systems"]:
            assert " " not in system and ":" in system, (name, system)


def test_translate_returns_a_fresh_dict() -> None:
    first = translate("AdministrativeSex", "F")
    first["code"] = "mutated"
    assert translate("AdministrativeSex", "F")["code"] == "female"


def test_iso_639_codes_reach_the_ig_primary_language_targets() -> None:
    """IG PrimaryLanguage lists BCP 47 targets but no v2 codes: ISO 639-2 (B and T) and 639-1 codes of those languages map to them."""
    arabic = {"system": "urn:ietf:bcp:47", "code": "ar", "display": "Arabic"}
    assert translate("PrimaryLanguage", "ara") == arabic
    assert translate("PrimaryLanguage", "ar") == arabic
    assert translate("PrimaryLanguage", "ger") == translate("PrimaryLanguage", "deu")
    assert translate("PrimaryLanguage", "zho")["code"] == "zh"
    assert translate("PrimaryLanguage", "xyz") is None
    assert translate("PrincipalLanguageOfMessage", "ara") is None  # only the maps the data file names
    targets = {t["code"] for t in concept_map("PrimaryLanguage")["unmapped_targets"]}
    assert set(load("iso639-bcp47.json")["codes"].values()) <= targets
