"""Development signing key and JWKS for Envoy's jwt_authn (never committed).

    python -m tools.devkeys var/dev-keys

writes, only when missing, DIR/private.pem (RSA 2048, mode 0600) and DIR/jwks.json
(the public half, RS256, `kid` = RFC 7638 thumbprint). Running it again changes nothing.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PRIVATE_KEY = "private.pem"
JWKS = "jwks.json"


def _b64url_uint(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_jwk(private_key: rsa.RSAPrivateKey) -> dict:
    """The public JWK of a key; `kid` is its RFC 7638 thumbprint, so it is stable."""
    numbers = private_key.public_key().public_numbers()
    jwk = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


def load_private_key(key_dir: str | os.PathLike) -> rsa.RSAPrivateKey:
    path = Path(key_dir) / PRIVATE_KEY
    key = _parsed(path.read_bytes())
    if not isinstance(key, rsa.RSAPrivateKey):  # tokens are RS256
        raise ValueError(f"{path} holds a {type(key).__name__}, not an RSA private key")
    return key


@functools.lru_cache(maxsize=16)
def _parsed(pem: bytes) -> object:
    """Parsing checks the RSA key, which costs some fifty signatures with it, and test
    runs mint thousands of tokens (300 for one race), the dev sign-in one per request.
    Keyed by the file's bytes, so a rotated key is read afresh."""
    return serialization.load_pem_private_key(pem, password=None)


def _write_private(path: Path, key: rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL + 0600: never overwrite a key, never let it be readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def ensure_keys(key_dir: str | os.PathLike) -> None:
    """Create DIR/private.pem and DIR/jwks.json unless they exist (idempotent)."""
    key_dir = Path(key_dir)
    key_dir.mkdir(parents=True, exist_ok=True)
    private_path, jwks_path = key_dir / PRIVATE_KEY, key_dir / JWKS
    if not private_path.exists():
        _write_private(private_path, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        jwks_path.unlink(missing_ok=True)  # a JWKS for an older key is useless
    if not jwks_path.exists():
        jwks = {"keys": [public_jwk(load_private_key(key_dir))]}
        tmp = jwks_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(jwks, indent=2) + "\n")
        tmp.replace(jwks_path)  # Envoy never sees a half-written file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.devkeys", description=__doc__.split("\n")[0])
    parser.add_argument("key_dir", help="directory for private.pem and jwks.json (e.g. var/dev-keys)")
    args = parser.parse_args(argv)
    ensure_keys(args.key_dir)
    print(f"keys in {args.key_dir}: {PRIVATE_KEY}, {JWKS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
