"""Reservation rules, pure: no I/O, no framework.

A reservation asks for exactly one copy of one book. It is REQUESTED at once;
stock decides (CONFIRMED or REJECTED); the customer may cancel while it is
REQUESTED or CONFIRMED. A canceled reservation stays canceled whatever stock
decides afterwards.

Its whole life (issue 19), every step decided by stock and applied here from its
events: REQUESTED -> WAITLISTED (in the book's queue, `queue_position`) ->
CONFIRMED (a copy held until `pickup_deadline`) -> PICKED_UP (on loan until
`due_time`) -> RETURNED; a CONFIRMED one not picked up in time is EXPIRED. The
customer cancels from REQUESTED, WAITLISTED or CONFIRMED, never once picked up (it
is returned instead), and holds at most a limit of active reservations."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Iterable
from typing import NamedTuple

from services import shared_kernel
from services.chassis import validate
from services.chassis.errors import FailedPrecondition, InvalidArgument, PermissionDenied

MAX_REQUEST_ID = 64
MAX_RESERVATION_ID = 64


class Status(str, enum.Enum):  # noqa: UP042 -- StrEnum's str() and format() differ
    REQUESTED = "REQUESTED"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELED = "CANCELED"
    WAITLISTED = "WAITLISTED"  # no copy was free: in the book's queue
    PICKED_UP = "PICKED_UP"  # the held copy was checked out: on loan
    RETURNED = "RETURNED"  # the loan came back
    EXPIRED = "EXPIRED"  # held, not picked up by the pickup deadline


# A customer's reservations that still take a place: one per book, `limit` across books.
ACTIVE = (Status.REQUESTED, Status.WAITLISTED, Status.CONFIRMED, Status.PICKED_UP)
CANCELABLE = (Status.REQUESTED, Status.WAITLISTED, Status.CONFIRMED)
RESERVATION_LIMIT = 5  # RESERVATION_LIMIT's default


@dataclasses.dataclass(frozen=True)
class ReservationRequested:
    reservation_id: str
    user_id: str
    book_id: str
    waitlist: bool = False  # join the book's queue if no copy is free


@dataclasses.dataclass(frozen=True)
class ReservationCanceled:
    reservation_id: str
    user_id: str
    book_id: str


# What a Reservation raises, for the outbox (bootstrap's publications).
Event = ReservationRequested | ReservationCanceled


@dataclasses.dataclass
class Reservation:
    reservation_id: str
    user_id: str
    book_id: str
    status: Status
    reason: str = ""
    request_id: str = ""
    create_time: datetime.datetime | None = dataclasses.field(default=None, compare=False)  # set by storage
    update_time: datetime.datetime | None = dataclasses.field(default=None, compare=False)
    events: list[Event] = dataclasses.field(default_factory=list, compare=False, repr=False)
    waitlist: bool = dataclasses.field(default=False, kw_only=True)  # wait in the queue if no copy is free
    queue_ticket: int = dataclasses.field(default=0, kw_only=True)  # stock's queue order, while WAITLISTED
    queue_position: int = dataclasses.field(default=0, kw_only=True)  # 1 = next, while WAITLISTED
    pickup_deadline: datetime.datetime | None = dataclasses.field(default=None, kw_only=True)  # while CONFIRMED
    due_time: datetime.datetime | None = dataclasses.field(default=None, kw_only=True)  # while PICKED_UP

    @classmethod
    def request(
        cls, reservation_id: str, user_id: str, book_id: str, request_id: str = "", waitlist: bool = False
    ) -> Reservation:
        shared_kernel.book_id(book_id)
        validate.text(request_id, "request_id", MAX_REQUEST_ID)
        reservation = cls(reservation_id, user_id, book_id, Status.REQUESTED, request_id=request_id, waitlist=waitlist)
        reservation.events.append(ReservationRequested(reservation_id, user_id, book_id, waitlist))
        return reservation

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    def confirm(self, pickup_deadline: datetime.datetime | None = None) -> bool:
        """Stock set a copy aside (at once, or from the queue), held until `pickup_deadline`
        if it has one. Returns whether the status changed."""
        if self.status in (Status.REQUESTED, Status.WAITLISTED):
            self.status = Status.CONFIRMED
            self.pickup_deadline = pickup_deadline
            self.queue_ticket = self.queue_position = 0
            return True
        return False

    def waitlisted(self, ticket: int, position: int) -> bool:
        """Stock had no copy free and queued the request at `position`."""
        if self.status is Status.REQUESTED:
            self.status = Status.WAITLISTED
            self.queue_ticket, self.queue_position = ticket, position
            return True
        return False

    def expire(self) -> bool:
        """The held copy was not picked up by its deadline."""
        if self.status is Status.CONFIRMED:
            self.status = Status.EXPIRED
            return True
        return False

    def pick_up(self, due_time: datetime.datetime) -> bool:
        """The held copy was checked out to the customer, due back at `due_time`. From
        CANCELED too: the desk checked the copy out before stock saw the customer's cancel,
        so the copy is in the customer's hands and stock (which released nothing) counts it
        on loan; the reservation says so, and the return ends it as any loan."""
        if self.status in (Status.CONFIRMED, Status.CANCELED):
            self.status = Status.PICKED_UP
            self.pickup_deadline, self.due_time = None, due_time
            return True
        return False

    def returned(self) -> bool:
        """The loaned copy came back."""
        if self.status is Status.PICKED_UP:
            self.status = Status.RETURNED
            return True
        return False

    def reject(self, reason: str) -> bool:
        """Stock had no copy. Returns whether the status changed."""
        if self.status is Status.REQUESTED:
            self.status = Status.REJECTED
            self.reason = reason
            return True
        return False

    def cancel(self, user_id: str) -> None:
        if user_id != self.user_id:
            raise PermissionDenied("only the customer who made a reservation may cancel it")
        if self.status is Status.PICKED_UP:
            raise FailedPrecondition("a PICKED_UP reservation cannot be canceled: return it")
        if self.status not in CANCELABLE:
            raise FailedPrecondition(f"a {self.status.value} reservation cannot be canceled")
        self.status = Status.CANCELED
        self.queue_ticket = self.queue_position = 0
        self.events.append(ReservationCanceled(self.reservation_id, self.user_id, self.book_id))


def refuse_over_limit(active: int, limit: int | None) -> None:
    """A customer holds at most `limit` active reservations across all books (None: no limit)."""
    if limit is not None and active >= limit:
        raise FailedPrecondition(
            f"a customer may hold at most {limit} active reservations (requested, waitlisted, confirmed"
            f" or picked up); you hold {active}"
        )


def queue_position(reservation: Reservation, waitlisted: Iterable[Reservation]) -> int:
    """1 = next: the waitlisted reservations of its book with an earlier ticket, plus one; 0 if not waiting."""
    if reservation.status is not Status.WAITLISTED:
        return 0
    return 1 + sum(
        1
        for r in waitlisted
        if r.book_id == reservation.book_id
        and r.status is Status.WAITLISTED
        and r.reservation_id != reservation.reservation_id
        and r.queue_ticket < reservation.queue_ticket
    )


def reservation_id(value: str) -> str:
    if not value or len(value) > MAX_RESERVATION_ID:
        raise InvalidArgument(f"reservation_id must be 1 to {MAX_RESERVATION_ID} characters")
    return validate.text(value, "reservation_id", MAX_RESERVATION_ID)


@dataclasses.dataclass
class Book:
    """The customers' view of a book, kept up to date from stock events."""

    book_id: str
    title: str = ""
    available: int = 0
    stock_version: int = 0
    waiting: int = 0  # the book's queue length, from issue 19's events
    update_time: datetime.datetime | None = None  # when stock last changed it (its event's time)

    def apply_stock_change(
        self,
        title: str,
        available: int,
        stock_version: int,
        waiting: int | None = None,
        changed_at: datetime.datetime | None = None,
    ) -> bool:
        """Takes a newer stock state; an older or repeated one changes nothing. `waiting`
        None: the event does not carry it (the seed's events), the queue is as it was.
        `changed_at`: when stock changed (its event's time), so that a view rebuilt from
        the events says the same as the one kept as they came; None, not known."""
        if stock_version <= self.stock_version:
            return False
        self.title = title or self.title
        self.available = available
        self.stock_version = stock_version
        if waiting is not None:
            self.waiting = waiting
        self.update_time = changed_at
        return True


class StockChange(NamedTuple):
    """A book's stock state as one of stock's events tells it (wire.stock_change): what
    the book list takes from the event (Book.apply_stock_change, in this order)."""

    book_id: str
    title: str
    available: int
    stock_version: int
    waiting: int | None  # None: the event does not carry it (the seed's events)
    changed_at: datetime.datetime | None
