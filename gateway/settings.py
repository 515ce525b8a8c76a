"""Typed settings from PULSEBRIDGE_* environment variables (DESIGN.md: every setting has one).

Each setting is a dataclass field with a default and a parser in its metadata; `Settings.from_env()`
reads `PULSEBRIDGE_<FIELD NAME IN CAPITALS>` for each and fails loudly, naming every bad variable
at once. To add a setting, add one field with `setting(default, parser, help)`.

Times without an offset (HL7 v2 DTM, v2.5 2A.3.22) are read in PULSEBRIDGE_TIMEZONE, default
UTC: a deployment whose senders write local time sets it, e.g. `+08:00` or `Asia/Shanghai`.
"""
from __future__ import annotations

import codecs
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.hl7v2.charset import DEFAULT_FALLBACK
from adapters.hl7v2.er7 import Limits
from gateway.allow_list import AllowList, parse_allow_list

PREFIX = "PULSEBRIDGE_"


class SettingsError(ValueError):
    """One or more PULSEBRIDGE_* variables hold values that cannot be used."""


def positive_int(text: str) -> int:
    """A whole number >= 1; `_` separators and a K/M/G suffix (binary multiples) are allowed."""
    match = re.fullmatch(r"\s*([0-9][0-9_]*)\s*([KMG]i?B?)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"expected a positive whole number (e.g. 1048576 or 16M), got {text!r}")
    value = int(match[1].replace("_", ""))
    suffix = (match[2] or "")[:1].upper()
    value *= {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[suffix]
    if value < 1:
        raise ValueError(f"must be at least 1, got {text!r}")
    return value


def codec_name(text: str) -> str:
    """A Python codec that can decode bytes, e.g. `gb18030`, `latin-1`."""
    try:
        info = codecs.lookup(text.strip())
    except LookupError:
        raise ValueError(f"unknown character set {text!r} (expected a codec name such as gb18030)") from None
    if not getattr(info, "_is_text_encoding", True):
        raise ValueError(f"{text!r} is not a text encoding")
    return info.name


def database_url(text: str) -> str:
    """`sqlite:///path`, `sqlite:///:memory:`, `postgresql://...`, or `memory://` (a throwaway store for tests and demos)."""
    url = text.strip()
    if not re.match(r"^(sqlite:///.+|postgres(ql)?://.*|memory://)$", url):
        raise ValueError(f"expected sqlite:///PATH, postgresql://... or memory://, got {text!r}")
    return url


def positive_seconds(text: str) -> float:
    """A duration in seconds greater than zero, e.g. `30` or `2.5`."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise ValueError(f"must be more than 0 seconds, got {text!r}")
    return value


def language_tag(text: str) -> str:
    """A BCP 47 language tag such as `zh-CN` or `en` (the summaries' narrative language)."""
    value = text.strip()
    if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", value):
        raise ValueError(f"expected a language tag such as zh-CN or en, got {text!r}")
    return value


def time_zone(text: str) -> tzinfo:
    """`UTC`, `Z`, a fixed offset (`+08:00`, `+0800`, `-05`) or an IANA name (`Asia/Shanghai`)."""
    value = text.strip()
    if value.upper() in ("UTC", "Z", "GMT"):
        return timezone.utc
    match = re.fullmatch(r"([+-])(\d{2}):?(\d{2})?", value)
    if match:
        hours, minutes = int(match[2]), int(match[3] or 0)
        if hours > 14 or minutes > 59:
            raise ValueError(f"offset out of range: {text!r}")
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if match[1] == "-" else delta)
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"expected UTC, an offset like +08:00 or a zone like Asia/Shanghai, got {text!r}") from None


def readable_file(text: str) -> str:
    """A path to an existing file (a PEM certificate, key or CA bundle)."""
    path = os.path.expanduser(text.strip())
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise ValueError(f"{text!r} is not a readable file")
    return path


def on_off(text: str) -> bool:
    """`on`/`off` (also true/false, yes/no, 1/0)."""
    value = text.strip().lower()
    if value in ("on", "true", "yes", "1"):
        return True
    if value in ("off", "false", "no", "0"):
        return False
    raise ValueError(f"expected on or off, got {text!r}")


def hs256_secret(text: str) -> str:
    """An HS256 secret of at least 32 bytes (RFC 7518 section 3.2)."""
    from gateway.security.tokens import check_secret

    return check_secret(text.strip())


def jwks_file(text: str) -> str:
    """A readable JWKS file (RFC 7517) holding RSA or EC public keys."""
    from gateway.security.tokens import load_jwks

    path = readable_file(text)
    load_jwks(path)
    return path


def setting(default: Any, parse: Callable[[str], Any], help: str) -> Any:
    """Declare one setting: its default, the parser for its environment text, and what it does."""
    return field(default=default, metadata={"parse": parse, "help": help})


@dataclass(frozen=True)
class Settings:
    """Everything configurable; build with `Settings.from_env()` (or directly in tests)."""

    db: str = setting("sqlite:///pulsebridge.db", database_url, "database URL (sqlite:///... or postgresql://...)")
    max_message_bytes: int = setting(Limits.max_message_bytes, positive_int, "largest HL7 v2 message accepted, in bytes")
    max_segments: int = setting(Limits.max_segments, positive_int, "most segments accepted in one HL7 v2 message")
    fallback_charset: str = setting(
        DEFAULT_FALLBACK, codec_name, "codec for messages with no MSH-18 that are not valid UTF-8 (Chinese HIS send GBK)"
    )
    timezone: tzinfo = setting(timezone.utc, time_zone, "zone for HL7 v2 times sent without an offset")
    strong_identifiers: str = setting(
        "NNCHN", str.strip, "identifiers that name one person across sources: v2 0203 type codes and/or system URIs, comma-separated"
    )
    # Hardening (issue 7): who may connect over MLLP, MLLP over TLS, the largest HTTP request body.
    mllp_allow: AllowList = setting(
        AllowList(), parse_allow_list, "MLLP senders admitted: IPs and CIDR networks, comma-separated (required on a non-loopback bind)"
    )
    mllp_tls_cert: str = setting("", readable_file, "PEM certificate chain of the MLLP listener; set with the key to speak MLLP over TLS")
    mllp_tls_key: str = setting("", readable_file, "PEM private key of the MLLP listener's certificate")
    mllp_tls_client_ca: str = setting("", readable_file, "PEM CA bundle: when set, MLLP clients must present a certificate it signed")
    max_body_bytes: int = setting(16 * 1024**2, positive_int, "largest HTTP request body accepted, in bytes (413 above it)")
    page_size: int = setting(50, positive_int, "default _count of a search, history or $everything page")
    max_page_size: int = setting(1000, positive_int, "largest _count honoured; a larger one is cut to this (search.html#count)")
    trust_proxy: bool = setting(False, on_off, "take the scheme and host of links from X-Forwarded-Proto/Host (only behind a proxy)")
    summary_language: str = setting("en", language_tag, "narrative language of summaries when the request names none (en or zh-CN)")
    mllp_idle_timeout: float = setting(300.0, positive_seconds, "seconds an MLLP connection may stay silent between frames")
    audit: bool = setting(True, on_off, "record an AuditEvent for every FHIR/admin request and every HL7 v2 message (off only for benchmarks)")
    # Authentication (issue 7): bearer JWTs with SMART v2 scopes; with neither secret nor JWKS, serve binds loopback only.
    auth_secret: str = setting("", hs256_secret, "HS256 shared secret (32+ bytes) that access tokens are signed with")
    auth_jwks: str = setting("", jwks_file, "JWKS file of RSA/EC public keys for RS256/ES256 access tokens")
    auth_issuer: str = setting("", str.strip, "when set, access tokens must carry this iss")
    auth_audience: str = setting("", str.strip, "when set, access tokens must carry this aud (e.g. the FHIR base URL)")
    insecure: bool = setting(False, on_off, "serve other hosts without authentication (never in production)")

    def overriding(self, config: Mapping[str, Any]) -> Settings:
        """These settings with the values `config` names by their upper-case field name (create_app's config);
        text is parsed like the environment's, other values are taken as they are. SettingsError lists bad ones."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for f in fields(self):
            value = config.get(f.name.upper())
            if value is None or value == "":
                continue  # unset, as an empty environment variable is
            try:
                values[f.name] = f.metadata["parse"](value) if isinstance(value, str) else value
            except ValueError as exc:
                problems.append(f"{f.name.upper()}: {exc}")
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))
        return replace(self, **values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every PULSEBRIDGE_* variable that is set; SettingsError lists all bad ones."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for f in fields(cls):
            name = env_var(f.name)
            text = env.get(name)
            if text is None or text == "":
                continue
            try:
                values[f.name] = f.metadata["parse"](text)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))
        return cls(**values)

    def limits(self) -> Limits:
        """The ER7 reader's size limits."""
        return Limits(max_message_bytes=self.max_message_bytes, max_segments=self.max_segments)

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(variable, default, help) for each setting, for docs and `--help` texts."""
        return [(env_var(f.name), str(f.default), f.metadata["help"]) for f in fields(cls)]


def env_var(field_name: str) -> str:
    return PREFIX + field_name.upper()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings for this process, from the environment (read on each call; cheap)."""
    return Settings.from_env(environ)


SETTINGS_KEY = "pulsebridge.settings"


def current_settings() -> Settings:
    """The settings of the running Flask app (create_app puts them in app.extensions)."""
    from flask import current_app

    return current_app.extensions[SETTINGS_KEY]
