"""`pulsebridge ingest PATH ... [--db URL]`: load HL7 v2 files into the store, with a progress bar and a summary (DESIGN.md)."""
from __future__ import annotations

import sys

import click

from gateway.commands.inputs import iter_inputs
from gateway.commands.options import db_option


@click.command()
@click.argument("paths", nargs=-1, required=True)
@db_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def ingest(paths: tuple[str, ...], db: str, quiet: bool) -> None:
    """Ingest HL7 v2 messages (single, many per file, FHS/BHS batches) exactly as MLLP would.

    Exit status 0 when every message was accepted or was a resend of one, 1 otherwise.
    """
    from tqdm import tqdm

    from adapters.hl7v2.errors import MessageTooLarge
    from adapters.storage import open_repository
    from gateway.ingest import Ingestor
    from gateway.settings import load_settings

    settings = load_settings()
    repository = open_repository(db)
    ingestor = Ingestor(repository, settings)
    counts = {"accepted": 0, "duplicate": 0, "error": 0, "rejected": 0}
    try:
        with tqdm(desc="ingest", unit="msg", file=sys.stderr, disable=quiet) as bar:
            for item in iter_inputs(paths, max_message_bytes=settings.max_message_bytes):
                if item.payload is None:
                    too_large = item.too_large
                    error = MessageTooLarge(str(too_large))
                    result = ingestor.reject_oversize(too_large.head if too_large else b"", error, peer=item.source, transport="file")
                else:
                    result = ingestor.ingest(item.payload, peer=item.source, transport="file")
                counts[result.status] += 1
                if result.error and result.status != "duplicate":
                    bar.write(f"{item.where}: {result.control_id or '-'} {result.ack_code} {result.error}", file=sys.stderr)
                bar.update(1)
    finally:
        repository.close()
    click.echo(
        f"accepted {counts['accepted']}, duplicates {counts['duplicate']}, errors {counts['error']}, rejected {counts['rejected']}",
        err=True,
    )
    sys.exit(1 if counts["error"] or counts["rejected"] else 0)
