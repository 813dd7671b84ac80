"""Hand-written SQL, and where SQLite and PostgreSQL differ for it (placeholders, row and key locks)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from .connection import Cursor, database, is_sqlite

# -- hot statements ----------------------------------------------------------------
# Under load, peewee building SQL text took much of the consumers' time
# (docs/performance.md, "Figures behind choices in the code"). The statements on
# the hot paths are therefore
# written once, as SQL with `?` placeholders that both SQLite and PostgreSQL accept
# (ON CONFLICT, RETURNING), and run through these two functions; peewee still
# creates the schema and serves the colder queries.

_converted: dict[str, str] = {}


def _sql(sql: str) -> str:
    param: str = database.obj.param
    if param == "?":
        return sql
    found = _converted.get(sql)
    if found is None:
        found = _converted[sql] = sql.replace("?", param)
    return found


def execute(sql: str, params: Sequence[Any] = ()) -> Cursor:
    """Runs one statement on the calling thread's connection; returns the cursor."""
    cursor: Cursor = database.obj.execute_sql(_sql(sql), params)
    return cursor


def rows(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    return execute(sql, params).fetchall()


# -- inserts gathered into one statement per batch ---------------------------------
# A consumer batch writes rows that nothing in the same batch reads back (the outbox's,
# alert's notifications): each INSERT was a statement and, on PostgreSQL, a round trip
# of its own. Gathered, they go as one multi-row INSERT per statement before the batch
# commits (docs/performance.md, issue 21).

# Rows per multi-row INSERT: SQLite binds at most 32,766 parameters, PostgreSQL 65,535.
_MAX_PARAMS = 30_000


class _Gathering(threading.local):
    rows: dict[tuple[str, int, str], list[Sequence[Any]]] | None = None
    memo: dict[Any, Any] | None = None


_gathering = _Gathering()


@contextlib.contextmanager
def gathered() -> Iterator[None]:
    """Inside it (within a transaction), `insert_later` keeps its rows; they are written
    when the block ends without an exception, in the order they came, one multi-row
    INSERT per statement, the statements in the order each was first used; on an
    exception they are dropped with the transaction's other work. Nested: the outer
    block writes them."""
    if _gathering.rows is not None:
        yield
        return
    _gathering.rows, _gathering.memo = {}, {}
    try:
        yield
        pending = _gathering.rows
    finally:
        _gathering.rows = _gathering.memo = None
    for (head, columns, tail), rows_ in pending.items():
        per_statement = max(1, _MAX_PARAMS // columns)
        for i in range(0, len(rows_), per_statement):
            chunk = rows_[i : i + per_statement]
            execute(f"{head} VALUES {values(columns, len(chunk))}{tail}", [v for row in chunk for v in row])


def is_gathering() -> bool:
    return _gathering.rows is not None


def batch_memo() -> dict[Any, Any] | None:
    """Inside `gathered()`: a dict the block's code shares and that is forgotten when it
    ends, e.g. rows a batch's handlers would each read, read once for all of them (by
    a Subscription's `prepare`); None outside."""
    return _gathering.memo


def insert_later(head: str, row: Sequence[Any], tail: str = "") -> None:
    """`{head} VALUES (row){tail}`, e.g. head "INSERT INTO t (a, b)", tail " ON CONFLICT
    DO NOTHING": at once, or inside `gathered()` with the block's other rows of the
    same statement. Only for a row nothing reads back before the block ends, and whose
    statement's outcome (a conflict, a row count) nobody needs."""
    if _gathering.rows is None:
        execute(f"{head} VALUES ({placeholders(len(row))}){tail}", row)
    else:
        _gathering.rows.setdefault((head, len(row), tail), []).append(row)


def values(columns: int, count: int) -> str:
    """`(?, ?), (?, ?)` for a multi-row INSERT of `count` rows."""
    one = "(" + ", ".join("?" * columns) + ")"
    return ", ".join([one] * count)


def lock_row(table: str, key_column: str, key: object) -> None:
    """Locks one row for the rest of the transaction before the transaction reads it
    to change it: PostgreSQL's READ COMMITTED would otherwise let two transactions read
    the same row and the later write silently undo the earlier. SQLite's IMMEDIATE
    transactions already serialize writers (and it has no FOR UPDATE).
    In its own statement on purpose: a SELECT ... FOR UPDATE OF t that waited for the lock
    re-reads only t's row once it has it, and returns the joined tables' rows as they
    were when the statement began, so a count kept beside the row (written by the
    transaction it waited for) would be read stale and its next write would undo that one."""
    if not is_sqlite():
        rows(f"SELECT 1 FROM {table} WHERE {key_column} = ? FOR UPDATE", (key,))


def lock_key(space: int, key: str) -> None:
    """Holds a lock on `key` until the transaction ends, so transactions that take the same
    one run one at a time: what each reads after it stays true until it commits (a count a
    write depends on, which no unique index can hold). `space` (an int4) keeps unrelated
    uses apart. PostgreSQL: a transaction-level advisory lock on (space, hash of the key),
    no row and no table, released by the commit or rollback; two keys with the same hash
    only wait for each other. SQLite: nothing, its IMMEDIATE transactions already run one
    at a time."""
    if is_sqlite():
        return
    if not database.in_transaction():
        raise RuntimeError("lock_key outside a transaction would be released at once")
    execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (space, key))


def placeholders(count: int) -> str:
    """`?, ?, ?` for an IN (...) list."""
    return ", ".join("?" * count)
