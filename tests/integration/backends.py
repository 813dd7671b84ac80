"""The databases the session's stacks run on, and the mark for tests the database
cannot change (gateway behaviour, broker-only tools, metric names): they run on the
SQLite stack alone instead of running twice or skipping once."""

from __future__ import annotations

import pytest

BACKENDS = ["sqlite", "postgresql"]

# The session `stack` fixture is parametrized over BACKENDS; a direct parametrization
# overrides it, so these tests reuse the session's SQLite stack and never see PostgreSQL.
ONE_STACK = pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
