"""Stock rules, pure: no I/O, no framework.

A Stock is one book's copies. Reservations reach it as holds: a hold records
what stock decided for one reservation, so a copy is released only for a
reservation it had reserved, and a repeated request changes nothing.

The whole life of a copy (issue 19): a request that finds no copy free may join
the book's queue (a WAITING hold, FIFO by its `ticket`); a copy that becomes free
(received, released by a cancel, an expiry or a return) goes to the head of the
queue before it counts as available; a held copy (RESERVED) carries a pickup
deadline, is checked out (ON_LOAN, with a due time) and returned. Times are data
passed in (`now`), never a clock read here. Every copy is in exactly one place:
`available + held + on_loan == total_received`, none negative, and no copy is
available while someone waits."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Iterable, Sequence

from services import shared_kernel
from services.chassis import validate
from services.chassis.errors import FailedPrecondition, InvalidArgument, NotFound

MAX_QUANTITY = 100_000
MAX_TITLE = 200
OUT_OF_STOCK = "out of stock: no copy left"
NOT_IN_STOCK = "book is not in stock"
HOLD_PICKUP = datetime.timedelta(days=3)  # HOLD_PICKUP_SECONDS' default
LOAN = datetime.timedelta(days=14)  # LOAN_SECONDS' default


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
    pickup_deadline: datetime.datetime | None = None  # held until then; None: no deadline (the seed's path)


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


# Issue 19's events. Named as the existing outcomes are, "Stock" + what happened to
# the copy or the request, in the past tense: the stock topic's consumers read them as
# stock's decisions. Each carries the outcome fields (whom, which book, the new
# `available` and `stock_version`) plus `waiting`, the queue's length after it.


@dataclasses.dataclass(frozen=True)
class StockWaitlisted:
    """No copy was free: the reservation joined the book's queue at `queue_position` (1 = next)."""

    reservation_id: str
    user_id: str
    book_id: str
    title: str
    available: int
    stock_version: int
    waiting: int
    queue_position: int
    ticket: int


@dataclasses.dataclass(frozen=True)
class StockAllocated:
    """A freed copy went to the head of the queue: held for that customer until `pickup_deadline`."""

    reservation_id: str
    user_id: str
    book_id: str
    title: str
    available: int
    stock_version: int
    waiting: int
    pickup_deadline: datetime.datetime | None


@dataclasses.dataclass(frozen=True)
class StockWaitlistLeft:
    """A waiting reservation was canceled: it left the queue, no copy moved."""

    reservation_id: str
    user_id: str
    book_id: str
    title: str
    available: int
    stock_version: int
    waiting: int


@dataclasses.dataclass(frozen=True)
class StockHoldExpired:
    """The pickup deadline passed without a check-out; the copy went to the next in line or the shelf."""

    reservation_id: str
    user_id: str
    book_id: str
    title: str
    available: int
    stock_version: int
    waiting: int


@dataclasses.dataclass(frozen=True)
class StockCheckedOut:
    """A held copy was handed to its customer, due back at `due_time`."""

    reservation_id: str
    user_id: str
    book_id: str
    title: str
    available: int
    stock_version: int
    waiting: int
    due_time: datetime.datetime


@dataclasses.dataclass(frozen=True)
class StockReturned:
    """A loaned copy came back; it went to the next in line or the shelf."""

    reservation_id: str
    user_id: str
    book_id: str
    title: str
    available: int
    stock_version: int
    waiting: int


@dataclasses.dataclass(frozen=True)
class StockLoanOverdue:
    """A loan passed its due time (noticed once; it stays on loan until returned)."""

    reservation_id: str
    user_id: str
    book_id: str
    title: str
    available: int
    stock_version: int
    waiting: int
    due_time: datetime.datetime


class HoldStatus(str, enum.Enum):  # noqa: UP042 -- StrEnum's str() and format() differ
    RESERVED = "RESERVED"  # a copy is set aside (held for the customer, until pickup_deadline if any)
    REJECTED = "REJECTED"  # none was left
    RELEASED = "RELEASED"  # set aside, then given back on cancel
    CANCELED = "CANCELED"  # cancel arrived before any decision (or while waiting): a later request is ignored
    WAITING = "WAITING"  # in the book's queue, in `ticket` order
    EXPIRED = "EXPIRED"  # set aside, not picked up by its deadline
    ON_LOAN = "ON_LOAN"  # checked out, due back at due_time
    RETURNED = "RETURNED"  # on loan, then returned


