"""Times as the services store them (naive UTC, the same on SQLite and PostgreSQL)
and as they send them (protobuf Timestamp)."""

from __future__ import annotations

import datetime

from google.protobuf import timestamp_pb2


def utcnow() -> datetime.datetime:
    """Naive UTC, stored the same way on SQLite and PostgreSQL."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def stored(value: datetime.datetime | str) -> datetime.datetime:
    """A time as the database driver returns it from a plain query: a datetime from
    PostgreSQL's, the text it was written as (ISO 8601) from SQLite's."""
    return value if isinstance(value, datetime.datetime) else datetime.datetime.fromisoformat(value)


def from_iso(text: str) -> datetime.datetime | None:
    """An event's ISO 8601 time (ce_time) as stored: naive UTC; None when it has none."""
    if not text:
        return None
    value = datetime.datetime.fromisoformat(text)  # 3.11 reads a trailing Z too
    return value.astimezone(datetime.UTC).replace(tzinfo=None) if value.tzinfo else value


def timestamp(value: datetime.datetime | None) -> timestamp_pb2.Timestamp:
    """A stored naive-UTC time as a protobuf Timestamp."""
    ts = timestamp_pb2.Timestamp()
    if value is not None:
        ts.FromDatetime(value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value)
    return ts
