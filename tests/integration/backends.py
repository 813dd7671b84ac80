"""The databases the session's stacks run on, the mark for tests the database
cannot change (gateway behaviour, broker-only tools, metric names): they run on the
SQLite stack alone instead of running twice or skipping once, a PostgreSQL outage
(`Outage`) for the tests of what a service does while its database is away, and a
service's database of its own (`own_database`) for use cases run in the test's process,
with `waits_for_a_lock` to force an interleaving."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import pytest

from services.chassis import db
from tools import pgdb

BACKENDS = ["sqlite", "postgresql"]

# The session `stack` fixture is parametrized over BACKENDS; a direct parametrization
# overrides it, so these tests reuse the session's SQLite stack and never see PostgreSQL.
ONE_STACK = pytest.mark.parametrize("stack", ["sqlite"], indirect=True)


@contextlib.contextmanager
def own_database(service: str, models, indexes=(), sqlite_dir: Path | None = None) -> Iterator[str]:
    """A fresh database for `service`'s tables, connected in this process (the chassis'
    db.database) and dropped after: on PostgreSQL (PG_ADMIN_URL, which the session's
    `infra.postgres()` sets), or a SQLite file in `sqlite_dir`. Yields its URL."""
    run = uuid.uuid4().hex[:8]
    url = f"sqlite:///{sqlite_dir / f'{service}.db'}" if sqlite_dir else pgdb.create(run, [service])[service]
    database = db.connect(url)
    db.create_schema(database, models, indexes)
    try:
        yield url
    finally:
        database.close()
        if not sqlite_dir:
            pgdb.drop(run, [service])


def waits_for_a_lock(url: str, kind: str | None = None) -> bool:
    """Some session of this PostgreSQL database waits for a lock (`kind`: only that
    wait_event, e.g. 'advisory')."""
    # closing(): psycopg2's own `with` ends the transaction but leaves the connection open.
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            + (" AND wait_event = %s" if kind else ""),
            (kind,) if kind else (),
        )
        return cur.fetchone()[0] > 0


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
