"""`pulsebridge convert [PATH ...]`: HL7 v2 -> FHIR R4 transaction Bundles as NDJSON (DESIGN.md contract).

One Bundle per message on stdout; files may hold several messages (and FHS/BHS batches);
`-` (or no PATH) reads stdin. Failures go to stderr naming the file, message index, control id,
segment/field and reason; exit 1 if any message failed, 2 on usage errors (click's default).
"""
from __future__ import annotations

import sys
from typing import IO, Any

import click


@click.command("convert")
@click.argument("paths", nargs=-1, type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--pretty", is_flag=True, help="Indent each Bundle (one JSON document per message).")
@click.option(
    "--unmapped",
    "unmapped",
    type=click.Path(allow_dash=True, dir_okay=False, writable=True),
    default=None,
    help="Write the unmapped-data report (NDJSON, one line per message) to this file; '-' for stderr.",
)
def convert(paths: tuple[str, ...], pretty: bool, unmapped: str | None) -> None:
    """Convert HL7 v2 messages (files or stdin) to FHIR R4 transaction Bundles, one per line."""
    import orjson

    from adapters.hl7v2 import parse
    from adapters.hl7v2.batch import split_messages
    from adapters.hl7v2.errors import HL7Error
    from gateway.settings import SettingsError, load_settings
    from mappers import convert_message

    try:
        zone = load_settings().timezone
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    option = orjson.OPT_INDENT_2 if pretty else 0
    out = sys.stdout.buffer
    report_stream: IO[bytes] | None = None
    if unmapped == "-":
        report_stream = sys.stderr.buffer
    elif unmapped:
        report_stream = open(unmapped, "wb")  # noqa: SIM115 - closed below
    failed = 0
    try:
        for path in paths or ("-",):
            name = "<stdin>" if path == "-" else path
            try:
                data = sys.stdin.buffer.read() if path == "-" else _read(path)
            except OSError as exc:
                click.echo(f"{name}: cannot read: {exc.strerror}", err=True)
                failed += 1
                continue
            for record in split_messages(data):  # its messages; no size limit here, so none is refused
                control_id = ""
                try:
                    message = parse(record.payload)
                    control_id = message.control_id
                    bundle, report = convert_message(message, record.payload, zone=zone)
                except HL7Error as exc:
                    where = f", at {exc.location}" if exc.location is not None and exc.location.segment else ""
                    click.echo(f"{name}: message {record.index + 1} (control id {control_id or '?'}){where}: {exc.reason}", err=True)
                    failed += 1
                    continue
                out.write(orjson.dumps(bundle, option=option) + b"\n")
                if report_stream is not None:
                    item: dict[str, Any] = {"file": name, "message": record.index + 1, "control_id": control_id, **report.as_dict()}
                    report_stream.write(orjson.dumps(item) + b"\n")
        out.flush()
    finally:
        if report_stream is not None and report_stream is not sys.stderr.buffer:
            report_stream.close()
    if failed:
        sys.exit(1)


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()
