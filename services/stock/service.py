"""Stock use cases: each is one unit of work (state + outbox in one transaction)."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from services import shared_kernel
from services.chassis.errors import Conflict, NotFound

from . import domain
from .ports import StockUnitOfWork


class StockService:
    """`now` on a use case is the time the caller read (entrypoints); without it a held
    copy has no pickup deadline, the seed's behaviour."""

    def __init__(
        self,
        uow: Callable[..., StockUnitOfWork],
        hold_pickup: datetime.timedelta = domain.HOLD_PICKUP,
        loan: datetime.timedelta = domain.LOAN,
    ):
        self.uow = uow  # uow() for a change, uow(read_only=True) for a read
        self.hold_pickup = hold_pickup
        self.loan = loan

    def receive_stock(
        self, book_id: str, quantity: int, title: str, now: datetime.datetime | None = None
    ) -> domain.Stock:
        for attempt in (1, 2):
            try:
                with self.uow() as uow:
                    existing = uow.stocks.get(book_id, for_update=True)
                    stock = existing or domain.Stock(book_id)
                    queue = uow.holds.waiting(book_id, quantity) if existing and existing.waiting else []
                    stock.receive_stock(quantity, title, queue, now, self.hold_pickup)
                    (uow.stocks.save if existing else uow.stocks.add)(stock)
                    self._save_served(uow, stock)
                break
            except Conflict:
                if attempt == 2:  # the row exists now; a second conflict is not a race
                    raise
        return stock

    def get_stock(self, book_id: str) -> domain.Stock:
        shared_kernel.book_id(book_id)
        with self.uow(read_only=True) as uow:
            stock = uow.stocks.get(book_id)
        if stock is None:
            raise NotFound(f"book {book_id!r} has no stock")
        return stock

    def list_stocks(self, offset: int, limit: int) -> list[domain.Stock]:
        with self.uow(read_only=True) as uow:
            return uow.stocks.list(offset, limit)

    # Event handlers run inside the consumer's transaction (with the inbox row).

    def reserve_copy(
        self,
        reservation_id: str,
        user_id: str,
        book_id: str,
        waitlist: bool = False,
        now: datetime.datetime | None = None,
    ) -> domain.Hold:
        with self.uow() as uow:
            stock = uow.stocks.get(book_id, for_update=True) or uow.stocks.never_received(book_id)
            hold = stock.reserve(
                reservation_id, user_id, uow.holds.get(reservation_id), waitlist, now, self.hold_pickup
            )
            if stock.events and stock.in_stock:
                uow.stocks.save(stock)
            uow.holds.save(hold)
        return hold

    def release_copy(
        self, reservation_id: str, user_id: str, book_id: str, now: datetime.datetime | None = None
    ) -> domain.Hold:
        with self.uow() as uow:
            stock = uow.stocks.get(book_id, for_update=True) or uow.stocks.never_received(book_id)
            hold = uow.holds.get(reservation_id)
            queue = self._queue(uow, stock, hold, domain.HoldStatus.RESERVED)
            hold = stock.release(reservation_id, user_id, hold, queue, now, self.hold_pickup)
            if stock.events:
                uow.stocks.save(stock)
            uow.holds.save(hold)
            self._save_served(uow, stock)
        return hold

    # Issue 19: the hold shelf and the loans (the RPCs CheckOut and Return, the deadline scanner).

    def check_out(self, reservation_id: str, now: datetime.datetime) -> domain.Hold:
        with self.uow() as uow:
            hold, stock = self._hold_and_stock(uow, reservation_id)
            hold = stock.check_out(reservation_id, hold, now, self.loan)
            uow.stocks.save(stock)
            uow.holds.save(hold)
        return hold

    def return_copy(self, reservation_id: str, now: datetime.datetime) -> domain.Hold:
        with self.uow() as uow:
            hold, stock = self._hold_and_stock(uow, reservation_id)
            queue = self._queue(uow, stock, hold, domain.HoldStatus.ON_LOAN)
            hold = stock.return_copy(reservation_id, hold, now, queue, self.hold_pickup)
            uow.stocks.save(stock)
            uow.holds.save(hold)
            self._save_served(uow, stock)
        return hold

    def expire_holds(
        self, now: datetime.datetime, limit: int = 100, done: Callable[[domain.Hold], None] = lambda hold: None
    ) -> list[domain.Hold]:
        """The deadline scanner's step: each hold past its pickup deadline expires in its own
        unit of work (re-read under the book's lock, so a check-out or a second scanner
        that came first wins and nothing fires twice). Returns the holds that expired;
        `done(hold)` is told of each as it commits, so a failure later in the round hides none."""
        with self.uow(read_only=True) as uow:
            due = uow.holds.expiring(now, limit)
        expired = []
        for candidate in due:
            with self.uow() as uow:
                stock = uow.stocks.get(candidate.book_id, for_update=True)
                hold = uow.holds.get(candidate.reservation_id)
                if stock is None or hold is None:
                    continue
                queue = self._queue(uow, stock, hold, domain.HoldStatus.RESERVED)
                after = stock.expire(hold, now, queue, self.hold_pickup)
                if after is hold:
                    continue
                uow.stocks.save(stock)
                uow.holds.save(after)
                self._save_served(uow, stock)
            expired.append(after)
            done(after)
        return expired

    def notice_overdue_loans(
        self, now: datetime.datetime, limit: int = 100, done: Callable[[domain.Hold], None] = lambda hold: None
    ) -> list[domain.Hold]:
        """The scanner's other step: one overdue notice per loan past its due time (`done` as above)."""
        with self.uow(read_only=True) as uow:
            due = uow.holds.overdue(now, limit)
        noticed = []
        for candidate in due:
            with self.uow() as uow:
                stock = uow.stocks.get(candidate.book_id, for_update=True)
                hold = uow.holds.get(candidate.reservation_id)
                if stock is None or hold is None:
                    continue
                after = stock.notice_overdue(hold, now)
                if after is hold:
                    continue
                uow.stocks.save(stock)
                uow.holds.save(after)
            noticed.append(after)
            done(after)
        return noticed

    @staticmethod
    def _hold_and_stock(uow: StockUnitOfWork, reservation_id: str) -> tuple[domain.Hold | None, domain.Stock]:
        hold = uow.holds.get(reservation_id)
        if hold is None:
            raise NotFound(f"no hold for reservation {reservation_id!r}")
        stock = uow.stocks.get(hold.book_id, for_update=True)
        if stock is None:  # a hold that is not REJECTED/CANCELED implies a stored stock
            raise NotFound(f"book {hold.book_id!r} has no stock")
        return uow.holds.get(reservation_id), stock  # read again under the book's lock

    @staticmethod
    def _queue(
        uow: StockUnitOfWork, stock: domain.Stock, hold: domain.Hold | None, frees: domain.HoldStatus
    ) -> list[domain.Hold]:
        """The queue's head, loaded only when the hold's change frees a copy someone waits for."""
        if stock.waiting and hold is not None and hold.status is frees:
            return uow.holds.waiting(stock.book_id, 1)
        return []

    @staticmethod
    def _save_served(uow: StockUnitOfWork, stock: domain.Stock) -> None:
        while stock.served:
            uow.holds.save(stock.served.pop(0))
