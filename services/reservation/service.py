"""Reservation use cases: each is one unit of work (state + outbox in one transaction)."""
from __future__ import annotations

import uuid
from typing import Callable

import peewee

from services.chassis.errors import AlreadyExists, NotFound, PermissionDenied
from services.chassis.server import Identity
from services.chassis.uow import UnitOfWork

from . import adapters, domain

STOCK_MANAGER = "stock_manager"


class ReservationService:
    def __init__(self, uow: Callable[[], UnitOfWork], topic: str):
        self.uow = uow
        self.topic = topic
        self.reservations = adapters.ReservationRepository()
        self.books = adapters.BookViewRepository()

    def create_reservation(self, user: Identity, book_id: str, request_id: str = "") -> domain.Reservation:
        reservation = domain.Reservation.request(str(uuid.uuid4()), user.user_id, book_id, request_id)
        try:
            with self.uow() as uow:
                if request_id and (first := self.reservations.by_request_id(user.user_id, request_id)):
                    return first
                self._refuse_second_active(user.user_id, book_id)
                self.reservations.add(reservation)
                uow.publish_events(self.topic, reservation.book_id, reservation.events, adapters.MESSAGES)
        except peewee.IntegrityError:
            # A concurrent request won the race for the same request_id or the same book.
            with self.uow():
                if request_id and (first := self.reservations.by_request_id(user.user_id, request_id)):
                    return first
                self._refuse_second_active(user.user_id, book_id)
            raise
        return reservation

    def _refuse_second_active(self, user_id: str, book_id: str) -> None:
        if active := self.reservations.active(user_id, book_id):
            raise AlreadyExists(f"you already hold reservation {active.reservation_id} of book {book_id!r}")

    def get_reservation(self, user: Identity, reservation_id: str) -> domain.Reservation:
        reservation = self.reservations.get(reservation_id)
        if reservation is None:
            raise NotFound(f"reservation {reservation_id!r} not found")
        if reservation.user_id != user.user_id and not user.has_role(STOCK_MANAGER):
            raise PermissionDenied("only its owner or a stock_manager may read a reservation")
        return reservation

    def list_reservations(self, user: Identity, offset: int, limit: int) -> list[domain.Reservation]:
        return self.reservations.list(None if user.has_role(STOCK_MANAGER) else user.user_id, offset, limit)

    def cancel_reservation(self, user: Identity, reservation_id: str) -> domain.Reservation:
        with self.uow() as uow:
            reservation = self.reservations.get(reservation_id, for_update=True)
            if reservation is None:
                raise NotFound(f"reservation {reservation_id!r} not found")
            reservation.cancel(user.user_id)
            self.reservations.save(reservation)
            uow.publish_events(self.topic, reservation.book_id, reservation.events, adapters.MESSAGES)
        return reservation

    def list_books(self, offset: int, limit: int):
        return self.books.list(offset, limit)

    def get_book(self, book_id: str):
        row = self.books.get(book_id)
        if row is None:
            raise NotFound(f"book {book_id!r} is not in the book list")
        return row

    # Stock outcomes; they run inside the consumer's transaction (with the inbox row).

    def apply_stock_change(self, book_id: str, title: str, available: int, stock_version: int) -> None:
        if stock_version > 0:  # a rejection of a book never received has no stock state
            self.books.apply(book_id, title, available, stock_version)

    def confirm(self, reservation_id: str) -> domain.Reservation | None:
        reservation = self.reservations.get(reservation_id, for_update=True)
        if reservation is not None and reservation.confirm():
            self.reservations.save(reservation)
        return reservation

    def reject(self, reservation_id: str, reason: str) -> domain.Reservation | None:
        reservation = self.reservations.get(reservation_id, for_update=True)
        if reservation is not None and reservation.reject(reason):
            self.reservations.save(reservation)
        return reservation
