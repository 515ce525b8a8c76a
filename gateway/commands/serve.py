"""`pulsebridge serve`: the FHIR API on a production WSGI server (DESIGN.md, external contract)."""
from __future__ import annotations

import click

from gateway.address import split_address
from gateway.commands.options import db_option
from gateway.serve import DEFAULT_HTTP, ServeOptions


def _address(_ctx: click.Context, param: click.Parameter, value: str) -> str:
    if param.name == "mllp" and value.lower() == "off":
        return ""
    try:
        split_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@click.command()
@click.option("--http", "http", default=DEFAULT_HTTP, show_default=True, envvar="PULSEBRIDGE_HTTP", callback=_address, help="HOST:PORT of the FHIR API.")
@click.option("--mllp", "mllp", default="127.0.0.1:2575", show_default=True, envvar="PULSEBRIDGE_MLLP", callback=_address, help="HOST:PORT of the MLLP listener, or 'off'.")
@db_option
@click.option("--workers", type=click.IntRange(1), envvar="PULSEBRIDGE_WORKERS", help="Worker processes [default: one per core].")
@click.option("--watch", "watch", type=click.Path(file_okay=False, dir_okay=True, exists=True, writable=True, readable=True),
              envvar="PULSEBRIDGE_WATCH", help="Ingest each HL7 v2 file dropped in this directory, then move it to processed/ or failed/.")
@click.option("--demo", is_flag=True, envvar="PULSEBRIDGE_DEMO", help="Load the bundled sample messages first (idempotent).")
def serve(http: str, mllp: str, db: str, workers: int | None, watch: str | None, demo: bool) -> None:
    """Serve the FHIR R4 API (and the listeners other options add) until interrupted."""
    from gateway.serve import run

    options = ServeOptions(http=http, db=db, workers=workers)
    # Extension point: an option such as --mllp/--watch appends a Service to options.services,
    # --demo appends a start-up task to options.before_start, before run().
    if mllp:
        from gateway.mllp_server import mllp_service

        options.services.append(mllp_service(mllp))
    if watch:
        from gateway.watch import watch_service

        options.services.append(watch_service(watch))
    if demo:
        from gateway.demo import demo_task

        options.before_start.append(demo_task)
    run(options)
