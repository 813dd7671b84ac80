"""Reservation persistence: the tables (peewee models, which also create the
schema) and the repositories of the ports (ports.py), written as SQL."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import peewee

from services.chassis import db
from services.chassis.db import BaseModel
from services.chassis.errors import Conflict
from services.chassis.times import utcnow
from services.chassis.uow import Repository

from . import domain


class ReservationRow(BaseModel):
    reservation_id = peewee.CharField(max_length=36, primary_key=True)
    user_id = peewee.CharField(max_length=128, index=True)
    book_id = peewee.CharField(max_length=64)
    status = peewee.CharField(max_length=16)
    reason = peewee.CharField(max_length=200, default="")
    request_id = peewee.CharField(max_length=64, default="")
    create_time = peewee.DateTimeField(index=True)
    update_time = peewee.DateTimeField()

    class Meta:
        table_name = "reservation"


class BookRow(BaseModel):
    book_id = peewee.CharField(max_length=64, primary_key=True)
    title = peewee.CharField(max_length=200)
    available = peewee.BigIntegerField()
    stock_version = peewee.BigIntegerField()
    update_time = peewee.DateTimeField()

    class Meta:
        table_name = "book"


class ReservationLifeRow(BaseModel):
    """Issue 19's fields of a reservation, beside its row (a table of its own, so that a
    database made before them needs no ALTER: create_schema adds missing tables only).
    No row: no waitlist, not queued, no deadline, not on loan."""

    reservation_id = peewee.CharField(max_length=36, primary_key=True)
    book_id = peewee.CharField(max_length=64)
    waitlist = peewee.BooleanField(default=False)
    queue_ticket = peewee.BigIntegerField(default=0)
    pickup_deadline = peewee.DateTimeField(null=True)
    due_time = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "reservation_life"
        indexes = ((("book_id", "queue_ticket"), False),)


class BookQueueRow(BaseModel):
    """Issue 19's `waiting` of a book in the book list, beside its row (a table of its own,
    as ReservationLifeRow). No row: nobody waits."""

    book_id = peewee.CharField(max_length=64, primary_key=True)
    waiting = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "book_queue"


MODELS = [ReservationRow, BookRow, ReservationLifeRow, BookQueueRow]
# The database itself holds the rules "one active reservation per customer and
# book" and "one reservation per request_id", so concurrent replicas cannot break them.
INDEXES = [
    # The seed's index, kept (a database made before has it; it is implied by the next).
    "CREATE UNIQUE INDEX IF NOT EXISTS reservation_one_active ON reservation (user_id, book_id)"
    " WHERE status IN ('REQUESTED', 'CONFIRMED')",
    # Issue 19's active statuses (domain.ACTIVE), in the same text as _ACTIVE_SQL below.
    "CREATE UNIQUE INDEX IF NOT EXISTS reservation_one_active_life ON reservation (user_id, book_id)"
    " WHERE status IN ('REQUESTED', 'WAITLISTED', 'CONFIRMED', 'PICKED_UP')",
    "CREATE UNIQUE INDEX IF NOT EXISTS reservation_request_id ON reservation (user_id, request_id)"
    " WHERE request_id <> ''",
]


_COLUMNS = db.columns(ReservationRow)
_SELECT = (
    "SELECT "
    + ", ".join(f"reservation.{c}" for c in _COLUMNS.split(", "))
    + ", l.waitlist, l.queue_ticket, l.pickup_deadline, l.due_time"
    " FROM reservation LEFT JOIN reservation_life l ON l.reservation_id = reservation.reservation_id"
)
# Written into the statements, not bound: SQLite uses a partial index only when the
# query's own text implies the index's WHERE, and cannot see through a parameter. With
# `status IN (?, ?)` the check below scanned every reservation the customer ever made.
_ACTIVE_SQL = ", ".join(f"'{s.value}'" for s in domain.ACTIVE)

# How many active reservations a customer holds, and the id of the one of this book:
# the limit and the one-active rule of a create in one statement. Its text implies
# the partial unique index's WHERE, so SQLite reads the customer's active entries only.
_HELD = (
    "SELECT COUNT(*), MAX(CASE WHEN book_id = ? THEN reservation_id END) FROM reservation"
    f" WHERE user_id = ? AND status IN ({_ACTIVE_SQL})"
)
# The space of reservation's key locks (db.lock_key): the customers'.
_CUSTOMER_LOCKS = 1

# A time column as the driver returns it: SQLite the stored text, PostgreSQL a datetime.
StoredTime = str | datetime.datetime | None


def _to_domain(
    reservation_id: str,
    user_id: str,
    book_id: str,
    status: str,
    reason: str,
    request_id: str,
    create_time: StoredTime,
    update_time: StoredTime,
    waitlist: bool | int | None = None,
    queue_ticket: int | None = None,
    pickup_deadline: StoredTime = None,
    due_time: StoredTime = None,
) -> domain.Reservation:
    # SQLite returns the stored text
    as_time: Callable[[StoredTime], datetime.datetime | None] = ReservationRow.create_time.python_value
    return domain.Reservation(
        reservation_id,
        user_id,
        book_id,
        domain.Status(status),
        reason,
        request_id,
        as_time(create_time),
        as_time(update_time),
        waitlist=bool(waitlist),
        queue_ticket=queue_ticket or 0,
        pickup_deadline=as_time(pickup_deadline),
        due_time=as_time(due_time),
    )


def _has_life(r: domain.Reservation) -> bool:
    return bool(r.waitlist or r.queue_ticket or r.pickup_deadline or r.due_time)


class ReservationRepository(Repository):
    """The statements each reservation runs are plain SQL (chassis `db.execute`):
    peewee's query building cost more than the statements themselves."""

    def __init__(self) -> None:
        super().__init__()
        self._lived: set[str] = set()  # reservations with a reservation_life row: a change to it is written

    def _loaded(self, r: domain.Reservation) -> domain.Reservation:
        if _has_life(r):
            self._lived.add(r.reservation_id)
        return self._seen(r)

    def get(self, reservation_id: str, for_update: bool = False) -> domain.Reservation | None:
        """`for_update` before a change of status: a customer's cancel and stock's
        decision may arrive at once, and neither may overwrite the other unseen."""
        if for_update:  # the row first, then the row and its life as they are now
            db.lock_row("reservation", "reservation_id", reservation_id)
        found = db.rows(f"{_SELECT} WHERE reservation.reservation_id = ?", (reservation_id,))
        return self._loaded(_to_domain(*found[0])) if found else None

    def by_request_id(self, user_id: str, request_id: str) -> domain.Reservation | None:
        found = db.rows(
            f"{_SELECT} WHERE user_id = ? AND request_id = ? AND request_id <> ''",
            (user_id, request_id),
        )  # the partial index's WHERE
        return self._loaded(_to_domain(*found[0])) if found else None

    def active(self, user_id: str, book_id: str) -> domain.Reservation | None:
        found = db.rows(
            f"{_SELECT} WHERE user_id = ? AND reservation.book_id = ? AND status IN ({_ACTIVE_SQL})",
            (user_id, book_id),
        )
        return self._loaded(_to_domain(*found[0])) if found else None

    def lock_customer(self, user_id: str) -> None:
        db.lock_key(_CUSTOMER_LOCKS, user_id)

    def active_and_count(self, user_id: str, book_id: str) -> tuple[domain.Reservation | None, int]:
        count, active_id = db.rows(_HELD, (book_id, user_id))[0]
        # Read whole only when there is one (a repeat or a 409, not the seed's path); a
        # cancel may have committed in between (PostgreSQL's next statement sees it).
        active = self.get(active_id) if active_id else None
        return (active if active is not None and active.is_active else None), int(count)

    def waitlisted(self, book_id: str) -> list[domain.Reservation]:
        return [
            _to_domain(*row)
            for row in db.rows(
                f"{_SELECT} WHERE l.book_id = ? AND status = ? ORDER BY l.queue_ticket",
                (book_id, domain.Status.WAITLISTED.value),
            )
        ]

    def _save_life(self, r: domain.Reservation) -> None:
        if not _has_life(r) and r.reservation_id not in self._lived:
            return  # the seed's path never writes here
        db.execute(
            "INSERT INTO reservation_life (reservation_id, book_id, waitlist, queue_ticket, pickup_deadline, due_time)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (reservation_id) DO UPDATE SET waitlist = excluded.waitlist,"
            " queue_ticket = excluded.queue_ticket, pickup_deadline = excluded.pickup_deadline,"
            " due_time = excluded.due_time",
            (r.reservation_id, r.book_id, r.waitlist, r.queue_ticket, r.pickup_deadline, r.due_time),
        )
        self._lived.add(r.reservation_id)

    def add(self, r: domain.Reservation) -> None:
        r.create_time = r.update_time = utcnow()
        try:
            db.execute(
                f"INSERT INTO reservation ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    r.reservation_id,
                    r.user_id,
                    r.book_id,
                    r.status.value,
                    r.reason,
                    r.request_id,
                    r.create_time,
                    r.update_time,
                ),
            )
        except peewee.IntegrityError as exc:
            raise Conflict(str(exc)) from exc
        self._save_life(r)
        self._seen(r)

    def save(self, r: domain.Reservation) -> None:
        r.update_time = utcnow()
        db.execute(
            "UPDATE reservation SET status = ?, reason = ?, update_time = ? WHERE reservation_id = ?",
            (r.status.value, r.reason, r.update_time, r.reservation_id),
        )
        self._save_life(r)
        self._seen(r)

    def list(self, user_id: str | None, offset: int, limit: int) -> list[domain.Reservation]:
        where, params = ("WHERE user_id = ? ", (user_id,)) if user_id is not None else ("", ())
        return [
            _to_domain(*row)
            for row in db.rows(
                f"{_SELECT} {where}ORDER BY create_time DESC, reservation.reservation_id LIMIT ? OFFSET ?",
                (*params, limit, offset),
            )
        ]


