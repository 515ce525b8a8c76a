"""The Flask application factory: settings, the repository, the FHIR API and its error handling (FHIR R4 http.html)."""
from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from gateway import audit_trail
from gateway.fhir.context import REPOSITORY_KEY, STORE_KEY
from gateway.fhir.outcome import error_outcome, http_status
from gateway.fhir.representation import fhir_response
from gateway.request_guard import refuse_control_characters
from gateway.security import access
from gateway.settings import SETTINGS_KEY, Settings

log = logging.getLogger(__name__)


def create_app(config: dict | None = None) -> Flask:
    """Build the app from the settings (PULSEBRIDGE_* variables, gateway.settings), overridden by `config`.

    `config` names settings by their upper-case field name (`DB`, `PAGE_SIZE`, `AUTH_SECRET` ...);
    `config["REPOSITORY"]` may hand in an open Repository (tests); otherwise the `db` setting is opened.
    """
    config = dict(config or {})
    settings = Settings.from_env().overriding(config)
    app = Flask(__name__)
    app.config.update(config)
    app.extensions[SETTINGS_KEY] = settings
    # werkzeug refuses a larger request body with 413 before reading it (RFC 9110 15.5.14).
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.before_request(refuse_control_characters)  # NUL and other C0 characters: 400, never a store error
    app.json.sort_keys = False  # type: ignore[attr-defined]

    repository = app.config.get("REPOSITORY")
    if repository is None:
        from adapters.storage import open_repository

        repository = open_repository(settings.db)
    app.extensions[REPOSITORY_KEY] = app.extensions[STORE_KEY] = repository

    if settings.trust_proxy:
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
