"""Stock use cases: each is one unit of work (state + outbox in one transaction)."""
from __future__ import annotations

from typing import Callable

import peewee

from services.chassis import validate
from services.chassis.errors import NotFound
from services.chassis.uow import UnitOfWork

from . import adapters, domain


class StockService:
    def __init__(self, uow: Callable[[], UnitOfWork], topic: str):
        self.uow = uow
        self.topic = topic
        self.repo = adapters.StockRepository()

    def receive_stock(self, book_id: str, quantity: int, title: str) -> domain.Stock:
        for attempt in (1, 2):
            try:
                with self.uow() as uow:
                    existing = self.repo.get(book_id, for_update=True)
                    stock = existing or domain.Stock(book_id)
                    stock.receive_stock(quantity, title)
                    (self.repo.save if existing else self.repo.add)(stock)
                    uow.publish_events(self.topic, stock.book_id, stock.events, adapters.MESSAGES)
                break
            except peewee.IntegrityError:
                if attempt == 2:  # the row exists now; a second conflict is not a race
                    raise
        return stock

    def get_stock(self, book_id: str) -> domain.Stock:
        validate.book_id(book_id)
        stock = self.repo.get(book_id)
        if stock is None:
            raise NotFound(f"book {book_id!r} has no stock")
        return stock

    def list_stocks(self, offset: int, limit: int) -> list[domain.Stock]:
        return self.repo.list(offset, limit)

    # Event handlers run inside the consumer's transaction (with the inbox row).

    def reserve_copy(self, reservation_id: str, user_id: str, book_id: str) -> domain.Hold:
        with self.uow() as uow:
            stock = self.repo.get(book_id, for_update=True) or domain.Stock(book_id)
            hold = stock.reserve(reservation_id, user_id, self.repo.get_hold(reservation_id))
            if stock.events and stock.in_stock:
                self.repo.save(stock)
            self.repo.save_hold(hold)
            uow.publish_events(self.topic, stock.book_id, stock.events, adapters.MESSAGES)
        return hold

    def release_copy(self, reservation_id: str, user_id: str, book_id: str) -> domain.Hold:
        with self.uow() as uow:
            stock = self.repo.get(book_id, for_update=True) or domain.Stock(book_id)
            hold = stock.release(reservation_id, user_id, self.repo.get_hold(reservation_id))
            if stock.events:
                self.repo.save(stock)
            self.repo.save_hold(hold)
            uow.publish_events(self.topic, stock.book_id, stock.events, adapters.MESSAGES)
        return hold