_BOOK_COLUMNS = db.columns(BookRow)
_BOOK, _BOOK_QUEUE = BookRow._meta.table_name, BookQueueRow._meta.table_name
# A book's row and its queue's (head, tail), into the live tables (save) or a rebuild's
# fresh ones (write_book_list).
_INSERT_BOOK = f"INSERT INTO {{}} ({_BOOK_COLUMNS})"
_UPDATE_BOOK = (
    " ON CONFLICT (book_id) DO UPDATE SET title = excluded.title,"
    " available = excluded.available, stock_version = excluded.stock_version,"
    " update_time = excluded.update_time"
)
_INSERT_QUEUE = "INSERT INTO {} (book_id, waiting)"
_UPDATE_QUEUE = " ON CONFLICT (book_id) DO UPDATE SET waiting = excluded.waiting"
_SAVE_BOOK = f"{_INSERT_BOOK.format(_BOOK)} VALUES (?, ?, ?, ?, ?){_UPDATE_BOOK}"
_SAVE_QUEUE = f"{_INSERT_QUEUE.format(_BOOK_QUEUE)} VALUES (?, ?){_UPDATE_QUEUE}"


def _book_row(book: domain.Book) -> tuple[object, ...]:
    return (book.book_id, book.title, book.available, book.stock_version, book.update_time or utcnow())


