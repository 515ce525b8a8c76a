"""Bearer access tokens: JWT verification and minting (RFC 7519, RFC 7515; SMART App Launch v2 access tokens).

HS256 tokens are checked with the configured shared secret; RS256 and ES256 tokens with the public keys
of a JWKS file (RFC 7517), chosen by `kid` (a set of one key may omit it). The algorithm a token names
must belong to a configured key of the matching kind: `alg: none` and HS256 signed with a public key
(algorithm confusion) are refused. `exp` is required; `exp`/`nbf` are checked with a small leeway, and
`iss`/`aud` when configured.
"""
from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jwt import PyJWK

HS256 = "HS256"
# Asymmetric algorithms -> the JWK key type (RFC 7518 section 6.1) a key must have to verify them.
PUBLIC_KEY_ALGORITHMS = {"RS256": "RSA", "ES256": "EC"}
LEEWAY_SECONDS = 30  # clock skew allowed on exp/nbf (RFC 7519 section 4.1.4)
MIN_SECRET_BYTES = 32  # RFC 7518 section 3.2: an HS256 key at least as long as the hash output


class InvalidToken(ValueError):
    """A bearer token that cannot be accepted; the message says why (RFC 6750 section 3.1 error_description)."""


@dataclass(frozen=True)
class TokenSettings:
    """How tokens are checked: an HS256 secret and/or a JWKS file of public keys, optional issuer and audience."""

    secret: str | None = None
    jwks: str | None = None  # path of a JWKS file
    issuer: str | None = None
    audience: str | None = None

    @property
    def configured(self) -> bool:
        """Whether tokens are checked at all (a secret or a JWKS file is set)."""
        return bool(self.secret or self.jwks)


def check_secret(secret: str) -> str:
    """An HS256 secret of at least 32 bytes (RFC 7518 section 3.2)."""
    if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise ValueError(f"an HS256 secret needs at least {MIN_SECRET_BYTES} bytes (RFC 7518 section 3.2)")
    return secret


def load_jwks(path: str) -> tuple[PyJWK, ...]:
    """The RSA and EC public keys of a JWKS file (RFC 7517 section 5); ValueError naming the problem."""
    file = Path(path)
    try:
        stamp = file.stat().st_mtime_ns
    except OSError as error:
        raise ValueError(f"JWKS file {path!r} cannot be read: {error.strerror}") from None
    return _jwks(str(file), stamp)


@lru_cache(maxsize=8)  # keyed by path and modification time, so a replaced file is read again
def _jwks(path: str, _stamp: int) -> tuple[PyJWK, ...]:
    import jwt  # PyJWT and cryptography load only where tokens are checked: serve starts faster without them

    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"JWKS file {path!r} is not JSON: {error}") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"JWKS file {path!r} has no \"keys\" list (RFC 7517 section 5)")
    keys = []
    for index, entry in enumerate(entries):
        kty = entry.get("kty") if isinstance(entry, dict) else None
        if kty not in PUBLIC_KEY_ALGORITHMS.values():
            raise ValueError(f"JWKS file {path!r}: keys[{index}] has kty {kty!r}; only RSA and EC public keys are accepted")
        if "d" in entry:
            raise ValueError(f"JWKS file {path!r}: keys[{index}] is a private key; give the public key only")
        try:
            keys.append(jwt.PyJWK(entry))
        except jwt.PyJWTError as error:
            raise ValueError(f"JWKS file {path!r}: keys[{index}] is not usable: {error}") from None
    return tuple(keys)


def _public_key(keys: tuple[PyJWK, ...], algorithm: str, kid: Any) -> PyJWK:
    """The key a token names by `kid` (or the only key, when neither has one) of the algorithm's key type."""
    kind = PUBLIC_KEY_ALGORITHMS[algorithm]
    candidates = [key for key in keys if key.key_type == kind]
    if kid is not None:
        candidates = [key for key in candidates if key.key_id == kid]
    elif len(keys) != 1:
        raise InvalidToken("the token has no kid and the key set holds more than one key")
    if not candidates:
        raise InvalidToken(f"no {kind} key{f' with kid {kid!r}' if kid is not None else ''} to verify a {algorithm} token")
    key = candidates[0]
    if key.algorithm_name != algorithm:
        raise InvalidToken(f"key {key.key_id!r} is for {key.algorithm_name}, the token says {algorithm}")
    return key


