"""What a message only names, or names without stating it, never replaces what is stored (gateway/identity.py merge_named).

A practitioner, organization or location named in another segment's field ("update": what the
message carries replaces, what it lacks is kept, v2.5 2.5.3), a parent Condition/Procedure named
by its identifier alone ("fill": only what is missing is added; mappers ConversionReport.named),
and an order named by a result ("update"; data/identity-events.json "orders"), which keeps an end
state a later order message would reopen ("order_end_states"). Through the real
ingest path (gateway.ingest.Ingestor) on SQLite and PostgreSQL."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from adapters.storage.query import parse_search
from gateway.ingest import ACCEPTED, Ingestor
from gateway.settings import Settings
from mappers import convert
from mappers.report import FILL, UPDATE
from tests.gateway.pg_schema import sql_store

PID = "PID|1||NM1^^^HOSP^MR||DOE^JANE||19800101|F\r"


def _msh(kind: str, control_id: str) -> str:
    return f"MSH|^~\\&|HIS|H1|PB|HOSP|20260301080000+0800||{kind}|{control_id}|P|2.5\r"


def _pv1(attending: str) -> str:
    return f"PV1|1|I|W1^101^1^HOSP||||{attending}|||MED|||||||||V7^^^HOSP^VN\r"


def _dg1(set_id: int, code: str, identifier: str = "", parent: str = "") -> str:
    fields = ["DG1", str(set_id), "", code] + [""] * 19
    fields[6], fields[20], fields[22] = "F", identifier, parent
    return "|".join(fields).rstrip("|") + "\r"


def _pr1(set_id: int, code: str, identifier: str = "", parent: str = "") -> str:
    fields = ["PR1", str(set_id), "", code, "", "20260301"] + [""] * 20
    fields[19], fields[25] = identifier, parent
    return "|".join(fields).rstrip("|") + "\r"


def _adt(control_id: str, attending: str, *segments: str) -> bytes:
    return (_msh("ADT^A01^ADT_A01", control_id) + "EVN|A01|20260301080000+0800\r" + PID + _pv1(attending) + "".join(segments)).encode()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ingestor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ingestor]:
    with sql_store(request.param, tmp_path, "pb_named") as repository:
        yield Ingestor(repository, Settings())


def _ingest(ingestor: Ingestor, raw: bytes) -> None:
    result = ingestor.ingest(raw, peer="test", transport="test")
    assert result.status == ACCEPTED, result.error


def _one(ingestor: Ingestor, resource_type: str, identifier: str) -> dict[str, Any]:
    [found] = ingestor.repository.search(parse_search(resource_type, [("identifier", identifier)])).matches
    return {k: v for k, v in found.items() if k != "meta"}


def test_the_report_lists_what_the_message_only_names_with_its_rule() -> None:
    bundle, report = convert(_adt("R1", "1234^SMITH^JOHN", _dg1(1, "I10^Hypertension^I10", "D2^HOSP", "D1^HOSP")))
    urls = {entry["request"]["url"]: entry["resource"] for entry in bundle["entry"]}
    rules = {url: report.named.get(url) for url in urls}
    by_type: dict[str, set[str | None]] = {}
    for url, rule in rules.items():
        by_type.setdefault(url.partition("/")[0], set()).add(rule)
    assert by_type["Practitioner"] == by_type["Location"] == {UPDATE}
    assert by_type["Patient"] == by_type["Encounter"] == by_type["Provenance"] == {None}  # stated by their segments
    parent = next(url for url, r in urls.items() if r["resourceType"] == "Condition" and r["identifier"][0]["value"] == "D1")
    stated = next(url for url, r in urls.items() if r["resourceType"] == "Condition" and r["identifier"][0]["value"] == "D2")
    assert rules[parent] == FILL and rules[stated] is None


def test_a_diagnosis_stated_by_one_message_and_named_by_the_next_keeps_its_content(ingestor: Ingestor) -> None:
    _ingest(ingestor, _adt("A1", "1234^SMITH^JOHN", _dg1(1, "I10^Hypertension^I10", "D1^HOSP"),
                        _pr1(1, "P1^Appendectomy^L", "PR1^HOSP")))
    condition, procedure = _one(ingestor, "Condition", "D1"), _one(ingestor, "Procedure", "PR1")
    assert condition["code"]["coding"][0]["code"] == "I10" and procedure["status"] == "completed"

    # a later message: a complication due to D1, a follow-up procedure part of PR1, the attending by id alone
    _ingest(ingestor, _adt("A2", "1234", _dg1(1, "K91.8^Complication^I10", "D2^HOSP", "D1^HOSP"),
                        _pr1(1, "P2^Drain^L", "PR2^HOSP", "PR1^HOSP")))
    assert _one(ingestor, "Condition", "D1") == condition  # the parent named by identifier: nothing replaced
    assert _one(ingestor, "Procedure", "PR1") == procedure  # its placeholder status "unknown" did not land
    assert _one(ingestor, "Condition", "D2")["extension"][0]["valueReference"]["reference"] == f"Condition/{condition['id']}"
    assert _one(ingestor, "Procedure", "PR2")["partOf"] == [{"reference": f"Procedure/{procedure['id']}"}]
    practitioner = _one(ingestor, "Practitioner", "1234")
    assert practitioner["name"] == [{"family": "SMITH", "given": ["JOHN"]}]  # PV1-7 by id alone kept the name


def test_a_parent_named_first_is_then_stated_whole(ingestor: Ingestor) -> None:
    _ingest(ingestor, _adt("B1", "1234^SMITH^JOHN", _pr1(1, "P2^Drain^L", "PR2^HOSP", "PR1^HOSP")))
    assert _one(ingestor, "Procedure", "PR1")["status"] == "unknown"  # only named so far
    _ingest(ingestor, _adt("B2", "1234^SMITH^JOHN", _pr1(1, "P1^Appendectomy^L", "PR1^HOSP")))
    stated = _one(ingestor, "Procedure", "PR1")
    assert stated["status"] == "completed" and stated["code"]["coding"][0]["code"] == "P1"


def test_a_named_practitioner_takes_what_the_message_carries(ingestor: Ingestor) -> None:
    _ingest(ingestor, _adt("C1", "1234^SMITH^JOHN^^^DR"))
    _ingest(ingestor, _adt("C2", "1234^SMITH^JOHNNY"))
    practitioner = _one(ingestor, "Practitioner", "1234")
    assert practitioner["name"] == [{"family": "SMITH", "given": ["JOHNNY"]}]  # the name it sent replaces the stored one


def test_over_http_a_message_naming_the_attending_by_id_keeps_the_name(client: FlaskClient) -> None:
    for control_id, attending in (("H1", "1234^SMITH^JOHN"), ("H2", "1234")):
        response = client.post("/hl7/v2", data=_adt(control_id, attending))
        assert response.status_code == 200 and f"MSA|AA|{control_id}".encode() in response.data
    [entry] = client.get("/fhir/Practitioner?identifier=1234").get_json()["entry"]
    assert entry["resource"]["name"] == [{"family": "SMITH", "given": ["JOHN"]}]


def _order(kind: str, control_id: str, orc: str, obr: str, *rest: str) -> bytes:
    msh = f"MSH|^~\\&|CPOE|H1|LAB|HOSP|20260301080000+0800||{kind}|{control_id}|P|2.5\r"
    return (msh + PID + "".join(f"{segment}\r" for segment in (orc, obr, *rest))).encode()


ORDER = _order("ORM^O01^ORM_O01", "O1", "ORC|NW|PLC1^CPOE|FIL1^LAB||SC||^^^20260301090000+0800^^R||20260301080000+0800|||1234^SMITH^JOHN",
               "OBR|1|PLC1^CPOE|FIL1^LAB|GLU^Glucose^L|||20260301080000+0800")
RESULT = _order("ORU^R01^ORU_R01", "R1", "ORC|RE|PLC1^CPOE|FIL1^LAB||CM",
                "OBR|1|PLC1^CPOE|FIL1^LAB|GLU^Glucose^L|||20260301080000+0800|||||||||||||||20260302070000+0800||CH|F",
                "OBX|1|NM|GLU^Glucose^L||5.5|mmol/L|||||F")


def test_a_result_updates_the_order_it_answers_and_keeps_what_it_does_not_say(ingestor: Ingestor) -> None:
    _ingest(ingestor, ORDER)
    ordered = _one(ingestor, "ServiceRequest", "PLC1")
    assert ordered["status"] == "active" and ordered["priority"] == "routine" and "requester" in ordered
    _ingest(ingestor, RESULT)
    resulted = _one(ingestor, "ServiceRequest", "PLC1")
    assert resulted["status"] == "completed"  # what the result says replaces
    assert {k: v for k, v in resulted.items() if k not in ("status", "specimen")} == {k: v for k, v in ordered.items() if k != "status"}


def test_an_order_message_states_the_order_whole(ingestor: Ingestor) -> None:
    _ingest(ingestor, ORDER)
    _ingest(ingestor, _order("ORM^O01^ORM_O01", "O2", "ORC|XO|PLC1^CPOE|FIL1^LAB||SC", "OBR|1|PLC1^CPOE|FIL1^LAB|GLU^Glucose^L"))
    changed = _one(ingestor, "ServiceRequest", "PLC1")
    assert "requester" not in changed and "occurrenceTiming" not in changed  # the placer's new order replaced the old


def test_an_order_message_after_the_result_does_not_reopen_the_order(ingestor: Ingestor) -> None:
    """A late or resent ORM (ORC-5 SC: active) after the ORU that completed the order: the order's
    other elements are what the ORM states, its status stays completed (data file "order_end_states")."""
    _ingest(ingestor, ORDER)
    requester = _one(ingestor, "ServiceRequest", "PLC1")["requester"]
    _ingest(ingestor, RESULT)
    _ingest(ingestor, ORDER.replace(b"|O1|", b"|O3|").replace(b"|1234^SMITH^JOHN", b"|5678^JONES^ANN"))
    order = _one(ingestor, "ServiceRequest", "PLC1")
    assert order["status"] == "completed"
    assert order["requester"] != requester  # the rest is what the ORM states
    _ingest(ingestor, _order("ORM^O01^ORM_O01", "O4", "ORC|CA|PLC1^CPOE|FIL1^LAB||CA", "OBR|1|PLC1^CPOE|FIL1^LAB|GLU^Glucose^L"))
    assert _one(ingestor, "ServiceRequest", "PLC1")["status"] == "revoked"  # from one end state to another: kept
