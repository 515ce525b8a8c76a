"""One person, one record (gateway/identity.py) through the real Ingestor on SQLite, and once over MLLP."""
from __future__ import annotations

from importlib import import_module
from collections.abc import Iterator
from pathlib import Path

import hl7
import hl7.client
import pytest

from adapters.storage import open_repository
from adapters.storage.base import Repository
from adapters.storage.query import parse_search
from gateway.identity import StrongIdentifiers, merge_patient, person_id
from gateway.ingest import Ingestor
from gateway.settings import Settings
from mappers.ids import resource_id
from tests.gateway.mllp_listener import running_listener

RESIDENT_ID = "11010119900307851X"  # 18 digits with the GB 11643 check character X
HIS_PID = f"PID|1||M1^^^HIS1^MR~{RESIDENT_ID}^^^CHN^NNCHN||张^三||19900307|M|||建国路1号^^北京^^100000^CN||^PRN^PH^^^^^^^^^13800000000\r"


def _msh(control_id: str, kind: str, *, sender: str = "HIS", time: str = "20260101120000+0800") -> str:
    return f"MSH|^~\\&|{sender}|{sender}F|PB|HOSP|{time}||{kind}|{control_id}|P|2.5\r"


def adt(control_id: str, event: str, *segments: str, time: str = "20260101120000+0800") -> bytes:
    structure = {"A24": "ADT_A24", "A37": "ADT_A37", "A40": "ADT_A39", "A34": "ADT_A30"}.get(event, "ADT_A01")
    body = _msh(control_id, f"ADT^{event}^{structure}", time=time) + f"EVN|{event}|{time}\r" + "".join(segments)
    return body.encode()


def oru(control_id: str, pid: str, *, sender: str = "LIS", value: str = "5.5", time: str = "20260101130000+0800") -> bytes:
    return (
        _msh(control_id, "ORU^R01^ORU_R01", sender=sender, time=time) + pid
        + f"OBR|1||F{control_id}|GLU^Glucose^L\r"
        + f"OBX|1|NM|GLU^Glucose^L||{value}|mmol/L|||||F\r"
    ).encode()


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[Repository]:
    repo = open_repository(f"sqlite:///{tmp_path / 'identity.db'}")
    yield repo
    repo.close()


@pytest.fixture
def ingestor(repository: Repository) -> Ingestor:
    return Ingestor(repository)


def _ingest(ingestor: Ingestor, raw: bytes) -> None:
    result = ingestor.ingest(raw, peer="test", transport="test")
    assert result.ack_code == "AA", result.error


def _by_mrn(repository: Repository, mrn: str) -> dict:
    matches = repository.search(parse_search("Patient", [("identifier", mrn)])).matches
    assert len(matches) == 1, f"{len(matches)} patients with {mrn}"
    return matches[0]


def _links(patient: dict) -> set[tuple[str, str]]:
    return {(link["other"]["reference"], link["type"]) for link in patient.get("link") or []}


def _person(repository: Repository, value: str = RESIDENT_ID) -> dict:
    return repository.read("Person", person_id(("type", "NNCHN", value))).resource or {}


