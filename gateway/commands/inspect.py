"""`pulsebridge inspect PATH...`: each HL7 v2 message decoded for a person debugging an interface."""
from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adapters.hl7v2.batch import Record
    from adapters.hl7v2.delimiters import Delimiters
    from adapters.hl7v2.message import Message, Segment
    from gateway.settings import Settings


@click.command("inspect")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message per line (decoded segments).")
def inspect(paths: tuple[str, ...], as_json: bool) -> None:
    """Show each message in PATH... (`-` = stdin): charset decision, version, structure, control id
    and every populated field with its HL7 name. Files may hold several messages and FHS/BHS batches.

    Exit status: 0 all messages read, 1 some message failed (reported on stderr), 2 usage error.
    """
    from adapters.hl7v2.batch import iter_records
    from gateway.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    failed = False
    for path in paths:
        with click.open_file(path, "rb") as stream:
            records = iter_records(stream, max_message_bytes=settings.max_message_bytes)
            failed |= not _inspect_file(path if path != "-" else "<stdin>", records, settings, as_json)
    if failed:
        raise SystemExit(1)


def _inspect_file(name: str, records: Iterable[Record], settings: Settings, as_json: bool) -> bool:
    """Print every message of one input; False if any could not be read."""
    from adapters.hl7v2.batch import BatchWarning, ChunkTooLarge, EnvelopeSegment, MessageChunk
    from adapters.hl7v2.er7 import parse
    from adapters.hl7v2.errors import HL7Error

    ok = True
    count = 0
    for record in records:
        if isinstance(record, BatchWarning):
            click.echo(f"{name}: warning: {record.detail} (byte {record.offset})", err=True)
        elif isinstance(record, EnvelopeSegment):
            if not as_json:
                click.echo(f"-- {name}: {record.segment_id} batch envelope segment at byte {record.offset}")
        elif isinstance(record, ChunkTooLarge):
            count += 1
            ok = False
            click.echo(f"{name}: message {record.index + 1}: {record}", err=True)
        elif isinstance(record, MessageChunk):
            count += 1
            try:
                message = parse(record.payload, fallback_charset=settings.fallback_charset, limits=settings.limits())
            except HL7Error as exc:
                ok = False
                click.echo(
                    f"{name}: message {record.index + 1} (starts at file byte {record.offset}): error {exc.code}: {exc}",
                    err=True,
                )
                continue
            if as_json:
                click.echo(_as_json(message))
            else:
                click.echo(_as_text(name, record.index + 1, record.offset, message))
    if count == 0:
        click.echo(f"{name}: no HL7 v2 message found (a message starts with an MSH segment)", err=True)
        return False
    return ok


def _as_json(message: Message) -> str:
    """{"charset", "version", "structure", "control_id", "segments": [[segment_id, fields]]} (issue 2)."""
    import orjson

    document = {
        "charset": message.charset.codec,
        "version": message.version,
        "structure": message.structure,
        "control_id": message.control_id,
        "segments": [[segment.id, segment.decoded()] for segment in message.segments],
    }
    return orjson.dumps(document).decode("utf-8")


def _as_text(name: str, number: int, offset: int, message: Message) -> str:
    """A header (where, charset decision, version, structure, control id), then one line per populated field."""
    from adapters.hl7v2.names import field_name

    charset = message.charset
    if charset.reason == "MSH-18":
        why = f"MSH-18 {charset.declared!r}"
    else:
        why = charset.reason + (f", MSH-18 {charset.declared!r}" if charset.declared else "")
    lines = [
        f"== {name} message {number} (byte {offset})",
        f"charset:    {charset.codec} ({why})",
        f"version:    {message.version or '(none)'}",
        f"structure:  {message.structure} (MSH-9 {message.message_type})",
        f"control id: {message.control_id}",
        "",
    ]
    rows: list[tuple[str, str, str]] = []
    for segment in message.segments:
        for label, field, text in _populated(segment, message.delimiters):
            rows.append((label, field_name(segment.id, field, message.version), text))
    width = max((len(label) for label, _, _ in rows), default=0)
    for label, title, text in rows:
        lines.append(f"{label.ljust(width)}  {title + ': ' if title else ''}{text}")
    return "\n".join(lines) + "\n"


def _populated(segment: Segment, d: Delimiters) -> list[tuple[str, int, str]]:
    """(path label, field number, shown value) for each non-empty field repetition, e.g. ("PID-3(2)", 3, "X^^^MR")."""
    prefix = segment.id + (f"[{segment.sequence}]" if segment.sequence > 1 else "")
    out: list[tuple[str, int, str]] = []
    decoded = segment.decoded()
    for field in range(1, len(decoded)):
        value = decoded[field]
        if isinstance(value, str):  # MSH-1, MSH-2
            out.append((f"{prefix}-{field}", field, value))
            continue
        reps = value  # type: ignore[assignment]
        for index, rep in enumerate(reps, 1):
            components = [d.subcomponent.join(subs) for subs in rep]
            while components and not components[-1]:
                components.pop()
            shown = d.component.join(components)
            if not shown:
                continue
            label = f"{prefix}-{field}" + (f"({index})" if len(reps) > 1 else "")
            out.append((label, field, _printable(shown)))
    return out


def _printable(text: str) -> str:
    """Line breaks (\\.br\\) and other control characters made visible on one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
