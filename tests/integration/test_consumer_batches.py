"""The event consumer applies each poll batch in ONE transaction (docs/performance.md).
What that must not change, checked with the chassis consumer on the real broker and
on each database: an event whose handler keeps failing is dead-lettered alone, every
other event of its batch is applied exactly once, and an event delivered twice in
the same batch is applied once. The outbox rows a batch's handlers record are written
together at its end (db.gathered): exactly one per applied event, in the events'
order, and none from a batch that rolled back."""

from __future__ import annotations

import logging
import random
import uuid

import peewee
import pytest

from bookrental.reservation.v1 import events_pb2
from services.chassis import db, events, kafka, outbox
from services.chassis.consumer import EventConsumer, Subscription
from services.chassis.settings import Settings
from tests.integration import topics
from tools import pgdb
from tools.client import eventually


class Applied(db.BaseModel):
    """How often the test handler applied each reservation's event."""

    reservation_id = peewee.CharField(primary_key=True)
    times = peewee.IntegerField()


@pytest.fixture
def database(stack, tmp_path):
    run = uuid.uuid4().hex[:8]
    url = (
        pgdb.create(run, ["batch"])["batch"] if stack.backend == "postgresql" else f"sqlite:///{tmp_path / 'batch.db'}"
    )
    conn = db.connect(url)
    db.create_schema(conn, [Applied])
    try:
        yield conn
    finally:
        conn.close()
        if stack.backend == "postgresql":
            pgdb.drop(run, ["batch"])


KIND = events_pb2.ReservationRequested.DESCRIPTOR.full_name


def consumer_on_a_new_topic(stack, batch: list[tuple[str, str]], apply, prepare=None) -> tuple[str, EventConsumer]:
    """A new topic holding `batch` ((reservation_id, ce_id) pairs) on one partition, all
    there before the consumer starts, so its first poll takes them as one batch; and a
    chassis consumer (not started) whose handler is `apply` (and `prepare`, its batches')."""
    topic = f"batch.t{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env(
        "batchtest",
        0,
        0,
        env={
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{stack.ports.broker}",
            "CONSUMER_GROUP": f"batch-{topic}",
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "KAFKA_MAX_POLL_INTERVAL_MS": "10000",
        },
    )
    kafka.ensure_topics(settings, [topic])
    topics.produce_many(
        stack,
        [
            (
                topic,
                "one-key",
                events_pb2.ReservationRequested(reservation_id=rid).SerializeToString(),
                events.headers(ce_id, KIND, "test", events.now_iso(), rid),
            )
            for rid, ce_id in batch
        ],
    )
    consumer = EventConsumer(
        kafka.consumer_config(settings),
        kafka.producer_config(settings),
        [topic],
        [Subscription(events_pb2.ReservationRequested, apply, prepare)],
    )
    return topic, consumer