def test_two_sources_with_one_resident_id_are_linked_as_one_person(ingestor: Ingestor, repository: Repository) -> None:
    _ingest(ingestor, adt("A1", "A01", HIS_PID, "PV1|1|I|W1^101^1\r"))
    # the LIS writes the check character in lower case: still the same resident ID
    _ingest(ingestor, oru("L1", f"PID|1||L9^^^LIS^MR~{RESIDENT_ID.lower()}^^^CHN^NNCHN||张^三\r"))
    his, lis = _by_mrn(repository, "M1"), _by_mrn(repository, "L9")
    assert his["id"] != lis["id"]
    assert _links(his) == {(f"Patient/{lis['id']}", "seealso")}
    assert _links(lis) == {(f"Patient/{his['id']}", "seealso")}
    person = _person(repository)
    assert {(l["target"]["reference"], l["assurance"]) for l in person["link"]} == {
        (f"Patient/{his['id']}", "level3"), (f"Patient/{lis['id']}", "level3")}
    for resource in (his, lis, person):  # R4 core: cardinality, types, link.type / assurance codes
        getattr(import_module(f"fhir.resources.R4B.{resource['resourceType'].lower()}"), resource["resourceType"]).model_validate(resource)
    found = repository.search(parse_search("Person", [("link", f"Patient/{lis['id']}")])).matches
    assert [p["id"] for p in found] == [person["id"]]
    # the identity writes are in the message's own Provenance
    provenance = repository.search(parse_search("Provenance", [("target", f"Patient/{his['id']}")])).matches
    assert any({"reference": f"Person/{person['id']}"} in p.get("target", []) for p in provenance)


def test_different_resident_ids_and_weak_identifiers_are_not_linked(ingestor: Ingestor, repository: Repository) -> None:
    _ingest(ingestor, adt("A1", "A01", HIS_PID))
    _ingest(ingestor, oru("L1", "PID|1||L9^^^LIS^MR~110101199003071234^^^CHN^NNCHN||张^三\r"))
    _ingest(ingestor, oru("L2", "PID|1||M1^^^LIS^MR||张^三\r"))  # same MRN value, other authority: not strong
    assert [_links(p) for p in repository.search(parse_search("Patient", [])).matches] == [set(), set(), set()]


def test_configured_identifier_system_is_strong(repository: Repository) -> None:
    ingestor = Ingestor(repository, Settings(strong_identifiers="urn:oid:2.16.156.10011.1.1"))
    pid = "PID|1||{mrn}^^^{auth}^MR~X99^^^&2.16.156.10011.1.1&ISO^PI||ROE^ANN\r"
    _ingest(ingestor, adt("A1", "A01", pid.format(mrn="M1", auth="HIS1")))
    _ingest(ingestor, oru("L1", pid.format(mrn="L9", auth="LIS")))
    his, lis = _by_mrn(repository, "M1"), _by_mrn(repository, "L9")
    assert _links(his) == {(f"Patient/{lis['id']}", "seealso")}


def test_a40_merge_retires_prior_and_keeps_its_data_reachable(ingestor: Ingestor, repository: Repository) -> None:
    _ingest(ingestor, adt("A1", "A01", "PID|1||M0^^^HIS1^MR||张^三||19900307|M|||建国路1号^^北京\r", "PV1|1|I|W1^101^1\r"))
    _ingest(ingestor, oru("L1", "PID|1||M0^^^HIS1^MR||张^三\r", sender="HIS"))
    _ingest(ingestor, adt("A2", "A01", "PID|1||M1^^^HIS1^MR||张^三||19900307|M\r"))
    _ingest(ingestor, adt("A3", "A40", "PID|1||M1^^^HIS1^MR||张^三\r", "MRG|M0^^^HIS1^MR\r", time="20260102120000+0800"))
    prior, survivor = _by_mrn(repository, "M0"), _by_mrn(repository, "M1")
    assert prior["active"] is False and _links(prior) == {(f"Patient/{survivor['id']}", "replaced-by")}
    assert prior["address"][0]["city"] == "北京" and prior["birthDate"] == "1990-03-07"  # MRG did not erase it
    assert _links(survivor) == {(f"Patient/{prior['id']}", "replaces")}
    assert survivor["birthDate"] == "1990-03-07" and survivor.get("active", True) is not False  # sparse A40 PID merged
    # $everything's contract: follow the survivor's `replaces` link to the prior record's data
    reached = [link["other"]["reference"] for link in survivor["link"] if link["type"] in ("replaces", "seealso")]
    observations = [o for ref in reached for o in repository.search(parse_search("Observation", [("subject", ref)])).matches]
    encounters = [e for ref in reached for e in repository.search(parse_search("Encounter", [("subject", ref)])).matches]
    assert [o["valueQuantity"]["value"] for o in observations] == [5.5] and len(encounters) == 1
    # a later message about the survivor keeps the link; a later one about the prior keeps it retired
    _ingest(ingestor, adt("A4", "A08", "PID|1||M1^^^HIS1^MR||张^三丰||19900307|M\r", time="20260103120000+0800"))
    _ingest(ingestor, oru("L2", "PID|1||M0^^^HIS1^MR||张^三\r", sender="HIS"))
    assert _links(_by_mrn(repository, "M1")) == {(f"Patient/{prior['id']}", "replaces")}
    assert _by_mrn(repository, "M0")["active"] is False


