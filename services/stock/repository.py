"""Stock persistence: the tables (peewee models, which also create the schema) and
the repositories of the ports (ports.py), written as SQL."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import peewee

from services.chassis import db
from services.chassis.db import BaseModel
from services.chassis.errors import Conflict
from services.chassis.times import utcnow
from services.chassis.uow import Repository

from . import domain


class StockRow(BaseModel):
    book_id = peewee.CharField(max_length=64, primary_key=True)
    title = peewee.CharField(max_length=200)
    available = peewee.BigIntegerField(constraints=[peewee.Check("available >= 0")])
    total_received = peewee.BigIntegerField()
    stock_version = peewee.BigIntegerField()
    update_time = peewee.DateTimeField()

    class Meta:
        table_name = "stock"


class HoldRow(BaseModel):
    reservation_id = peewee.CharField(max_length=64, primary_key=True)
    book_id = peewee.CharField(max_length=64)
    user_id = peewee.CharField(max_length=128)
    status = peewee.CharField(max_length=16)

    class Meta:
        table_name = "hold"


class StockCountRow(BaseModel):
    """Issue 19's counts of a book, beside its stock row (a table of its own, so that a
    database made before them needs no ALTER: create_schema adds missing tables only).
    No row: nothing on loan, nobody waiting; `held` is derived (Stock.held)."""

    book_id = peewee.CharField(max_length=64, primary_key=True)
    on_loan = peewee.BigIntegerField(default=0, constraints=[peewee.Check("on_loan >= 0")])
    waiting = peewee.BigIntegerField(default=0, constraints=[peewee.Check("waiting >= 0")])

    class Meta:
        table_name = "stock_count"


class HoldLifeRow(BaseModel):
    """A hold's queue ticket, pickup deadline and loan, beside its hold row (a table of
    its own for the same reason). No row: never waited, no deadline, not on loan."""

    reservation_id = peewee.CharField(max_length=64, primary_key=True)
    book_id = peewee.CharField(max_length=64)
    ticket = peewee.BigIntegerField(default=0)
    pickup_deadline = peewee.DateTimeField(null=True, index=True)
    due_time = peewee.DateTimeField(null=True, index=True)
    overdue_noticed = peewee.BooleanField(default=False)

    class Meta:
        table_name = "hold_life"
        indexes = ((("book_id", "ticket"), False),)


MODELS = [StockRow, HoldRow, StockCountRow, HoldLifeRow]


class StockRepository(Repository):
    """Loads and saves Stock aggregates. `get` locks the row on PostgreSQL
    (SELECT ... FOR UPDATE) so two replicas cannot both take the last copy;
    SQLite's IMMEDIATE transactions already serialize writers.

    The statements each reservation runs are plain SQL (chassis `db.execute`):
    peewee's query building cost more than the statements themselves."""

    _COLUMNS = db.columns(StockRow)
    _SELECT = (
        "SELECT stock.book_id, title, available, total_received, stock_version, update_time,"
        " COALESCE(c.on_loan, 0), COALESCE(c.waiting, 0)"
        " FROM stock LEFT JOIN stock_count c ON c.book_id = stock.book_id"
    )

    def __init__(self) -> None:
        super().__init__()
        self._counts: dict[str, tuple[int, int]] = {}  # (on_loan, waiting) as read, to write only a change

    def get(self, book_id: str, for_update: bool = False) -> domain.Stock | None:
        if for_update:  # the book's row first, then the row and its counts as they are now
            db.lock_row("stock", "book_id", book_id)
        found = db.rows(f"{self._SELECT} WHERE stock.book_id = ?", (book_id,))
        return self._seen(self._counted(_to_domain(*found[0]))) if found else None

    def _counted(self, stock: domain.Stock) -> domain.Stock:
        self._counts[stock.book_id] = (stock.on_loan, stock.waiting)
        return stock

    def _save_counts(self, stock: domain.Stock) -> None:
        counts = (stock.on_loan, stock.waiting)
        if counts != self._counts.get(stock.book_id, (0, 0)):  # the seed's path never writes here
            db.execute(
                "INSERT INTO stock_count (book_id, on_loan, waiting) VALUES (?, ?, ?) ON CONFLICT (book_id)"
                " DO UPDATE SET on_loan = excluded.on_loan, waiting = excluded.waiting",
                (stock.book_id, *counts),
            )
            self._counts[stock.book_id] = counts

    def never_received(self, book_id: str) -> domain.Stock:
        """A book stock never received: nothing is stored for it, but what it decides
        (a rejection) is published."""
        return self._seen(domain.Stock(book_id))

    def add(self, stock: domain.Stock) -> None:
        """A book's first receipt. Two racing first receipts cannot both insert: the
        loser gets Conflict and retries against the row the winner made."""
        stock.update_time = utcnow()
        try:
            db.execute(
                f"INSERT INTO stock ({self._COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    stock.book_id,
                    stock.title,
                    stock.available,
                    stock.total_received,
                    stock.stock_version,
                    stock.update_time,
                ),
            )
        except peewee.IntegrityError as exc:
            raise Conflict(str(exc)) from exc
        self._save_counts(stock)
        self._seen(stock)

    def save(self, stock: domain.Stock) -> None:
        stock.update_time = utcnow()
        db.execute(
            "UPDATE stock SET title = ?, available = ?, total_received = ?, stock_version = ?,"
            " update_time = ? WHERE book_id = ?",
            (stock.title, stock.available, stock.total_received, stock.stock_version, stock.update_time, stock.book_id),
        )
        self._save_counts(stock)
        self._seen(stock)

    def list(self, offset: int, limit: int) -> list[domain.Stock]:
        return [
            _to_domain(*r) for r in db.rows(f"{self._SELECT} ORDER BY stock.book_id LIMIT ? OFFSET ?", (limit, offset))
        ]


