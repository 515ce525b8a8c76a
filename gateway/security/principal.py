"""Who is making the current request: the authenticated caller the access rules and the audit trail share.

The access layer sets `flask.g.principal` before any handler runs; the audit trail reads it after.
With no authentication configured (loopback only) the caller is `ANONYMOUS_LOCAL`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import g, has_request_context, request


@dataclass(frozen=True)
class Principal:
    """An authenticated caller (SMART App Launch v2 access token claims, RFC 7519 sub/client_id)."""

    subject: str  # the token's `sub` (a user or a system), or "anonymous"
    client_id: str | None = None  # the token's `client_id`/`azp`, when present
    scopes: tuple[str, ...] = ()  # the granted SMART scopes, as written in the token
    patient: str | None = None  # the `patient` claim: the record a patient/ scope is bound to
    address: str | None = None  # the network address the request came from
    authenticated: bool = False  # False when no authentication is configured
    claims: dict = field(default_factory=dict, compare=False, repr=False)


ANONYMOUS_LOCAL = Principal(subject="anonymous", scopes=("system/*.cruds",), authenticated=False)


def current_principal() -> Principal | None:
    """The caller of the current request, or None outside a request or before authentication ran."""
    if not has_request_context():
        return None
    return g.get("principal")


def remote_address() -> str | None:
    """The client address of the current request (after ProxyFix when PULSEBRIDGE_TRUST_PROXY is set)."""
    return request.remote_addr if has_request_context() else None