def test_a_failing_event_is_dead_lettered_alone_and_the_rest_of_its_batch_applied_once(stack, database, caplog):
    def apply(event, _envelope):
        outbox.record("out", event.reservation_id, event)  # kept for the batch's end (gathered)
        if event.reservation_id == "poison":
            raise ValueError("this event's data breaks the handler")
        db.execute(
            "INSERT INTO applied (reservation_id, times) VALUES (?, 1)"
            " ON CONFLICT (reservation_id) DO UPDATE SET times = applied.times + 1",
            (event.reservation_id,),
        )

    # 40 events taken as one batch: a poisoned one in the middle, and the 6th event's
    # exact copy (same ce_id) a few places after it.
    batch = [(f"r{i}", events.new_event_id()) for i in range(38)] + [("poison", events.new_event_id())]
    batch.insert(12, batch[5])
    batch.insert(20, batch.pop())  # the poisoned one into the middle
    topic, consumer = consumer_on_a_new_topic(stack, batch, apply)
    with caplog.at_level(logging.INFO, logger="services.chassis.consumer"):
        consumer.start()
        try:
            dead = eventually(
                lambda: topics.read_all(stack, f"{topic}.dlq"), timeout=60, what="the poisoned event dead-lettered"
            )
            applied = eventually(
                lambda: (lambda rows: len(rows) == 38 and rows)(
                    dict(db.rows("SELECT reservation_id, times FROM applied"))
                ),
                timeout=30,
                what="the 38 other events applied",
            )
        finally:
            consumer.stop()

    assert applied == {f"r{i}": 1 for i in range(38)}  # the repeat within the batch too: once
    # The rolled-back batch's gathered rows went with it; applied one by one, each event
    # wrote its own: one row per applied event, in the order they came, none for poison.
    recorded = [key for (key,) in db.rows("SELECT key FROM outbox ORDER BY id")]
    assert recorded == list(dict.fromkeys(rid for rid, _ in batch if rid != "poison"))
    assert [topics.headers(m)["ce_id"].decode() for m in dead] == [batch[20][1]]
    assert b"ValueError" in topics.headers(dead[0])["dlq_error"]
    assert db.rows("SELECT count(*) FROM inbox") == [(38,)]  # the dead-lettered one is not claimed
    # It was one batch: rolled back as a whole, then its events applied one by one.
    rolled = [r for r in caplog.records if r.getMessage().startswith("batch rolled back")]
    assert rolled and rolled[0].events == len(batch)


def test_a_batch_writes_its_outbox_rows_together_at_its_end_in_the_events_order(stack, database, caplog):
    seen_in_batch = []

    def apply(event, _envelope):
        outbox.record("out", event.reservation_id, event)
        # Gathered: not yet in the table while the batch runs.
        seen_in_batch.append(db.rows("SELECT count(*) FROM outbox")[0][0])

    batch = [(f"r{i:03d}", events.new_event_id()) for i in range(150)]
    random.Random(7).shuffle(batch)  # the order of arrival, not of the keys
    _, consumer = consumer_on_a_new_topic(stack, batch, apply)
    with caplog.at_level(logging.INFO, logger="services.chassis.consumer"):
        consumer.start()
        try:
            recorded = eventually(
                lambda: (lambda keys: len(keys) == len(batch) and keys)(
                    [key for (key,) in db.rows("SELECT key FROM outbox ORDER BY id")]
                ),
                timeout=30,
                what="an outbox row per event",
            )
        finally:
            consumer.stop()
    assert recorded == [rid for rid, _ in batch]
    assert not [r for r in caplog.records if r.getMessage().startswith("batch rolled back")]
    # Written at once, the second event would have counted the first one's row (the
    # same transaction sees its own writes); a later batch counts the earlier ones'.
    assert seen_in_batch[:2] == [0, 0] and seen_in_batch == sorted(seen_in_batch)


def test_prepare_reads_ahead_once_per_batch_for_its_new_events_and_its_handlers_see_it(stack, database):
    prepared: list[list[str]] = []
    seen: dict[str, object] = {}

    def prepare(batch_events):
        prepared.append([e.reservation_id for e in batch_events])
        db.batch_memo().update({e.reservation_id: f"read ahead for {e.reservation_id}" for e in batch_events})

    def apply(event, _envelope):
        memo = db.batch_memo()
        seen[event.reservation_id] = memo.get(event.reservation_id) if memo is not None else None

    batch = [(f"r{i}", events.new_event_id()) for i in range(30)]
    batch.insert(8, batch[3])  # a copy: claimed once, so prepared and handled once
    _, consumer = consumer_on_a_new_topic(stack, batch, apply, prepare)
    consumer.start()
    try:
        eventually(lambda: len(seen) == 30, timeout=30, what="every event handled")
    finally:
        consumer.stop()
    assert seen == {f"r{i}": f"read ahead for r{i}" for i in range(30)}
    assert sorted(rid for call in prepared for rid in call) == sorted(f"r{i}" for i in range(30))
    assert db.batch_memo() is None  # forgotten with its batch
