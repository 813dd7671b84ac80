"""Database plumbing shared by the services, by concern: the connection (connection.py:
the per-process proxy bound from DATABASE_URL, PostgreSQL's pool, SQLite's writer
lock), the schema (schema.py: the outbox and inbox tables, the models' base, creation
at start) and hand-written SQL with the dialects' differences (sql.py)."""

from .connection import SqliteDatabase, connect, database, is_sqlite, is_transient, ping, release
from .schema import (
    BaseModel,
    ConsumerPosition,
    Differences,
    OutboxMessage,
    ProcessedEvent,
    columns,
    compare_tables,
    count,
    create_fresh_tables,
    create_schema,
    drop_fresh_tables,
    replace_tables,
)
from .sql import (
    batch_memo,
    execute,
    gathered,
    insert_later,
    is_gathering,
    lock_key,
    lock_row,
    placeholders,
    rows,
    values,
)

__all__ = [
    "BaseModel",
    "ConsumerPosition",
    "Differences",
    "OutboxMessage",
    "ProcessedEvent",
    "SqliteDatabase",
    "batch_memo",
    "columns",
    "compare_tables",
    "connect",
    "count",
    "create_fresh_tables",
    "create_schema",
    "database",
    "drop_fresh_tables",
    "execute",
    "gathered",
    "insert_later",
    "is_gathering",
    "is_sqlite",
    "is_transient",
    "lock_key",
    "lock_row",
    "ping",
    "placeholders",
    "release",
    "replace_tables",
    "rows",
    "values",
]
