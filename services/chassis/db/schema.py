"""The schema: the outbox and inbox tables every service has, the base of every
model, and its creation at start."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import peewee
from playhouse import migrate

from .connection import database, is_sqlite


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
    # The W3C traceparent of the span that wrote it ("" when tracing is off): the relay
    # puts it on the message, so the consumers continue the trace (tracing.py).
    traceparent = peewee.CharField(max_length=55, null=True)

    class Meta:
        table_name = "outbox"


class ProcessedEvent(BaseModel):
    """Inbox: the ce_id of every event whose effect is committed."""

    event_id = peewee.CharField(max_length=36, primary_key=True)
    event_type = peewee.CharField(max_length=200)
    processed_at = peewee.DoubleField(default=time.time)

    class Meta:
        table_name = "inbox"


class ConsumerPosition(BaseModel):
    """How far the service's consumer group has applied each partition it reads: the
    newest event applied (its offset and time), written in the transaction that applied
    it, and the events behind it still to apply, as the consumer last saw the partition's
    end (at as_of: after each batch, and every statistics interval while it runs).
    What a read answer says of its freshness (positions.py)."""

    topic = peewee.CharField(max_length=249)
    partition_id = peewee.IntegerField()
    applied_offset = peewee.BigIntegerField()
    event_time = peewee.CharField(max_length=40)  # the event's ce_time
    pending = peewee.BigIntegerField(default=0)
    as_of = peewee.DoubleField()  # epoch seconds

    class Meta:
        table_name = "consumer_position"
        primary_key = peewee.CompositeKey("topic", "partition_id")


def create_schema(db: peewee.Database, models: Sequence[type[peewee.Model]], indexes: Sequence[str] = ()) -> None:
    """Idempotent: tables and indexes are created if missing.

    On PostgreSQL a replica starts while its peers write. CREATE INDEX takes a SHARE
    lock on its table even when the index exists (IF NOT EXISTS is checked after the
    lock), so the whole schema in one transaction held locks on several tables and
    deadlocked with a peer's write (a CI rolling restart: the restarted replica exited).
    So: when the catalog already lists every table and index, nothing is run and no
    table is locked; otherwise each statement runs in its own transaction, under a
    session advisory lock so that replicas starting together take turns."""
    models = [OutboxMessage, ProcessedEvent, ConsumerPosition, *models]
    # The relay reads only unsent rows; a partial index keeps that cheap as the table grows.
    # The purge finds the oldest inbox records by their time (their ids are random).
    indexes = [
        "CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (id) WHERE sent_at IS NULL",
        "CREATE INDEX IF NOT EXISTS inbox_processed_at ON inbox (processed_at)",
        *indexes,
    ]
    with db.connection_context():
        if not isinstance(db, peewee.PostgresqlDatabase):
            with db.atomic():  # SQLite's IMMEDIATE transaction serializes starting replicas
                db.create_tables(models, safe=True)
                _add_missing_columns(db, models)
                for sql in indexes:
                    db.execute_sql(sql)
            return
        tables, named = _pg_schema(db)
        if (
            tables >= {m._meta.table_name for m in models}
            and named >= {*(i._name for m in models for i in m._meta.fields_to_index()), *map(_index_name, indexes)}
            and not _missing_columns(db, models)
        ):
            return
        db.execute_sql("SELECT pg_advisory_lock(hashtext('bookrental-schema'))")
        try:
            for model in models:
                with db.atomic():
                    model.create_table(safe=True)  # the table and its own indexes: locks on it alone
            _add_missing_columns(db, models)
            for sql in indexes:
                with db.atomic():
                    db.execute_sql(sql)
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(hashtext('bookrental-schema'))")


def _missing_columns(db: peewee.Database, models: Sequence[type[peewee.Model]]) -> list[peewee.Field]:
    """Fields of tables made by an older release that have no column yet."""
    missing = []
    for model in models:
        have = {c.name for c in db.get_columns(model._meta.table_name)}
        missing += [f for f in model._meta.sorted_fields if have and f.column_name not in have]
    return missing


def _add_missing_columns(db: peewee.Database, models: Sequence[type[peewee.Model]]) -> None:
    """A column a release adds is added to an older table, each in its own statement;
    the rows already there take its default (or null). A NOT NULL column with a default
    costs SQLite a copy of the table (peewee rebuilds it): new columns are best null=True."""
    migrator = migrate.SchemaMigrator.from_database(db)
    for field in _missing_columns(db, models):
        if not field.null and field.default is None:
            where = f"{field.model.__name__}.{field.name}"
            raise TypeError(f"{where}: a column added to an existing table needs null=True or a default")
        with db.atomic():
            migrate.migrate(migrator.add_column(field.model._meta.table_name, field.column_name, field))


def _index_name(sql: str) -> str:
    found = re.search(r"INDEX\s+IF\s+NOT\s+EXISTS\s+(\w+)", sql, re.IGNORECASE)
    if found is None:
        raise ValueError(f"an index statement must be CREATE [UNIQUE] INDEX IF NOT EXISTS <name>: {sql}")
    return found.group(1)


def _pg_schema(db: peewee.Database) -> tuple[set[str], set[str]]:
    """The tables and indexes of the current schema, read from the catalog (no table lock)."""
    rows = db.execute_sql(
        "SELECT 't', tablename FROM pg_tables WHERE schemaname = current_schema()"
        " UNION ALL SELECT 'i', indexname FROM pg_indexes WHERE schemaname = current_schema()"
    ).fetchall()
    return {n for k, n in rows if k == "t"}, {n for k, n in rows if k == "i"}


def columns(model: type[peewee.Model], without: tuple[str, ...] = ()) -> str:
    """The model's columns in declaration order, for a hand-written statement: the table's one list."""
    return ", ".join(f.column_name for f in model._meta.sorted_fields if f.name not in without)


# -- fresh tables, and their switch-over (a rebuild of a read model: services/chassis/rebuild.py)

FRESH_SUFFIX = "_rebuilt"


def _fresh(model: type[peewee.Model]) -> str:
    """The name of the model's fresh twin."""
    return f"{model._meta.table_name}{FRESH_SUFFIX}"


