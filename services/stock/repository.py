"""Stock persistence: the tables (peewee models, which also create the schema) and
the repositories of the ports (ports.py), written as SQL."""

from __future__ import annotations

import datetime

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


MODELS = [StockRow, HoldRow]


class StockRepository(Repository):
    """Loads and saves Stock aggregates. `get` locks the row on PostgreSQL
    (SELECT ... FOR UPDATE) so two replicas cannot both take the last copy;
    SQLite's IMMEDIATE transactions already serialize writers.

    The statements each reservation runs are plain SQL (chassis `db.execute`):
    peewee's query building cost more than the statements themselves."""

    _COLUMNS = db.columns(StockRow)

    def get(self, book_id: str, for_update: bool = False) -> domain.Stock | None:
        found = db.rows(
            f"SELECT {self._COLUMNS} FROM stock WHERE book_id = ?" + (db.for_update() if for_update else ""), (book_id,)
        )
        return self._seen(_to_domain(*found[0])) if found else None

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
        self._seen(stock)

    def save(self, stock: domain.Stock) -> None:
        stock.update_time = utcnow()
        db.execute(
            "UPDATE stock SET title = ?, available = ?, total_received = ?, stock_version = ?,"
            " update_time = ? WHERE book_id = ?",
            (stock.title, stock.available, stock.total_received, stock.stock_version, stock.update_time, stock.book_id),
        )
        self._seen(stock)

    def list(self, offset: int, limit: int) -> list[domain.Stock]:
        return [
            _to_domain(*r)
            for r in db.rows(f"SELECT {self._COLUMNS} FROM stock ORDER BY book_id LIMIT ? OFFSET ?", (limit, offset))
        ]


_HOLD_COLUMNS = db.columns(HoldRow)


class HoldRepository(Repository):
    def get(self, reservation_id: str) -> domain.Hold | None:
        found = db.rows(f"SELECT {_HOLD_COLUMNS} FROM hold WHERE reservation_id = ?", (reservation_id,))
        if not found:
            return None
        reservation_id, book_id, user_id, status = found[0]
        return domain.Hold(reservation_id, book_id, user_id, domain.HoldStatus(status))

    def save(self, hold: domain.Hold) -> None:
        db.execute(
            f"INSERT INTO hold ({_HOLD_COLUMNS}) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (reservation_id) DO UPDATE SET status = excluded.status",
            (hold.reservation_id, hold.book_id, hold.user_id, hold.status.value),
        )


def _to_domain(
    book_id: str,
    title: str,
    available: int,
    total_received: int,
    stock_version: int,
    update_time: str | datetime.datetime | None,
) -> domain.Stock:
    return domain.Stock(
        book_id, title, available, total_received, stock_version, StockRow.update_time.python_value(update_time)
    )
