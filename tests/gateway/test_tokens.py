"""Bearer JWT verification and minting (RFC 7519, RFC 7515, RFC 7517; gateway.security.tokens)."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gateway.security.tokens import InvalidToken, TokenSettings, check_secret, load_jwks, mint, verify
from tests.gateway.auth_records import SECRET, SETTINGS

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _claims(**extra: object) -> dict:
    now = int(time.time())
    return {"sub": "app", "scope": "user/*.rs", "iat": now, "exp": now + 600, **extra}


def public_jwk(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str | None) -> dict:
    """The public half of a key as a JWK (RFC 7517 section 4)."""
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def write_jwks(path: Path, *jwks: dict) -> str:
    path.write_text(json.dumps({"keys": list(jwks)}), encoding="utf-8")
    return str(path)


@pytest.fixture
def jwks_settings(tmp_path: Path) -> TokenSettings:
    return TokenSettings(jwks=write_jwks(tmp_path / "keys.json", public_jwk(RSA_KEY, "rsa-1"), public_jwk(EC_KEY, "ec-1")))


def test_minted_token_verifies_with_its_claims() -> None:
    token = mint(SETTINGS, "patient/*.rs launch", subject="nurse-7", patient="pat-a")
    claims = verify(token, SETTINGS)
    assert claims["sub"] == "nurse-7" and claims["scope"] == "patient/*.rs launch" and claims["patient"] == "pat-a"
    assert claims["exp"] - claims["iat"] == 3600


def test_expired_token_is_refused_after_the_leeway() -> None:
    stale = mint(SETTINGS, "user/*.rs", subject="x", expires_in=60, now=time.time() - 120)
    with pytest.raises(InvalidToken, match="expired"):
        verify(stale, SETTINGS)
    just_expired = mint(SETTINGS, "user/*.rs", subject="x", expires_in=60, now=time.time() - 70)
    assert verify(just_expired, SETTINGS)["sub"] == "x"  # 10 s past exp: inside the 30 s leeway


def test_a_verified_token_is_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verification is remembered per token, but exp is checked on every use."""
    token = mint(SETTINGS, "user/*.rs", subject="reused", expires_in=600)
    assert verify(token, SETTINGS)["sub"] == "reused"
    assert verify(token, SETTINGS)["sub"] == "reused"
    later = time.time() + 3600
    monkeypatch.setattr("gateway.security.tokens.time.time", lambda: later)
    with pytest.raises(InvalidToken, match="expired"):
        verify(token, SETTINGS)
    with pytest.raises(InvalidToken, match="signature"):
        verify(token, TokenSettings(secret="a-different-secret-of-thirty-two-bytes"))  # remembered per configuration


def test_not_yet_valid_token_is_refused() -> None:
    token = jwt.encode(_claims(nbf=int(time.time()) + 600), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match="nbf"):
        verify(token, SETTINGS)


def test_token_without_exp_is_refused() -> None:
    token = jwt.encode({"sub": "x", "scope": "user/*.rs"}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match="'exp'"):
        verify(token, SETTINGS)


def test_wrong_secret_is_a_bad_signature() -> None:
    token = jwt.encode(_claims(), "some-other-secret-of-thirty-two-bytes", algorithm="HS256")
    with pytest.raises(InvalidToken, match="signature"):
        verify(token, SETTINGS)


def test_alg_none_is_refused() -> None:
    token = jwt.encode(_claims(), None, algorithm="none")
    with pytest.raises(InvalidToken, match="'none' is not accepted"):
        verify(token, SETTINGS)


def test_garbage_is_not_a_jwt() -> None:
    with pytest.raises(InvalidToken, match="not a JWT"):
        verify("not.a.token", SETTINGS)


def test_issuer_and_audience_are_checked_when_configured() -> None:
    settings = TokenSettings(secret=SECRET, issuer="https://auth.example", audience="https://fhir.example/fhir")
    good = mint(settings, "user/*.rs", subject="x")
    assert verify(good, settings)["iss"] == "https://auth.example"
    with pytest.raises(InvalidToken, match="issuer"):
        verify(jwt.encode(_claims(iss="https://evil.example", aud="https://fhir.example/fhir"), SECRET, algorithm="HS256"), settings)
    with pytest.raises(InvalidToken, match="audience"):
        verify(jwt.encode(_claims(iss="https://auth.example", aud="https://other.example"), SECRET, algorithm="HS256"), settings)