class _VerifiedTokens:
    """Tokens whose signature and claims were checked, so a client reusing its token pays for that once;
    exp is checked again on every use (RFC 7519 section 4.1.4). A token stays accepted until it expires even if
    its JWKS key is later removed: keep tokens short-lived."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._claims: OrderedDict[tuple[str, TokenSettings], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, settings: TokenSettings) -> dict[str, Any] | None:
        with self._lock:
            claims = self._claims.get((token, settings))
            if claims is not None:
                self._claims.move_to_end((token, settings))
        if claims is None:
            return None
        if time.time() > claims["exp"] + LEEWAY_SECONDS:
            raise InvalidToken("the token has expired")
        return claims

    def put(self, token: str, settings: TokenSettings, claims: dict[str, Any]) -> None:
        with self._lock:
            self._claims[(token, settings)] = claims
            while len(self._claims) > self.capacity:
                self._claims.popitem(last=False)


_verified = _VerifiedTokens()


def verify(token: str, settings: TokenSettings) -> dict[str, Any]:
    """The claims of a valid token; InvalidToken otherwise (RFC 7519 section 7.2)."""
    claims = _verified.get(token, settings)
    if claims is None:
        claims = _verify(token, settings)
        if isinstance(claims.get("exp"), (int, float)):
            _verified.put(token, settings, claims)
    return claims


def _verify(token: str, settings: TokenSettings) -> dict[str, Any]:
    """Signature, algorithm, exp/nbf, iss/aud: the full check of one token."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken("the bearer token is not a JWT") from None
    algorithm = header.get("alg")
    if algorithm == HS256:
        if not settings.secret:
            raise InvalidToken("HS256 tokens are not accepted here (no shared secret is configured)")
        key: Any = settings.secret
    elif algorithm in PUBLIC_KEY_ALGORITHMS:
        if not settings.jwks:
            raise InvalidToken(f"{algorithm} tokens are not accepted here (no JWKS is configured)")
        key = _public_key(load_jwks(settings.jwks), algorithm, header.get("kid")).key
    else:
        raise InvalidToken(f"token algorithm {algorithm!r} is not accepted (HS256, RS256, ES256)")
    try:
        return jwt.decode(
            token, key, algorithms=[algorithm], leeway=LEEWAY_SECONDS,
            issuer=settings.issuer, audience=settings.audience,
            options={"require": ["exp"], "verify_aud": settings.audience is not None},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the token has expired") from None
    except jwt.ImmatureSignatureError:
        raise InvalidToken("the token is not valid yet (nbf)") from None
    except jwt.InvalidSignatureError:
        raise InvalidToken("the token signature does not verify") from None
    except jwt.InvalidIssuerError:
        raise InvalidToken("the token issuer (iss) is not the configured one") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken("the token audience (aud) does not name this server") from None
    except jwt.MissingRequiredClaimError as error:
        raise InvalidToken(f"the token has no {error.claim!r} claim") from None
    except jwt.PyJWTError as error:
        raise InvalidToken(f"the token is not valid: {error}") from None


def mint(settings: TokenSettings, scope: str, *, subject: str, patient: str | None = None,
         expires_in: int = 3600, now: float | None = None) -> str:
    """An HS256 access token with SMART claims `scope` and `patient` (SMART v2 token response, as JWT claims)."""
    import jwt

    if not settings.secret:
        raise ValueError("minting needs the HS256 secret (PULSEBRIDGE_AUTH_SECRET or --auth-secret)")
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"sub": subject, "scope": scope, "iat": issued, "nbf": issued, "exp": issued + expires_in}
    if patient:
        claims["patient"] = patient
    if settings.issuer:
        claims["iss"] = settings.issuer
    if settings.audience:
        claims["aud"] = settings.audience
    return jwt.encode(claims, check_secret(settings.secret), algorithm=HS256)
