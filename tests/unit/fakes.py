"""Fake units of work and repositories: the use cases' ports in memory, so every use
case is tested without a database or a broker.

A `FakeStore` is one service's database: its tables (dicts of stored copies), the
events its units of work published, in order. `store.uow()` is what the wiring's
unit-of-work factory is: a unit of work that commits on a clean exit (publishing the
collected events) and rolls its writes back on an exception."""

from __future__ import annotations

import copy
import dataclasses
import datetime
from collections.abc import Callable

from services.alert import domain as alert
from services.chassis.errors import Conflict
from services.chassis.uow import Repository, UnitOfWork
from services.reservation import domain as reservation
from services.stock import domain as stock

EPOCH = datetime.datetime(2026, 1, 1)


class FakeStore:
    def __init__(self, **repositories: Callable[[FakeStore], Repository]):
        self.repositories = repositories
        self.tables: dict[str, dict] = {name: {} for name in repositories}
        self.published: list = []
        self.commits = 0
        self.race: Callable[[], None] | None = None  # another transaction, committed just before our next write
        self.locked: list = []  # the keys units of work locked (lock_customer), in order
        self._ticks = 0
        self._concurrent: list[tuple[str, object, object]] = []

    def uow(self, read_only: bool = False) -> FakeUnitOfWork:
        return FakeUnitOfWork(self, read_only)

    def now(self) -> datetime.datetime:
        """A clock that moves a second per reading: later writes have later times."""
        self._ticks += 1
        return EPOCH + datetime.timedelta(seconds=self._ticks)

    def commit_concurrently(self, table: str, key, row) -> None:
        """A row another replica's transaction commits now (ours cannot roll it back)."""
        self.tables[table][key] = stored(row)
        self._concurrent.append((table, key, self.tables[table][key]))

    def before_write(self) -> None:
        race, self.race = self.race, None
        if race is not None:
            race()


class FakeUnitOfWork(UnitOfWork):
    def __init__(self, store: FakeStore, read_only: bool):
        super().__init__(**{name: make(store) for name, make in store.repositories.items()})
        self.store = store
        self.read_only = read_only

    def __enter__(self) -> FakeUnitOfWork:
        self._before = {name: dict(table) for name, table in self.store.tables.items()}
        self._concurrent_before = len(self.store._concurrent)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            for name, table in self.store.tables.items():
                table.clear()
                table.update(self._before[name])
            for name, key, row in self.store._concurrent[self._concurrent_before :]:
                self.store.tables[name][key] = row
            return False
        events = list(self.collect_new_events())
        if self.read_only:
            assert not events, f"a read-only unit of work cannot publish {events}"
            return False
        self.store.published.extend(events)
        self.store.commits += 1
        return False


def stored(row):
    """What a table keeps: a copy without the events the aggregate had raised (nor the
    holds a Stock served, which the use case stores itself)."""
    row = copy.deepcopy(row)
    if hasattr(row, "events"):
        row.events = []
    if hasattr(row, "served"):
        row.served = []
    return row


class FakeRepository(Repository):
    table = ""

    def __init__(self, store: FakeStore):
        super().__init__()
        self.store = store
        self.rows = store.tables[self.table]

    def _load(self, key):
        return self._seen(copy.deepcopy(self.rows[key])) if key in self.rows else None


# -- reservation ------------------------------------------------------------------


class FakeReservations(FakeRepository):
    table = "reservations"

    def get(self, reservation_id: str, for_update: bool = False):
        return self._load(reservation_id)

    def by_request_id(self, user_id: str, request_id: str):
        return next(
            (
                self._load(k)
                for k, r in self.rows.items()
                if request_id and r.user_id == user_id and r.request_id == request_id
            ),
            None,
        )

    def active(self, user_id: str, book_id: str):
        return next(
            (
                self._load(k)
                for k, r in self.rows.items()
                if r.user_id == user_id and r.book_id == book_id and r.is_active
            ),
            None,
        )

    def lock_customer(self, user_id: str) -> None:
        self.store.locked.append(user_id)

    def active_and_count(self, user_id: str, book_id: str):
        held = sum(1 for r in self.rows.values() if r.user_id == user_id and r.is_active)
        return self.active(user_id, book_id), held

    def waitlisted(self, book_id: str):
        mine = [r for r in self.rows.values() if r.book_id == book_id and r.status is reservation.Status.WAITLISTED]
        return [copy.deepcopy(r) for r in sorted(mine, key=lambda r: r.queue_ticket)]

    def add(self, r: reservation.Reservation) -> None:
        self.store.before_write()
        # The database's unique keys: the id, one request_id per customer, one active reservation per book.
        if (
            r.reservation_id in self.rows
            or self.by_request_id(r.user_id, r.request_id)
            or (r.is_active and self.active(r.user_id, r.book_id))
        ):
            raise Conflict("a unique key is taken")
        r.create_time = r.update_time = self.store.now()
        self.rows[r.reservation_id] = stored(r)
        self._seen(r)

    def save(self, r: reservation.Reservation) -> None:
        r.update_time = self.store.now()
        self.rows[r.reservation_id] = stored(r)
        self._seen(r)

    def list(self, user_id: str | None, offset: int, limit: int):
        mine = [r for r in self.rows.values() if user_id is None or r.user_id == user_id]
        mine.sort(key=lambda r: r.reservation_id)
        mine.sort(key=lambda r: r.create_time, reverse=True)
        return [copy.deepcopy(r) for r in mine[offset : offset + limit]]


