"""Read models of the reservation service (CQRS): the book list as customers see
it, read straight from its table into plain frozen values."""

from __future__ import annotations

import dataclasses
import datetime

import peewee

from .repository import BookQueueRow, BookRow


@dataclasses.dataclass(frozen=True)
class BookView:
    book_id: str
    title: str
    available: int
    update_time: datetime.datetime
    waiting: int = 0  # the book's queue length


def _view(row: BookRow) -> BookView:
    return BookView(row.book_id, row.title, row.available, row.update_time, getattr(row, "waiting", None) or 0)


def _select() -> peewee.ModelSelect[BookRow]:
    """The book rows with their queue's length (no book_queue row: nobody waits)."""
    return (
        BookRow.select(BookRow, BookQueueRow.waiting.alias("waiting"))
        .join(BookQueueRow, peewee.JOIN.LEFT_OUTER, on=(BookQueueRow.book_id == BookRow.book_id))
        .objects()
    )


def book(book_id: str) -> BookView | None:
    row = _select().where(BookRow.book_id == book_id).first()
    return _view(row) if row is not None else None


def books(offset: int, limit: int) -> list[BookView]:
    """Ordered by book_id."""
    return [_view(row) for row in _select().order_by(BookRow.book_id).offset(offset).limit(limit)]
