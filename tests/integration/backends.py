"""The databases the session's stacks run on, the mark for tests the database
cannot change (gateway behaviour, broker-only tools, metric names): they run on the
SQLite stack alone instead of running twice or skipping once, and a PostgreSQL
outage (`Outage`) for the tests of what a service does while its database is away."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg2
import pytest

from tools import pgdb

BACKENDS = ["sqlite", "postgresql"]

# The session `stack` fixture is parametrized over BACKENDS; a direct parametrization
# overrides it, so these tests reuse the session's SQLite stack and never see PostgreSQL.
ONE_STACK = pytest.mark.parametrize("stack", ["sqlite"], indirect=True)


class Outage:
    """Cuts services' PostgreSQL databases off (`cut`: the server refuses them and ends
    their open connections, as a failover or a network cut looks to a service) and gives
    them back (`restore`); on leaving the block every database cut is given back,
    whatever happened inside."""

    def __init__(self, stack):
        self.stack = stack
        self.cut_off: set[str] = set()

    def __enter__(self):
        self.admin = psycopg2.connect(pgdb.admin_url(), connect_timeout=3)
        self.admin.autocommit = True
        return self

    def _name(self, service: str) -> str:
        return urlsplit(self.stack.database_url(service)).path.lstrip("/")

    def cut(self, *services: str) -> None:
        with self.admin.cursor() as cur:
            for s in services:
                self.cut_off.add(s)
                cur.execute(f'ALTER DATABASE "{self._name(s)}" ALLOW_CONNECTIONS false')
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (self._name(s),)
                )

    def restore(self, *services: str) -> None:
        with self.admin.cursor() as cur:
            for s in services:
                cur.execute(f'ALTER DATABASE "{self._name(s)}" ALLOW_CONNECTIONS true')
                self.cut_off.discard(s)

    def __exit__(self, *exc):
        try:
            self.restore(*list(self.cut_off))
        finally:
            self.admin.close()
