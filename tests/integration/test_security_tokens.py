"""Attacks on the token, each one through the real Envoy: every forged, altered,
stale or misdirected token gets 401 with a JSON body, and the request never
reaches a service (no identity is forwarded)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests import readme_errors
from tests.integration.backends import ONE_STACK
from tools.devkeys import ensure_keys, load_private_key, public_jwk
from tools.token import mint_token

# Envoy's behaviour here does not depend on the services' database.
pytestmark = ONE_STACK

PROTECTED = "/v1/reservations"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: dict) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def claims(user: str = "alice", **overrides) -> dict:
    now = int(time.time())
    c = {
        "iss": "bookrental",
        "aud": "bookrental",
        "sub": user,
        "roles": "customer",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    c.update(overrides)
    return {k: v for k, v in c.items() if v is not None}


def alg_none(key_dir) -> str:
    kid = public_jwk(load_private_key(key_dir))["kid"]
    return f"{segment({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{segment(claims())}."


def hs256_with_public_key(key_dir) -> str:
    # The classic confusion attack: the verifier's own public key used as an HMAC secret.
    private = load_private_key(key_dir)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    kid = public_jwk(private)["kid"]
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{segment(claims())}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def bad_signature(key_dir) -> str:
    head, body, sig = mint_token("alice", ["customer"], key_dir=str(key_dir)).split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{b64url(bytes(raw))}"


def tampered_payload(key_dir) -> str:
    # A real customer token whose payload is rewritten to claim the stock_manager role.
    head, _body, sig = mint_token("alice", ["customer"], key_dir=str(key_dir)).split(".")
    return f"{head}.{segment(claims(roles='stock_manager'))}.{sig}"


def unknown_kid(key_dir) -> str:
    # Signed by the real key, but naming a key the JWKS does not hold.
    return jwt.encode(claims(), load_private_key(key_dir), algorithm="RS256", headers={"kid": "no-such-key"})


def other_key(tmp_path) -> str:
    ensure_keys(tmp_path / "other")
    return mint_token("alice", ["customer"], key_dir=str(tmp_path / "other"))


def signed(**overrides):
    return lambda key_dir: mint_token("alice", ["customer"], key_dir=str(key_dir), **overrides)


def now() -> int:
    return int(time.time())  # read when the token is made, not when the module was imported


# (attack, how to make the Authorization header value from the stack's key dir)
ATTACKS = {
    "no token": lambda k: None,
    "malformed: Bearer with nothing": lambda k: "Bearer ",
    "malformed: not three segments": lambda k: "Bearer abc.def",
    "malformed: garbage": lambda k: "Bearer !!!not-a-jwt!!!",
    "malformed: Basic scheme": lambda k: "Basic YWxpY2U6c2VjcmV0",
    "alg none": lambda k: f"Bearer {alg_none(k)}",
    "HS256 signed with the public key": lambda k: f"Bearer {hs256_with_public_key(k)}",
    "bad signature": lambda k: f"Bearer {bad_signature(k)}",
    "tampered payload": lambda k: f"Bearer {tampered_payload(k)}",
    "expired": lambda k: f"Bearer {signed(exp=now() - 3600, iat=now() - 7200, nbf=now() - 7200)(k)}",
    "not yet valid": lambda k: f"Bearer {signed(nbf=now() + 3600)(k)}",
    "no expiry at all": lambda k: f"Bearer {signed(exp=None)(k)}",
    "wrong issuer": lambda k: f"Bearer {signed(iss='https://evil.example')(k)}",
    "wrong audience": lambda k: f"Bearer {signed(aud='another-api')(k)}",
    "unknown kid": lambda k: f"Bearer {unknown_kid(k)}",
}


# Each attack's answer: (README error table row, alternative), its exact body.
README_ROW = {
    "no token": ("no token", 0),
    "malformed: Bearer with nothing": ("no token", 0),
    "malformed: Basic scheme": ("no token", 0),
    "malformed: not three segments": ("a token that is not a JWT", 0),
    "malformed: garbage": ("a token that is not a JWT", 0),
    "alg none": ("a token that is not a JWT", 0),
    "HS256 signed with the public key": ("a kid the key set does not hold", 0),
    "unknown kid": ("a kid the key set does not hold", 0),
    "bad signature": ("bad signature, a payload changed after signing, a token without exp", 0),
    "tampered payload": ("bad signature, a payload changed after signing, a token without exp", 0),
    "no expiry at all": ("bad signature, a payload changed after signing, a token without exp", 0),
    "expired": ("expired / nbf in the future", 0),
    "not yet valid": ("expired / nbf in the future", 1),
    "wrong issuer": ("issuer not bookrental", 0),
    "wrong audience": ("audience not bookrental", 0),
}
TABLE = readme_errors.error_table()


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("method,path", [("GET", PROTECTED), ("POST", "/v1/stocks/b-1:receive")])
def test_every_token_attack_is_401_json(gateway, stack, attack, method, path):
    header = ATTACKS[attack](stack.key_dir)
    resp = gateway.call(
        method,
        path,
        body={"quantity": 1, "title": "x"} if method == "POST" else None,
        headers={"authorization": header} if header else None,
    )
    assert resp.status == 401, (attack, resp)
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    key, alternative = README_ROW[attack]
    problems = readme_errors.body_problems(TABLE[key].bodies[alternative], resp.json())
    assert not problems, (attack, problems)


def test_a_token_in_the_query_string_is_not_read(gateway, token):
    # Tokens in URLs end up in logs and browser history: only the Authorization header counts.
    resp = gateway.get(f"{PROTECTED}?access_token={token('alice')}")
    assert resp.status == 401, resp


def test_the_same_valid_token_passes(gateway, token):
    # The control for the table above: a well-formed token on the same routes is let through.
    assert gateway.get(PROTECTED, token("alice")).status == 200
    assert gateway.get(PROTECTED, headers={"authorization": f"bearer {token('alice')}"}).status == 200