class FakeBooks(FakeRepository):
    table = "books"

    def get(self, book_id: str):
        return self._load(book_id)

    def save(self, book: reservation.Book) -> None:
        self.rows[book.book_id] = stored(book)
        self._seen(book)


def reservation_store() -> FakeStore:
    return FakeStore(reservations=FakeReservations, books=FakeBooks)


# -- stock ----------------------------------------------------------------------------


class FakeStocks(FakeRepository):
    table = "stocks"

    def get(self, book_id: str, for_update: bool = False):
        return self._load(book_id)

    def never_received(self, book_id: str):
        return self._seen(stock.Stock(book_id))

    def add(self, s: stock.Stock) -> None:
        self.store.before_write()
        if s.book_id in self.rows:
            raise Conflict("stock's primary key is taken")
        s.update_time = self.store.now()
        self.rows[s.book_id] = stored(s)
        self._seen(s)

    def save(self, s: stock.Stock) -> None:
        assert min(s.available, s.on_loan, s.waiting) >= 0, "the CHECK constraints"
        s.update_time = self.store.now()
        self.rows[s.book_id] = stored(s)
        self._seen(s)

    def list(self, offset: int, limit: int):
        return [copy.deepcopy(self.rows[k]) for k in sorted(self.rows)[offset : offset + limit]]


class FakeHolds(FakeRepository):
    table = "holds"

    def get(self, reservation_id: str):
        return copy.deepcopy(self.rows.get(reservation_id))

    def save(self, hold: stock.Hold) -> None:
        self.rows[hold.reservation_id] = copy.deepcopy(hold)

    def _where(self, keep, order) -> list:
        return [copy.deepcopy(h) for h in sorted(filter(keep, self.rows.values()), key=order)]

    def waiting(self, book_id: str, limit: int):
        S = stock.HoldStatus
        return self._where(lambda h: h.book_id == book_id and h.status is S.WAITING, lambda h: h.ticket)[:limit]

    def expiring(self, now: datetime.datetime, limit: int):
        def due(h):
            return h.status is stock.HoldStatus.RESERVED and h.pickup_deadline is not None and h.pickup_deadline <= now

        return self._where(due, lambda h: h.pickup_deadline)[:limit]

    def overdue(self, now: datetime.datetime, limit: int):
        def due(h):
            return (
                h.status is stock.HoldStatus.ON_LOAN
                and h.due_time is not None
                and h.due_time <= now
                and not h.overdue_noticed
            )

        return self._where(due, lambda h: h.due_time)[:limit]


def stock_store() -> FakeStore:
    return FakeStore(stocks=FakeStocks, holds=FakeHolds)


# -- alert ------------------------------------------------------------------------------


class FakeNotifications(FakeRepository):
    table = "notifications"

    def add(self, n: alert.Notification) -> None:
        self.rows.setdefault(n.notification_id, copy.deepcopy(n))  # a repeat changes nothing


class FakePreferences(FakeRepository):
    table = "preferences"

    def get(self, user_id: str):
        return self.rows.get(user_id, (alert.Preferences(), None))

    def put(self, user_id: str, p: alert.Preferences):
        now = self.store.now()
        self.rows[user_id] = (dataclasses.replace(p), now)
        return now


def alert_store() -> FakeStore:
    return FakeStore(notifications=FakeNotifications, preferences=FakePreferences)
