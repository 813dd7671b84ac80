"""How fresh a read model is: each partition's consumer position (db.ConsumerPosition),
written by the consumer as it applies events, read by the RPCs that answer from what
those events built, so a client can tell "0 available" from "not caught up yet"."""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from collections.abc import Sequence

from confluent_kafka import Message
from prometheus_client import Gauge

from . import db

LAST_EVENT_TIME = Gauge(
    "bookrental_consumer_last_event_time_seconds",
    "When the newest event this replica applied happened (its ce_time), per topic: now minus it is how stale",
    ["topic"],
)

_last_event: dict[str, float] = {}  # what LAST_EVENT_TIME shows, per topic (the consumer thread writes it)
_COLUMNS = db.columns(db.ConsumerPosition)  # topic, partition_id, applied_offset, event_time, pending, as_of
# One statement per batch, a row per partition: the newest event applied, and how many
# events stood behind it when the batch was read.
_UPSERT = (
    f"INSERT INTO consumer_position ({_COLUMNS}) VALUES {{}}"
    " ON CONFLICT (topic, partition_id) DO UPDATE SET applied_offset = excluded.applied_offset,"
    " event_time = excluded.event_time,"
    " pending = excluded.pending, as_of = excluded.as_of"
)
# Between batches (every statistics interval): the partition's end as the consumer sees it.
_PENDING = (
    "UPDATE consumer_position SET pending = CASE WHEN ? > applied_offset + 1 THEN ? - applied_offset - 1 ELSE 0 END,"
    " as_of = ? WHERE topic = ? AND partition_id = ?"
)
_FRESHNESS = "SELECT MAX(event_time), SUM(pending), MIN(as_of), COUNT(*) FROM consumer_position WHERE topic = ?"


@dataclasses.dataclass(frozen=True)
class Freshness:
    last_event_time: str  # ISO time of the newest event applied from the topic ("" if none yet)
    pending: int  # events of the topic published but not yet applied, as of `as_of`
    as_of: float | None  # when that was known (epoch seconds); None before any position


def record(msgs: Sequence[Message], times: Sequence[str], high: dict[tuple[str, int], int]) -> None:
    """In the batch's transaction: each partition's newest message of `msgs` (their
    ce_time in `times`, the same order) and the partition's end in `high`."""
    newest: dict[tuple[str, int], tuple[int, str]] = {}
    for msg, at in zip(msgs, times, strict=True):
        key = (msg.topic() or "", msg.partition() or 0)
        offset = msg.offset() or 0
        if key not in newest or offset > newest[key][0]:
            newest[key] = (offset, at)
    now = time.time()
    for (topic, _), (_, at) in newest.items():
        if at and (t := datetime.datetime.fromisoformat(at).timestamp()) > _last_event.get(topic, 0.0):
            _last_event[topic] = t
            LAST_EVENT_TIME.labels(topic).set(t)
    rows = [
        (topic, partition, offset, at, max(high.get((topic, partition), offset + 1) - offset - 1, 0), now)
        for (topic, partition), (offset, at) in newest.items()
    ]
    db.execute(_UPSERT.format(db.values(6, len(rows))), [v for r in rows for v in r])


def record_pending(stats_json: str) -> None:
    """librdkafka's statistics: each assigned partition's end against what was applied."""
    try:
        stats = json.loads(stats_json)
    except ValueError:
        return
    now = time.time()
    for topic, t in stats.get("topics", {}).items():
        for partition, p in t.get("partitions", {}).items():
            high = p.get("hi_offset", -1)
            if partition == "-1" or high < 0:
                continue
            db.execute(_PENDING, (high, high, now, topic, int(partition)))


def freshness(topic: str) -> Freshness:
    ((last, pending, as_of, known),) = db.rows(_FRESHNESS, (topic,))
    return Freshness(last or "", int(pending or 0), float(as_of) if known else None)