@dataclasses.dataclass
class Hold:
    reservation_id: str
    book_id: str
    user_id: str
    status: HoldStatus
    ticket: int = 0  # the queue's order (the stock_version at which it joined); 0 if it never waited
    pickup_deadline: datetime.datetime | None = None  # while RESERVED; None: no deadline (the seed's path)
    due_time: datetime.datetime | None = None  # while ON_LOAN
    overdue_noticed: bool = False  # the one overdue notice was sent


class CopiesDoNotAddUp(AssertionError):
    """A broken invariant: a bug, never a caller's error."""


# What a Stock raises, for the outbox (bootstrap's publications).
Event = (
    StockReceived
    | StockReserved
    | StockRejected
    | StockReleased
    | StockWaitlisted
    | StockAllocated
    | StockWaitlistLeft
    | StockHoldExpired
    | StockCheckedOut
    | StockReturned
    | StockLoanOverdue
)


@dataclasses.dataclass
class Stock:
    book_id: str
    title: str = ""
    available: int = 0
    total_received: int = 0
    stock_version: int = 0
    update_time: datetime.datetime | None = dataclasses.field(default=None, compare=False)  # set by storage
    events: list[Event] = dataclasses.field(default_factory=list, compare=False, repr=False)
    on_loan: int = dataclasses.field(default=0, kw_only=True)
    waiting: int = dataclasses.field(default=0, kw_only=True)  # the queue's length
    # Holds this aggregate changed besides the one a method returns (queue heads it served),
    # for the use case to store, like `events`.
    served: list[Hold] = dataclasses.field(default_factory=list, compare=False, repr=False, kw_only=True)

    @property
    def in_stock(self) -> bool:
        return self.stock_version > 0

    @property
    def held(self) -> int:
        """Copies set aside for a customer: what is neither on the shelf nor on loan."""
        return self.total_received - self.available - self.on_loan

    def check(self, holds: Iterable[Hold] | None = None) -> None:
        """The copy invariant; with the book's holds, also that the counts are theirs."""
        counts = (self.available, self.held, self.on_loan, self.waiting)
        if min(counts) < 0 or (self.available > 0 and self.waiting > 0):
            raise CopiesDoNotAddUp(f"{self.book_id}: available, held, on_loan, waiting = {counts}")
        if holds is not None:
            mine = [h.status for h in holds if h.book_id == self.book_id]
            of = (HoldStatus.RESERVED, HoldStatus.ON_LOAN, HoldStatus.WAITING)
            if (self.held, self.on_loan, self.waiting) != tuple(mine.count(s) for s in of):
                raise CopiesDoNotAddUp(f"{self.book_id}: {counts} against holds {sorted(mine)}")

    def receive_stock(
        self,
        quantity: int,
        title: str = "",
        queue: Sequence[Hold] = (),
        now: datetime.datetime | None = None,
        pickup: datetime.timedelta = HOLD_PICKUP,
    ) -> None:
        """Adds copies; each serves the next waiting reservation of `queue` before it is available."""
        shared_kernel.book_id(self.book_id)
        if not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            raise InvalidArgument(f"quantity must be 1 to {MAX_QUANTITY}")
        title = (title or "").strip()
        validate.text(title, "title", MAX_TITLE)
        if not title and not self.title:
            raise InvalidArgument("title is required on a book's first receipt")
        if title:
            self.title = title
        heads = self._heads(queue)[:quantity]
        self.available += quantity - len(heads)
        self.total_received += quantity
        self.stock_version += 1
        self.events.append(
            StockReceived(self.book_id, self.title, quantity, self.available, self.total_received, self.stock_version)
        )
        for head in heads:
            self._allocate(head, now, pickup)
        self.check()

    def reserve(
        self,
        reservation_id: str,
        user_id: str,
        hold: Hold | None,
        waitlist: bool = False,
        now: datetime.datetime | None = None,
        pickup: datetime.timedelta = HOLD_PICKUP,
    ) -> Hold:
        """Sets a copy aside if one is left; else, with `waitlist` and a book stock has
        received, queues the request; a reservation already decided is left as it is.
        With `now`, the copy is held until `now + pickup`."""
        if hold is not None:
            return hold
        if self.available > 0:
            self.available -= 1
            self.stock_version += 1
            deadline = _plus(now, pickup)
            self.events.append(
                StockReserved(
                    reservation_id, user_id, self.book_id, self.title, self.available, self.stock_version, deadline
                )
            )
            self.check()
            return Hold(reservation_id, self.book_id, user_id, HoldStatus.RESERVED, pickup_deadline=deadline)
        if waitlist and self.in_stock:
            self.waiting += 1
            self.stock_version += 1
            self.events.append(
                StockWaitlisted(
                    reservation_id,
                    user_id,
                    self.book_id,
                    self.title,
                    self.available,
                    self.stock_version,
                    self.waiting,
                    queue_position=self.waiting,
                    ticket=self.stock_version,
                )
            )
            self.check()
            return Hold(reservation_id, self.book_id, user_id, HoldStatus.WAITING, ticket=self.stock_version)
        reason = OUT_OF_STOCK if self.in_stock else NOT_IN_STOCK
        self.events.append(
            StockRejected(reservation_id, user_id, self.book_id, self.title, self.available, self.stock_version, reason)
        )
        return Hold(reservation_id, self.book_id, user_id, HoldStatus.REJECTED)

    def release(
        self,
        reservation_id: str,
        user_id: str,
        hold: Hold | None,
        queue: Sequence[Hold] = (),
        now: datetime.datetime | None = None,
        pickup: datetime.timedelta = HOLD_PICKUP,
    ) -> Hold:
        """A cancel. Gives a reserved copy back (to the head of `queue` first); a waiting
        request leaves the queue; anything else releases nothing."""
        if hold is None:
            return Hold(reservation_id, self.book_id, user_id, HoldStatus.CANCELED)
        if hold.status is HoldStatus.WAITING:
            self.waiting -= 1
            self.stock_version += 1
            self.events.append(
                StockWaitlistLeft(
                    reservation_id, user_id, self.book_id, self.title, self.available, self.stock_version, self.waiting
                )
            )
            self.check()
            return dataclasses.replace(hold, status=HoldStatus.CANCELED)
        if hold.status is not HoldStatus.RESERVED:
            return hold
        head = self._heads(queue, skip=reservation_id)[:1]
        self.available += 1 - len(head)
        self.stock_version += 1
        self.events.append(
            StockReleased(reservation_id, user_id, self.book_id, self.title, self.available, self.stock_version)
        )
        for h in head:
            self._allocate(h, now, pickup)
        self.check()
        return dataclasses.replace(hold, status=HoldStatus.RELEASED, pickup_deadline=None)

    def expire(
        self, hold: Hold, now: datetime.datetime, queue: Sequence[Hold] = (), pickup: datetime.timedelta = HOLD_PICKUP
    ) -> Hold:
        """A held copy whose pickup deadline has passed (`now` at or after it) expires, once;
        its copy serves the head of `queue` or goes back to the shelf. Any other hold
        (checked out meanwhile, already expired, no deadline, not yet due) is left as it is."""
        if hold.status is not HoldStatus.RESERVED or hold.pickup_deadline is None or now < hold.pickup_deadline:
            return hold
        self._free_copy(hold, StockHoldExpired, queue, now, pickup)
        # Its deadline goes with it, as a release's does: the scanner's range holds only live deadlines.
        return dataclasses.replace(hold, status=HoldStatus.EXPIRED, pickup_deadline=None)

    def check_out(
        self, reservation_id: str, hold: Hold | None, now: datetime.datetime, loan: datetime.timedelta = LOAN
    ) -> Hold:
        """Hands a held copy to its customer: on loan until `now + loan`. Only a copy held
        and not past its pickup deadline can be checked out."""
        if hold is None:
            raise NotFound(f"no hold for reservation {reservation_id!r}")
        if hold.status is not HoldStatus.RESERVED:
            raise FailedPrecondition(
                f"reservation {reservation_id!r} has no copy held: its hold is {hold.status.value}"
            )
        if hold.pickup_deadline is not None and now >= hold.pickup_deadline:
            raise FailedPrecondition(f"the hold of reservation {reservation_id!r} expired at {hold.pickup_deadline}")
        due = now + loan
        self.on_loan += 1
        self.stock_version += 1
        self.events.append(
            StockCheckedOut(
                reservation_id,
                hold.user_id,
                self.book_id,
                self.title,
                self.available,
                self.stock_version,
                self.waiting,
                due,
            )
        )
        self.check()
        return dataclasses.replace(hold, status=HoldStatus.ON_LOAN, pickup_deadline=None, due_time=due)

    def return_copy(
        self,
        reservation_id: str,
        hold: Hold | None,
        now: datetime.datetime,
        queue: Sequence[Hold] = (),
        pickup: datetime.timedelta = HOLD_PICKUP,
    ) -> Hold:
        """Takes a loaned copy back; it serves the head of `queue` or goes back to the shelf."""
        if hold is None:
            raise NotFound(f"no loan for reservation {reservation_id!r}")
        if hold.status is not HoldStatus.ON_LOAN:
            raise FailedPrecondition(f"reservation {reservation_id!r} is not a loan: its hold is {hold.status.value}")
        self.on_loan -= 1
        self._free_copy(hold, StockReturned, queue, now, pickup)
        return dataclasses.replace(hold, status=HoldStatus.RETURNED, due_time=None)  # due_time: while ON_LOAN

    def notice_overdue(self, hold: Hold, now: datetime.datetime) -> Hold:
        """A loan past its due time is announced once; it stays on loan. Changes no count."""
        if hold.status is not HoldStatus.ON_LOAN or hold.overdue_noticed or hold.due_time is None:
            return hold
        if now < hold.due_time:
            return hold
        self.stock_version += 1
        self.events.append(
            StockLoanOverdue(
                hold.reservation_id,
                hold.user_id,
                self.book_id,
                self.title,
                self.available,
                self.stock_version,
                self.waiting,
                hold.due_time,
            )
        )
        return dataclasses.replace(hold, overdue_noticed=True)

    # -- the queue ---------------------------------------------------------------------

    def _free_copy(
        self,
        hold: Hold,
        freed: type[StockHoldExpired] | type[StockReturned],
        queue: Sequence[Hold],
        now: datetime.datetime | None,
        pickup: datetime.timedelta,
    ) -> None:
        """The hold's copy serves the head of `queue`, or goes back to the shelf; `freed`
        is the event that says why (its `waiting` counts the queue after the head left)."""
        head = self._heads(queue, skip=hold.reservation_id)[:1]
        self.available += 1 - len(head)
        self.stock_version += 1
        self.events.append(
            freed(
                hold.reservation_id,
                hold.user_id,
                self.book_id,
                self.title,
                self.available,
                self.stock_version,
                self.waiting - len(head),
            )
        )
        for h in head:
            self._allocate(h, now, pickup)
        self.check()

    def _heads(self, queue: Sequence[Hold], skip: str = "") -> list[Hold]:
        """The waiting holds of this book in FIFO order, without those already served."""
        served = {h.reservation_id for h in self.served} | {skip}
        waiting = [
            h
            for h in queue
            if h.status is HoldStatus.WAITING and h.book_id == self.book_id and h.reservation_id not in served
        ]
        return sorted(waiting, key=lambda h: h.ticket)

    def _allocate(self, head: Hold, now: datetime.datetime | None, pickup: datetime.timedelta) -> None:
        """A freed copy goes to the queue's head (it never counted as available)."""
        self.waiting -= 1
        self.stock_version += 1
        deadline = _plus(now, pickup)
        self.served.append(dataclasses.replace(head, status=HoldStatus.RESERVED, pickup_deadline=deadline))
        self.events.append(
            StockAllocated(
                head.reservation_id,
                head.user_id,
                self.book_id,
                self.title,
                self.available,
                self.stock_version,
                self.waiting,
                deadline,
            )
        )


def _plus(now: datetime.datetime | None, span: datetime.timedelta) -> datetime.datetime | None:
    return None if now is None else now + span
