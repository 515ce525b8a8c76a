"""SMART configuration discovery: `.well-known/smart-configuration` (SMART App Launch v2 conformance.html) and the
CapabilityStatement.rest.security it goes with (FHIR R4 capabilitystatement-definitions.html#CapabilityStatement.rest.security).

Only what is true is declared. This server checks access tokens but runs no authorization server: tokens come
from `pulsebridge token` or from an authorization server that signs with the configured secret or keys. So the
fields that describe an authorization server (authorization_endpoint, token_endpoint, grant_types_supported,
code_challenge_methods_supported, token_endpoint_auth_methods_supported, registration_endpoint, jwks_uri) are
absent, and ABSENT_FIELDS says why in the document itself.
"""
from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app

from gateway.fhir.outcome import outcome
from gateway.fhir.representation import fhir_response

# SMART v2 capabilities this server honours (conformance.html#capabilities): v1 and v2 scope syntax, patient- and
# user-level scopes. No launch, client-authentication or SSO capability: those belong to an authorization server.
CAPABILITIES = ("permission-v1", "permission-v2", "permission-patient", "permission-user")
SCOPES_SUPPORTED = (
    "patient/*.rs", "patient/*.cruds", "patient/Observation.rs",
    "user/*.rs", "user/*.cruds", "user/AuditEvent.rs",
    "system/*.rs", "system/*.cruds", "system/Bundle.c", "system/AuditEvent.rs",
)
ABSENT_FIELDS = {
    "authorization_endpoint": "no authorization server runs here; tokens are issued outside (pulsebridge token, or an "
                              "authorization server signing with the configured HS256 secret or JWKS keys)",
    "token_endpoint": "as authorization_endpoint",
    "grant_types_supported": "as authorization_endpoint",
    "code_challenge_methods_supported": "as authorization_endpoint",
    "token_endpoint_auth_methods_supported": "as authorization_endpoint",
    "jwks_uri": "the server verifies tokens; it publishes no signing keys",
}
SMART_SERVICE = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}],
    "text": "OAuth2 bearer JWTs carrying SMART App Launch v2 scopes",
}


def smart_configuration() -> dict:
    """The SMART configuration document for the configured token checks (conformance.html#response)."""
    from gateway.security.access import ACCESS_KEY

    settings = current_app.extensions[ACCESS_KEY]
    algorithms = (["HS256"] if settings.secret else []) + (["RS256", "ES256"] if settings.jwks else [])
    document: dict = {
        "capabilities": list(CAPABILITIES),
        "scopes_supported": list(SCOPES_SUPPORTED),
        "pulsebridge_access_token_algorithms": algorithms,
        "pulsebridge_absent_fields": ABSENT_FIELDS,
    }
    if settings.issuer:
        document["issuer"] = settings.issuer
    return document


def _configuration() -> Response:
    """GET .well-known/smart-configuration: 404 when this server checks no tokens (nothing to discover)."""
    from gateway.security.access import authentication_configured

    if not authentication_configured():
        return fhir_response(outcome("Authentication is not configured on this server (loopback only)", code="not-found"), 404)
    return fhir_response(smart_configuration(), 200, headers={"Content-Type": "application/json"})


def security_element() -> dict:
    """CapabilityStatement.rest.security when tokens are checked (SMART App Launch v2 conformance.html#capability-statement)."""
    return {
        "cors": False,
        "service": [SMART_SERVICE],
        "description": "Bearer JWTs (HS256, RS256, ES256) with SMART App Launch v2 scopes; see .well-known/smart-configuration",
    }


def register(app: Flask) -> None:
    """Serve the configuration at the root and under the FHIR base (both places SMART clients look)."""
    blueprint = Blueprint("smart", __name__)
    blueprint.add_url_rule("/.well-known/smart-configuration", "configuration", _configuration, methods=["GET"])
    blueprint.add_url_rule("/fhir/.well-known/smart-configuration", "fhir_configuration", _configuration, methods=["GET"])
    app.register_blueprint(blueprint)
