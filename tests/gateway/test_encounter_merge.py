"""Messages that do not own the visit only add to an Encounter (gateway/identity.py, data/identity-events.json "visit"):
an MDM or ORU with a thinner PV1 and a later event time never reopens a finished stay nor drops its period, class,
reasonCode, hospitalization or location; the registration system's ADT still does, and order protection still holds.
Everything goes through the real ingest path (gateway.ingest.Ingestor) on SQLite and PostgreSQL."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.ingest import ACCEPTED, Ingestor
from gateway.settings import Settings
from tests.gateway.pg_schema import sql_store

PID = "PID|1||ENC1^^^HOSP^MR||DOE^JANE||19800101|F\r"
VISIT = "V100^^^HOSP^VN"
ADMITTED, DISCHARGED = "20260301080000+0800", "20260305100000+0800"
STAY = {"start": "2026-03-01T08:00:00+08:00", "end": "2026-03-05T10:00:00+08:00"}
REASON = "PV2|||CHEST^Chest pain^L\r"


def _pv1(**fields: str) -> str:
    """PV1 with the given fields (f2="I" is PV1-2), empty elsewhere."""
    values = ["PV1"] + [""] * 50
    for name, value in fields.items():
        values[int(name[1:])] = value
    return "|".join(values).rstrip("|") + "\r"


def _msh(kind: str, control_id: str, time: str) -> str:
    return f"MSH|^~\\&|HIS|H1|PB|HOSP|{time}||{kind}|{control_id}|P|2.5\r"


def _adt(event: str, control_id: str, time: str, *, discharged: str = "", reason: str = REASON) -> bytes:
    """An ADT of the registration system with the full PV1 of the stay (v2.5 3.3.1 A01, 3.3.3 A03, 3.3.8 A08)."""
    pv1 = _pv1(f1="1", f2="I", f3="W1^101^1^HOSP", f7="1234^SMITH^JOHN", f10="MED", f14="7", f19=VISIT,
               f36="01" if discharged else "", f44=ADMITTED, f45=discharged)
    structure = "ADT_A03" if event == "A03" else "ADT_A01"
    return (_msh(f"ADT^{event}^{structure}", control_id, time) + f"EVN|{event}|{time}\r" + PID + pv1 + reason).encode()


def _mdm(control_id: str, time: str) -> bytes:
    """An MDM T02 whose PV1 names the visit, but as outpatient, without times or location (v2.5 9.6.2)."""
    return (_msh("MDM^T02^MDM_T02", control_id, time) + f"EVN|T02|{time}\r" + PID + _pv1(f1="1", f2="O", f19=VISIT)
            + f"TXA|1|DS|TX|{time}|||||||DOC{control_id}||||||AU\rOBX|1|TX|DS^Discharge summary||Patient is well.\r").encode()


def _oru(control_id: str, time: str) -> bytes:
    """An ORU R01 whose PV1 has another location and class, no reason, and an alternate visit id (v2.5 7.3.1)."""
    return (_msh("ORU^R01^ORU_R01", control_id, time) + PID + _pv1(f1="1", f2="O", f3="W9^909", f19=VISIT, f50="ALT9^^^HOSP^VN")
            + f"ORC|RE|ORD{control_id}|FIL{control_id}\rOBR|1|ORD{control_id}|FIL{control_id}|GLU^Glucose^L|||{time}"
            + f"|||||||||||||||{time}||CH|F\rOBX|1|NM|GLU^Glucose^L||5.5|mmol/L|||||F|||{time}\r").encode()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ingestor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ingestor]:
    with sql_store(request.param, tmp_path, "pb_visit") as repository:
        yield Ingestor(repository, Settings())


def _ingest(ingestor: Ingestor, raw: bytes) -> tuple[str, ...]:
    result = ingestor.ingest(raw, peer="test", transport="test")
    assert result.status == ACCEPTED, result.error
    return result.notes


def _encounter(ingestor: Ingestor) -> tuple[dict[str, Any], str]:
    """The stay (content without meta) and its version id."""
    [found] = ingestor.repository.search(_query("Encounter", "identifier", "V100")).matches
    return {k: v for k, v in found.items() if k != "meta"}, found["meta"]["versionId"]


def _query(resource_type: str, name: str, value: str) -> Any:
    from adapters.storage.query import parse_search

    return parse_search(resource_type, [(name, value)])


def test_mdm_and_oru_after_the_discharge_keep_the_stay_and_only_add_what_it_lacks(ingestor: Ingestor) -> None:
    _ingest(ingestor, _adt("A01", "A1", ADMITTED))
    _ingest(ingestor, _adt("A03", "A3", DISCHARGED, discharged=DISCHARGED))
    discharged, version = _encounter(ingestor)
    assert discharged["status"] == "finished" and discharged["period"] == STAY and discharged["class"]["code"] == "IMP"
    assert discharged["reasonCode"][0]["coding"][0]["code"] == "CHEST"

    _ingest(ingestor, _mdm("M1", "20260306090000+0800"))
    assert _encounter(ingestor) == (discharged, version)  # nothing it lacks: no new version

    _ingest(ingestor, _oru("O1", "20260307090000+0800"))
    after, _ = _encounter(ingestor)
    assert {k: v for k, v in after.items() if k != "identifier"} == {k: v for k, v in discharged.items() if k != "identifier"}
    assert [i["value"] for i in after["identifier"]] == ["V100", "ALT9"]  # the one thing it lacked, added


def test_an_oru_first_creates_the_visit_that_the_adt_then_states_even_if_older(ingestor: Ingestor) -> None:
    _ingest(ingestor, _oru("O2", "20260302090000+0800"))
    assert _encounter(ingestor)[0]["class"]["code"] == "AMB"  # all the ORU knows
    _ingest(ingestor, _adt("A01", "A1", ADMITTED))  # older than the ORU, but the ORU only added: the ADT owns the visit
    admitted, _ = _encounter(ingestor)
    assert admitted["class"]["code"] == "IMP" and admitted["status"] == "in-progress"
    _ingest(ingestor, _adt("A03", "A3", DISCHARGED, discharged=DISCHARGED))
    assert _encounter(ingestor)[0]["status"] == "finished"


def test_an_older_adt_still_does_not_overwrite_a_newer_stay(ingestor: Ingestor) -> None:
    _ingest(ingestor, _adt("A01", "A1", ADMITTED))
    _ingest(ingestor, _adt("A03", "A3", DISCHARGED, discharged=DISCHARGED))
    discharged = _encounter(ingestor)
    notes = _ingest(ingestor, _adt("A08", "A8", "20260303120000+0800", reason=""))  # delayed: before the discharge
    assert any(note.startswith("Encounter/") and "out-of-order" in note for note in notes)
    assert _encounter(ingestor) == discharged


def test_a_delayed_registration_update_still_reaches_the_patient_after_a_newer_result(ingestor: Ingestor) -> None:
    _ingest(ingestor, _adt("A01", "A1", ADMITTED))
    _ingest(ingestor, _oru("O3", "20260304090000+0800"))  # a result: it only adds to the Patient, so it moves no clock
    renamed = _adt("A08", "A8", "20260303120000+0800").replace(b"DOE^JANE", b"DOE^JANET")  # sent before the ORU
    notes = _ingest(ingestor, renamed)
    assert not any(note.startswith("Patient/") for note in notes)
    [patient] = ingestor.repository.search(_query("Patient", "identifier", "ENC1")).matches
    assert patient["name"][0]["given"] == ["JANET"]
