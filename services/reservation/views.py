"""Read models of the reservation service (CQRS): the book list as customers see
it, read straight from its table into plain frozen values."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from services.chassis import db, positions, times, validate

MAX_QUERY = 100  # characters of ListBooks' query


@dataclasses.dataclass(frozen=True)
class BookView:
    book_id: str
    title: str
    available: int
    update_time: datetime.datetime
    waiting: int = 0  # the book's queue length


# One row of the book list as stored: book_id, title, available, update_time as the
# driver returns it (text on SQLite: times.stored), waiting.
BookListRow = tuple[str, str, int, Any, int]

_BOOK_LIST = (
    "SELECT b.book_id, b.title, b.available, b.update_time, COALESCE(q.waiting, 0) FROM book b"
    " LEFT JOIN book_queue q ON q.book_id = b.book_id"  # no book_queue row: nobody waits
)


def view(row: BookListRow) -> BookView:
    book_id, title, available, update_time, waiting = row
    return BookView(book_id, title, available, times.stored(update_time), waiting)


def freshness(stock_topic: str) -> positions.Freshness:
    """How far the book list (and the reservations' outcomes) have applied the stock topic."""
    return positions.freshness(stock_topic)


def book(book_id: str) -> BookView | None:
    found = db.rows(f"{_BOOK_LIST} WHERE b.book_id = ?", (book_id,))
    return view(found[0]) if found else None


def book_query(raw: str) -> str:
    """ListBooks' query as searched: surrounding spaces dropped; InvalidArgument when too
    long or holding a control character (PostgreSQL refuses NUL in text)."""
    return validate.text(raw.strip(), "query", MAX_QUERY)


def _like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own wildcards (% _) and the escape
    character taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def book_page(offset: int, limit: int, query: str = "") -> list[BookListRow]:
    """A page of the book list as stored rows, ordered by book_id; with a `query`
    (book_query), only the books whose title or book id contains it, ignoring case
    (LOWER(...) LIKE ... ESCAPE, the same on SQLite and PostgreSQL). Plain rows, not
    models: the list is read far more often than anything else (wire.book_list)."""
    where = ""
    matching: tuple[str, ...] = ()
    if query:
        where = " WHERE LOWER(b.title) LIKE ? ESCAPE '\\' OR LOWER(b.book_id) LIKE ? ESCAPE '\\'"
        matching = (_like_pattern(query),) * 2
    return db.rows(f"{_BOOK_LIST}{where} ORDER BY b.book_id LIMIT ? OFFSET ?", (*matching, limit, offset))


def books(offset: int, limit: int, query: str = "") -> list[BookView]:
    return [view(row) for row in book_page(offset, limit, query)]
