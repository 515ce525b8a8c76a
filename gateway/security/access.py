"""Authentication and SMART scope enforcement on every route (SMART App Launch v2 scopes-and-launch-context.html,
RFC 6750 bearer tokens, FHIR R4 security.html).

`install(app)` adds a before_request hook that sets `g.principal` for every request, answers 401 (with
`WWW-Authenticate: Bearer`) without a valid token and 403 when no scope allows the request, each with an
OperationOutcome. The FHIR routes need the SMART letter of their interaction (INTERACTION_LETTERS) on their
resource type; POST /hl7/v2 and /admin need system/ rights (ENDPOINT_REQUIREMENTS).

Patient binding: while a FHIR handler runs, the app's repository is a `ConfinedRepository`
(gateway.security.confinement), and every resource in the handler's JSON answer is checked again.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import replace
from typing import Any, Callable

from flask import Flask, Response, current_app, g, request

from adapters.storage.base import Repository
from gateway.fhir.context import REPOSITORY_KEY, STORE_KEY
from gateway.fhir.outcome import outcome
from gateway.fhir.representation import fhir_response
from gateway.fhir.routes import ROUTES, Route
from gateway.security.confinement import ConfinedRepository, Guard, last_line
from gateway.security.principal import ANONYMOUS_LOCAL, Principal
from gateway.security.scopes import SYSTEM_HISTORY, Grants, Requirement, ScopeError, parse_scopes
from gateway.security.tokens import InvalidToken, TokenSettings, check_secret, load_jwks, verify
from gateway.settings import SETTINGS_KEY, Settings

log = logging.getLogger(__name__)

ACCESS_KEY = "pulsebridge.access"
REALM = "pulsebridge"
# R4 restful interactions -> the SMART v2 permission letter they need (scopes-and-launch-context.html#scopes-for-requesting-fhir-resources).
INTERACTION_LETTERS = {
    "read": "r", "vread": "r", "history-instance": "r",
    "search-type": "s", "history-type": "s", "history-system": "s",
    "create": "c", "update": "u", "delete": "d",
}
OPERATION_LETTER = "r"  # $everything, $summary: read operations on the instance they name
# Endpoints that answer without a token: liveness, the CapabilityStatement and the SMART configuration (SMART v2 conformance).
OPEN_ENDPOINTS = frozenset({"healthz", "smart.configuration", "smart.fhir_configuration"})


# Blueprints outside the FHIR API, by name: an HL7 v2 message becomes a transaction Bundle, so ingest needs
# system/ rights to create a Bundle (system/Bundle.c, system/*.c, system/*.cu ...); the admin endpoints show raw
# messages (PHI) and replay them, so they need every right on every type (system/*.cruds or v1 system/*.*).
ENDPOINT_REQUIREMENTS = {
    "hl7v2": Requirement("Bundle", "c", ("system",)),
    "admin": Requirement("*", "cruds", ("system",)),
}


# --- configuration ----------------------------------------------------------------------------


def token_settings(settings: Settings) -> TokenSettings:
    """The auth_* settings (PULSEBRIDGE_AUTH_SECRET, _JWKS, _ISSUER, _AUDIENCE) as token checks; ValueError when unusable."""
    tokens = TokenSettings(settings.auth_secret or None, settings.auth_jwks or None, settings.auth_issuer or None, settings.auth_audience or None)
    if tokens.secret:
        check_secret(tokens.secret)
    if tokens.jwks:
        load_jwks(tokens.jwks)
    return tokens


def authentication_configured() -> bool:
    """Whether the current app checks bearer tokens (a secret or a JWKS is configured)."""
    settings = current_app.extensions.get(ACCESS_KEY)
    return bool(settings and settings.configured)


def install(app: Flask) -> None:
    """Authenticate and authorise every request of `app`; call after every blueprint is registered."""
    from gateway.security import smart

    settings = token_settings(app.extensions[SETTINGS_KEY])
    app.extensions[ACCESS_KEY] = settings
    smart.register(app)
    app.before_request(_authorise)
    if not settings.configured:
        return  # loopback only (pulsebridge serve refuses anything else): the caller is ANONYMOUS_LOCAL
    store = app.extensions[STORE_KEY]  # ingest and the audit trail keep writing to the store itself
    app.extensions[REPOSITORY_KEY] = ConfinedRepository(store)
    routes = {route.handler: route for route in ROUTES}
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        if rule.endpoint.startswith("fhir.") and view in routes:
            app.view_functions[rule.endpoint] = _guarded(view, routes[view], store)


# --- authentication ---------------------------------------------------------------------------


def _unauthenticated(subject: str = "unknown") -> Principal:
    return Principal(subject=subject, address=request.remote_addr, authenticated=False)


def bearer_token() -> str | None:
    """The token of `Authorization: Bearer <token>` (RFC 6750 section 2.1), or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def principal_from(claims: dict[str, Any]) -> Principal:
    """The caller a verified token names (sub, client_id/azp, scope, patient claims of SMART v2 access tokens)."""
    scope = claims.get("scope", "")
    if isinstance(scope, list):
        scope = " ".join(str(item) for item in scope)
    if not isinstance(scope, str):
        raise InvalidToken("the scope claim is not a string of space-separated scopes")
    try:
        parse_scopes(scope)
    except ScopeError as error:
        raise InvalidToken(str(error)) from None
    client = claims.get("client_id") or claims.get("azp")
    patient = claims.get("patient")
    return Principal(
        subject=str(claims.get("sub") or client or "token"),
        client_id=str(client) if client else None,
        scopes=tuple(scope.split()),
        patient=str(patient) if patient else None,
        address=request.remote_addr,
        authenticated=True,
        claims=claims,
    )