def test_older_merge_still_retires_the_prior(ingestor: Ingestor, repository: Repository) -> None:
    _ingest(ingestor, adt("A1", "A01", "PID|1||M0^^^HIS1^MR||张^三||19900307|M\r", time="20260105120000+0800"))
    _ingest(ingestor, adt("A2", "A40", "PID|1||M1^^^HIS1^MR||张^三\r", "MRG|M0^^^HIS1^MR\r", time="20260102120000+0800"))
    prior, survivor = _by_mrn(repository, "M0"), _by_mrn(repository, "M1")
    assert prior["active"] is False and _links(prior) == {(f"Patient/{survivor['id']}", "replaced-by")}
    assert prior["birthDate"] == "1990-03-07"


def test_merge_hands_the_priors_cross_source_links_to_the_survivor(ingestor: Ingestor, repository: Repository) -> None:
    _ingest(ingestor, adt("A1", "A01", f"PID|1||M0^^^HIS1^MR~{RESIDENT_ID}^^^CHN^NNCHN||张^三\r"))
    _ingest(ingestor, oru("L1", f"PID|1||L9^^^LIS^MR~{RESIDENT_ID}^^^CHN^NNCHN||张^三\r"))
    _ingest(ingestor, adt("A2", "A34", "PID|1||M1^^^HIS1^MR||张^三\r", "MRG|M0^^^HIS1^MR\r"))
    prior, survivor, lis = (_by_mrn(repository, m) for m in ("M0", "M1", "L9"))
    assert (f"Patient/{lis['id']}", "seealso") in _links(survivor)
    assert (f"Patient/{survivor['id']}", "seealso") in _links(lis)
    assert prior["active"] is False


def test_a37_unlinks_and_the_link_is_not_recreated(ingestor: Ingestor, repository: Repository) -> None:
    # the A37 comes from the HIS and names the LIS record: CX-4 carries universal ids (HD-2/HD-3), so the
    # identifier means the same record whoever sends it (mappers/ids.py: no universal id = sender-scoped)
    his_mr, lis_mr = "M1^^^HIS1&1.2.156.9.1&ISO^MR", "L9^^^LIS&1.2.156.9.2&ISO^MR"
    _ingest(ingestor, adt("A1", "A01", f"PID|1||{his_mr}~{RESIDENT_ID}^^^CHN^NNCHN||张^三||19900307|M\r"))
    _ingest(ingestor, oru("L1", f"PID|1||{lis_mr}~{RESIDENT_ID}^^^CHN^NNCHN||张^三\r"))
    assert _links(_by_mrn(repository, "M1"))
    # EVN-2 of the A37 is older than the LIS result: L9's demographics stay, the unlink still applies
    _ingest(ingestor, adt("A2", "A37", f"PID|1||{his_mr}||张^三\r", f"PID|2||{lis_mr}||张^三\r"))
    his, lis = _by_mrn(repository, "M1"), _by_mrn(repository, "L9")
    assert _links(his) == set() and _links(lis) == set()
    assurance = {l["target"]["reference"]: l["assurance"] for l in _person(repository)["link"]}
    assert assurance == {f"Patient/{his['id']}": "level3", f"Patient/{lis['id']}": "level1"}
    _ingest(ingestor, oru("L2", f"PID|1||{lis_mr}~{RESIDENT_ID}^^^CHN^NNCHN||张^三\r", value="6.1"))
    assert _links(_by_mrn(repository, "M1")) == set() and _links(_by_mrn(repository, "L9")) == set()


