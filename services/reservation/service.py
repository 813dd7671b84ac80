"""Reservation use cases: each is one unit of work (state + outbox in one transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from services.chassis.errors import AlreadyExists, Conflict, NotFound, PermissionDenied
from services.chassis.identity import Identity
from services.shared_kernel import STOCK_MANAGER

from . import domain
from .ports import ReservationUnitOfWork


class ReservationService:
    def __init__(self, uow: Callable[..., ReservationUnitOfWork]):
        self.uow = uow  # uow() for a change, uow(read_only=True) for a read

    def create_reservation(self, user: Identity, book_id: str, request_id: str = "") -> domain.Reservation:
        reservation = domain.Reservation.request(str(uuid.uuid4()), user.user_id, book_id, request_id)
        try:
            with self.uow() as uow:
                if request_id and (first := uow.reservations.by_request_id(user.user_id, request_id)):
                    return first
                if first := self._refuse_second_active(uow, user.user_id, book_id, request_id):
                    return first
                uow.reservations.add(reservation)
        except Conflict:
            # A concurrent request won the race for the same request_id or the same book.
            with self.uow() as uow:
                if request_id and (first := uow.reservations.by_request_id(user.user_id, request_id)):
                    return first
                if first := self._refuse_second_active(uow, user.user_id, book_id, request_id):
                    return first
            raise
        return reservation

    @staticmethod
    def _refuse_second_active(
        uow: ReservationUnitOfWork, user_id: str, book_id: str, request_id: str = ""
    ) -> domain.Reservation | None:
        """Refuses a second active reservation of the book; returns the active one when it
        is this very request: a concurrent repeat of the request_id committed between our
        by_request_id and this read (READ COMMITTED sees it only now)."""
        if active := uow.reservations.active(user_id, book_id):
            if request_id and active.request_id == request_id:
                return active
            raise AlreadyExists(f"you already hold reservation {active.reservation_id} of book {book_id!r}")
        return None

    def get_reservation(self, user: Identity, reservation_id: str) -> domain.Reservation:
        with self.uow(read_only=True) as uow:
            reservation = uow.reservations.get(reservation_id)
        if reservation is None:
            raise NotFound(f"reservation {reservation_id!r} not found")
        if reservation.user_id != user.user_id and not user.has_role(STOCK_MANAGER):
            raise PermissionDenied("only its owner or a stock_manager may read a reservation")
        return reservation

    def list_reservations(self, user: Identity, offset: int, limit: int) -> list[domain.Reservation]:
        with self.uow(read_only=True) as uow:
            return uow.reservations.list(None if user.has_role(STOCK_MANAGER) else user.user_id, offset, limit)

    def cancel_reservation(self, user: Identity, reservation_id: str) -> domain.Reservation:
        with self.uow() as uow:
            reservation = uow.reservations.get(reservation_id, for_update=True)
            if reservation is None:
                raise NotFound(f"reservation {reservation_id!r} not found")
            reservation.cancel(user.user_id)
            uow.reservations.save(reservation)
        return reservation

    # Stock outcomes; they run inside the consumer's transaction (with the inbox row).

    def apply_stock_change(self, book_id: str, title: str, available: int, stock_version: int) -> None:
        if stock_version <= 0:  # a rejection of a book never received has no stock state
            return
        with self.uow() as uow:
            book = uow.books.get(book_id) or domain.Book(book_id)
            if book.apply_stock_change(title, available, stock_version):
                uow.books.save(book)

    def confirm(self, reservation_id: str) -> domain.Reservation | None:
        with self.uow() as uow:
            reservation = uow.reservations.get(reservation_id, for_update=True)
            if reservation is not None and reservation.confirm():
                uow.reservations.save(reservation)
        return reservation

    def reject(self, reservation_id: str, reason: str) -> domain.Reservation | None:
        with self.uow() as uow:
            reservation = uow.reservations.get(reservation_id, for_update=True)
            if reservation is not None and reservation.reject(reason):
                uow.reservations.save(reservation)
        return reservation