def grants_of(principal: Principal) -> Grants:
    """The token's resource scopes; patient/ scopes grant nothing without a patient claim to bind them to."""
    scopes = parse_scopes(" ".join(principal.scopes))
    if principal.patient is None:
        scopes = tuple(scope for scope in scopes if scope.context != "patient")
    return Grants(scopes)


def _challenge(status: int, message: str, *, error: str | None = None, scope: str | None = None) -> Response:
    """401/403 with `WWW-Authenticate: Bearer` (RFC 6750 section 3) and an OperationOutcome (login / forbidden)."""
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
        parts.append('error_description="{}"'.format(message.replace('"', "'")))
    if scope:
        parts.append(f'scope="{scope}"')
    code = "login" if status == 401 else "forbidden"
    return fhir_response(outcome(message, code=code), status, headers={"WWW-Authenticate": "Bearer " + ", ".join(parts)})


def _authorise() -> Response | None:
    """before_request: set g.principal, then 401/403 or let the request through."""
    settings: TokenSettings = current_app.extensions[ACCESS_KEY]
    if not settings.configured:
        g.principal = replace(ANONYMOUS_LOCAL, address=request.remote_addr)
        return None
    token = bearer_token()
    g.principal = _unauthenticated()  # until a token proves otherwise; what the audit trail sees on a 401
    if _is_open():
        if token is None:
            g.principal = _unauthenticated("anonymous")
        else:
            try:
                g.principal = principal_from(verify(token, settings))
            except InvalidToken:
                pass  # an open endpoint answers anyway; the audit trail sees an unknown caller
        return None
    if token is None:
        return _challenge(401, "This server needs a bearer token (Authorization: Bearer <JWT>)")
    try:
        g.principal = principal_from(verify(token, settings))
    except InvalidToken as error:
        return _challenge(401, f"Invalid bearer token: {error}", error="invalid_token")
    requirement = _requirement()
    if requirement is None:
        return None
    grants = grants_of(g.principal)
    if requirement.met_by(grants):
        return None
    restricted = grants.restricted(requirement.resource_type, requirement.letters[0])
    message = f"The token's scopes do not allow this request; one of these would: {requirement.describe()}"
    if restricted is not None:
        message += f"; scope {restricted.text!r} has a query restriction, which this server does not honour"
    return _challenge(403, message, error="insufficient_scope", scope=requirement.describe())


def _is_open() -> bool:
    """Liveness, the SMART configuration and the CapabilityStatement (a FHIR route with no interaction) need no token."""
    if request.endpoint in OPEN_ENDPOINTS:
        return True
    route = _route()
    return route is not None and route.operation is None and not route.interactions


def _route() -> Route | None:
    """The FHIR route of the current request (its guarded handler carries it)."""
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "access_route", None)


def _requirement() -> Requirement | None:
    """What the current request needs; None when the handler checks it itself (transaction entries) or nothing matched (404/405)."""
    if request.url_rule is None:
        return None
    blueprint = request.blueprint
    if blueprint in ENDPOINT_REQUIREMENTS:
        return ENDPOINT_REQUIREMENTS[blueprint]
    route = _route()
    if route is None:
        # An endpoint with no rule here is refused: a new blueprint must say what it needs (secure by default).
        return Requirement("*", "cruds", ("system",))
    if route.operation is not None:
        return Requirement(route.operation.resource_type, OPERATION_LETTER)
    letters = "".join(INTERACTION_LETTERS[code] for code in route.interactions if code in INTERACTION_LETTERS)
    if not letters:
        return None  # transaction/batch: every entry is checked by ConfinedRepository.transaction
    if "history-system" in route.interactions:
        return SYSTEM_HISTORY
    resource_type = (request.view_args or {}).get("resource_type", "*")
    return Requirement(resource_type, letters[0])


# --- guarded FHIR handlers and the last-line check ---------------------------------------------



def _guarded(view: Callable[..., Response], route: Route, store: Repository) -> Callable[..., Response]:
    """The handler with the caller's Guard in place while it runs, and every resource it answers with checked."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Response:
        principal: Principal | None = g.get("principal")
        if principal is None or not principal.authenticated:
            return view(*args, **kwargs)  # an open endpoint (metadata) answered without a token
        guard = Guard(grants_of(principal), principal.patient, store)
        g.access_guard = guard
        try:
            response = view(*args, **kwargs)
        finally:
            g.pop("access_guard", None)
        return last_line(response, guard)

    guarded.access_route = route  # type: ignore[attr-defined]
    return guarded
