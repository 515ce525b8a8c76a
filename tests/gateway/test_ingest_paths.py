"""Path traversal in file ingestion (issue 7, part 3): the watched folder and `pulsebridge ingest` never read
or move a file outside the folder they were given (links, hard links, dot names, linked sub-directories)."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.storage import open_repository
from gateway.cli import main
from gateway.ingest import Ingestor
from gateway.settings import Settings
from gateway.watch import FAILED, PROCESSED, WatchFolder, WatchFolderError
from tests.gateway.ingest_messages import adt
from tests.gateway.pg_schema import PG_URL, own_schema


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    (tmp_path / "drop").mkdir()
    (tmp_path / "outside.hl7").write_bytes(adt("OUTSIDE", mrn="outside"))
    return tmp_path / "drop"


@pytest.fixture
def folder(drop: Path, tmp_path: Path) -> Iterator[WatchFolder]:
    repository = open_repository(f"sqlite:///{tmp_path / 'paths.db'}")
    watched = WatchFolder(str(drop), Ingestor(repository, Settings()), settle=1.0)
    yield watched
    watched.close()
    repository.close()


def _settled(folder: WatchFolder) -> list:
    folder.scan(now=100.0)
    return folder.scan(now=102.0)


def _logged(ingestor: Ingestor) -> list[str]:
    return sorted(row.control_id for row in ingestor.log.by_status(("received", "applied", "rejected", "error"), limit=100))


def test_a_hard_link_to_a_file_elsewhere_is_filed_unread(folder: WatchFolder, drop: Path) -> None:
    outside = drop.parent / "outside.hl7"
    os.link(outside, drop / "hard.hl7")
    (drop / "own.hl7").write_bytes(adt("OWN", mrn="own"))
    filed = {item.name: item for item in _settled(folder)}
    assert filed["hard.hl7"].outcome == FAILED and "hard links" in filed["hard.hl7"].lines[0]
    assert filed["own.hl7"].outcome == PROCESSED
    assert _logged(folder.ingestor) == ["OWN"]
    assert outside.read_bytes().startswith(b"MSH") and outside.stat().st_nlink == 2  # untouched; the link moved to failed/
    assert (drop / FAILED / "hard.hl7").exists()


def test_dot_names_are_never_taken(folder: WatchFolder, drop: Path) -> None:
    for name in ("..hl7", "...", ".hidden.hl7"):
        (drop / name).write_bytes(adt("DOT", mrn="dot"))
    assert _settled(folder) == []
    assert _logged(folder.ingestor) == []


@pytest.mark.parametrize("kind", [PROCESSED, FAILED])
def test_a_linked_processed_or_failed_directory_stops_the_watcher(drop: Path, tmp_path: Path, kind: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (drop / kind).symlink_to(elsewhere, target_is_directory=True)
    repository = open_repository(f"sqlite:///{tmp_path / 'linked.db'}")
    try:
        with pytest.raises(WatchFolderError, match=f"{kind} is a symbolic link"):
            WatchFolder(str(drop), Ingestor(repository, Settings()))
    finally:
        repository.close()
    assert list(elsewhere.iterdir()) == []


@pytest.mark.postgres
def test_a_file_whose_ingestion_breaks_is_filed_and_the_watcher_carries_on(drop: Path) -> None:
    from adapters.storage.postgresql import PostgreSQLRepository

    with own_schema("pb_paths") as schema:
        repository = PostgreSQLRepository(PG_URL, schema=schema)
        folder = WatchFolder(str(drop), Ingestor(repository, Settings()), settle=1.0)
        try:
            # A NUL in the control id (PostgreSQL text cannot hold U+0000): refused AR at the edge, kept as a dead letter.
            (drop / "a-poison.hl7").write_bytes(adt("P\x000", mrn="p0"))
            (drop / "b-good.hl7").write_bytes(adt("GOOD", mrn="good"))
            filed = _settled(folder)
            assert [(item.name, item.outcome) for item in filed] == [("a-poison.hl7", FAILED), ("b-good.hl7", PROCESSED)]
            assert "\tAR\t" in filed[0].lines[0] and "NUL character" in filed[0].lines[0], filed[0].lines
            assert _logged(folder.ingestor) == ["GOOD", "P0"]  # the NUL is dropped from the logged control id
        finally:
            folder.close()
            repository.close()


def test_pulsebridge_ingest_does_not_follow_links_out_of_a_directory(drop: Path, tmp_path: Path) -> None:
    outside_dir = tmp_path / "outside-dir"
    outside_dir.mkdir()
    (outside_dir / "far.hl7").write_bytes(adt("FAR", mrn="far"))
    (drop / "link.hl7").symlink_to(tmp_path / "outside.hl7")
    (drop / "linked-dir").symlink_to(outside_dir, target_is_directory=True)
    (drop / "nested").mkdir()
    (drop / "nested" / "inner.hl7").write_bytes(adt("INNER", mrn="inner"))
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    result = CliRunner().invoke(main, ["ingest", str(drop), "--db", db, "--quiet"])
    assert result.exit_code == 0, result.output
    assert "link.hl7: skipped: symbolic link, not followed" in result.stderr
    assert "linked-dir: skipped: symbolic link to a directory" in result.stderr
    assert "accepted 1," in result.stderr
    repository = open_repository(db)
    try:
        assert _logged(Ingestor(repository)) == ["INNER"]
    finally:
        repository.close()