def write_book_list(books: list[domain.Book], queued: list[domain.Book], tables: dict[str, str]) -> None:
    """A rebuild's rows of the book list (rebuild.py), into its fresh tables (`tables`: the
    live names' fresh twins): each book's row, and the queue's row of each book that has
    had a queue (as save writes one the first time someone waits, and keeps it)."""
    book_head, queue_head = _INSERT_BOOK.format(tables[_BOOK]), _INSERT_QUEUE.format(tables[_BOOK_QUEUE])
    with db.database.atomic(), db.gathered():  # multi-row INSERTs (each book once: no row is upserted twice)
        for b in books:
            db.insert_later(book_head, _book_row(b), _UPDATE_BOOK)
        for b in queued:
            db.insert_later(queue_head, (b.book_id, b.waiting), _UPDATE_QUEUE)


class BookRepository(Repository):
    """The book list's rows; whether a stock change is newer, the domain decides (Book)."""

    def __init__(self) -> None:
        super().__init__()
        self._waiting: dict[str, int] = {}  # book_id -> waiting as read, so an unchanged queue writes nothing

    def get(self, book_id: str) -> domain.Book | None:
        found = db.rows(
            "SELECT b.title, b.available, b.stock_version, COALESCE(q.waiting, 0) FROM book b"
            " LEFT JOIN book_queue q ON q.book_id = b.book_id WHERE b.book_id = ?",
            (book_id,),
        )
        if not found:
            return None
        book = domain.Book(book_id, *found[0])
        self._waiting[book_id] = book.waiting
        return self._seen(book)

    def save(self, book: domain.Book) -> None:
        db.execute(_SAVE_BOOK, _book_row(book))
        if book.waiting != self._waiting.get(book.book_id, 0):  # the seed's path never gets here
            db.execute(_SAVE_QUEUE, (book.book_id, book.waiting))
            self._waiting[book.book_id] = book.waiting
        self._seen(book)
