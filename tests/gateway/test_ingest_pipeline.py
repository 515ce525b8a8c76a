"""The ingest pipeline (gateway/ingest.py): ACK codes, durability, resends, order, dead letters (DESIGN.md)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.hl7v2 import parse
from adapters.storage import open_repository
from adapters.storage.base import Repository
from adapters.storage.query import parse_search
from gateway.ingest import Ingestor
from tests.gateway.ingest_messages import GARBAGE, UNMAPPABLE_BIRTH_DATE, adt
from tests.gateway.pg_schema import sql_store


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[Repository]:
    repo = open_repository(f"sqlite:///{tmp_path / 'ingest.db'}")
    yield repo
    repo.close()


@pytest.fixture
def ingestor(repository: Repository) -> Ingestor:
    return Ingestor(repository)


def _patients(repository: Repository) -> list[dict]:
    return repository.search(parse_search("Patient", [])).matches


def test_accepted_message_is_stored_then_acknowledged_aa(ingestor: Ingestor, repository: Repository) -> None:
    result = ingestor.ingest(adt("C1"), peer="t", transport="test")
    ack = parse(result.ack)
    assert (result.status, ack.get("MSA-1"), ack.get("MSA-2")) == ("accepted", "AA", "C1")
    assert [p["name"][0]["family"] for p in _patients(repository)] == ["DOE"]
    row = ingestor.log.get(result.message_id)
    assert row is not None and row.status == "applied" and row.raw == adt("C1") and row.control_id == "C1"


def test_resend_is_acknowledged_again_and_not_applied_twice(ingestor: Ingestor, repository: Repository) -> None:
    first = ingestor.ingest(adt("C1"), peer="t", transport="test")
    total_before, versions_before = repository.history()
    again = ingestor.ingest(adt("C1"), peer="t", transport="test")
    assert again.status == "duplicate" and parse(again.ack).get("MSA-1") == "AA" and parse(again.ack).get("MSA-2") == "C1"
    total_after, [newest, *_] = repository.history()
    assert total_after == total_before + 1 and newest.resource_type == "AuditEvent"  # no new version of anything but the resend's audit record
    row = ingestor.log.get(again.message_id)
    assert row is not None and row.status == "duplicate" and row.duplicate_of == first.message_id


def test_reused_control_id_with_other_content_is_not_taken_for_a_resend(ingestor: Ingestor, repository: Repository) -> None:
    ingestor.ingest(adt("C1"), peer="t", transport="test")
    other = ingestor.ingest(adt("C1", family="ROE", mrn="999"), peer="t", transport="test")
    assert other.status == "accepted"
    assert sorted(p["name"][0]["family"] for p in _patients(repository)) == ["DOE", "ROE"]


def test_unparseable_input_is_rejected_ar_and_kept(ingestor: Ingestor) -> None:
    result = ingestor.ingest(GARBAGE, peer="t", transport="test")
    assert result.status == "rejected" and parse(result.ack).get("MSA-1") == "AR"
    assert [row.raw for row in ingestor.dead_letters()] == [GARBAGE]


def test_unmappable_message_is_ae_with_err_and_becomes_a_dead_letter(ingestor: Ingestor, repository: Repository) -> None:
    result = ingestor.ingest(adt("C2", birth=UNMAPPABLE_BIRTH_DATE), peer="t", transport="test")
    ack = parse(result.ack)
    assert (result.status, ack.get("MSA-1"), ack.get("MSA-2"), ack.get("ERR-3")) == ("error", "AE", "C2", "102")
    assert _patients(repository) == []
    [dead] = ingestor.dead_letters()
    assert dead.status == "error" and "month 13" in dead.reason


def test_replay_applies_a_dead_letter_after_a_fix(ingestor: Ingestor, repository: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    import mappers

    def broken(*_args: object) -> None:
        raise RuntimeError("mapping bug")

    monkeypatch.setattr(mappers, "convert_message", broken)
    failed = ingestor.ingest(adt("C3"), peer="t", transport="test")
    assert failed.status == "error" and _patients(repository) == []
    monkeypatch.undo()  # "the fix"
    replayed = ingestor.replay(failed.message_id)
    assert replayed.status == "accepted" and len(_patients(repository)) == 1
    assert ingestor.dead_letters() == []
    with pytest.raises(ValueError):
        ingestor.replay(failed.message_id)


def test_older_event_does_not_overwrite_newer_data(ingestor: Ingestor, repository: Repository) -> None:
    ingestor.ingest(adt("N1", event="20260102120000+0800", family="NEWER"), peer="t", transport="test")
    late = ingestor.ingest(adt("O1", event="20260101120000+0800", family="OLDER"), peer="t", transport="test")
    assert late.status == "accepted" and parse(late.ack).get("MSA-1") == "AA"
    assert any("Patient/" in note for note in late.notes)
    assert [p["name"][0]["family"] for p in _patients(repository)] == ["NEWER"]
    ingestor.ingest(adt("N2", event="20260103120000+0800", family="NEWEST"), peer="t", transport="test")
    assert [p["name"][0]["family"] for p in _patients(repository)] == ["NEWEST"]


def test_enhanced_mode_answers_ca_once_durable(ingestor: Ingestor, repository: Repository) -> None:
    receipt = ingestor.accept(adt("E1", header_extra="|||AL|NE"), peer="t", transport="test")
    assert receipt.accept_ack is not None and parse(receipt.accept_ack).get("MSA-1") == "CA"
    row = ingestor.log.get(receipt.message_id)
    assert row is not None and row.status == "received"  # durable before any processing
    assert ingestor.apply(receipt).status == "accepted" and len(_patients(repository)) == 1


def test_recover_applies_messages_logged_before_a_crash(ingestor: Ingestor, repository: Repository) -> None:
    receipt = ingestor.accept(adt("R1"), peer="t", transport="test")  # "crash" before apply
    assert _patients(repository) == []
    [result] = Ingestor(repository).recover()
    assert result.status == "accepted" and len(_patients(repository)) == 1
    assert ingestor.log.get(receipt.message_id).status == "applied"  # type: ignore[union-attr]


def test_times_without_an_offset_are_read_in_the_configured_zone(repository: Repository) -> None:
    from zoneinfo import ZoneInfo

    from gateway.settings import Settings

    ingestor = Ingestor(repository, Settings(timezone=ZoneInfo("Asia/Shanghai")))
    raw = (
        "MSH|^~\\&|HIS|BJ|PB|PB|20260115083015||ADT^A01^ADT_A01|TZ1|P|2.5\r"
        "PID|1||TZ-1^^^BJ^MR||WANG^XIAOHONG||19850314\r"
        "PV1|1|I|||||||||||||||||TZV1|||||||||||||||||||||||||20260115080000\r"
    ).encode()
    assert ingestor.ingest(raw, peer="test", transport="test").ack_code == "AA"
    [encounter] = repository.search(parse_search("Encounter", [])).matches
    assert encounter["period"]["start"] == "2026-01-15T08:00:00+08:00"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def both_sql_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repository]:
    """Both SQL stores: the lock order below is what keeps PostgreSQL from deadlocking."""
    with sql_store(request.param, tmp_path, "pb_order") as repository:
        yield repository


def test_a_message_locks_what_it_writes_in_one_ordered_step(both_sql_stores: Repository) -> None:
    """Nothing the message writes is read (and so locked) alone before the rest: identity resolution
    used to lock the stored Patient and Encounter first, out of the store's (type, row) order, and two
    messages of one patient on two PostgreSQL connections deadlocked about once in a hundred."""
    ingestor = Ingestor(both_sql_stores)
    assert ingestor.ingest(adt("ORD1"), peer="t", transport="test").status == "accepted"
    locked_alone: list[tuple[str, str]] = []
    fetch_current = both_sql_stores.fetch_current  # type: ignore[attr-defined]

    def spy(conn: object, resource_type: str, resource_id: str, lock: bool) -> object:
        if lock:
            locked_alone.append((resource_type, resource_id))
        return fetch_current(conn, resource_type, resource_id, lock)

    both_sql_stores.fetch_current = spy  # type: ignore[attr-defined]
    assert ingestor.ingest(adt("ORD2", family="ROE"), peer="t", transport="test").status == "accepted"
    assert [p["name"][0]["family"] for p in _patients(both_sql_stores)] == ["ROE"]
    assert {resource_type for resource_type, _ in locked_alone} <= {"AuditEvent"}
