"""Stock rules, pure: no I/O, no framework.

A Stock is one book's copies. Reservations reach it as holds: a hold records
what stock decided for one reservation, so a copy is released only for a
reservation it had reserved, and a repeated request changes nothing."""

from __future__ import annotations

import dataclasses
import datetime
import enum

from services import shared_kernel
from services.chassis import validate
from services.chassis.errors import InvalidArgument

MAX_QUANTITY = 100_000
MAX_TITLE = 200
OUT_OF_STOCK = "out of stock: no copy left"
NOT_IN_STOCK = "book is not in stock"


@dataclasses.dataclass(frozen=True)
class StockReceived:
    book_id: str
    title: str
    quantity: int
    available: int
    total_received: int
    stock_version: int


@dataclasses.dataclass(frozen=True)
class StockReserved:
    reservation_id: str
    user_id: str
    book_id: str
    title: str
    available: int
    stock_version: int


@dataclasses.dataclass(frozen=True)
class StockRejected:
    reservation_id: str
    user_id: str
    book_id: str
    title: str
    available: int
    stock_version: int
    reason: str


@dataclasses.dataclass(frozen=True)
class StockReleased:
    reservation_id: str
    user_id: str
    book_id: str
    title: str
    available: int
    stock_version: int


class HoldStatus(str, enum.Enum):  # noqa: UP042 -- StrEnum's str() and format() differ
    RESERVED = "RESERVED"  # a copy is set aside
    REJECTED = "REJECTED"  # none was left
    RELEASED = "RELEASED"  # set aside, then given back on cancel
    CANCELED = "CANCELED"  # cancel arrived before any decision: a later request is ignored


@dataclasses.dataclass
class Hold:
    reservation_id: str
    book_id: str
    user_id: str
    status: HoldStatus


# What a Stock raises, for the outbox (bootstrap's publications).
Event = StockReceived | StockReserved | StockRejected | StockReleased


@dataclasses.dataclass
class Stock:
    book_id: str
    title: str = ""
    available: int = 0
    total_received: int = 0
    stock_version: int = 0
    update_time: datetime.datetime | None = dataclasses.field(default=None, compare=False)  # set by storage
    events: list[Event] = dataclasses.field(default_factory=list, compare=False, repr=False)

    @property
    def in_stock(self) -> bool:
        return self.stock_version > 0

    def receive_stock(self, quantity: int, title: str = "") -> None:
        shared_kernel.book_id(self.book_id)
        if not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            raise InvalidArgument(f"quantity must be 1 to {MAX_QUANTITY}")
        title = (title or "").strip()
        validate.text(title, "title", MAX_TITLE)
        if not title and not self.title:
            raise InvalidArgument("title is required on a book's first receipt")
        if title:
            self.title = title
        self.available += quantity
        self.total_received += quantity
        self.stock_version += 1
        self.events.append(
            StockReceived(self.book_id, self.title, quantity, self.available, self.total_received, self.stock_version)
        )

    def reserve(self, reservation_id: str, user_id: str, hold: Hold | None) -> Hold:
        """Sets a copy aside if one is left; a reservation already decided is left as it is."""
        if hold is not None:
            return hold
        if self.available > 0:
            self.available -= 1
            self.stock_version += 1
            self.events.append(
                StockReserved(reservation_id, user_id, self.book_id, self.title, self.available, self.stock_version)
            )
            return Hold(reservation_id, self.book_id, user_id, HoldStatus.RESERVED)
        reason = OUT_OF_STOCK if self.in_stock else NOT_IN_STOCK
        self.events.append(
            StockRejected(reservation_id, user_id, self.book_id, self.title, self.available, self.stock_version, reason)
        )
        return Hold(reservation_id, self.book_id, user_id, HoldStatus.REJECTED)

    def release(self, reservation_id: str, user_id: str, hold: Hold | None) -> Hold:
        """Gives a reserved copy back; anything else releases nothing."""
        if hold is None:
            return Hold(reservation_id, self.book_id, user_id, HoldStatus.CANCELED)
        if hold.status is not HoldStatus.RESERVED:
            return hold
        self.available += 1
        self.stock_version += 1
        self.events.append(
            StockReleased(reservation_id, user_id, self.book_id, self.title, self.available, self.stock_version)
        )
        return dataclasses.replace(hold, status=HoldStatus.RELEASED)
