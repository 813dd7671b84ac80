"""Stock persistence (peewee) and the mapping of domain events to the
protobuf messages published on the stock topic."""
from __future__ import annotations

import peewee

from bookrental.stock.v1 import events_pb2, stock_pb2
from services.chassis.db import BaseModel, locked, timestamp, utcnow

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



class StockRepository:
    """Loads and saves Stock aggregates. `get` locks the row on PostgreSQL
    (SELECT ... FOR UPDATE) so two replicas cannot both take the last copy;
    SQLite's IMMEDIATE transactions already serialize writers."""

    def get(self, book_id: str, for_update: bool = False) -> domain.Stock | None:
        query = StockRow.select().where(StockRow.book_id == book_id)
        row = (locked(query) if for_update else query).first()
        return _to_domain(row) if row else None

    def add(self, stock: domain.Stock) -> None:
        """A book's first receipt. Two racing first receipts cannot both insert: the
        loser gets IntegrityError and retries against the row the winner made."""
        stock.update_time = utcnow()
        StockRow.insert(book_id=stock.book_id, **self._fields(stock)).execute()

    def save(self, stock: domain.Stock) -> None:
        stock.update_time = utcnow()
        StockRow.update(**self._fields(stock)).where(StockRow.book_id == stock.book_id).execute()

    @staticmethod
    def _fields(stock: domain.Stock) -> dict:
        return dict(title=stock.title, available=stock.available, total_received=stock.total_received,
                    stock_version=stock.stock_version, update_time=stock.update_time)

    def list(self, offset: int, limit: int) -> list[domain.Stock]:
        return [_to_domain(r) for r in StockRow.select().order_by(StockRow.book_id).offset(offset).limit(limit)]

    def get_hold(self, reservation_id: str) -> domain.Hold | None:
        row = HoldRow.get_or_none(HoldRow.reservation_id == reservation_id)
        if row is None:
            return None
        return domain.Hold(row.reservation_id, row.book_id, row.user_id, domain.HoldStatus(row.status))

    def save_hold(self, hold: domain.Hold) -> None:
        (HoldRow.insert(reservation_id=hold.reservation_id, book_id=hold.book_id, user_id=hold.user_id,
                        status=hold.status.value)
         .on_conflict(conflict_target=[HoldRow.reservation_id], update={HoldRow.status: hold.status.value})
         .execute())


def _to_domain(row: StockRow) -> domain.Stock:
    return domain.Stock(row.book_id, row.title, row.available, row.total_received, row.stock_version,
                        row.update_time)


def to_resource(stock: domain.Stock) -> stock_pb2.Stock:
    return stock_pb2.Stock(book_id=stock.book_id, title=stock.title, available=stock.available,
                           total_received=stock.total_received, update_time=timestamp(stock.update_time))


# Domain event -> the protobuf message published for it (same field names).
MESSAGES = {
    domain.StockReceived: events_pb2.StockReceived,
    domain.StockReserved: events_pb2.StockReserved,
    domain.StockRejected: events_pb2.StockRejected,
    domain.StockReleased: events_pb2.StockReleased,
}

