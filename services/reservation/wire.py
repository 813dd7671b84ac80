"""The reservation service on the wire: its resources as protobuf, and its domain
events as the messages published for them (same field names)."""

from __future__ import annotations

import functools
from typing import Any

from bookrental.reservation.v1 import events_pb2, reservation_pb2
from services.chassis import events
from services.chassis.positions import Freshness
from services.chassis.times import from_iso, timestamp

from . import domain
from .views import BookListRow, BookView, view

_STATUS = {
    domain.Status.REQUESTED: reservation_pb2.RESERVATION_STATUS_REQUESTED,
    domain.Status.CONFIRMED: reservation_pb2.RESERVATION_STATUS_CONFIRMED,
    domain.Status.REJECTED: reservation_pb2.RESERVATION_STATUS_REJECTED,
    domain.Status.CANCELED: reservation_pb2.RESERVATION_STATUS_CANCELED,
    domain.Status.WAITLISTED: reservation_pb2.RESERVATION_STATUS_WAITLISTED,
    domain.Status.PICKED_UP: reservation_pb2.RESERVATION_STATUS_PICKED_UP,
    domain.Status.RETURNED: reservation_pb2.RESERVATION_STATUS_RETURNED,
    domain.Status.EXPIRED: reservation_pb2.RESERVATION_STATUS_EXPIRED,
}


def reservation_resource(r: domain.Reservation) -> reservation_pb2.Reservation:
    message = reservation_pb2.Reservation(
        reservation_id=r.reservation_id,
        user_id=r.user_id,
        book_id=r.book_id,
        status=_STATUS[r.status],
        reason=r.reason,
        create_time=timestamp(r.create_time),
        update_time=timestamp(r.update_time),
        queue_position=r.queue_position,
    )
    # A time the reservation does not have (no deadline, not on loan) stays unset, not the epoch.
    if r.pickup_deadline is not None:
        message.pickup_deadline.CopyFrom(timestamp(r.pickup_deadline))
    if r.due_time is not None:
        message.due_time.CopyFrom(timestamp(r.due_time))
    return message


def book_resource(book: BookView) -> reservation_pb2.Book:
    return reservation_pb2.Book(
        book_id=book.book_id,
        title=book.title,
        available=book.available,
        update_time=timestamp(book.update_time),
        waiting=book.waiting,
    )


def freshness(f: Freshness) -> reservation_pb2.Freshness:
    message = reservation_pb2.Freshness(pending_events=min(f.pending, 2**31 - 1))
    if f.last_event_time:
        message.last_event_time.FromJsonString(f.last_event_time)
    if f.as_of is not None:
        message.as_of.FromNanoseconds(int(f.as_of * 1e9))
    return message


def book_list(rows: list[BookListRow], next_page_token: str) -> reservation_pb2.ListBooksResponse:
    """ListBooks' answer. Each row's Book is built and serialized once and kept, keyed by
    the row itself: every value the Book shows is in the key, so a changed book is a new
    entry and never a stale one, and the page is read from the database every time
    (read-your-writes stays). Building the Books and their Timestamps on every call was,
    with the model objects views.book_page replaced, the service's own largest cost per
    page (docs/performance.md)."""
    answer = reservation_pb2.ListBooksResponse(next_page_token=next_page_token)
    for row in rows:
        answer.books.add().MergeFromString(_book_bytes(row))
    return answer


@functools.lru_cache(maxsize=4096)  # thread-safe; a few hundred bytes an entry
def _book_bytes(row: BookListRow) -> bytes:
    return book_resource(view(row)).SerializeToString()


def stock_change(event: Any, envelope: events.Envelope) -> domain.StockChange:
    """What one of stock's events (every one carries book_id, title, available and
    stock_version) tells the book list; `waiting` only where the message has the field
    (issue 19's events), the time is the event's (ce_time)."""
    waiting = event.waiting if "waiting" in event.DESCRIPTOR.fields_by_name else None
    return domain.StockChange(
        event.book_id, event.title, event.available, event.stock_version, waiting, from_iso(envelope.time)
    )


# Domain event -> the protobuf message published for it.
Message = events_pb2.ReservationRequested | events_pb2.ReservationCanceled
MESSAGES: dict[type[domain.Event], type[Message]] = {
    domain.ReservationRequested: events_pb2.ReservationRequested,
    domain.ReservationCanceled: events_pb2.ReservationCanceled,
}


def event_message(event: domain.Event) -> Message:
    message = MESSAGES[type(event)](**vars(event))
    message.occur_time.GetCurrentTime()
    return message
