"""Settings from PULSEBRIDGE_* environment variables (DESIGN.md), failing loudly on bad values."""
from __future__ import annotations

from datetime import timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from adapters.hl7v2.er7 import Limits
from gateway.settings import Settings, SettingsError, load_settings


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.db == "sqlite:///pulsebridge.db"
    assert s.max_message_bytes == 16 * 1024 * 1024
    assert s.max_segments == 100_000
    assert s.fallback_charset == "gb18030"
    assert s.timezone == timezone.utc
    assert s.limits() == Limits(16 * 1024 * 1024, 100_000)


def test_values_from_environment() -> None:
    s = Settings.from_env(
        {
            "PULSEBRIDGE_DB": "postgresql://127.0.0.1:5432/test",
            "PULSEBRIDGE_MAX_MESSAGE_BYTES": "2M",
            "PULSEBRIDGE_MAX_SEGMENTS": "5_000",
            "PULSEBRIDGE_FALLBACK_CHARSET": "GBK",
            "PULSEBRIDGE_TIMEZONE": "+08:00",
            "UNRELATED": "x",
        }
    )
    assert s.db == "postgresql://127.0.0.1:5432/test"
    assert s.max_message_bytes == 2 * 1024 * 1024
    assert s.max_segments == 5000
    assert s.fallback_charset == "gbk"
    assert s.timezone == timezone(timedelta(hours=8))
    assert s.limits() == Limits(2 * 1024 * 1024, 5000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("UTC", timezone.utc),
        ("Z", timezone.utc),
        ("+0800", timezone(timedelta(hours=8))),
        ("-05", timezone(timedelta(hours=-5))),
        ("+05:30", timezone(timedelta(hours=5, minutes=30))),
        ("Asia/Shanghai", ZoneInfo("Asia/Shanghai")),
    ],
)
def test_timezones(text: str, expected: object) -> None:
    assert Settings.from_env({"PULSEBRIDGE_TIMEZONE": text}).timezone == expected


def test_empty_variable_means_default() -> None:
    assert Settings.from_env({"PULSEBRIDGE_MAX_SEGMENTS": ""}).max_segments == 100_000


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PULSEBRIDGE_MAX_MESSAGE_BYTES", "lots"),
        ("PULSEBRIDGE_MAX_MESSAGE_BYTES", "0"),
        ("PULSEBRIDGE_MAX_SEGMENTS", "-3"),
        ("PULSEBRIDGE_MAX_SEGMENTS", "1.5"),
        ("PULSEBRIDGE_FALLBACK_CHARSET", "klingon"),
        ("PULSEBRIDGE_FALLBACK_CHARSET", "base64"),
        ("PULSEBRIDGE_DB", "mysql://x"),
        ("PULSEBRIDGE_TIMEZONE", "+25:00"),
        ("PULSEBRIDGE_TIMEZONE", "Mars/Olympus"),
    ],
)
def test_bad_values_fail_loudly_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"PULSEBRIDGE_MAX_SEGMENTS": "x", "PULSEBRIDGE_DB": "y"})
    assert "PULSEBRIDGE_MAX_SEGMENTS" in str(info.value) and "PULSEBRIDGE_DB" in str(info.value)


def test_describe_lists_every_setting() -> None:
    names = [name for name, _, _ in Settings.describe()]
    assert names == [
        "PULSEBRIDGE_DB",
        "PULSEBRIDGE_MAX_MESSAGE_BYTES",
        "PULSEBRIDGE_MAX_SEGMENTS",
        "PULSEBRIDGE_FALLBACK_CHARSET",
        "PULSEBRIDGE_TIMEZONE",
        "PULSEBRIDGE_STRONG_IDENTIFIERS",
        "PULSEBRIDGE_MLLP_ALLOW",
        "PULSEBRIDGE_MLLP_TLS_CERT",
        "PULSEBRIDGE_MLLP_TLS_KEY",
        "PULSEBRIDGE_MLLP_TLS_CLIENT_CA",
        "PULSEBRIDGE_MAX_BODY_BYTES",
        "PULSEBRIDGE_PAGE_SIZE",
        "PULSEBRIDGE_MAX_PAGE_SIZE",
        "PULSEBRIDGE_TRUST_PROXY",
        "PULSEBRIDGE_SUMMARY_LANGUAGE",
        "PULSEBRIDGE_MLLP_IDLE_TIMEOUT",
        "PULSEBRIDGE_AUDIT",
        "PULSEBRIDGE_AUTH_SECRET",
        "PULSEBRIDGE_AUTH_JWKS",
        "PULSEBRIDGE_AUTH_ISSUER",
        "PULSEBRIDGE_AUTH_AUDIENCE",
        "PULSEBRIDGE_INSECURE",
    ]


def test_load_settings_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSEBRIDGE_MAX_SEGMENTS", "42")
    assert load_settings().max_segments == 42
