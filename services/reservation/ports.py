"""The ports the reservation use cases work through: the unit of work and the
repositories it owns. repository.py implements them on the database; the unit
tests fake them."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from . import domain


class Reservations(Protocol):
    def get(self, reservation_id: str, for_update: bool = False) -> domain.Reservation | None:
        """`for_update` before a change of status: the row stays locked until the unit of work ends."""

    def by_request_id(self, user_id: str, request_id: str) -> domain.Reservation | None: ...

    def active(self, user_id: str, book_id: str) -> domain.Reservation | None:
        """The customer's active reservation of the book (domain.ACTIVE), if any."""

    def lock_customer(self, user_id: str) -> None:
        """Until the unit of work ends, another that locks the same customer waits: what
        this one reads of the customer's reservations after it stays true until it commits."""

    def active_and_count(self, user_id: str, book_id: str) -> tuple[domain.Reservation | None, int]:
        """The customer's active reservation of the book, if any, and how many active ones
        (domain.ACTIVE) they hold across all books: both rules of a create in one read."""

    def waitlisted(self, book_id: str) -> list[domain.Reservation]:
        """The book's WAITLISTED reservations, in queue order (queue_ticket)."""

    def add(self, reservation: domain.Reservation) -> None:
        """Raises Conflict when a concurrent one took its request_id or the book's active slot."""

    def save(self, reservation: domain.Reservation) -> None: ...

    def list(self, user_id: str | None, offset: int, limit: int) -> list[domain.Reservation]:
        """Newest first; everyone's when `user_id` is None."""


class Books(Protocol):
    """The book list as the domain keeps it up to date (stock_version decides)."""

    def get(self, book_id: str) -> domain.Book | None: ...

    def save(self, book: domain.Book) -> None: ...


class ReservationUnitOfWork(Protocol):
    # Read-only here, so that an implementation may hold a subtype (its own repository).
    @property
    def reservations(self) -> Reservations: ...

    @property
    def books(self) -> Books: ...

    def __enter__(self) -> ReservationUnitOfWork: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None: ...
