"""Schema creation at start-up, on PostgreSQL, while other replicas write.

A replica restarted during a rolling restart creates its schema "if missing" while
its peers hold row locks in open transactions. It must not wait for their locks
when the schema is already there (CREATE INDEX IF NOT EXISTS takes a SHARE lock
before it checks; a CI run deadlocked on it and the replica exited), and it must
still create what is missing."""

from __future__ import annotations

import contextlib
import threading
import uuid

import psycopg2
import pytest

from services.alert import repository as alert_repository
from services.chassis import db
from services.reservation import repository as reservation_repository
from services.stock import repository as stock_repository
from tests.integration.backends import own_database
from tests.integration.conftest import require_backend
from tools import pgdb

SCHEMAS = {
    "reservation": (reservation_repository.MODELS, reservation_repository.INDEXES),
    "stock": (stock_repository.MODELS, []),
    "alert": (alert_repository.MODELS, []),
}


@pytest.fixture
def fresh_database(infra):
    require_backend("postgresql", infra)
    run = uuid.uuid4().hex[:8]
    url = pgdb.create(run, ["schema"])["schema"]
    try:
        yield url
    finally:
        if not db.database.is_closed():
            db.database.close()
        pgdb.drop(run, ["schema"])


def catalog(url: str) -> tuple[set[str], set[str]]:
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = {r[0] for r in cur.fetchall()}
        cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
        return tables, {r[0] for r in cur.fetchall()}


def create_in_thread(url: str, models, indexes) -> threading.Thread:
    def run():
        database = db.connect(url)
        try:
            db.create_schema(database, models, indexes)
        finally:
            database.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("service", sorted(SCHEMAS))
def test_a_replica_starting_beside_writing_peers_neither_waits_nor_misses_an_index(fresh_database, service):
    models, indexes = SCHEMAS[service]
    url = fresh_database
    first = create_in_thread(url, models, indexes)
    first.join(30)
    assert not first.is_alive(), "creating the schema on an empty database did not finish in 30 s"
    tables, index_names = catalog(url)
    expected_tables = {"outbox", "inbox", *(m._meta.table_name for m in models)}
    assert expected_tables <= tables, f"missing tables: {expected_tables - tables}"

    # A peer mid-transaction: a row-exclusive lock (what any INSERT/UPDATE holds) on every table.
    with contextlib.closing(psycopg2.connect(url)) as peer, peer.cursor() as cur:
        for table in sorted(expected_tables):
            cur.execute(f'LOCK TABLE "{table}" IN ROW EXCLUSIVE MODE')
        again = create_in_thread(url, models, indexes)
        again.join(10)
        still_waiting = again.is_alive()
        peer.rollback()
        again.join(30)
    assert not still_waiting, (
        "a replica restarting beside a writing peer waited for the peer's table locks although its schema was complete"
    )

    # An index dropped (say, added by a newer release) is created again at the next start.
    victim = sorted(index_names - {n for n in index_names if n.endswith("_pkey")})[0]
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute(f'DROP INDEX "{victim}"')
        conn.commit()
    assert victim not in catalog(url)[1]
    third = create_in_thread(url, models, indexes)
    third.join(30)
    assert not third.is_alive()
    assert catalog(url)[1] == index_names, f"{victim} was not created again"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_column_a_release_adds_is_added_to_an_older_table_and_its_rows_kept(backend, infra, tmp_path):
    """The outbox of a release before tracing had no traceparent column: the next start
    adds it (null for the rows already there) and the relay's statements work on it."""
    if backend == "postgresql":
        require_backend("postgresql", infra)
    with own_database("schema", [], sqlite_dir=tmp_path if backend == "sqlite" else None):
        database = db.database
        with database.connection_context():
            database.execute_sql("ALTER TABLE outbox DROP COLUMN traceparent")  # as the older release made it
            db.execute(
                "INSERT INTO outbox (event_id, topic, key, event_type, correlation_id, payload, occur_time)"
                " VALUES ('e-old', 't', 'k', 'T', '', ?, 'now')",
                (b"x",),
            )
        db.create_schema(database.obj, [])  # the next start
        with database.connection_context():
            assert "traceparent" in {c.name for c in database.get_columns("outbox")}
            assert db.rows("SELECT event_id, traceparent FROM outbox WHERE sent_at IS NULL", ()) == [("e-old", None)]
