"""Unit of work: the port every use case works through, and its database
implementation. One transaction in which state changes and the events they cause
(outbox rows) commit together, or not at all.

A use case takes the service's repositories from it (`uow.<name>`), changes the
aggregates they hand out or take, and leaves the `with` block. The unit of work then
collects the new events of every aggregate its repositories have seen and writes
them to the outbox through the service's publication table, which the service's
wiring declares: per event type, its topic, its wire message and the fields that are
its key and its correlation id."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

import peewee
from google.protobuf import message as pb_message

from . import outbox
from .db import database

_A = TypeVar("_A")


@dataclasses.dataclass(frozen=True)
class Publication:
    """How one domain event type leaves its service."""

    topic: str
    message: Callable[[Any], pb_message.Message]  # the event as it goes on the wire
    key: str  # the event's field that is the message key
    correlation_id: str = ""  # the event's field that is the correlation id; "" when it has none

    def correlation(self, event: Any) -> str:
        return getattr(event, self.correlation_id) if self.correlation_id else ""


class Repository:
    """Base of the repositories a unit of work owns: it remembers the aggregates it
    handed out or took, whose new events the unit of work collects."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def _seen(self, aggregate: _A) -> _A:
        if aggregate is not None and not any(a is aggregate for a in self.seen):
            self.seen.append(aggregate)
        return aggregate


class UnitOfWork:
    """The port: `with uow() as uow:` is one transaction; its repositories are its attributes."""

    def __init__(self, **repositories: Repository) -> None:
        self.__dict__.update(repositories)
        self._repositories = list(repositories.values())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None  # an exception goes on

    def collect_new_events(self) -> Iterator[Any]:
        """The events the seen aggregates raised, each once, in the order they were raised."""
        for repository in self._repositories:
            for aggregate in repository.seen:
                events = getattr(aggregate, "events", None)
                while events:
                    yield events.pop(0)


class SqlUnitOfWork(UnitOfWork):
    """The unit of work on the service's database, its events through the outbox.
    `read_only`: for reads, which need no transaction (on SQLite no writer lock)."""

    def __init__(
        self,
        publications: dict[type, Publication],
        on_commit: Callable[[], None] = lambda: None,
        *,
        read_only: bool = False,
        **repositories: Repository,
    ):
        super().__init__(**repositories)
        self._publications = publications
        self._on_commit = on_commit
        self._read_only = read_only
        self._tx: peewee._atomic | None = None

    def __enter__(self) -> Self:
        # Inside the consumer's batch transaction a use case joins it rather than open
        # a savepoint (two statements per event): a failure rolls the batch back and
        # the consumer applies its events one by one.
        self._tx = None if self._read_only or database.in_transaction() else database.atomic()
        if self._tx is not None:
            self._tx.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        wrote = False
        if exc_type is None:
            try:
                wrote = self._write_events()
            except BaseException as error:
                if self._tx is not None:
                    self._tx.__exit__(type(error), error, error.__traceback__)
                raise
        if self._tx is None:
            return None  # the enclosing transaction commits, and wakes the relay after
        self._tx.__exit__(exc_type, exc, tb)  # commits or rolls back; peewee's never suppresses (returns None)
        if exc_type is None and wrote:
            self._on_commit()
        return None

    def _write_events(self) -> bool:
        wrote = False
        for event in self.collect_new_events():
            if self._read_only:
                raise RuntimeError(f"a read-only unit of work cannot publish {type(event).__name__}")
            publication = self._publications[type(event)]
            outbox.record(
                publication.topic,
                getattr(event, publication.key),
                publication.message(event),
                publication.correlation(event),
            )
            wrote = True
        return wrote
