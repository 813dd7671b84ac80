"""Poison messages and events from a newer producer, on each consumed topic,
through the real broker, services and Envoy.

- an undecodable message goes to `<topic>.dlq` (once per consuming service, the
  error in the `dlq_error` header, the original bytes kept) and the events after
  it on its partition are still handled by every service that consumes it;
- an event of an unknown type (a newer producer's) is skipped with a log line, not
  dead-lettered, not fatal: test_contract_events.py, for every consumer as its
  subscriptions say."""

from __future__ import annotations

import json
import uuid

import pytest

from bookrental.reservation.v1 import events_pb2 as reservation_events
from bookrental.stock.v1 import events_pb2 as stock_events
from services.chassis import events
from tests.integration import flows, topics
from tools.client import eventually

# Which services consume each topic (services/*/bootstrap.py), and a type they all handle.
TOPICS = {
    "RESERVATION_TOPIC": (["stock"], reservation_events.ReservationRequested),
    "STOCK_TOPIC": (["reservation", "alert"], stock_events.StockReserved),
}


def envelope(event_type: str, event_id: str | None = None):
    return events.headers(event_id or events.new_event_id(), event_type, "test", events.now_iso(), "")


def the_next_reservation_is_handled_by_everyone(gateway, manager, token, book_id, start: int) -> None:
    """A reservation made after the injected message: its ReservationRequested follows
    it on the reservation topic and its StockReserved on the stock topic (same key,
    same partition), so stock, reservation and alert must each have got past it."""
    customer = token(f"after-{uuid.uuid4().hex[:8]}")
    rid = flows.reserve(gateway, customer, book_id)
    flows.settled(gateway, customer, rid, flows.CONFIRMED)  # stock, then reservation
    assert flows.stock(gateway, manager, book_id)["available"] == start - 1  # stock
    assert flows.book_available(gateway, book_id) == start - 1  # reservation (book view)
    eventually(
        lambda: flows.notification_count(gateway, customer) == 1,  # alert
        what="the customer notified of the reservation after it",
    )


@pytest.mark.parametrize("topic_env", TOPICS)
def test_undecodable_messages_are_dead_lettered_and_the_partition_moves_on(
    stack, gateway, manager, token, stocked_book, topic_env
):
    consumers, handled_type = TOPICS[topic_env]
    topic = stack.env[topic_env]
    book_id = stocked_book(3)
    # Two kinds of poison, keyed like the reservation that follows (same partition):
    # a known type whose bytes are not its protobuf, and a message with no envelope at all.
    garbage_id = events.new_event_id()
    garbage = (b"\xff\xff not protobuf " + garbage_id.encode(), envelope(handled_type.DESCRIPTOR.full_name, garbage_id))
    bare = (json.dumps({"book_id": book_id, "id": str(uuid.uuid4())}).encode(), [])
    sent = {value: topics.produce(stack, topic, book_id, value, hdrs) for value, hdrs in (garbage, bare)}

    the_next_reservation_is_handled_by_everyone(gateway, manager, token, book_id, start=3)

    # Dead-lettering is flushed before a consumer moves on, so the copies are there by now.
    dead = [m for m in topics.read_all(stack, f"{topic}.dlq") if m.value() in sent]
    for value, (partition, offset) in sent.items():
        copies = [topics.headers(m) for m in dead if m.value() == value]
        # Exactly one copy from each consuming service, the original bytes and key kept.
        assert sorted(h["dlq_consumer_group"].decode() for h in copies) == sorted(
            map(stack.consumer_group, consumers)
        ), copies
        assert all(m.key() == book_id.encode() for m in dead if m.value() == value)
        for h in copies:
            assert h["dlq_topic"] == topic.encode()
            assert (int(h["dlq_partition"]), int(h["dlq_offset"])) == (partition, offset)
    garbage_errors = {topics.headers(m)["dlq_error"].decode() for m in dead if m.value() == garbage[0]}
    bare_errors = {topics.headers(m)["dlq_error"].decode() for m in dead if m.value() == bare[0]}
    assert all(e.startswith(f"cannot decode {handled_type.DESCRIPTOR.full_name}:") for e in garbage_errors), (
        garbage_errors
    )
    assert bare_errors == {"missing CloudEvents headers: ce_specversion, ce_id, ce_type"}
    for instance in consumers:
        assert flows.serving(stack, instance)
