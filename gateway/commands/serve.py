"""`pulsebridge serve`: the FHIR API on a production WSGI server (DESIGN.md, external contract)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gateway.address import split_address
from gateway.commands.mllp_options import check_listener, mllp_listener_options
from gateway.commands.options import db_option
from gateway.serve import DEFAULT_HTTP, ServeOptions

if TYPE_CHECKING:
    from gateway.mllp_server import ListenerOptions


def _address(_ctx: click.Context, param: click.Parameter, value: str) -> str:
    if param.name == "mllp" and value.lower() == "off":
        return ""
    try:
        split_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _setting(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--auth-secret / --auth-jwks checked with the parser of the matching setting (gateway.settings)."""
    if not value:
        return None
    from gateway.settings import Settings

    parse = Settings.__dataclass_fields__[str(param.name)].metadata["parse"]
    try:
        return parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option("--http", "http", default=DEFAULT_HTTP, show_default=True, envvar="PULSEBRIDGE_HTTP", callback=_address, help="HOST:PORT of the FHIR API.")
@click.option("--mllp", "mllp", default="127.0.0.1:2575", show_default=True, envvar="PULSEBRIDGE_MLLP", callback=_address, help="HOST:PORT of the MLLP listener, or 'off'.")
@mllp_listener_options
@db_option
@click.option("--workers", type=click.IntRange(1), envvar="PULSEBRIDGE_WORKERS", help="Worker processes [default: one per core].")
@click.option("--watch", "watch", type=click.Path(file_okay=False, dir_okay=True, exists=True, writable=True, readable=True),
              envvar="PULSEBRIDGE_WATCH", help="Ingest each HL7 v2 file dropped in this directory, then move it to processed/ or failed/.")
@click.option("--demo", is_flag=True, envvar="PULSEBRIDGE_DEMO", help="Load the bundled sample messages first (idempotent).")
@click.option("--auth-secret", envvar="PULSEBRIDGE_AUTH_SECRET", callback=_setting,
              help="HS256 secret (32+ bytes) access tokens are signed with; prefer the variable to the option [env PULSEBRIDGE_AUTH_SECRET].")
@click.option("--auth-jwks", envvar="PULSEBRIDGE_AUTH_JWKS", callback=_setting,
              help="JWKS file of RSA/EC public keys for RS256/ES256 access tokens [env PULSEBRIDGE_AUTH_JWKS].")
@click.option("--insecure", is_flag=True, envvar="PULSEBRIDGE_INSECURE",
              help="Allow a non-loopback --http/--mllp with no authentication (never in production).")
def serve(http: str, mllp: str, db: str, workers: int | None, watch: str | None, demo: bool, mllp_listener: ListenerOptions,
          auth_secret: str | None, auth_jwks: str | None, insecure: bool) -> None:
    """Serve the FHIR R4 API (and the listeners other options add) until interrupted."""
    from gateway.serve import UnsafeBind, run, security_notice
    from gateway.settings import SettingsError, load_settings

    try:
        load_settings()  # every PULSEBRIDGE_* variable checked here, before any worker starts
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    if mllp:
        check_listener(mllp_listener, split_address(mllp)[0])
    methods = [name for name, value in (("HS256 secret", auth_secret), (f"JWKS {auth_jwks}", auth_jwks)) if value]
    try:
        notice = security_notice({"--http": http, "--mllp": mllp}, authentication=" and ".join(methods) or None, insecure=insecure)
    except UnsafeBind as exc:
        raise click.UsageError(str(exc)) from None
    for line in notice:
        click.echo(line, err=True)

    options = ServeOptions(http=http, db=db, workers=workers)
    options.settings.update({"AUTH_SECRET": auth_secret or "", "AUTH_JWKS": auth_jwks or ""})
    # Extension point: an option such as --mllp/--watch appends a Service to options.services,
    # --demo appends a start-up task to options.before_start, before run().
    if mllp:
        from gateway.mllp_server import mllp_service

        options.services.append(mllp_service(mllp, mllp_listener))
    if watch:
        from gateway.watch import watch_service

        options.services.append(watch_service(watch))
    if demo:
        from gateway.demo import demo_task

        options.before_start.append(demo_task)
    run(options)
