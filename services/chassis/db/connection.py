"""The database connection: one peewee proxy per process, bound at start from
DATABASE_URL; a pool per process on PostgreSQL; on SQLite, the writer lock the
threads of one process queue on."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import peewee
from playhouse import db_url
from playhouse.pool import PooledDatabase

database = peewee.DatabaseProxy()


class Cursor(Protocol):
    """The DB-API 2.0 cursor a driver returns (sqlite3 or psycopg2), as far as we read it."""

    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...


class SqliteDatabase(peewee.SqliteDatabase):
    """SQLite has one writer at a time, and its busy handler makes a waiting writer
    sleep 1, 2, 5 ... 100 ms between tries: under load, threads of one process
    (RPCs, consumer, relay) lost most of their time there. They queue on a lock
    instead (transactions and autocommit writes), which hands over the moment the
    holder commits; other processes
    (replicas on the same file) still wait through busy_timeout."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writer = threading.Lock()
        self._holder = threading.local()

    def begin(self, lock_type: str | None = None) -> None:
        self._writer.acquire()
        self._holder.held = True
        try:
            super().begin(lock_type)
        except BaseException:
            self._release()
            raise

    def commit(self) -> None:
        super().commit()  # if this fails, peewee rolls back, which releases
        self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def execute_sql(self, sql: str, params: Sequence[Any] | None = None) -> Cursor:
        # A write outside a transaction (autocommit) queues on the same lock.
        cursor: Cursor
        if self.in_transaction() or sql.lstrip()[:6].upper() in ("SELECT", "PRAGMA"):
            cursor = super().execute_sql(sql, params)  # type: ignore[no-untyped-call]  # types-peewee: unannotated
            return cursor
        with self._writer:
            cursor = super().execute_sql(sql, params)  # type: ignore[no-untyped-call]  # types-peewee: unannotated
            return cursor

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


def ping() -> None:
    """One round trip on a connection of the pool (raises when the database does not
    answer); the connection goes back, or, if the answer showed it broken, is dropped."""
    try:
        database.execute_sql("SELECT 1")
    finally:
        release()


def is_sqlite() -> bool:
    """SQLite serializes writers itself (IMMEDIATE transactions); PostgreSQL needs row locks."""
    return isinstance(database.obj, peewee.SqliteDatabase)


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying forever: the database is away or busy, not our bug."""
    return isinstance(exc, (peewee.OperationalError, peewee.InterfaceError))
