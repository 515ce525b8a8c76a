"""gateway.watch in process: complete files only, filing with reason files, no way out of the directory."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.storage import open_repository
from gateway.ingest import Ingestor
from gateway.settings import Settings
from gateway.watch import FAILED, PROCESSED, WatchFolder
from tests.gateway.ingest_messages import UNMAPPABLE_BIRTH_DATE, adt


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[WatchFolder]:
    (tmp_path / "drop").mkdir()
    repository = open_repository(f"sqlite:///{tmp_path / 'watch.db'}")
    watched = WatchFolder(str(tmp_path / "drop"), Ingestor(repository, Settings(max_message_bytes=2048)), settle=1.0)
    yield watched
    watched.close()
    repository.close()


def _scan_settled(folder: WatchFolder, start: float = 100.0) -> list:
    assert folder.scan(now=start) == []  # first sight: not yet known to be complete
    return folder.scan(now=start + 1.5)


def test_a_batch_file_is_ingested_and_filed_with_its_reason_file(folder: WatchFolder) -> None:
    drop = Path(folder.directory)
    (drop / "batch.hl7").write_bytes(b"FHS|^~\\&\rBHS|^~\\&\r" + adt("B1", mrn="b1") + adt("B2", mrn="b2") + b"BTS|2\rFTS|1\r")
    [filed] = _scan_settled(folder)
    assert (filed.name, filed.outcome) == ("batch.hl7", PROCESSED)
    assert filed.lines == ("1\tB1\tAA\t", "2\tB2\tAA\t")
    assert not (drop / "batch.hl7").exists()
    assert (drop / PROCESSED / "batch.hl7").read_bytes().startswith(b"FHS")
    assert "B2\tAA" in (drop / PROCESSED / "batch.hl7.reason.txt").read_text()


def test_a_file_with_a_failing_message_goes_to_failed_and_a_retry_doubles_nothing(folder: WatchFolder) -> None:
    drop = Path(folder.directory)
    content = adt("F1", mrn="f1") + adt("F2", mrn="f2", birth=UNMAPPABLE_BIRTH_DATE)
    (drop / "mixed.hl7").write_bytes(adt("F0", mrn="f0") + b"MSH|^~\\&|HIS|H1|PB|HOSP|2026||ADT^A08|BIG|P|2.5\rNTE|" + b"x" * 4096 + b"\r" + content)
    [filed] = _scan_settled(folder)
    assert filed.outcome == FAILED
    codes = [line.split("\t")[:3] for line in filed.lines]
    assert codes == [["1", "F0", "AA"], ["2", "BIG", "AR"], ["3", "F1", "AA"], ["4", "F2", "AE"]]
    assert "exceeds the limit" in filed.lines[1]
    # the operator moves it back after a fix: applied messages are recognised, nothing doubles
    os.rename(drop / FAILED / "mixed.hl7", drop / "mixed.hl7")
    [again] = _scan_settled(folder, start=200.0)
    assert again.stored_as == "mixed.hl7.1" and again.lines[0] == "1\tF0\tAA\t"
    applied = folder.ingestor.log.by_status(("applied",), limit=100)
    assert sorted(row.control_id for row in applied) == ["F0", "F1"]


def test_files_being_written_are_left_alone(folder: WatchFolder) -> None:
    drop = Path(folder.directory)
    (drop / ".incoming.hl7").write_bytes(adt("T1"))
    (drop / "incoming.hl7.tmp").write_bytes(adt("T2"))
    (drop / "incoming.hl7.part").write_bytes(adt("T3"))
    (drop / "growing.hl7").write_bytes(adt("T4")[:20])
    assert folder.scan(now=100.0) == []
    with (drop / "growing.hl7").open("ab") as handle:
        handle.write(adt("T4")[20:])  # still being written when seen again: the clock starts over
    assert folder.scan(now=101.5) == []
    [filed] = folder.scan(now=103.0)
    assert (filed.name, filed.outcome) == ("growing.hl7", PROCESSED)
    assert sorted(p.name for p in drop.iterdir() if p.is_file()) == [".incoming.hl7", "incoming.hl7.part", "incoming.hl7.tmp"]


def test_symbolic_links_are_never_followed_and_sub_directories_are_skipped(folder: WatchFolder, tmp_path: Path) -> None:
    drop = Path(folder.directory)
    secret = tmp_path / "outside.hl7"
    secret.write_bytes(adt("OUTSIDE", mrn="outside"))
    (drop / "link.hl7").symlink_to(secret)
    (drop / "nested").mkdir()
    (drop / "nested" / "inner.hl7").write_bytes(adt("INNER"))
    [filed] = folder.scan(now=100.0)  # nothing to wait for: it will not be read
    assert (filed.name, filed.outcome) == ("link.hl7", FAILED)
    assert filed.lines == ("file not read: symbolic link, not followed",)
    assert (drop / FAILED / "link.hl7").is_symlink() and secret.exists()  # the link moved, its target untouched
    assert folder.ingestor.log.by_status(("applied", "rejected", "error"), limit=10) == []
    assert (drop / "nested" / "inner.hl7").exists()


def test_an_empty_file_is_failed_with_a_reason(folder: WatchFolder) -> None:
    (Path(folder.directory) / "empty.hl7").write_bytes(b"\r\n")
    [filed] = _scan_settled(folder)
    assert filed.outcome == FAILED and "no HL7 v2 message" in filed.lines[0]
