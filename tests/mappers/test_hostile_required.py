"""A repeating element whose required part comes out empty is left out, not written half.

FHIR R4 gives these elements a required part (min 1): Device.deviceName.name,
Device.version.value, Patient/RelatedPerson.communication.language,
AllergyIntolerance.reaction.manifestation. The constant or companion written into the element
(deviceName.type, version installDate, communication.preferred, reaction.severity) goes with the
value the element is made for (`set` on its row, or `when` on the component read), so a field
that is sent but reads empty (`&&&`, `^^^^`, the escape `\\M\\`) gives neither."""
from __future__ import annotations

from typing import Any

from adapters.hl7v2 import parse
from mappers import convert_message
from mapper_helpers import er7, resources, validation_errors

MSH = "MSH|^~\\&|A|B|C|D|20210101120000+0000||ADT^{}|M1|P|2.8"
PID = "PID|1||1^^^X^MR||EVERYMAN^ADAM"


def _convert(event: str, *segments: str) -> dict[str, Any]:
    raw = er7(MSH.format(event), *segments)
    bundle, _ = convert_message(parse(raw), raw)
    assert validation_errors(bundle) == []
    return bundle


def _sft(sft2: str, sft3: str) -> dict[str, Any]:
    bundle = _convert("A01^ADT_A01", f"SFT|Orion|{sft2}|{sft3}|2.4.3||20070725111624", PID)
    software = [d for d in resources(bundle, "Device") if d.get("modelNumber") == "2.4.3"]
    assert len(software) == 1
    return software[0]


def test_sft3_without_a_name_gives_no_device_name() -> None:
    """SFT-3 sent as subcomponents only: no deviceName with a type and no name (Device.deviceName.name 1..1)."""
    for garbage in ("&^~", "\\M\\"):
        assert "deviceName" not in _sft("2.1", garbage)
    assert _sft("2.1", "Rhapsody")["deviceName"] == [{"name": "Rhapsody", "type": "manufacturer-name"}]


def test_sft2_without_a_version_gives_no_install_date() -> None:
    """SFT-2 empty in its first subcomponent: the SFT-6 install date has no version to go on (Device.version.value 1..1)."""
    for garbage in ("&&&", "^^^^19000229", "\\M\\"):
        assert "version" not in _sft(garbage, "Rhapsody")
    assert _sft("2.1", "Rhapsody")["version"][0]["value"] == "2.1"


def test_pid15_and_nk1_20_without_a_language_give_no_preferred_communication() -> None:
    """PID-15 / NK1-20 with nothing coded: no communication holding only preferred (communication.language 1..1)."""
    nk1 = "NK1|1|EVERYMAN^EVE|SPO" + "|" * 17
    bundle = _convert("A01^ADT_A01", PID + "|" * 10 + "&&", nk1 + "&&")
    assert "communication" not in resources(bundle, "Patient")[0]
    assert "communication" not in resources(bundle, "RelatedPerson")[0]
    bundle = _convert("A01^ADT_A01", PID + "|" * 10 + "en", nk1 + "de")
    for person in (resources(bundle, "Patient")[0], resources(bundle, "RelatedPerson")[0]):
        assert person["communication"][0]["preferred"] is True
        assert person["communication"][0]["language"]


def test_al1_5_without_a_reaction_gives_no_severity_only_reaction() -> None:
    """AL1-5 sent as empty subcomponents: AL1-4 severity has no reaction to go on (reaction.manifestation 1..*)."""
    for garbage in ("&&", "\\M\\"):
        bundle = _convert("A01^ADT_A01", PID, f"AL1|1|DA|1^Penicillin|SV|{garbage}")
        assert "reaction" not in resources(bundle, "AllergyIntolerance")[0]
    bundle = _convert("A01^ADT_A01", PID, "AL1|1|DA|1^Penicillin|SV|rash")
    assert resources(bundle, "AllergyIntolerance")[0]["reaction"] == [{"manifestation": [{"text": "rash"}], "severity": "severe"}]


def test_iam5_without_a_code_or_text_gives_no_severity_only_reaction() -> None:
    """IAM-5 with neither CWE.1 nor CWE.2: no reaction; with CWE.2 only, the text manifestation keeps IAM-4's severity."""
    for garbage in ("&&", "^^^^^^^^^", "\\M\\"):
        bundle = _convert("A60^ADT_A60", PID, f"IAM|1|DA|1^Penicillin|SV|{garbage}")
        assert "reaction" not in resources(bundle, "AllergyIntolerance")[0]
    bundle = _convert("A60^ADT_A60", PID, "IAM|1|DA|1^Penicillin|SV|^rash")
    assert resources(bundle, "AllergyIntolerance")[0]["reaction"] == [{"manifestation": [{"text": "rash"}], "severity": "severe"}]


def test_a_message_without_msh10_keeps_its_source_entity_whole() -> None:
    """MSH-10 empty: the Provenance still names the message (its hash) as entity with role source
    (IG MSH[Provenance-Source] entity[1], whatever MSH-10 holds; Provenance.entity.role 1..1)."""
    raw = er7(MSH.format("A25^ADT_A25").replace("|M1|", "||"), PID)
    bundle, _ = convert_message(parse(raw), raw)
    assert validation_errors(bundle) == []
    entity = resources(bundle, "Provenance")[0]["entity"]
    assert [(e["role"], e["what"]["identifier"]["value"][:14]) for e in entity] == [("source", "ni:///sha-256;")]
