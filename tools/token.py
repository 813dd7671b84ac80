"""Print a development JWT for the gateway.

    python -m tools.token --user alice --role customer [--ttl 3600] [--key-dir var/dev-keys]

Prints only the token on stdout. Signed RS256 with the key from `make keys`; the
header `kid` matches jwks.json. Claims: iss/aud "bookrental", sub = user,
roles = "<role>[,<role>...]" (ONE comma-separated string, not a JSON array: Envoy's
jwt_authn claim_to_headers copies a string claim verbatim into `x-user-roles`, which the
services split on commas, but sends an array as base64 of its JSON), iat, nbf, exp.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import jwt

from tools.devkeys import JWKS, PRIVATE_KEY, load_private_key, public_jwk

ISSUER = "bookrental"
AUDIENCE = "bookrental"
ROLES = ("customer", "stock_manager")
DEFAULT_KEY_DIR = "var/dev-keys"
DEFAULT_TTL = 3600
# Long enough to type a few curl commands; at most a day, so a development token
# pasted somewhere does not stay valid for long.
MIN_TTL, MAX_TTL = 60, 86400


class TokenError(Exception):
    """A token cannot be made from these inputs (bad user, role or missing keys)."""


def mint_token(
    user: str,
    roles: Iterable[str] | str,
    key_dir: str = DEFAULT_KEY_DIR,
    ttl: int = DEFAULT_TTL,
    **overrides,
) -> str:
    """A signed token for `user` with `roles`.

    `overrides` replace or add claims (e.g. aud="other", exp=0 for tests); an
    override set to None removes that claim. Roles are not checked here, so tests
    can mint tokens with unknown roles; the CLI checks them.
    """
    if not user:
        raise TokenError("user must not be empty")
    roles = [roles] if isinstance(roles, str) else list(roles)
    if any(not r or "," in r for r in roles):
        raise TokenError(f"roles must be non-empty names without commas, got {roles!r}")
    key_path = Path(key_dir) / PRIVATE_KEY
    if not key_path.exists() or not (Path(key_dir) / JWKS).exists():
        raise TokenError(f"no signing key in {key_dir} (run make keys)")
    key = load_private_key(key_dir)
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user,
        "roles": ",".join(roles),
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": public_jwk(key)["kid"]})


def parse_ttl(raw: str) -> int:
    """--ttl (make token TTL=...) as seconds; empty means the default."""
    raw = raw.strip()
    if not raw:
        return DEFAULT_TTL
    if not (raw.isascii() and raw.isdigit()) or not MIN_TTL <= int(raw) <= MAX_TTL:
        raise TokenError(f"--ttl must be a whole number of seconds from {MIN_TTL} to {MAX_TTL} (got {raw!r})")
    return int(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.token", description="Print a development JWT.")
    parser.add_argument("--user", default="", help="the subject (sub), e.g. alice")
    parser.add_argument("--role", default="", help=f"one of {', '.join(ROLES)}")
    parser.add_argument(
        "--ttl", default="", help=f"lifetime in seconds, {MIN_TTL} to {MAX_TTL} (default {DEFAULT_TTL})"
    )
    parser.add_argument("--key-dir", default=DEFAULT_KEY_DIR, help=f"default {DEFAULT_KEY_DIR}")
    args = parser.parse_args(argv)
    try:
        if not args.user.strip():
            raise TokenError("--user is required, e.g. --user alice")
        if args.role not in ROLES:
            raise TokenError(f"--role must be one of {', '.join(ROLES)} (got {args.role!r})")
        ttl = parse_ttl(args.ttl)
        print(mint_token(args.user.strip(), [args.role], key_dir=args.key_dir, ttl=ttl))
    except TokenError as e:
        print(f"token: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
