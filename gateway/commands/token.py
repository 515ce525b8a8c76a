"""`pulsebridge token`: mint an HS256 access token with SMART v2 scopes from the server's own configuration (for operations and tests)."""
from __future__ import annotations

import re

import click

from gateway.security.scopes import ScopeError, parse_scopes

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_LIFETIME = 366 * 86400


def parse_duration(text: str) -> int:
    """`90`, `90s`, `15m`, `1h`, `7d` -> seconds (1 second to a year)."""
    match = _DURATION.match(text.lower())
    if not match:
        raise ValueError(f"expected a duration such as 900s, 15m, 1h or 7d, got {text!r}")
    seconds = int(match[1]) * _SECONDS[match[2]]
    if not 0 < seconds <= MAX_LIFETIME:
        raise ValueError(f"a token lives from 1 second to {MAX_LIFETIME // 86400} days, got {text!r}")
    return seconds


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option("--scope", "scope", required=True,
              help="Space-separated SMART scopes, e.g. 'patient/*.rs' or 'system/*.cruds' (v1 .read/.write/.* also accepted).")
@click.option("--patient", help="The patient id patient/ scopes are bound to (the token's patient claim).")
@click.option("--subject", default="pulsebridge-cli", show_default=True, help="The token's sub: who the caller is.")
@click.option("--expires", "expires", default="1h", show_default=True, callback=_duration, help="Lifetime: 900s, 15m, 1h, 7d.")
@click.option("--auth-secret", envvar="PULSEBRIDGE_AUTH_SECRET", help="HS256 secret the server checks with [env PULSEBRIDGE_AUTH_SECRET].")
def token(scope: str, patient: str | None, subject: str, expires: int, auth_secret: str | None) -> None:
    """Print an HS256 access token (JWT) for the scopes given, signed with the server's secret."""
    from gateway.security.tokens import TokenSettings, check_secret, mint
    from gateway.settings import load_settings

    try:
        granted = parse_scopes(scope)
    except ScopeError as exc:
        raise click.BadParameter(str(exc), param_hint="--scope") from None
    if not granted:
        raise click.BadParameter(f"{scope!r} holds no resource scope (context/Type.permissions)", param_hint="--scope")
    if any(item.context == "patient" for item in granted) and not patient:
        raise click.UsageError("patient/ scopes need --patient ID: the record the token is bound to")
    if not auth_secret:
        raise click.UsageError("no secret: set PULSEBRIDGE_AUTH_SECRET or pass --auth-secret (the one `serve` checks with)")
    try:
        check_secret(auth_secret)
        settings = load_settings()
    except ValueError as exc:  # a short secret, or another PULSEBRIDGE_* variable that is unusable
        raise click.UsageError(str(exc)) from None
    token_settings = TokenSettings(auth_secret, None, settings.auth_issuer or None, settings.auth_audience or None)
    click.echo(mint(token_settings, " ".join(scope.split()), subject=subject, patient=patient, expires_in=expires))
