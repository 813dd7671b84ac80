"""Reservation rules, pure: no I/O, no framework.

A reservation asks for exactly one copy of one book. It is REQUESTED at once;
stock decides (CONFIRMED or REJECTED); the customer may cancel while it is
REQUESTED or CONFIRMED. A canceled reservation stays canceled whatever stock
decides afterwards."""

from __future__ import annotations

import dataclasses
import datetime
import enum

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


ACTIVE = (Status.REQUESTED, Status.CONFIRMED)


@dataclasses.dataclass(frozen=True)
class ReservationRequested:
    reservation_id: str
    user_id: str
    book_id: str


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

    @classmethod
    def request(cls, reservation_id: str, user_id: str, book_id: str, request_id: str = "") -> Reservation:
        shared_kernel.book_id(book_id)
        validate.text(request_id, "request_id", MAX_REQUEST_ID)
        reservation = cls(reservation_id, user_id, book_id, Status.REQUESTED, request_id=request_id)
        reservation.events.append(ReservationRequested(reservation_id, user_id, book_id))
        return reservation

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    def confirm(self) -> bool:
        """Stock set a copy aside. Returns whether the status changed."""
        if self.status is Status.REQUESTED:
            self.status = Status.CONFIRMED
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
        if not self.is_active:
            raise FailedPrecondition(f"a {self.status.value} reservation cannot be canceled")
        self.status = Status.CANCELED
        self.events.append(ReservationCanceled(self.reservation_id, self.user_id, self.book_id))


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

    def apply_stock_change(self, title: str, available: int, stock_version: int) -> bool:
        """Takes a newer stock state; an older or repeated one changes nothing."""
        if stock_version <= self.stock_version:
            return False
        self.title = title or self.title
        self.available = available
        self.stock_version = stock_version
        return True
