"""Read models of the reservation service (CQRS): the book list as customers see
it, read straight from its table into plain frozen values."""

from __future__ import annotations

import dataclasses
import datetime
from typing import cast

import peewee

from services.chassis import validate

from .repository import BookQueueRow, BookRow

MAX_QUERY = 100  # characters of ListBooks' query


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


def book_query(raw: str) -> str:
    """ListBooks' query as searched: surrounding spaces dropped; InvalidArgument when too
    long or holding a control character (PostgreSQL refuses NUL in text)."""
    return validate.text(raw.strip(), "query", MAX_QUERY)


def _like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own wildcards (% _) and the escape
    character taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column: peewee.Field, pattern: str) -> peewee.ColumnBase:
    """LOWER(column) LIKE pattern ESCAPE '\\', the same on SQLite and PostgreSQL."""
    like = peewee.NodeList((peewee.fn.LOWER(column), peewee.SQL("LIKE"), pattern, peewee.SQL("ESCAPE '\\'")))
    return cast(peewee.ColumnBase, like)  # a NodeList is one (peewee's stubs say Node)


def books(offset: int, limit: int, query: str = "") -> list[BookView]:
    """Ordered by book_id; with a `query` (book_query), only the books whose title or
    book id contains it, ignoring case."""
    select = _select()
    if query:
        pattern = _like_pattern(query)
        select = select.where(_contains(BookRow.title, pattern) | _contains(BookRow.book_id, pattern))
    return [_view(row) for row in select.order_by(BookRow.book_id).offset(offset).limit(limit)]