def test_a24_links_patients_without_a_strong_identifier(ingestor: Ingestor, repository: Repository) -> None:
    _ingest(ingestor, adt("A1", "A01", "PID|1||M1^^^HIS1^MR||ROE^ANN||19800101|F\r"))
    _ingest(ingestor, adt("A2", "A24", "PID|1||M1^^^HIS1^MR||ROE^ANN\r", "PID|2||M2^^^HIS1^MR||ROE^ANN\r"))
    one, two = _by_mrn(repository, "M1"), _by_mrn(repository, "M2")
    assert _links(one) == {(f"Patient/{two['id']}", "seealso")} and _links(two) == {(f"Patient/{one['id']}", "seealso")}
    assert one["birthDate"] == "1980-01-01"
    _ingest(ingestor, adt("A3", "A37", "PID|1||M1^^^HIS1^MR||ROE^ANN\r", "PID|2||M2^^^HIS1^MR||ROE^ANN\r"))
    assert _links(_by_mrn(repository, "M1")) == set() and _links(_by_mrn(repository, "M2")) == set()


def test_oru_before_adt_creates_a_minimal_patient_that_the_adt_completes(ingestor: Ingestor, repository: Repository) -> None:
    _ingest(ingestor, oru("L1", "PID|1||M1^^^HIS1^MR||张^三\r", sender="HIS", time="20260101080000+0800"))
    minimal = _by_mrn(repository, "M1")
    assert "birthDate" not in minimal and "address" not in minimal
    _ingest(ingestor, adt("A1", "A01", HIS_PID, time="20260101120000+0800"))
    complete = _by_mrn(repository, "M1")
    assert complete["id"] == minimal["id"]
    assert complete["birthDate"] == "1990-03-07" and complete["address"][0]["city"] == "北京"
    observation = repository.search(parse_search("Observation", [("subject", f"Patient/{minimal['id']}")])).matches
    assert len(observation) == 1


def test_sparse_pid_after_adt_does_not_erase_richer_data(ingestor: Ingestor, repository: Repository) -> None:
    _ingest(ingestor, adt("A1", "A01", HIS_PID, time="20260101120000+0800"))
    rich = _by_mrn(repository, "M1")
    _ingest(ingestor, oru("L1", "PID|1||M1^^^HIS1^MR~H77^^^HIS1^PI||张^三\r", sender="HIS", time="20260101130000+0800"))
    after = _by_mrn(repository, "M1")
    for element in ("birthDate", "gender", "address", "telecom"):
        assert after[element] == rich[element], element
    values = [i["value"] for i in after["identifier"]]
    assert values == ["M1", RESIDENT_ID, "H77"]  # identifiers are added, never dropped


def test_snapshot_adt_replaces_demographics_but_keeps_links(ingestor: Ingestor, repository: Repository) -> None:
    _ingest(ingestor, adt("A1", "A01", HIS_PID))
    _ingest(ingestor, oru("L1", f"PID|1||L9^^^LIS^MR~{RESIDENT_ID}^^^CHN^NNCHN||张^三\r"))
    _ingest(ingestor, adt("A2", "A08", f"PID|1||M1^^^HIS1^MR~{RESIDENT_ID}^^^CHN^NNCHN||张^三||19900307|M\r",
                          time="20260102120000+0800"))
    his, lis = _by_mrn(repository, "M1"), _by_mrn(repository, "L9")
    assert "telecom" not in his and "address" not in his  # the registration system's full PID no longer has them
    assert _links(his) == {(f"Patient/{lis['id']}", "seealso")}


