"""`pulsebridge token`, the serve start-up check on binds and authentication, and the auth settings (gateway.commands.token,
gateway.serve.security_notice, gateway.settings)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.commands.token import parse_duration
from gateway.security.tokens import TokenSettings, verify
from gateway.serve import UnsafeBind, security_notice
from gateway.settings import Settings, SettingsError
from tests.gateway.auth_records import SECRET, SETTINGS


def _token(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["token", *args], env={"PULSEBRIDGE_AUTH_SECRET": SECRET, **(env or {})})
    return result.exit_code, result.output.strip()


def test_token_prints_a_jwt_the_server_accepts() -> None:
    code, output = _token("--scope", "patient/*.rs  launch/patient", "--patient", "pat-a", "--subject", "app-1", "--expires", "15m")
    assert code == 0
    claims = verify(output, SETTINGS)
    assert (claims["sub"], claims["patient"], claims["scope"]) == ("app-1", "pat-a", "patient/*.rs launch/patient")
    assert claims["exp"] - claims["iat"] == 900


def test_token_carries_the_configured_issuer_and_audience() -> None:
    code, output = _token("--scope", "system/*.cruds", env={"PULSEBRIDGE_AUTH_ISSUER": "https://gw.example", "PULSEBRIDGE_AUTH_AUDIENCE": "fhir"})
    assert code == 0
    assert verify(output, TokenSettings(SECRET, issuer="https://gw.example", audience="fhir"))["iss"] == "https://gw.example"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--scope", "patient/*.rs"), {}, "need --patient"),
        (("--scope", "user/*.rx"), {}, "permissions"),
        (("--scope", "openid"), {}, "no resource scope"),
        (("--scope", "user/*.rs", "--expires", "forever"), {}, "duration"),
        (("--scope", "user/*.rs"), {"PULSEBRIDGE_AUTH_SECRET": ""}, "no secret"),
        (("--scope", "user/*.rs"), {"PULSEBRIDGE_AUTH_SECRET": "short"}, "32 bytes"),
    ],
)
def test_token_usage_errors(args: tuple[str, ...], env: dict[str, str], message: str) -> None:
    code, output = _token(*args, env=env)
    assert code == 2 and message in output


def test_durations() -> None:
    assert [parse_duration(text) for text in ("90", "90s", "15m", "1h", "7d")] == [90, 90, 900, 3600, 604800]
    with pytest.raises(ValueError, match="1 second"):
        parse_duration("0s")
    with pytest.raises(ValueError, match="366 days"):
        parse_duration("400d")


def test_loopback_without_authentication_starts_and_says_so() -> None:
    lines = security_notice({"--http": "127.0.0.1:8080", "--mllp": "[::1]:2575"}, authentication=None, insecure=False)
    assert lines == ["authentication: off; listening on loopback only (set --auth-secret or --auth-jwks to serve other hosts)"]


def test_other_hosts_need_authentication_or_insecure() -> None:
    with pytest.raises(UnsafeBind, match="--http 0.0.0.0:8080"):
        security_notice({"--http": "0.0.0.0:8080", "--mllp": ""}, authentication=None, insecure=False)
    with pytest.raises(UnsafeBind, match="--mllp 10.1.2.3:2575"):
        security_notice({"--http": "localhost:8080", "--mllp": "10.1.2.3:2575"}, authentication=None, insecure=False)
    warned = security_notice({"--http": "0.0.0.0:8080", "--mllp": ""}, authentication=None, insecure=True)
    assert warned[0].startswith("WARNING: authentication is off")
    on = security_notice({"--http": "0.0.0.0:8080", "--mllp": "0.0.0.0:2575"}, authentication="HS256 secret", insecure=False)
    assert on[0].startswith("authentication: on (HS256 secret)") and "MLLP on 0.0.0.0:2575 carries no token" in on[1]


def test_serve_checks_the_secret_before_starting() -> None:
    result = CliRunner().invoke(main, ["serve", "--auth-secret", "too-short"])
    assert result.exit_code == 2 and "32 bytes" in result.output
    result = CliRunner().invoke(main, ["serve", "--http", "0.0.0.0:8080", "--mllp", "off"], env={"PULSEBRIDGE_AUTH_SECRET": ""})
    assert result.exit_code == 2 and "--insecure" in result.output


def test_auth_settings_come_from_the_environment() -> None:
    settings = Settings.from_env({"PULSEBRIDGE_AUTH_SECRET": SECRET, "PULSEBRIDGE_AUTH_ISSUER": " https://gw ", "PULSEBRIDGE_INSECURE": "yes"})
    assert (settings.auth_secret, settings.auth_issuer, settings.insecure) == (SECRET, "https://gw", True)
    with pytest.raises(SettingsError, match="PULSEBRIDGE_AUTH_SECRET.*32 bytes.*PULSEBRIDGE_AUTH_JWKS"):
        Settings.from_env({"PULSEBRIDGE_AUTH_SECRET": "x", "PULSEBRIDGE_AUTH_JWKS": "/no/such/file"})
