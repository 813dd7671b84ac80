"""The development token's lifetime, as `make token TTL=...` passes it."""

from __future__ import annotations

import pytest

from tools import token


@pytest.mark.parametrize("raw, seconds", [("", token.DEFAULT_TTL), (" 600 ", 600), ("60", 60), ("86400", 86400)])
def test_a_lifetime_within_bounds_is_taken(raw, seconds):
    assert token.parse_ttl(raw) == seconds


@pytest.mark.parametrize("raw", ["59", "86401", "0", "-5", "1h", "1e3", "600.5", "²"])
def test_any_other_lifetime_is_refused_with_the_bounds(raw):
    with pytest.raises(token.TokenError, match="--ttl must be a whole number of seconds from 60 to 86400"):
        token.parse_ttl(raw)


def test_the_command_says_so_on_stderr_and_prints_no_token(capsys, tmp_path):
    assert token.main(["--user", "alice", "--role", "customer", "--ttl", "10", "--key-dir", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("token: --ttl must be")
