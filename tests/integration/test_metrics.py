"""What an operator reads on each service's /metrics: RPC counts and latency by
method and code, consumer lag per partition, outbox backlog, dead-lettered
messages, breaker state, and the sizes of the outbox and inbox its purge keeps."""

from __future__ import annotations

import contextlib
import math
import sqlite3

from confluent_kafka import Producer

from services.chassis import events
from services.chassis.settings import Settings
from tests.integration import flows
from tests.integration.backends import ONE_STACK
from tools.client import eventually, scrape


def value(samples, name, **labels) -> float | None:
    for got, v in samples.get(name, []):
        if all(got.get(k) == str(want) for k, want in labels.items()):
            return v
    return None


def test_rpcs_are_counted_and_timed_by_method_and_code(stack, gateway, token, stocked_book):
    book_id = stocked_book(1)
    alice = token("metrics-alice")
    before = (
        value(
            scrape(stack.ports.reservation_metrics),
            "bookrental_rpc_total",
            method="CreateReservation",
            code="ALREADY_EXISTS",
        )
        or 0
    )
    assert gateway.post("/v1/reservations", {"bookId": book_id}, alice).status == 200
    assert gateway.post("/v1/reservations", {"bookId": book_id}, alice).status == 409
    samples = scrape(stack.ports.reservation_metrics)
    assert value(samples, "bookrental_rpc_total", method="CreateReservation", code="ALREADY_EXISTS") == before + 1
    assert value(samples, "bookrental_rpc_total", method="CreateReservation", code="OK") >= 1
    assert value(samples, "bookrental_rpc_seconds_count", method="CreateReservation", code="OK") >= 1
    assert value(samples, "bookrental_rpc_seconds_bucket", method="CreateReservation", code="OK", le="+Inf") >= 1


def test_consumer_lag_is_exported_per_partition_and_drains_to_zero(stack, gateway, manager, new_id):
    """A backlog first: with reservation stopped, stock events wait for its group on the
    broker (its committed offsets behind the high watermarks, the quantity the metric
    exports). Then the drain: started again, it applies them (the book list shows the
    copies) and its exported lag is 0 on every partition of the stock topic."""
    group, topic = stack.consumer_group("reservation"), stack.env["STOCK_TOPIC"]
    partitions = Settings.from_env("reservation", 0, 0, env=stack.env).topic_partitions
    books = [new_id("lag") for _ in range(3)]
    with flows.stopped(stack, "reservation"):
        before = stack.group_lag(group, [(topic, p) for p in range(partitions)])
        for book_id in books:
            assert gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 2, "title": "Lag"}, manager).status == 200
        eventually(
            lambda: stack.group_lag(group, [(topic, p) for p in range(partitions)]) == before + len(books),
            timeout=10,
            what=f"a backlog of {len(books)} stock events for {group}",
        )
    for book_id in books:
        eventually(
            lambda book_id=book_id: gateway.get(f"/v1/books/{book_id}").status == 200,
            what=f"{book_id} applied after the restart",
        )

    def lags():
        samples = scrape(stack.ports.reservation_metrics)
        got = {
            (labels["topic"], labels["partition"]): v
            for labels, v in samples.get("bookrental_consumer_lag", [])
            if labels["group"] == group
        }
        # Every partition (as many as the services create) is assigned to the one
        # replica; statistics arrive every 5 s. A partition's lag is known once the
        # consumer fetched it (empty ones too).
        mine = {p: v for (t, p), v in got.items() if t == topic}
        return mine if len(mine) == partitions and all(v == 0 for v in mine.values()) else None

    eventually(lags, timeout=20, interval=0.5, what="lag 0 on every partition of the stock topic")
    assert stack.group_lag(group, [(topic, p) for p in range(partitions)]) == 0


def test_outbox_backlog_is_zero_once_the_relay_published(stack, stocked_book):
    stocked_book(2)  # stock wrote outbox rows and reservation saw them: they were published
    for port in (stack.ports.stock_metrics, stack.ports.reservation_metrics):
        eventually(lambda port=port: value(scrape(port), "bookrental_outbox_unsent") == 0, what="empty outbox backlog")


