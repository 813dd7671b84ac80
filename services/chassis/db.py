"""Database plumbing shared by the services: one peewee proxy per process,
bound at start from DATABASE_URL, and the outbox and inbox tables that carry
the delivery guarantees."""
from __future__ import annotations

import datetime
import os
import re
import threading
import time

import peewee
from google.protobuf import timestamp_pb2
from playhouse import db_url
from playhouse.pool import PooledDatabase

database = peewee.DatabaseProxy()


class BaseModel(peewee.Model):
    class Meta:
        database = database


class OutboxMessage(BaseModel):
    """An event waiting to be published, written in the same transaction as the
    state change that caused it. The relay sets sent_at after the broker acked."""

    id = peewee.BigAutoField()
    event_id = peewee.CharField(max_length=36, unique=True)
    topic = peewee.CharField(max_length=249)
    key = peewee.CharField(max_length=128)
    event_type = peewee.CharField(max_length=200)
    correlation_id = peewee.CharField(max_length=64, default="")
    payload = peewee.BlobField()
    occur_time = peewee.CharField(max_length=40)
    sent_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "outbox"


class ProcessedEvent(BaseModel):
    """Inbox: the ce_id of every event whose effect is committed."""

    event_id = peewee.CharField(max_length=36, primary_key=True)
    event_type = peewee.CharField(max_length=200)
    processed_at = peewee.DoubleField(default=time.time)

    class Meta:
        table_name = "inbox"


class SqliteDatabase(peewee.SqliteDatabase):
    """SQLite has one writer at a time, and its busy handler makes a waiting writer
    sleep 1, 2, 5 ... 100 ms between tries: under load, threads of one process
    (RPCs, consumer, relay) lost most of their time there. They queue on a lock
    instead (transactions and autocommit writes), which hands over the moment the
    holder commits; other processes
    (replicas on the same file) still wait through busy_timeout."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._writer = threading.Lock()
        self._holder = threading.local()

    def begin(self, lock_type=None):
        self._writer.acquire()
        self._holder.held = True
        try:
            super().begin(lock_type)
        except BaseException:
            self._release()
            raise

    def commit(self):
        super().commit()  # if this fails, peewee rolls back, which releases
        self._release()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self._release()

    def execute_sql(self, sql, params=None):
        # A write outside a transaction (autocommit) queues on the same lock.
        if self.in_transaction() or sql.lstrip()[:6].upper() in ("SELECT", "PRAGMA"):
            return super().execute_sql(sql, params)
        with self._writer:
            return super().execute_sql(sql, params)

    def _release(self) -> None:
        if getattr(self._holder, "held", False):
            self._holder.held = False
            self._writer.release()


def connect(url: str) -> peewee.Database:
    """Opens DATABASE_URL and binds the proxy. SQLite gets WAL and IMMEDIATE
    transactions, so concurrent writers queue on the lock instead of failing
    with 'database is locked' when a reader upgrades."""
    if url.startswith("sqlite:"):
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        db = SqliteDatabase(
            path or ":memory:",
            pragmas={"journal_mode": "wal", "synchronous": "normal", "busy_timeout": 15000},
            lock_type="IMMEDIATE",
            timeout=15,
        )
    else:
        # A pool per process: RPC threads borrow a connection per call and give it back
        # (release()), so a replica holds at most `max_connections` (default 8) however
        # many threads serve; 16 threads x replicas would soon pass PostgreSQL's 100.
        scheme, rest = url.split("://", 1)
        if not scheme.endswith("+pool"):
            scheme += "+pool"
        params = {"max_connections": 8, "stale_timeout": 300, "timeout": 10}
        query = dict(q.split("=", 1) for q in rest.partition("?")[2].split("&") if "=" in q)
        params.update({k: int(v) for k, v in query.items() if k in params})
        db = db_url.connect(f"{scheme}://{rest.partition('?')[0]}", **params)
    database.initialize(db)
    return db


def release() -> None:
    """Gives the calling thread's connection back to the pool (PostgreSQL); with
    SQLite, a file, the thread keeps its connection."""
    if isinstance(database.obj, PooledDatabase) and not database.is_closed():
        database.close()


def create_schema(db: peewee.Database, models: list[type[peewee.Model]], indexes: list[str] = ()) -> None:
    """Idempotent: tables and indexes are created if missing.

    On PostgreSQL a replica starts while its peers write. CREATE INDEX takes a SHARE
    lock on its table even when the index exists (IF NOT EXISTS is checked after the
    lock), so the whole schema in one transaction held locks on several tables and
    deadlocked with a peer's write (a CI rolling restart: the restarted replica exited).
    So: when the catalog already lists every table and index, nothing is run and no
    table is locked; otherwise each statement runs in its own transaction, under a
    session advisory lock so that replicas starting together take turns."""
    models = [OutboxMessage, ProcessedEvent, *models]
    # The relay reads only unsent rows; a partial index keeps that cheap as the table grows.
    indexes = ["CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (id) WHERE sent_at IS NULL", *indexes]
    with db.connection_context():
        if not isinstance(db, peewee.PostgresqlDatabase):
            with db.atomic():  # SQLite's IMMEDIATE transaction serializes starting replicas
                db.create_tables(models, safe=True)
                for sql in indexes:
                    db.execute_sql(sql)
            return
        tables, named = _pg_schema(db)
        if tables >= {m._meta.table_name for m in models} and named >= {
                *(i._name for m in models for i in m._meta.fields_to_index()), *map(_index_name, indexes)}:
            return
        db.execute_sql("SELECT pg_advisory_lock(hashtext('bookrental-schema'))")
        try:
            for model in models:
                with db.atomic():
                    model.create_table(safe=True)  # the table and its own indexes: locks on it alone
            for sql in indexes:
                with db.atomic():
                    db.execute_sql(sql)
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(hashtext('bookrental-schema'))")


def _index_name(sql: str) -> str:
    found = re.search(r"INDEX\s+IF\s+NOT\s+EXISTS\s+(\w+)", sql, re.IGNORECASE)
    if found is None:
        raise ValueError(f"an index statement must be CREATE [UNIQUE] INDEX IF NOT EXISTS <name>: {sql}")
    return found.group(1)


def _pg_schema(db: peewee.Database) -> tuple[set[str], set[str]]:
    """The tables and indexes of the current schema, read from the catalog (no table lock)."""
    rows = db.execute_sql(
        "SELECT 't', tablename FROM pg_tables WHERE schemaname = current_schema()"
        " UNION ALL SELECT 'i', indexname FROM pg_indexes WHERE schemaname = current_schema()").fetchall()
    return {n for k, n in rows if k == "t"}, {n for k, n in rows if k == "i"}


def is_sqlite() -> bool:
    """SQLite serializes writers itself (IMMEDIATE transactions); PostgreSQL needs row locks."""
    return isinstance(database.obj, peewee.SqliteDatabase)


def locked(query: peewee.Query) -> peewee.Query:
    """Locks the selected rows until the transaction ends (SELECT ... FOR UPDATE) on
    PostgreSQL, whose READ COMMITTED would otherwise let two transactions read the
    same row and the later write silently undo the earlier. SQLite's IMMEDIATE
    transactions already serialize writers (and it has no FOR UPDATE)."""
    return query if is_sqlite() else query.for_update()


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying forever: the database is away or busy, not our bug."""
    return isinstance(exc, (peewee.OperationalError, peewee.InterfaceError))


