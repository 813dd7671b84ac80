"""Reading and writing the stack's Kafka topics directly, as a misbehaving or
newer producer would: what the delivery and race tests need to inject events
and to read back what the services published or dead-lettered."""

from __future__ import annotations

import uuid

from confluent_kafka import Producer

from services.alert import entrypoints as alert_entrypoints
from services.reservation import entrypoints as reservation_entrypoints
from services.stock import entrypoints as stock_entrypoints
from tools import dlq

# The event types each service handles, read from its own subscriptions (so a new
# event type a service starts to consume is missing from the tests until it is covered).
CONSUMED = {
    service: {s.message_class.DESCRIPTOR.full_name for s in module.subscriptions(None)}
    for service, module in (
        ("stock", stock_entrypoints),
        ("reservation", reservation_entrypoints),
        ("alert", alert_entrypoints),
    )
}

# The two that only stock's deadline scanner causes (a deadline or a due time passing),
# so only a stack with short deadlines sees them (test_hold_deadlines).
SCANNED = {"bookrental.stock.v1.StockHoldExpired", "bookrental.stock.v1.StockLoanOverdue"}


def _bootstrap(stack) -> str:
    return f"127.0.0.1:{stack.ports.broker}"


def produce(stack, topic: str, key: str | bytes, value: bytes, headers) -> tuple[int, int]:
    """Publishes one message, waits for the broker's ack; returns its (partition, offset)."""
    return produce_many(stack, [(topic, key, value, headers)])[0]


def produce_many(stack, messages) -> list[tuple[int, int]]:
    """Publishes (topic, key, value, headers) messages in order with one producer
    (starting one per message dominated the tests that inject many), waits for the
    broker's acks; returns their (partition, offset)s."""
    producer = Producer({"bootstrap.servers": _bootstrap(stack), "enable.idempotence": True})
    delivered = []
    for topic, key, value, headers in messages:
        producer.produce(
            topic,
            key=key.encode() if isinstance(key, str) else key,
            value=value,
            headers=headers,
            on_delivery=lambda err, msg: delivered.append((err, msg)),
        )
    assert producer.flush(10) == 0, "messages not acknowledged"
    assert len(delivered) == len(messages) and all(err is None for err, _ in delivered), delivered
    return [(msg.partition(), msg.offset()) for _, msg in delivered]


def read_all(stack, topic: str) -> list:
    """Every message the topic holds now, read to each partition's end without a group join."""
    return [
        msg
        for _consumer, msg in dlq.read(
            _bootstrap(stack), topic, f"test-reader-{uuid.uuid4().hex}", from_committed=False
        )
    ]


def headers(msg) -> dict[str, bytes]:
    return dict(msg.headers() or [])
