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
        self._tx = database.atomic()
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
        suppressed = self._tx.__exit__(exc_type, exc, tb)
        # Only the outermost commit makes rows visible to the relay.
        if exc_type is None and self._wrote and database.transaction_depth() == 0:
            self._on_commit()
        return suppressed