def _twin(model: type[peewee.Model], table_name: str) -> type[peewee.Model]:
    """The model's columns and primary key on another table; none of its other indexes."""
    meta = type("Meta", (), {"table_name": table_name, "indexes": ()})
    return type(f"{model.__name__}Rebuilt", (model,), {"Meta": meta, "__module__": model.__module__})


def create_fresh_tables(models: Sequence[type[peewee.Model]]) -> dict[str, str]:
    """An empty twin of each model's table, `<table>_rebuilt` (one an earlier rebuild left
    is dropped first); returns their names by the live tables'. Without the models' other
    indexes: filled faster, and those are made under the live names at the switch-over."""
    fresh = {}
    for model in models:
        name = fresh[model._meta.table_name] = _fresh(model)
        with database.atomic():
            database.execute_sql(f"DROP TABLE IF EXISTS {name}")
            _twin(model, name)._schema.create_table(safe=False)  # type: ignore[attr-defined]  # types-peewee lacks it
    return fresh


@dataclasses.dataclass(frozen=True)
class Differences:
    """What a switch-over changed, row by row (by primary key)."""

    added: int = 0  # rows the replaced tables did not have
    removed: int = 0  # rows they had, and the new ones do not
    changed: int = 0  # the same key, another value

    def __add__(self, other: Differences) -> Differences:
        return Differences(self.added + other.added, self.removed + other.removed, self.changed + other.changed)


def count(table: str) -> int:
    found: int = database.execute_sql(f"SELECT COUNT(*) FROM {table}").fetchall()[0][0]
    return found


def _differences(model: type[peewee.Model], live: str, fresh: str) -> Differences:
    key: Any = model._meta.primary_key
    names = key.field_names if isinstance(key, peewee.CompositeKey) else [key.name]
    keys = [model._meta.fields[n].column_name for n in names]
    on = " AND ".join(f"a.{c} = b.{c}" for c in keys)
    cols = columns(model)

    def only_in(a: str, b: str) -> int:
        found: int = database.execute_sql(
            f"SELECT COUNT(*) FROM {a} a WHERE NOT EXISTS (SELECT 1 FROM {b} b WHERE {on})"
        ).fetchall()[0][0]
        return found

    added = only_in(fresh, live)
    differing: int = database.execute_sql(
        f"SELECT COUNT(*) FROM (SELECT {cols} FROM {fresh} EXCEPT SELECT {cols} FROM {live}) d"
    ).fetchall()[0][0]
    return Differences(added, only_in(live, fresh), differing - added)


def compare_tables(models: Sequence[type[peewee.Model]]) -> Differences:
    """What replace_tables would change, were it run now (a live table that is missing: all added)."""
    differences = Differences()
    for model in models:
        live, fresh = model._meta.table_name, _fresh(model)
        exists = database.table_exists(live)
        differences += _differences(model, live, fresh) if exists else Differences(added=count(fresh))
    return differences


def drop_fresh_tables(models: Sequence[type[peewee.Model]]) -> None:
    for model in models:
        database.execute_sql(f"DROP TABLE IF EXISTS {_fresh(model)}")


def replace_tables(models: Sequence[type[peewee.Model]], finish: Callable[[], None]) -> tuple[Differences, float]:
    """In one transaction: takes the live tables' lock, runs `finish` (the last writes into
    the fresh tables), then each fresh table takes its live table's name, and the model's
    indexes are made on it. Returns what changed, and for how many seconds the lock was
    held: writers of the tables wait that long (on PostgreSQL readers too; on SQLite they
    read the old tables until the commit). A live table that is missing is simply made."""
    with database.atomic():  # SQLite: BEGIN IMMEDIATE, the database's one write lock
        present = [m for m in models if database.table_exists(m._meta.table_name)]
        if present and not is_sqlite():
            # ACCESS EXCLUSIVE from the start: a weaker lock now and the DROP's later would
            # deadlock with a transaction that had read the table and then writes it.
            tables = ", ".join(m._meta.table_name for m in present)
            database.execute_sql(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")
        locked_at = time.monotonic()
        finish()
        differences = compare_tables(models)
        for model in models:
            live, fresh = model._meta.table_name, _fresh(model)
            if model in present:
                database.execute_sql(f"DROP TABLE {live}")
            database.execute_sql(f"ALTER TABLE {fresh} RENAME TO {live}")
            if not is_sqlite():
                # PostgreSQL keeps an index's name through a rename; the next rebuild's fresh table needs this one.
                database.execute_sql(f"ALTER INDEX {fresh}_pkey RENAME TO {live}_pkey")
            model._schema.create_indexes(safe=True)  # type: ignore[attr-defined]  # types-peewee lacks it
        locked_s = time.monotonic() - locked_at
    return differences, locked_s
