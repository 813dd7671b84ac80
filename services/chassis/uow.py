"""Unit of work: one database transaction in which state changes and the
events they cause (outbox rows) commit together, or not at all."""
from __future__ import annotations

from typing import Callable

from google.protobuf import message as pb_message

from . import outbox
from .db import database


class UnitOfWork:
    def __init__(self, on_commit: Callable[[], None] = lambda: None):
        self._on_commit = on_commit
        self._tx = None
        self._wrote = False

    def __enter__(self) -> "UnitOfWork":
        # Inside the consumer's batch transaction a use case joins it rather than open
        # a savepoint (two statements per event): a failure rolls the batch back and
        # the consumer applies its events one by one.
        self._tx = None if database.in_transaction() else database.atomic()
        if self._tx is not None:
            self._tx.__enter__()
        self._wrote = False
        return self

    def publish(self, topic: str, key: str, message: pb_message.Message, correlation_id: str = "") -> None:
        outbox.record(topic, key, message, correlation_id)
        self._wrote = True

    def publish_events(self, topic: str, key: str, events: list, messages: dict) -> None:
        """Moves an aggregate's collected domain events into the outbox. `messages`
        maps each domain event class to its protobuf message (same field names);
        the reservation id, where an event has one, is its correlation id."""
        for event in events:
            message = messages[type(event)](**vars(event))
            message.occur_time.GetCurrentTime()
            self.publish(topic, key, message, getattr(event, "reservation_id", ""))
        events.clear()

    def __exit__(self, exc_type, exc, tb):
        if self._tx is None:
            return False  # the enclosing transaction commits, and wakes the relay after
        suppressed = self._tx.__exit__(exc_type, exc, tb)
        if exc_type is None and self._wrote:
            self._on_commit()
        return suppressed
