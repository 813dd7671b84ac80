"""Bounded tables (services/chassis/purge.py), on each database, with the clock moved
forward instead of waiting: sent outbox rows and inbox records older than the retention
window are deleted, at most a batch per statement; unsent rows, and rows inside the
window, stay; the inbox still refuses a recent event delivered again; the metrics show
what the tables hold. The chassis alone on a database of the test's own (no broker):
rows written by outbox.record and the consumer's inbox claim, marked sent by the
relay's statement."""

from __future__ import annotations

import time
import types

import pytest
from prometheus_client import REGISTRY

from bookrental.reservation.v1 import events_pb2
from services.chassis import consumer, db, events, outbox, purge
from services.chassis.consumer import EventConsumer
from tools.client import eventually

from .backends import BACKENDS, own_database
from .conftest import require_backend

WINDOW = 15 * 86400
MESSAGE = events_pb2.ReservationRequested(reservation_id="r-1", book_id="b-1", user_id="u-1")
KIND = MESSAGE.DESCRIPTOR.full_name


class Clock:
    """The time the purge and the inbox read; moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path, infra):
    require_backend(request.param, infra)
    with own_database("purge", [], sqlite_dir=tmp_path if request.param == "sqlite" else None):
        yield request.param


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """The clock, which the consumer's inbox claim reads too (it stamps processed_at)."""
    c = Clock()
    monkeypatch.setattr(consumer, "time", types.SimpleNamespace(time=c))
    return c


def publish(count: int) -> list[int]:
    """`count` events recorded as a use case records them (unsent); their outbox ids."""
    with db.database.atomic():
        for i in range(count):
            outbox.record("purge.test", f"k{i}", MESSAGE, f"r{i}")
    return sorted(i for (i,) in db.rows("SELECT id FROM outbox ORDER BY id DESC LIMIT ?", (count,)))


def mark_sent(ids: list[int], at: float) -> None:
    """The relay's statement once the broker acked these rows."""
    db.execute(f"UPDATE outbox SET sent_at = ? WHERE id IN ({db.placeholders(len(ids))})", [at, *ids])


def envelope(event_id: str) -> events.Envelope:
    return events.Envelope(event_id, KIND, "test", events.now_iso(), "")


def apply(count: int) -> list[str]:
    """`count` events claimed in the inbox as the consumer claims a batch's; their ids."""
    ids = [events.new_event_id() for _ in range(count)]
    for i in range(0, count, 200):  # the consumer's largest batch
        with db.database.atomic():
            assert EventConsumer._claim([envelope(e) for e in ids[i : i + 200]]) == set(ids[i : i + 200])
    return ids


def claimed_again(event_id: str) -> bool:
    """A redelivery of the event: True if the inbox takes it as new."""
    with db.database.atomic():
        return bool(EventConsumer._claim([envelope(event_id)]))


def outbox_ids() -> set[int]:
    return {i for (i,) in db.rows("SELECT id FROM outbox")}


def inbox_ids() -> set[str]:
    return {e for (e,) in db.rows("SELECT event_id FROM inbox")}


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    assert value is not None, f"{name}{labels} is not exported"
    return value


def purged(table: str) -> float:
    return sample("bookrental_purged_rows_total", table=table)


class Statements:
    """The purge's DELETE statements and the rows each deleted."""

    def __init__(self, monkeypatch) -> None:
        self.deleted: list[tuple[str, int]] = []
        rows = db.rows

        def counting(sql, params=()):
            got = rows(sql, params)
            if "DELETE FROM" in sql:
                self.deleted.append((sql.split("DELETE FROM ")[1].split()[0], len(got)))
            return got

        monkeypatch.setattr(purge.db, "rows", counting)

    def of(self, table: str) -> list[int]:
        return [n for t, n in self.deleted if t == table]


