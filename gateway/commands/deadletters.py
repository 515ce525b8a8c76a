"""`pulsebridge deadletters list|show ID|replay ID`: messages kept because they could not be applied (DESIGN.md)."""
from __future__ import annotations

import sys

import click

from gateway.commands.options import db_option


def _ingestor(db: str):  # noqa: ANN202 - gateway.ingest.Ingestor, imported lazily
    from adapters.storage import open_repository
    from gateway.ingest import Ingestor
    from gateway.settings import load_settings

    return Ingestor(open_repository(db), load_settings())


@click.group()
def deadletters() -> None:
    """List, show and replay dead letters."""


@deadletters.command("list")
@db_option
@click.option("--limit", default=100, show_default=True)
def list_(db: str, limit: int) -> None:
    """One line per dead letter: id, received, status, ACK code, sender, control id, reason."""
    for row in _ingestor(db).dead_letters(limit=limit):
        sender = f"{row.sending_application}/{row.sending_facility}"
        click.echo(f"{row.id}\t{row.received_at}\t{row.status}\t{row.ack_code}\t{sender}\t{row.control_id}\t{row.reason}")


@deadletters.command()
@click.argument("message_id", type=int)
@db_option
def show(message_id: int, db: str) -> None:
    """The dead letter's details and its message, one segment per line."""
    row = _ingestor(db).log.get(message_id)
    if row is None:
        click.echo(f"no message {message_id}", err=True)
        sys.exit(1)
    for key, value in row.summary().items():
        click.echo(f"{key}: {value}")
    click.echo(row.raw.decode("utf-8", "replace").replace("\r", "\n"))


@deadletters.command()
@click.argument("message_id", type=int)
@db_option
def replay(message_id: int, db: str) -> None:
    """Apply a dead letter again (after a fix); exit 1 if it still fails."""
    try:
        result = _ingestor(db).replay(message_id)
    except (KeyError, ValueError) as error:
        click.echo(str(error.args[0] if isinstance(error, KeyError) else error), err=True)
        sys.exit(1)
    click.echo(f"{message_id}: {result.status} {result.ack_code} {result.error or ''}".rstrip())
    sys.exit(0 if result.status in ("accepted", "duplicate") else 1)