def utcnow() -> datetime.datetime:
    """Naive UTC, stored the same way on SQLite and PostgreSQL."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def timestamp(value: datetime.datetime | None) -> timestamp_pb2.Timestamp:
    """A stored naive-UTC time as a protobuf Timestamp."""
    ts = timestamp_pb2.Timestamp()
    if value is not None:
        ts.FromDatetime(value.replace(tzinfo=datetime.timezone.utc) if value.tzinfo is None else value)
    return ts


# -- hot statements ----------------------------------------------------------------
# Profiles under load put much of the consumers' time in peewee building SQL text
# (docs/performance.md, "Figures behind choices in the code"). The statements on the reservation path are therefore
# written once, as SQL with `?` placeholders that both SQLite and PostgreSQL accept
# (ON CONFLICT, RETURNING), and run through these two functions; peewee still
# creates the schema and serves the colder queries.

_converted: dict[str, str] = {}


def _sql(sql: str) -> str:
    param = database.obj.param
    if param == "?":
        return sql
    found = _converted.get(sql)
    if found is None:
        found = _converted[sql] = sql.replace("?", param)
    return found


def execute(sql: str, params: tuple | list = ()):
    """Runs one statement on the calling thread's connection; returns the cursor."""
    return database.obj.execute_sql(_sql(sql), params)


def rows(sql: str, params: tuple | list = ()) -> list[tuple]:
    return execute(sql, params).fetchall()


def values(columns: int, count: int) -> str:
    """`(?, ?), (?, ?)` for a multi-row INSERT of `count` rows."""
    one = "(" + ", ".join("?" * columns) + ")"
    return ", ".join([one] * count)


def for_update() -> str:
    """The row-lock suffix `locked()` adds, for a raw SELECT: PostgreSQL only."""
    return "" if is_sqlite() else " FOR UPDATE"


def placeholders(count: int) -> str:
    """`?, ?, ?` for an IN (...) list."""
    return ", ".join("?" * count)
