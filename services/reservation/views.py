"""Read models of the reservation service (CQRS): the book list as customers see
it, read straight from its table into plain frozen values."""

from __future__ import annotations

import dataclasses
import datetime

from .repository import BookRow


@dataclasses.dataclass(frozen=True)
class BookView:
    book_id: str
    title: str
    available: int
    update_time: datetime.datetime


def _view(row: BookRow) -> BookView:
    return BookView(row.book_id, row.title, row.available, row.update_time)


def book(book_id: str) -> BookView | None:
    row = BookRow.get_or_none(BookRow.book_id == book_id)
    return _view(row) if row is not None else None


def books(offset: int, limit: int) -> list[BookView]:
    """Ordered by book_id."""
    return [_view(row) for row in BookRow.select().order_by(BookRow.book_id).offset(offset).limit(limit)]