def test_resent_message_makes_no_new_identity_versions(ingestor: Ingestor, repository: Repository) -> None:
    _ingest(ingestor, adt("A1", "A01", HIS_PID))
    _ingest(ingestor, oru("L1", f"PID|1||L9^^^LIS^MR~{RESIDENT_ID}^^^CHN^NNCHN||张^三\r"))
    before = (repository.history("Patient")[0], repository.history("Person")[0])
    _ingest(ingestor, oru("L2", f"PID|1||L9^^^LIS^MR~{RESIDENT_ID}^^^CHN^NNCHN||张^三\r"))  # same person, new report
    assert (repository.history("Patient")[0], repository.history("Person")[0]) == before


# -- pure functions --------------------------------------------------------------------------------


def test_strong_identifier_setting_parses_types_and_systems() -> None:
    rule = StrongIdentifiers.parse(" nnchn , urn:oid:1.2.3, http://example.org/ssn ")
    assert rule == StrongIdentifiers(frozenset({"NNCHN"}), frozenset({"urn:oid:1.2.3", "http://example.org/ssn"}))
    patient = {"identifier": [
        {"value": " 1x ", "type": {"coding": [{"code": "NNCHN"}]}},
        {"value": "9", "system": "urn:oid:1.2.3"},
        {"value": "7", "type": {"coding": [{"code": "MR"}]}},
    ]}
    assert rule.keys(patient) == [("type", "NNCHN", "1X"), ("system", "urn:oid:1.2.3", "9")]
    assert Settings.from_env({"PULSEBRIDGE_STRONG_IDENTIFIERS": "PPN"}).strong_identifiers == "PPN"
    assert person_id(("type", "NNCHN", "1X")) == resource_id("Person", ("strong", "type", "NNCHN", "1X"))


def test_merge_rule_merges_updates_and_replaces_snapshots() -> None:
    stored = {"resourceType": "Patient", "id": "p", "meta": {"versionId": "3"}, "birthDate": "1990-01-01",
              "identifier": [{"value": "M1"}], "link": [{"other": {"reference": "Patient/q"}, "type": "seealso"}]}
    incoming = {"resourceType": "Patient", "id": "p", "identifier": [{"value": "H7"}], "name": [{"family": "LI"}]}
    merged = merge_patient(stored, incoming, snapshot=False)
    assert merged["birthDate"] == "1990-01-01" and merged["name"] == [{"family": "LI"}] and "meta" not in merged
    assert [i["value"] for i in merged["identifier"]] == ["M1", "H7"] and merged["link"] == stored["link"]
    replaced = merge_patient(stored, incoming, snapshot=True)
    assert "birthDate" not in replaced and replaced["identifier"] == [{"value": "H7"}] and replaced["link"] == stored["link"]
    retired = {**stored, "active": False, "link": [{"other": {"reference": "Patient/s"}, "type": "replaced-by"}]}
    assert merge_patient(retired, {**incoming, "active": True}, snapshot=True)["active"] is False
    assert merge_patient(None, incoming, snapshot=False) is incoming


# -- end to end over MLLP --------------------------------------------------------------------------


def test_cross_source_link_end_to_end_over_mllp(repository: Repository) -> None:
    with running_listener(Ingestor(repository)) as server, hl7.client.MLLPClient("127.0.0.1", server.port) as client:
        for raw in (adt("A1", "A01", HIS_PID), oru("L1", f"PID|1||L9^^^LIS^MR~{RESIDENT_ID}^^^CHN^NNCHN||张^三\r")):
            ack = hl7.parse(client.send_message(raw.decode()).decode())
            assert str(ack.segment("MSA")[1]) == "AA"
    his, lis = _by_mrn(repository, "M1"), _by_mrn(repository, "L9")
    assert _links(his) == {(f"Patient/{lis['id']}", "seealso")}
