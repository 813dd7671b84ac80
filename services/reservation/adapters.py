"""Reservation persistence (peewee): reservations, the book view, and the
mapping of domain events and resources to protobuf."""
from __future__ import annotations

import peewee

from bookrental.reservation.v1 import events_pb2, reservation_pb2
from services.chassis.db import BaseModel, locked, timestamp, utcnow

from . import domain


class ReservationRow(BaseModel):
    reservation_id = peewee.CharField(max_length=36, primary_key=True)
    user_id = peewee.CharField(max_length=128, index=True)
    book_id = peewee.CharField(max_length=64)
    status = peewee.CharField(max_length=16)
    reason = peewee.CharField(max_length=200, default="")
    request_id = peewee.CharField(max_length=64, default="")
    create_time = peewee.DateTimeField(index=True)
    update_time = peewee.DateTimeField()

    class Meta:
        table_name = "reservation"


class BookRow(BaseModel):
    book_id = peewee.CharField(max_length=64, primary_key=True)
    title = peewee.CharField(max_length=200)
    available = peewee.BigIntegerField()
    stock_version = peewee.BigIntegerField()
    update_time = peewee.DateTimeField()

    class Meta:
        table_name = "book"


MODELS = [ReservationRow, BookRow]
# The database itself holds the rules "one active reservation per customer and
# book" and "one reservation per request_id", so concurrent replicas cannot break them.
INDEXES = [
    "CREATE UNIQUE INDEX IF NOT EXISTS reservation_one_active ON reservation (user_id, book_id)"
    " WHERE status IN ('REQUESTED', 'CONFIRMED')",
    "CREATE UNIQUE INDEX IF NOT EXISTS reservation_request_id ON reservation (user_id, request_id)"
    " WHERE request_id <> ''",
]


def _to_domain(row: ReservationRow) -> domain.Reservation:
    return domain.Reservation(row.reservation_id, row.user_id, row.book_id, domain.Status(row.status),
                              row.reason, row.request_id, row.create_time, row.update_time)


class ReservationRepository:
    def get(self, reservation_id: str, for_update: bool = False) -> domain.Reservation | None:
        """`for_update` before a change of status: a customer's cancel and stock's
        decision may arrive at once, and neither may overwrite the other unseen."""
        query = ReservationRow.select().where(ReservationRow.reservation_id == reservation_id)
        row = (locked(query) if for_update else query).first()
        return _to_domain(row) if row else None

    def by_request_id(self, user_id: str, request_id: str) -> domain.Reservation | None:
        row = ReservationRow.get_or_none((ReservationRow.user_id == user_id) & (ReservationRow.request_id == request_id))
        return _to_domain(row) if row else None

    def active(self, user_id: str, book_id: str) -> domain.Reservation | None:
        row = ReservationRow.get_or_none(
            (ReservationRow.user_id == user_id) & (ReservationRow.book_id == book_id)
            & (ReservationRow.status.in_([s.value for s in domain.ACTIVE])))
        return _to_domain(row) if row else None

    def add(self, r: domain.Reservation) -> None:
        r.create_time = r.update_time = utcnow()
        ReservationRow.insert(reservation_id=r.reservation_id, user_id=r.user_id, book_id=r.book_id,
                              status=r.status.value, reason=r.reason, request_id=r.request_id,
                              create_time=r.create_time, update_time=r.update_time).execute()

    def save(self, r: domain.Reservation) -> None:
        r.update_time = utcnow()
        (ReservationRow.update(status=r.status.value, reason=r.reason, update_time=r.update_time)
         .where(ReservationRow.reservation_id == r.reservation_id).execute())

    def list(self, user_id: str | None, offset: int, limit: int) -> list[domain.Reservation]:
        query = ReservationRow.select()
        if user_id is not None:
            query = query.where(ReservationRow.user_id == user_id)
        return [_to_domain(row) for row in query.order_by(ReservationRow.create_time.desc(),
                                                          ReservationRow.reservation_id).offset(offset).limit(limit)]


class BookViewRepository:
    def get(self, book_id: str) -> BookRow | None:
        return BookRow.get_or_none(BookRow.book_id == book_id)

    def apply(self, book_id: str, title: str, available: int, stock_version: int) -> bool:
        row = self.get(book_id)
        book = domain.Book(book_id) if row is None else domain.Book(row.book_id, row.title, row.available,
                                                                   row.stock_version)
        if not book.apply_stock_change(title, available, stock_version):
            return False
        fields = dict(title=book.title, available=book.available, stock_version=book.stock_version,
                      update_time=utcnow())
        BookRow.insert(book_id=book_id, **fields).on_conflict(conflict_target=[BookRow.book_id],
                                                                update=fields).execute()
        return True

    def list(self, offset: int, limit: int) -> list[BookRow]:
        return list(BookRow.select().order_by(BookRow.book_id).offset(offset).limit(limit))


_STATUS = {
    domain.Status.REQUESTED: reservation_pb2.RESERVATION_STATUS_REQUESTED,
    domain.Status.CONFIRMED: reservation_pb2.RESERVATION_STATUS_CONFIRMED,
    domain.Status.REJECTED: reservation_pb2.RESERVATION_STATUS_REJECTED,
    domain.Status.CANCELED: reservation_pb2.RESERVATION_STATUS_CANCELED,
}


def reservation_resource(r: domain.Reservation) -> reservation_pb2.Reservation:
    return reservation_pb2.Reservation(
        reservation_id=r.reservation_id, user_id=r.user_id, book_id=r.book_id, status=_STATUS[r.status],
        reason=r.reason, create_time=timestamp(r.create_time), update_time=timestamp(r.update_time))


def book_resource(row: BookRow) -> reservation_pb2.Book:
    return reservation_pb2.Book(book_id=row.book_id, title=row.title, available=row.available,
                                update_time=timestamp(row.update_time))


# Domain event -> the protobuf message published for it (same field names).
MESSAGES = {
    domain.ReservationRequested: events_pb2.ReservationRequested,
    domain.ReservationCanceled: events_pb2.ReservationCanceled,
}

