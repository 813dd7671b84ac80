"""The developer commands the README promises."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jwt

ROOT = Path(__file__).resolve().parents[2]


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_make_token_prints_only_a_token_the_jwks_verifies():
    done = make("token", "USER=alice", "ROLE=customer")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    jwks = json.loads((ROOT / "var" / "dev-keys" / "jwks.json").read_text())
    key = jwt.PyJWK(jwks["keys"][0]).key
    claims = jwt.decode(lines[0], key, algorithms=["RS256"], audience="bookrental", issuer="bookrental")
    assert (claims["sub"], claims["roles"]) == ("alice", "customer")


def test_make_token_refuses_a_missing_user_or_an_unknown_role():
    no_user = make("token", "ROLE=customer")
    bad_role = make("token", "USER=alice", "ROLE=admin")
    assert no_user.returncode != 0 and "--user is required" in no_user.stderr
    assert bad_role.returncode != 0 and "--role must be one of" in bad_role.stderr
    assert no_user.stdout == bad_role.stdout == ""


def test_make_token_takes_a_lifetime_within_bounds():
    done = make("token", "USER=alice", "ROLE=customer", "TTL=600")
    assert done.returncode == 0, done.stderr
    claims = jwt.decode(done.stdout.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 600
    for bad in ("59", "86401", "1h", "-5"):
        refused = make("token", "USER=alice", "ROLE=customer", f"TTL={bad}")
        assert refused.returncode != 0 and refused.stdout == ""
        assert "--ttl must be a whole number of seconds from 60 to 86400" in refused.stderr, refused.stderr


def test_make_reset_deletes_var_and_nothing_else():
    done = make("-n", "reset")
    assert done.returncode == 0 and done.stdout.splitlines() == ["rm -rf var"], done
