"""The Flask application factory: settings, the repository, the FHIR API and its error handling (FHIR R4 http.html)."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from gateway import audit_trail
from gateway.fhir.context import REPOSITORY_KEY
from gateway.fhir.outcome import error_outcome, http_status
from gateway.fhir.representation import fhir_response
from gateway.request_guard import refuse_control_characters
from gateway.security import access
from gateway.settings import Settings, positive_int

log = logging.getLogger(__name__)

# Every setting can come from a PULSEBRIDGE_<NAME> environment variable (DESIGN.md).
DEFAULTS: dict[str, Any] = {
    "DB": "sqlite:///pulsebridge.db",
    "PAGE_SIZE": 50,  # default _count of a search or history page
    "MAX_PAGE_SIZE": 1000,  # a larger _count is cut to this (search.html#count)
    "TRUST_PROXY": False,  # honour X-Forwarded-Proto/Host for the base URL of links (only behind a proxy)
}


def create_app(config: dict | None = None) -> Flask:
    """Build the app: DEFAULTS, then PULSEBRIDGE_* environment variables, then `config`.

    `config["REPOSITORY"]` may hand in an open Repository (tests); otherwise `DB` is opened.
    """
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("PULSEBRIDGE")
    app.config.update(config or {})
    # PULSEBRIDGE_MAX_BODY_BYTES: werkzeug refuses a larger request body with 413 before reading it (RFC 9110 15.5.14).
    app.config["MAX_CONTENT_LENGTH"] = positive_int(str(app.config.get("MAX_BODY_BYTES", Settings.max_body_bytes)))
    app.before_request(refuse_control_characters)  # NUL and other C0 characters: 400, never a store error
    app.json.sort_keys = False  # type: ignore[attr-defined]

    repository = app.config.get("REPOSITORY")
    if repository is None:
        from adapters.storage import open_repository

        repository = open_repository(str(app.config["DB"]))
    app.extensions[REPOSITORY_KEY] = repository

    if app.config["TRUST_PROXY"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1, x_port=1)  # type: ignore[method-assign]

    from gateway.fhir.routes import blueprint

    app.register_blueprint(blueprint())
    from gateway import admin, hl7_http

    app.register_blueprint(hl7_http.blueprint())
    app.register_blueprint(admin.blueprint())
    app.add_url_rule("/healthz", "healthz", _healthz, methods=["GET"])
    app.register_error_handler(Exception, _error_response)
    access.install(app)  # bearer tokens and SMART scopes on every route (gateway.security.access)
    audit_trail.install(app)  # an AuditEvent per request (IHE BALP)
    return app


def _healthz() -> Response:
    """Liveness: the process answers; no storage round-trip."""
    return Response(b'{"status":"ok"}', content_type="application/json")


def _error_response(error: Exception) -> Response:
    """Every error as an OperationOutcome with its HTTP status; never an HTML page, never a stack trace."""
    status = http_status(error)
    if status >= 500:
        log.exception("unhandled error in %s", type(error).__name__)
    headers: dict[str, str] = {}
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    if isinstance(error, HTTPException) and error.code in (301, 302, 304, 307, 308):
        return error.get_response()  # type: ignore[return-value]
    return fhir_response(error_outcome(error), status, headers=headers)
