"""HL7 table 0396 coding-system names -> FHIR system URIs (THO NamingSystems)."""
from __future__ import annotations

import pytest

from terminology import is_local_system, local_system_uri, oid_system_uri, system_uri
from terminology._data import load


@pytest.mark.parametrize(
    ("name", "uri"),
    [
        ("LN", "http://loinc.org"),
        ("SCT", "http://snomed.info/sct"),
        ("SNM", "http://snomed.info/sct"),
        ("I10", "http://hl7.org/fhir/sid/icd-10"),
        ("I10C", "http://hl7.org/fhir/sid/icd-10-cm"),
        ("I9C", "http://hl7.org/fhir/sid/icd-9-cm"),
        ("C4", "http://www.ama-assn.org/go/cpt"),
        ("UCUM", "http://unitsofmeasure.org"),
        ("NDC", "http://hl7.org/fhir/sid/ndc"),
        ("CVX", "http://hl7.org/fhir/sid/cvx"),
        ("MVX", "http://hl7.org/fhir/sid/mvx"),
        ("RXNORM", "http://www.nlm.nih.gov/research/umls/rxnorm"),
        ("ISO3166_1", "urn:iso:std:iso:3166"),
        ("MDC", "urn:iso:std:iso:11073:10101"),
        ("ln", "http://loinc.org"),
        ("LOINC", "http://loinc.org"),
    ],
)
def test_known_names(name: str, uri: str) -> None:
    assert system_uri(name) == uri


def test_hl7_tables_use_the_tho_system() -> None:
    assert system_uri("HL70203") == "http://terminology.hl7.org/CodeSystem/v2-0203"
    assert system_uri("HL7-0001") == "http://terminology.hl7.org/CodeSystem/v2-0001"
    # THO's ValueSet v2-0136 draws its codes from CodeSystem v2-0532.
    assert system_uri("HL70136") == "http://terminology.hl7.org/CodeSystem/v2-0532"


def test_local_and_unknown_names_are_kept() -> None:
    assert system_uri("99zzz") == "urn:pulsebridge:codesystem:99zzz"
    assert system_uri("99LAB") == local_system_uri("99LAB")
    assert system_uri("L") == "urn:pulsebridge:codesystem:L"
    assert system_uri("HIS LOCAL/中文") == "urn:pulsebridge:codesystem:HIS%20LOCAL%2F%E4%B8%AD%E6%96%87"
    assert is_local_system(system_uri("ACME"))
    assert not is_local_system(system_uri("LN"))


def test_uris_and_oids() -> None:
    assert system_uri("http://example.org/codes") == "http://example.org/codes"
    assert system_uri("urn:oid:2.16.840.1.113883.6.1") == "http://loinc.org"
    assert system_uri("2.16.840.1.113883.6.96") == "http://snomed.info/sct"
    assert system_uri("1.2.3.4.5") == "urn:oid:1.2.3.4.5"
    assert oid_system_uri("2.16.840.1.113883.12.292") == "http://hl7.org/fhir/sid/cvx"
    with pytest.raises(ValueError):
        oid_system_uri("not-an-oid")


def test_blank_has_no_system() -> None:
    assert system_uri("") is None
    assert system_uri("   ") is None


def test_every_shipped_uri_is_an_absolute_uri() -> None:
    for name, item in load("coding-systems.json")["systems"].items():
        assert item["uri"].startswith(("http://", "https://", "urn:")), name
        assert item["source"], name