def test_rs256_and_es256_verify_with_the_jwks_key_named_by_kid(jwks_settings: TokenSettings) -> None:
    rs = jwt.encode(_claims(sub="rs"), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
    es = jwt.encode(_claims(sub="es"), EC_KEY, algorithm="ES256", headers={"kid": "ec-1"})
    assert verify(rs, jwks_settings)["sub"] == "rs"
    assert verify(es, jwks_settings)["sub"] == "es"


def test_unknown_kid_and_foreign_key_are_refused(jwks_settings: TokenSettings) -> None:
    with pytest.raises(InvalidToken, match="kid 'nope'"):
        verify(jwt.encode(_claims(), RSA_KEY, algorithm="RS256", headers={"kid": "nope"}), jwks_settings)
    with pytest.raises(InvalidToken, match="signature"):
        verify(jwt.encode(_claims(), OTHER_RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"}), jwks_settings)
    with pytest.raises(InvalidToken, match="no kid"):
        verify(jwt.encode(_claims(), RSA_KEY, algorithm="RS256"), jwks_settings)


def test_a_single_key_without_kid_is_used(tmp_path: Path) -> None:
    settings = TokenSettings(jwks=write_jwks(tmp_path / "one.json", public_jwk(EC_KEY, None)))
    assert verify(jwt.encode(_claims(sub="solo"), EC_KEY, algorithm="ES256"), settings)["sub"] == "solo"


def test_algorithm_confusion_hs256_with_the_public_key_is_refused(jwks_settings: TokenSettings, tmp_path: Path) -> None:
    """A token 'signed' with HS256 using the RSA public key as the secret (CVE-2016-10555 style) never verifies."""
    pem = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    payload = jwt.utils.base64url_encode(json.dumps(_claims()).encode())
    signature = jwt.utils.base64url_encode(hmac.new(pem, header + b"." + payload, hashlib.sha256).digest())
    token = (header + b"." + payload + b"." + signature).decode()
    with pytest.raises(InvalidToken, match="no shared secret"):
        verify(token, jwks_settings)  # JWKS only: HS256 is not accepted at all
    both = TokenSettings(secret=SECRET, jwks=jwks_settings.jwks)
    with pytest.raises(InvalidToken, match="signature"):
        verify(token, both)  # HS256 is checked with the secret only, never with a public key


def test_es256_token_cannot_use_an_rsa_key(jwks_settings: TokenSettings) -> None:
    token = jwt.encode(_claims(), EC_KEY, algorithm="ES256", headers={"kid": "rsa-1"})
    with pytest.raises(InvalidToken, match="no EC key"):
        verify(token, jwks_settings)


def test_rs384_is_not_accepted(jwks_settings: TokenSettings) -> None:
    token = jwt.encode(_claims(), RSA_KEY, algorithm="RS384", headers={"kid": "rsa-1"})
    with pytest.raises(InvalidToken, match="'RS384' is not accepted"):
        verify(token, jwks_settings)


def test_jwks_files_must_hold_public_rsa_or_ec_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be read"):
        load_jwks(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="not JSON"):
        load_jwks(str(tmp_path / "bad.json"))
    with pytest.raises(ValueError, match="kty 'oct'"):
        load_jwks(write_jwks(tmp_path / "oct.json", {"kty": "oct", "k": "c2VjcmV0"}))
    private = json.loads(RSAAlgorithm.to_jwk(RSA_KEY))
    with pytest.raises(ValueError, match="private key"):
        load_jwks(write_jwks(tmp_path / "private.json", private))
    with pytest.raises(ValueError, match="no \"keys\""):
        load_jwks(write_jwks(tmp_path / "empty.json"))


def test_secrets_shorter_than_32_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        check_secret("short")
    with pytest.raises(ValueError, match="32 bytes"):
        mint(TokenSettings(secret="short"), "user/*.rs", subject="x")
    with pytest.raises(ValueError, match="needs the HS256 secret"):
        mint(TokenSettings(), "user/*.rs", subject="x")