_HOLD_COLUMNS = db.columns(HoldRow)
_HOLD_SELECT = (
    "SELECT hold.reservation_id, hold.book_id, user_id, status,"
    " COALESCE(l.ticket, 0), l.pickup_deadline, l.due_time, l.overdue_noticed"
    " FROM hold LEFT JOIN hold_life l ON l.reservation_id = hold.reservation_id"
)


class HoldRepository(Repository):
    def __init__(self) -> None:
        super().__init__()
        self._lived: set[str] = set()  # holds read with a hold_life row: a change to it (even to none) is written

    def _loaded(self, row: tuple[Any, ...]) -> domain.Hold:
        hold = _to_hold(*row)
        if _has_life(hold):
            self._lived.add(hold.reservation_id)
        return hold

    def get(self, reservation_id: str) -> domain.Hold | None:
        found = db.rows(f"{_HOLD_SELECT} WHERE hold.reservation_id = ?", (reservation_id,))
        return self._loaded(found[0]) if found else None

    def save(self, hold: domain.Hold) -> None:
        db.execute(
            f"INSERT INTO hold ({_HOLD_COLUMNS}) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (reservation_id) DO UPDATE SET status = excluded.status",
            (hold.reservation_id, hold.book_id, hold.user_id, hold.status.value),
        )
        if _has_life(hold) or hold.reservation_id in self._lived:  # never on the seed's path
            self._lived.add(hold.reservation_id)
            db.execute(
                "INSERT INTO hold_life (reservation_id, book_id, ticket, pickup_deadline, due_time, overdue_noticed)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (reservation_id) DO UPDATE SET ticket = excluded.ticket,"
                " pickup_deadline = excluded.pickup_deadline, due_time = excluded.due_time,"
                " overdue_noticed = excluded.overdue_noticed",
                (
                    hold.reservation_id,
                    hold.book_id,
                    hold.ticket,
                    hold.pickup_deadline,
                    hold.due_time,
                    hold.overdue_noticed,
                ),
            )

    def waiting(self, book_id: str, limit: int) -> list[domain.Hold]:
        return [
            self._loaded(r)
            for r in db.rows(
                f"{_HOLD_SELECT} WHERE l.book_id = ? AND status = ? ORDER BY l.ticket LIMIT ?",
                (book_id, domain.HoldStatus.WAITING.value, limit),
            )
        ]

    def expiring(self, now: datetime.datetime, limit: int) -> list[domain.Hold]:
        return [
            self._loaded(r)
            for r in db.rows(
                f"{_HOLD_SELECT} WHERE l.pickup_deadline <= ? AND status = ? ORDER BY l.pickup_deadline LIMIT ?",
                (now, domain.HoldStatus.RESERVED.value, limit),
            )
        ]

    def overdue(self, now: datetime.datetime, limit: int) -> list[domain.Hold]:
        return [
            self._loaded(r)
            for r in db.rows(
                f"{_HOLD_SELECT} WHERE l.due_time <= ? AND status = ? AND NOT l.overdue_noticed"
                " ORDER BY l.due_time LIMIT ?",
                (now, domain.HoldStatus.ON_LOAN.value, limit),
            )
        ]


def _has_life(hold: domain.Hold) -> bool:
    return bool(hold.ticket or hold.pickup_deadline or hold.due_time or hold.overdue_noticed)


def _to_hold(
    reservation_id: str,
    book_id: str,
    user_id: str,
    status: str,
    ticket: int,
    pickup_deadline: str | datetime.datetime | None,
    due_time: str | datetime.datetime | None,
    overdue_noticed: bool | int | None,
) -> domain.Hold:
    as_time: Callable[[str | datetime.datetime | None], datetime.datetime | None] = (
        HoldLifeRow.pickup_deadline.python_value
    )
    return domain.Hold(
        reservation_id,
        book_id,
        user_id,
        domain.HoldStatus(status),
        ticket,
        as_time(pickup_deadline),
        as_time(due_time),
        bool(overdue_noticed),
    )


def _to_domain(
    book_id: str,
    title: str,
    available: int,
    total_received: int,
    stock_version: int,
    update_time: str | datetime.datetime | None,
    on_loan: int = 0,
    waiting: int = 0,
) -> domain.Stock:
    return domain.Stock(
        book_id,
        title,
        available,
        total_received,
        stock_version,
        StockRow.update_time.python_value(update_time),
        on_loan=on_loan,
        waiting=waiting,
    )
