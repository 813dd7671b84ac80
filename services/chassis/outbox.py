"""Transactional outbox: `record()` adds an event to the caller's open
transaction; `OutboxRelay` publishes unsent rows in id order with an
idempotent producer and marks them sent only after the broker acked them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pybreaker
from confluent_kafka import KafkaError, Message, Producer
from google.protobuf import message as pb_message

from . import db, events, metrics, tracing
from .db import OutboxMessage, database, is_transient
from .settings import Settings
from .worker import Worker

log = logging.getLogger(__name__)


_RECORDED = db.columns(OutboxMessage, without=("id", "sent_at"))  # the values record() gives, in this order
_INSERT = f"INSERT INTO outbox ({_RECORDED})"
_UNSENT = (
    f"SELECT {db.columns(OutboxMessage, without=('sent_at',))} FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?"
)


def record(topic: str, key: str, message: pb_message.Message, correlation_id: str = "") -> str:
    """Writes the event in the current transaction (in a consumer batch, with the batch's
    other rows at its end: db.gathered); returns its ce_id. The rows of one INSERT
    take ids in the order they are listed, so the relay's id order stays theirs."""
    event_id = events.new_event_id()
    db.insert_later(
        _INSERT,
        (
            event_id,
            topic,
            key,
            message.DESCRIPTOR.full_name,
            correlation_id,
            message.SerializeToString(),
            events.now_iso(),
            tracing.current_traceparent(),
        ),
    )
    return event_id


def unsent_count() -> int:
    """Rows waiting for the relay (the metrics endpoint's thread asks)."""
    with database.connection_context():
        return OutboxMessage.select().where(OutboxMessage.sent_at.is_null()).count()


class PublishError(Exception):
    pass


class OutboxRelay(Worker):
    def __init__(
        self, settings: Settings, producer_config: dict[str, Any], batch_size: int = 500, poll_interval_s: float = 0.5
    ) -> None:
        self.settings = settings
        self.producer = Producer(producer_config)
        # Broker trouble opens the breaker: the relay stops hammering it and the
        # rows wait safely in the outbox until a trial publish succeeds.
        self.breaker = metrics.watch_breaker(
            pybreaker.CircuitBreaker(fail_max=3, reset_timeout=2, name="outbox-publish")
        )
        super().__init__(
            "outbox-relay",
            self._round,
            poll_interval_s,
            on_error=self._on_error,
            on_exit=lambda: self.producer.flush(5),
            batch_size=batch_size,
        )

    def _round(self) -> int:
        # Woken by a commit, wait a moment for the commits right behind it: one round
        # and one produce request then carry them all (Kafka's linger.ms, which our
        # flush() would skip): less broker CPU, the same end-to-end latency
        # (docs/performance.md, "Figures behind choices in the code").
        self._stop.wait(self.settings.outbox_linger_ms / 1000)
        return self.breaker.call(self.publish_batch)

    @staticmethod
    def _on_error(exc: Exception) -> None:
        if is_transient(exc):
            database.close()  # a broken connection is reopened on the next round
        if not isinstance(exc, pybreaker.CircuitBreakerError):
            log.warning("outbox publish failed; rows stay unsent", extra={"error": str(exc)})

    def publish_batch(self) -> int:
        # The relay thread keeps its own connection (peewee's are per thread): a fresh
        # one per poll costs PostgreSQL far more than the query (docs/performance.md).
        rows = db.rows(_UNSENT, (self.batch_size,))
        if not rows:
            return 0
        acked: list[int] = []
        failures: list[str] = []

        def on_delivery(row_id: int) -> Callable[[KafkaError | None, Message], None]:
            def callback(err: KafkaError | None, _msg: Message) -> None:
                if err is None:
                    acked.append(row_id)
                else:
                    failures.append(str(err))

            return callback

        for row_id, event_id, topic, key, event_type, correlation_id, payload, occur_time, traceparent in rows:
            self.producer.produce(
                topic,
                key=key.encode(),
                value=bytes(payload),
                # list is invariant: the stub's list[tuple[str, str | bytes | None]] refuses list[tuple[str, bytes]]
                headers=events.headers(
                    event_id,
                    event_type,
                    self.settings.service,  # type: ignore[arg-type]
                    occur_time,
                    correlation_id,
                    traceparent or "",
                ),
                on_delivery=on_delivery(row_id),
            )
            self.producer.poll(0)
        left = self.producer.flush(20)
        if acked:
            db.execute(
                f"UPDATE outbox SET sent_at = ? WHERE id IN ({db.placeholders(len(acked))})", [time.time(), *acked]
            )
        if failures or left:
            raise PublishError(f"{len(acked)} of {len(rows)} acked; {left} unresolved; errors: {failures[:3]}")
        log.debug("published outbox rows", extra={"count": len(acked)})
        return len(acked)
