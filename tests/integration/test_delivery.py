"""Delivery guarantees of the shared consumer loop, on the real broker: a
redelivered event changes nothing, an undecodable message is dead-lettered
without blocking its partition, and an unknown event type is skipped."""
from __future__ import annotations

import uuid

from confluent_kafka import Consumer, Producer

from bookrental.reservation.v1 import events_pb2
from services.chassis import events

from tools.client import eventually


def produce(stack, topic, key, value, headers):
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{stack.ports.broker}", "enable.idempotence": True})
    producer.produce(topic, key=key.encode(), value=value, headers=headers)
    assert producer.flush(10) == 0


def requested(stack, book_id, user_id, event_id=None, event_type=None, value=None):
    reservation_id = str(uuid.uuid4())
    msg = events_pb2.ReservationRequested(reservation_id=reservation_id, user_id=user_id, book_id=book_id)
    event_id = event_id or events.new_event_id()
    produce(stack, stack.env["RESERVATION_TOPIC"], book_id, msg.SerializeToString() if value is None else value,
            events.headers(event_id, event_type or msg.DESCRIPTOR.full_name, "test", events.now_iso(),
                           reservation_id))
    return reservation_id, event_id


def stock_available(gateway, manager, book_id):
    return gateway.get(f"/v1/stocks/{book_id}", manager).json()["stock"]["available"]


def test_a_redelivered_event_changes_nothing(stack, gateway, manager, stocked_book):
    book_id = stocked_book(5)
    _, event_id = requested(stack, book_id, "dup-user")
    eventually(lambda: stock_available(gateway, manager, book_id) == 4, what="first delivery applied")
    # The same ce_id again (as after a crash before the offset commit), carrying another
    # reservation id so that only the inbox can stop it; then a marker event.
    requested(stack, book_id, "dup-user", event_id=event_id)
    requested(stack, book_id, "marker-user")
    eventually(lambda: stock_available(gateway, manager, book_id) == 3, what="marker applied")
    assert stock_available(gateway, manager, book_id) == 3  # not 2: the duplicate took no copy


def test_an_undecodable_message_is_dead_lettered_and_the_partition_moves_on(stack, gateway, manager, stocked_book):
    book_id = stocked_book(5)
    topic = stack.env["RESERVATION_TOPIC"]
    bad_id = events.new_event_id()
    # Same key as the marker that follows, so both land on one partition.
    produce(stack, topic, book_id, b"\xff\xff not protobuf",
            events.headers(bad_id, "bookrental.reservation.v1.ReservationRequested", "test", events.now_iso(), ""))
    requested(stack, book_id, "after-poison")
    eventually(lambda: stock_available(gateway, manager, book_id) == 4, what="message after the poison handled")

    dlq = Consumer({"bootstrap.servers": f"127.0.0.1:{stack.ports.broker}", "group.id": f"dlq-{uuid.uuid4()}",
                    "auto.offset.reset": "earliest", "fetch.wait.max.ms": 10, "session.timeout.ms": 6000})
    dlq.subscribe([f"{topic}.dlq"])
    try:
        def find():
            msg = dlq.poll(0.5)
            if msg is None or msg.error():
                return None
            headers = dict(msg.headers())
            return headers if headers.get("ce_id") == bad_id.encode() else None
        headers = eventually(find, timeout=20, what="poison message in the DLQ")
    finally:
        dlq.close()
    assert b"cannot decode" in headers["dlq_error"]
    assert headers["dlq_topic"] == topic.encode()


def test_an_unknown_event_type_is_skipped(stack, gateway, manager, stocked_book):
    book_id = stocked_book(5)
    requested(stack, book_id, "future-user", event_type="bookrental.reservation.v1.ReservationTeleported")
    requested(stack, book_id, "present-user")
    eventually(lambda: stock_available(gateway, manager, book_id) == 4, what="event after the unknown type handled")
    log = (stack.logs / "stock.log").read_text()
    assert "skipping event of unknown type" in log and "ReservationTeleported" in log