def test_every_service_runs_its_purge_and_exports_its_outbox_and_inbox_sizes(stack):
    """The purge (services/chassis/purge.py, its behaviour in test_bounded_tables.py)
    runs in every service from its start: a round counted, the tables' sizes exported,
    and nothing purged yet on a stack younger than the retention window."""
    for port in (stack.ports.reservation_metrics, stack.ports.stock_metrics, stack.ports.alert_metrics):
        eventually(
            lambda port=port: value(scrape(port), "bookrental_periodic_rounds_total", task="purge", result="ok"),
            what=f"a purge round on :{port}",
        )
        samples = scrape(port)
        assert value(samples, "bookrental_outbox_sent_rows") >= 0
        assert value(samples, "bookrental_inbox_rows") >= 0
        assert value(samples, "bookrental_purged_rows_total", table="outbox") == 0
        assert value(samples, "bookrental_purged_rows_total", table="inbox") == 0


def test_a_dead_lettered_message_is_counted(stack, gateway, manager, stocked_book):
    book_id = stocked_book(1)
    topic = stack.env["RESERVATION_TOPIC"]
    before = value(scrape(stack.ports.stock_metrics), "bookrental_dead_lettered_total", topic=topic)
    assert before is not None  # exported at 0 before the first one, so rate() works from the start
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{stack.ports.broker}"})
    producer.produce(
        topic,
        key=book_id.encode(),
        value=b"\xff not protobuf",
        headers=events.headers(
            events.new_event_id(), "bookrental.reservation.v1.ReservationRequested", "test", events.now_iso(), ""
        ),
    )
    assert producer.flush(10) == 0
    eventually(
        lambda: value(scrape(stack.ports.stock_metrics), "bookrental_dead_lettered_total", topic=topic) == before + 1,
        what="dead-letter counted",
    )


@ONE_STACK  # the row is written into alert's SQLite file
def test_the_relay_breaker_opens_on_a_row_it_cannot_publish_and_closes_after(stack):
    """The outbox-publish breaker counted over this test's own window: a row the broker
    refuses (a topic name Kafka does not allow) written into alert's outbox (alert
    publishes nothing of its own, so nothing else waits behind it) fails the relay's
    rounds; after fail_max (3) the breaker opens and bookrental_breaker_opened_total
    rises. With the row gone, a trial round succeeds and the breaker is closed again."""
    port = stack.ports.alert_metrics

    def breaker():
        samples = scrape(port)
        return (
            value(samples, "bookrental_breaker_state", breaker="outbox-publish"),
            value(samples, "bookrental_breaker_opened_total", breaker="outbox-publish"),
        )

    state, opened_before = breaker()
    assert state == 0 and opened_before is not None
    path = stack.database_url("alert").split("sqlite:///", 1)[1]
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db, db:
        db.execute(
            "INSERT INTO outbox (event_id, topic, key, event_type, correlation_id, payload, occur_time)"
            " VALUES (?, 'not a topic!', 'k', 'test.Poison', '', x'00', '2024-01-01T00:00:00Z')",
            (events.new_event_id(),),
        )
    try:
        eventually(
            lambda: breaker() == (2, opened_before + 1),
            timeout=30,
            interval=0.2,
            what="outbox-publish breaker open (state 2) and counted once more",
        )
    finally:
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as db, db:
            db.execute("DELETE FROM outbox WHERE event_type = 'test.Poison'")
    eventually(lambda: breaker()[0] == 0, timeout=15, what="outbox-publish breaker closed again")
    assert value(scrape(port), "bookrental_outbox_unsent") == 0


@ONE_STACK
def test_the_relay_breakers_stay_closed_while_events_flow(stack, gateway, manager, new_id):
    """On a healthy system, over this test's own window (not the session's): events
    published by stock and reservation open no breaker."""
    ports = (stack.ports.reservation_metrics, stack.ports.stock_metrics)
    opened = [value(scrape(p), "bookrental_breaker_opened_total", breaker="outbox-publish") for p in ports]
    book_id = new_id("breaker")
    assert gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 1, "title": "Breaker"}, manager).status == 200
    eventually(lambda: gateway.get(f"/v1/books/{book_id}").status == 200, what=f"{book_id} in the book list")
    for port, before in zip(ports, opened, strict=True):
        samples = scrape(port)
        assert value(samples, "bookrental_breaker_state", breaker="outbox-publish") == 0
        assert value(samples, "bookrental_breaker_opened_total", breaker="outbox-publish") == before
        assert not math.isnan(value(samples, "bookrental_outbox_unsent"))