def test_old_sent_rows_and_inbox_records_go_in_batches_unsent_and_recent_ones_stay(database, clock, monkeypatch):
    # The window (15 days) and a minute ago: 1200 events recorded, all sent but two that
    # stuck in the outbox's head and the last 150 (the relay away); 1100 events applied.
    old = publish(1200)
    stuck = [old[99], old[599]]
    backlog = old[-150:]
    old_sent = [i for i in old if i not in stuck and i not in backlog]
    mark_sent(old_sent, clock())
    old_applied = apply(1100)
    # Two minutes later, so a minute inside the window now: 10 sent and 10 applied.
    clock.advance(120)
    inside = publish(10)
    mark_sent(inside, clock())
    inside_applied = apply(10)
    # Now: 300 recorded, 250 of them sent; 200 applied.
    clock.advance(WINDOW - 60)
    recent = publish(300)
    mark_sent(recent[:250], clock())
    recent_applied = apply(200)
    before = {"outbox": purged("outbox"), "inbox": purged("inbox")}

    task = purge.Purge(WINDOW, clock)
    statements = Statements(monkeypatch)
    rounds = [task.step()]
    while rounds[-1] >= task.batch_size:  # as the periodic task runs them
        rounds.append(task.step())
        assert len(rounds) < 20, "the purge does not finish"

    assert outbox_ids() == set(stuck + backlog + inside + recent)  # no unsent row, nothing inside the window
    assert inbox_ids() == set(inside_applied + recent_applied)
    # In batches of at most 500 per statement, full until the last (the stuck rows take
    # no place in a batch); then the rows counted.
    assert statements.of("outbox") == [500, 500, len(old_sent) - 1000] and task.batch_size == purge.BATCH == 500
    assert statements.of("inbox") == [500, 500, len(old_applied) - 1000]
    assert rounds == [1000, 1000, len(old_sent) + len(old_applied) - 2000]
    assert sum(statements.of("outbox")) == len(old_sent) == purged("outbox") - before["outbox"]
    assert sum(statements.of("inbox")) == len(old_applied) == purged("inbox") - before["inbox"]
    # The sizes as the purge counted them once it was done (the unsent rows are
    # bookrental_outbox_unsent's, counted per scrape).
    assert sample("bookrental_outbox_sent_rows") == len(inside) + 250
    assert sample("bookrental_inbox_rows") == len(inside_applied) + len(recent_applied)
    # Done: another round deletes nothing.
    assert task.step() == 0 and outbox_ids() == set(stuck + backlog + inside + recent)

    # A recent event delivered again is still refused, one inside the window too; one
    # past the window would be applied again: why the window outlasts Kafka's redeliveries.
    assert not claimed_again(recent_applied[0])
    assert not claimed_again(inside_applied[0])
    assert claimed_again(old_applied[0])


def test_the_services_periodic_purge_works_a_backlog_off_then_waits_its_interval(database, clock):
    """As app.serve runs it: batch after batch at once while they are full, and then
    nothing until the next interval."""
    mark_sent(publish(2600), clock())
    apply(1300)
    clock.advance(WINDOW + 1)
    ok = {"task": "purge", "result": "ok"}
    before = REGISTRY.get_sample_value("bookrental_periodic_rounds_total", ok) or 0
    worker = purge.periodic(WINDOW, clock, interval_s=30)
    worker.start()
    try:
        eventually(lambda: not outbox_ids() and not inbox_ids(), timeout=30, what="both tables purged")
        # 2600 + 1300 rows: rounds of 1000, 1000, 800, 500, 500 and a short one of 100.
        eventually(lambda: sample("bookrental_periodic_rounds_total", **ok) - before == 6, what="six rounds")
        time.sleep(0.3)
        assert sample("bookrental_periodic_rounds_total", **ok) - before == 6, "a round after a short one"
        assert sample("bookrental_outbox_sent_rows") == sample("bookrental_inbox_rows") == 0
    finally:
        worker.stop(timeout=5)
