"""The ports the stock use cases work through: the unit of work and the
repositories it owns. repository.py implements them on the database; the unit
tests fake them."""

from __future__ import annotations

import datetime
from types import TracebackType
from typing import Protocol

from . import domain


class Stocks(Protocol):
    def get(self, book_id: str, for_update: bool = False) -> domain.Stock | None:
        """`for_update` before a change: the row stays locked until the unit of work ends."""

    def never_received(self, book_id: str) -> domain.Stock:
        """A book stock never received: nothing stored, but its events are published."""

    def add(self, stock: domain.Stock) -> None:
        """A book's first receipt; raises Conflict when a concurrent first receipt stored it first."""

    def save(self, stock: domain.Stock) -> None: ...

    def list(self, offset: int, limit: int) -> list[domain.Stock]:
        """Ordered by book_id."""


class Holds(Protocol):
    def get(self, reservation_id: str) -> domain.Hold | None: ...

    def save(self, hold: domain.Hold) -> None: ...

    def waiting(self, book_id: str, limit: int) -> list[domain.Hold]:
        """The book's first `limit` WAITING holds, in queue order (by ticket)."""

    def expiring(self, now: datetime.datetime, limit: int) -> list[domain.Hold]:
        """RESERVED holds whose pickup deadline is at or before `now`, earliest first."""

    def overdue(self, now: datetime.datetime, limit: int) -> list[domain.Hold]:
        """ON_LOAN holds due at or before `now` whose overdue notice is not sent, earliest first."""


class StockUnitOfWork(Protocol):
    # Read-only here, so that an implementation may hold a subtype (its own repository).
    @property
    def stocks(self) -> Stocks: ...

    @property
    def holds(self) -> Holds: ...

    def __enter__(self) -> StockUnitOfWork: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None: ...
