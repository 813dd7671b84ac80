"""Reservation use cases: each is one unit of work (state + outbox in one transaction)."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable

from services.chassis.errors import AlreadyExists, Conflict, NotFound, PermissionDenied
from services.chassis.identity import Identity
from services.shared_kernel import STOCK_MANAGER

from . import domain
from .ports import ReservationUnitOfWork


class ReservationService:
    """`reservation_limit`: the most active reservations a customer may hold across all
    books (RESERVATION_LIMIT, which the wiring passes); None, no limit (the seed's rule)."""

    def __init__(self, uow: Callable[..., ReservationUnitOfWork], reservation_limit: int | None = None):
        self.uow = uow  # uow() for a change, uow(read_only=True) for a read
        self.reservation_limit = reservation_limit

    def create_reservation(
        self, user: Identity, book_id: str, request_id: str = "", waitlist: bool = False
    ) -> domain.Reservation:
        """A repeat of a request_id gets its first back, a second active reservation of the
        book is refused (409), then one over the limit (400); else it is REQUESTED."""
        reservation = domain.Reservation.request(str(uuid.uuid4()), user.user_id, book_id, request_id, waitlist)
        limit = self.reservation_limit
        try:
            with self.uow() as uow:
                if limit is not None:
                    # The limit is a count, which no unique index holds: the customer's
                    # creates queue here, so the count read below holds until the commit.
                    uow.reservations.lock_customer(user.user_id)
                if request_id and (first := uow.reservations.by_request_id(user.user_id, request_id)):
                    return first
                if limit is None:
                    active, held = uow.reservations.active(user.user_id, book_id), 0
                else:
                    active, held = uow.reservations.active_and_count(user.user_id, book_id)
                if first := self._refuse_second_active(active, book_id, request_id):
                    return first
                domain.refuse_over_limit(held, limit)
                uow.reservations.add(reservation)
        except Conflict:
            # A concurrent request won the race for the same request_id or the same book.
            with self.uow() as uow:
                if request_id and (first := uow.reservations.by_request_id(user.user_id, request_id)):
                    return first
                active = uow.reservations.active(user.user_id, book_id)
                if first := self._refuse_second_active(active, book_id, request_id):
                    return first
            raise
        return reservation

    @staticmethod
    def _refuse_second_active(
        active: domain.Reservation | None, book_id: str, request_id: str = ""
    ) -> domain.Reservation | None:
        """Refuses a second active reservation of the book; returns the active one when it
        is this very request: a concurrent repeat of the request_id committed between our
        by_request_id and this read (READ COMMITTED sees it only now)."""
        if active:
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
            return self._positioned(uow, [reservation])[0]

    def list_reservations(self, user: Identity, offset: int, limit: int) -> list[domain.Reservation]:
        with self.uow(read_only=True) as uow:
            found = uow.reservations.list(None if user.has_role(STOCK_MANAGER) else user.user_id, offset, limit)
            return self._positioned(uow, found)

    @staticmethod
    def _positioned(uow: ReservationUnitOfWork, reservations: list[domain.Reservation]) -> list[domain.Reservation]:
        """A waitlisted reservation's place now (the queue moved since stock queued it)."""
        queues: dict[str, list[domain.Reservation]] = {}
        for r in reservations:
            if r.status is domain.Status.WAITLISTED:
                queue = queues.setdefault(r.book_id, uow.reservations.waitlisted(r.book_id))
                r.queue_position = domain.queue_position(r, queue)
        return reservations

    def cancel_reservation(self, user: Identity, reservation_id: str) -> domain.Reservation:
        with self.uow() as uow:
            reservation = uow.reservations.get(reservation_id, for_update=True)
            if reservation is None:
                raise NotFound(f"reservation {reservation_id!r} not found")
            reservation.cancel(user.user_id)
            uow.reservations.save(reservation)
        return reservation

    # Stock outcomes; they run inside the consumer's transaction (with the inbox row).

    def apply_stock_change(
        self,
        book_id: str,
        title: str,
        available: int,
        stock_version: int,
        waiting: int | None = None,
        changed_at: datetime.datetime | None = None,
    ) -> None:
        """The book list takes a stock event's state of the book (domain.StockChange's fields)."""
        if stock_version <= 0:  # a rejection of a book never received has no stock state
            return
        with self.uow() as uow:
            book = uow.books.get(book_id) or domain.Book(book_id)
            if book.apply_stock_change(title, available, stock_version, waiting, changed_at):
                uow.books.save(book)

    def confirm(
        self, reservation_id: str, pickup_deadline: datetime.datetime | None = None
    ) -> domain.Reservation | None:
        """StockReserved, or StockAllocated (a copy from the queue)."""
        return self._apply(reservation_id, lambda r: r.confirm(pickup_deadline))

    def reject(self, reservation_id: str, reason: str) -> domain.Reservation | None:
        return self._apply(reservation_id, lambda r: r.reject(reason))

    def waitlist(self, reservation_id: str, ticket: int, position: int) -> domain.Reservation | None:
        """StockWaitlisted."""
        return self._apply(reservation_id, lambda r: r.waitlisted(ticket, position))

    def expire(self, reservation_id: str) -> domain.Reservation | None:
        """StockHoldExpired."""
        return self._apply(reservation_id, domain.Reservation.expire)

    def pick_up(self, reservation_id: str, due_time: datetime.datetime) -> domain.Reservation | None:
        """StockCheckedOut. A canceled reservation whose check-out won the race becomes the
        loan, unless its customer has made another active reservation of the book since
        (one active per book): then it stays CANCELED and stock's return still ends the loan."""
        with self.uow() as uow:
            reservation = uow.reservations.get(reservation_id, for_update=True)
            if reservation is None:
                return None
            if reservation.status is domain.Status.CANCELED and uow.reservations.active(
                reservation.user_id, reservation.book_id
            ):
                return reservation
            if reservation.pick_up(due_time):
                uow.reservations.save(reservation)
        return reservation

    def mark_returned(self, reservation_id: str) -> domain.Reservation | None:
        """StockReturned."""
        return self._apply(reservation_id, domain.Reservation.returned)

    def _apply(self, reservation_id: str, change: Callable[[domain.Reservation], bool]) -> domain.Reservation | None:
        """One of stock's outcomes: written only if it changed the reservation (a repeat, or
        an outcome for one the customer canceled, changes nothing)."""
        with self.uow() as uow:
            reservation = uow.reservations.get(reservation_id, for_update=True)
            if reservation is not None and change(reservation):
                uow.reservations.save(reservation)
        return reservation
