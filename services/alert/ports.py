"""The ports the alert use cases work through: the unit of work and the
repositories it owns. repository.py implements them on the database; the unit
tests fake them."""

from __future__ import annotations

import datetime
from types import TracebackType
from typing import Protocol

from . import domain


class Notifications(Protocol):
    def add(self, notification: domain.Notification) -> None:
        """The notification and one delivery per channel; a repeat (same notification_id) changes nothing."""

    def missing(self, notification_ids: list[str]) -> set[str]:
        """Those of the ids that no notification has."""

    def restore(self, notifications: list[domain.Notification]) -> None:
        """Notifications re-derived from their events, each with the state its deliveries'
        records give it (domain.restored); no delivery is added. One that exists changes nothing."""


class CustomerPreferences(Protocol):
    def get(self, user_id: str) -> tuple[domain.Preferences, datetime.datetime | None]:
        """The customer's preferences (defaults if never set) and when they last changed."""

    def read_ahead(self, user_ids: set[str]) -> None:
        """In a consumer batch: reads these customers' preferences at once for its rest."""

    def put(self, user_id: str, preferences: domain.Preferences) -> datetime.datetime:
        """Stores them; returns their update time."""


class AlertUnitOfWork(Protocol):
    # Read-only here, so that an implementation may hold a subtype (its own repository).
    @property
    def notifications(self) -> Notifications: ...

    @property
    def preferences(self) -> CustomerPreferences: ...

    def __enter__(self) -> AlertUnitOfWork: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None: ...
