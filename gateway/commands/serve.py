"""`pulsebridge serve`: the FHIR API on a production WSGI server (DESIGN.md, external contract)."""
from __future__ import annotations

import click

from gateway.serve import DEFAULT_HTTP, ServeOptions


def _address(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"{value!r} is not HOST:PORT")
    return value


@click.command()
@click.option("--http", "http", default=DEFAULT_HTTP, show_default=True, envvar="PULSEBRIDGE_HTTP", callback=_address, help="HOST:PORT of the FHIR API.")
@click.option("--db", default="sqlite:///pulsebridge.db", show_default=True, envvar="PULSEBRIDGE_DB", help="sqlite:///PATH or postgresql://...")
@click.option("--workers", type=click.IntRange(1), envvar="PULSEBRIDGE_WORKERS", help="Worker processes [default: one per core].")
def serve(http: str, db: str, workers: int | None) -> None:
    """Serve the FHIR R4 API (and the listeners other options add) until interrupted."""
    from gateway.serve import run

    options = ServeOptions(http=http, db=db, workers=workers)
    # Extension point: an option such as --mllp/--watch appends a Service to options.services,
    # --demo appends a start-up task to options.before_start, before run().
    run(options)
