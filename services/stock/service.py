"""Stock use cases: each is one unit of work (state + outbox in one transaction)."""

from __future__ import annotations

from collections.abc import Callable

from services import shared_kernel
from services.chassis.errors import Conflict, NotFound

from . import domain
from .ports import StockUnitOfWork


class StockService:
    def __init__(self, uow: Callable[..., StockUnitOfWork]):
        self.uow = uow  # uow() for a change, uow(read_only=True) for a read

    def receive_stock(self, book_id: str, quantity: int, title: str) -> domain.Stock:
        for attempt in (1, 2):
            try:
                with self.uow() as uow:
                    existing = uow.stocks.get(book_id, for_update=True)
                    stock = existing or domain.Stock(book_id)
                    stock.receive_stock(quantity, title)
                    (uow.stocks.save if existing else uow.stocks.add)(stock)
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

    def reserve_copy(self, reservation_id: str, user_id: str, book_id: str) -> domain.Hold:
        with self.uow() as uow:
            stock = uow.stocks.get(book_id, for_update=True) or uow.stocks.never_received(book_id)
            hold = stock.reserve(reservation_id, user_id, uow.holds.get(reservation_id))
            if stock.events and stock.in_stock:
                uow.stocks.save(stock)
            uow.holds.save(hold)
        return hold

    def release_copy(self, reservation_id: str, user_id: str, book_id: str) -> domain.Hold:
        with self.uow() as uow:
            stock = uow.stocks.get(book_id, for_update=True) or uow.stocks.never_received(book_id)
            hold = stock.release(reservation_id, user_id, uow.holds.get(reservation_id))
            if stock.events:
                uow.stocks.save(stock)
            uow.holds.save(hold)
        return hold
