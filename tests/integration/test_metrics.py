"""What an operator reads on each service's /metrics: RPC counts and latency by
method and code, consumer lag per partition, outbox backlog, dead-lettered
messages and breaker state."""
from __future__ import annotations

import math

from confluent_kafka import Producer

from services.chassis import events
from services.chassis.settings import Settings
from tools.client import eventually, scrape


def value(samples, name, **labels) -> float | None:
    for got, v in samples.get(name, []):
        if all(got.get(k) == str(want) for k, want in labels.items()):
            return v
    return None


def test_rpcs_are_counted_and_timed_by_method_and_code(stack, gateway, token, stocked_book):
    book_id = stocked_book(1)
    alice = token("metrics-alice")
    before = value(scrape(stack.ports.reservation_metrics), "bookrental_rpc_total",
                   method="CreateReservation", code="ALREADY_EXISTS") or 0
    assert gateway.post("/v1/reservations", {"bookId": book_id}, alice).status == 200
    assert gateway.post("/v1/reservations", {"bookId": book_id}, alice).status == 409
    samples = scrape(stack.ports.reservation_metrics)
    assert value(samples, "bookrental_rpc_total", method="CreateReservation", code="ALREADY_EXISTS") == before + 1
    assert value(samples, "bookrental_rpc_total", method="CreateReservation", code="OK") >= 1
    assert value(samples, "bookrental_rpc_seconds_count", method="CreateReservation", code="OK") >= 1
    assert value(samples, "bookrental_rpc_seconds_bucket", method="CreateReservation", code="OK", le="+Inf") >= 1


def test_consumer_lag_is_exported_per_partition_and_drains_to_zero(stack, stocked_book):
    stocked_book(1)  # a stock event for reservation and alert to consume
    partitions = Settings.from_env("reservation", 0, 0, env=stack.env).topic_partitions

    def lags():
        samples = scrape(stack.ports.reservation_metrics)
        got = {(labels["topic"], labels["partition"]): v for labels, v in samples.get("bookrental_consumer_lag", [])
               if labels["group"] == stack.consumer_group("reservation")}
        topic = stack.env["STOCK_TOPIC"]
        # Every partition (as many as the services create) is assigned to the one
        # replica; statistics arrive every 5 s. A partition's lag is known once the
        # consumer fetched it (empty ones too).
        mine = {p: v for (t, p), v in got.items() if t == topic}
        return mine if len(mine) == partitions and all(v == 0 for v in mine.values()) else None
    eventually(lags, timeout=20, interval=0.5, what="lag 0 on every partition of the stock topic")


def test_outbox_backlog_is_zero_once_the_relay_published(stack, stocked_book):
    stocked_book(2)  # stock wrote outbox rows and reservation saw them: they were published
    for port in (stack.ports.stock_metrics, stack.ports.reservation_metrics):
        eventually(lambda: value(scrape(port), "bookrental_outbox_unsent") == 0, what="empty outbox backlog")


def test_a_dead_lettered_message_is_counted(stack, gateway, manager, stocked_book):
    book_id = stocked_book(1)
    topic = stack.env["RESERVATION_TOPIC"]
    before = value(scrape(stack.ports.stock_metrics), "bookrental_dead_lettered_total", topic=topic)
    assert before is not None  # exported at 0 before the first one, so rate() works from the start
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{stack.ports.broker}"})
    producer.produce(topic, key=book_id.encode(), value=b"\xff not protobuf",
                     headers=events.headers(events.new_event_id(), "bookrental.reservation.v1.ReservationRequested",
                                            "test", events.now_iso(), ""))
    assert producer.flush(10) == 0
    eventually(lambda: value(scrape(stack.ports.stock_metrics), "bookrental_dead_lettered_total",
                             topic=topic) == before + 1, what="dead-letter counted")


def test_the_relay_breaker_is_closed_on_a_healthy_system(stack):
    for port in (stack.ports.reservation_metrics, stack.ports.stock_metrics, stack.ports.alert_metrics):
        samples = scrape(port)
        assert value(samples, "bookrental_breaker_state", breaker="outbox-publish") == 0
        assert value(samples, "bookrental_breaker_opened_total", breaker="outbox-publish") == 0
        assert not math.isnan(value(samples, "bookrental_outbox_unsent"))
