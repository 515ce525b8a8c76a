"""`serve` options for the MLLP listener's allow-list and TLS; each also read from its PULSEBRIDGE_* variable."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from gateway.allow_list import parse_allow_list

if TYPE_CHECKING:
    from gateway.mllp_server import ListenerOptions

_FILE = click.Path(exists=True, dir_okay=False, readable=True)


def _allow_list(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    try:
        return parse_allow_list(value or "")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def mllp_listener_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add --mllp-allow/--mllp-tls-cert/--mllp-tls-key/--mllp-tls-client-ca, handed on as one `mllp_listener` argument."""

    @click.option("--mllp-allow", envvar="PULSEBRIDGE_MLLP_ALLOW", callback=_allow_list,
                  help="MLLP senders admitted: IPs and CIDR networks, comma-separated [required when --mllp is not loopback].")
    @click.option("--mllp-tls-cert", envvar="PULSEBRIDGE_MLLP_TLS_CERT", type=_FILE, help="PEM certificate chain: MLLP over TLS.")
    @click.option("--mllp-tls-key", envvar="PULSEBRIDGE_MLLP_TLS_KEY", type=_FILE, help="PEM private key of that certificate.")
    @click.option("--mllp-tls-client-ca", envvar="PULSEBRIDGE_MLLP_TLS_CLIENT_CA", type=_FILE,
                  help="PEM CA bundle: MLLP clients must present a certificate it signed.")
    @functools.wraps(command)
    def wrapper(*args: Any, mllp_allow: Any, mllp_tls_cert: str | None, mllp_tls_key: str | None,
                mllp_tls_client_ca: str | None, **kwargs: Any) -> None:
        from gateway.mllp_server import ListenerOptions

        listener = ListenerOptions(allow=mllp_allow, tls_cert=mllp_tls_cert or "", tls_key=mllp_tls_key or "",
                                   tls_client_ca=mllp_tls_client_ca or "")
        return command(*args, mllp_listener=listener, **kwargs)

    return wrapper


def check_listener(listener: ListenerOptions, host: str) -> None:
    """The listener's own checks (exposed bind without allow-list, unusable TLS files) as a usage error, before anything starts."""
    try:
        listener.check(host)
    except (ValueError, OSError) as exc:  # ssl.SSLError is an OSError
        raise click.UsageError(f"MLLP listener: {exc}") from None
