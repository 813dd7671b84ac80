"""The reservation on the wire: every status has its enum value, and the times of its
life are sent only while it has them (unset, not the epoch, otherwise)."""

from __future__ import annotations

import datetime

from bookrental.reservation.v1 import reservation_pb2
from services.chassis.positions import Freshness
from services.reservation import domain, wire

T = datetime.datetime(2026, 12, 1, 12, 0, 0)


def reservation(status: domain.Status, **life) -> domain.Reservation:
    return domain.Reservation("r1", "u1", "b1", status, create_time=T, update_time=T, **life)


def test_every_status_has_its_own_enum_value():
    values = {s: wire.reservation_resource(reservation(s)).status for s in domain.Status}
    assert len(set(values.values())) == len(domain.Status)
    assert reservation_pb2.RESERVATION_STATUS_UNSPECIFIED not in values.values()
    for s, v in values.items():
        assert reservation_pb2.ReservationStatus.Name(v) == f"RESERVATION_STATUS_{s.value}"


def test_the_life_fields_are_set_only_when_the_reservation_has_them():
    waiting = wire.reservation_resource(reservation(domain.Status.WAITLISTED, queue_position=2))
    assert waiting.queue_position == 2
    assert not waiting.HasField("pickup_deadline") and not waiting.HasField("due_time")
    held = wire.reservation_resource(reservation(domain.Status.CONFIRMED, pickup_deadline=T))
    assert held.pickup_deadline.ToDatetime() == T and not held.HasField("due_time")
    loan = wire.reservation_resource(reservation(domain.Status.PICKED_UP, due_time=T))
    assert loan.due_time.ToDatetime() == T and not loan.HasField("pickup_deadline")
    assert not wire.reservation_resource(reservation(domain.Status.CONFIRMED)).HasField("pickup_deadline")


def test_the_request_event_carries_waitlist():
    assert wire.event_message(domain.ReservationRequested("r1", "u1", "b1", waitlist=True)).waitlist is True
    assert wire.event_message(domain.ReservationRequested("r1", "u1", "b1")).waitlist is False


def test_the_book_goes_with_its_queue_length():
    from services.reservation.views import BookView

    assert wire.book_resource(BookView("b1", "Dune", 0, T, waiting=3)).waiting == 3


def test_the_book_list_shows_each_rows_values_as_stored_on_either_database():
    sqlite_row = ("b-1", "Dune", 3, "2026-12-01 12:00:00.250000", 2)  # SQLite returns the text it stored
    postgres_row = ("b-2", "Momo", 0, T, 0)  # PostgreSQL a datetime
    answer = wire.book_list([sqlite_row, postgres_row], "next")
    assert [(b.book_id, b.title, b.available, b.waiting) for b in answer.books] == [
        ("b-1", "Dune", 3, 2),
        ("b-2", "Momo", 0, 0),
    ]
    assert answer.books[0].update_time.ToDatetime() == T.replace(microsecond=250000)
    assert answer.books[1].update_time.ToDatetime() == T
    assert answer.next_page_token == "next"


def test_a_changed_book_is_never_answered_from_what_was_kept_of_it():
    before = ("b-3", "Dune", 3, T, 0)
    assert wire.book_list([before], "").books[0].available == 3
    reserved = ("b-3", "Dune", 2, T + datetime.timedelta(microseconds=1), 0)
    waiting = ("b-3", "Dune", 2, T + datetime.timedelta(microseconds=1), 1)  # a queue change alone, too
    assert [(b.available, b.waiting) for b in wire.book_list([reserved, waiting], "").books] == [(2, 0), (2, 1)]
    assert wire.book_list([before], "").books[0].available == 3  # asked again: the same answer


def test_a_position_becomes_times_and_a_count():
    m = wire.freshness(Freshness("2026-12-02T10:00:01.250+00:00", 7, 1796205602.5))
    assert m.last_event_time.ToJsonString() == "2026-12-02T10:00:01.250Z"
    assert m.pending_events == 7
    assert m.as_of.ToJsonString() == "2026-12-02T10:00:02.500Z"


def test_before_any_event_the_times_stay_unset_and_a_huge_backlog_is_capped():
    m = wire.freshness(Freshness("", 3_000_000_000, None))
    assert not m.HasField("last_event_time") and not m.HasField("as_of")
    assert m.pending_events == 2**31 - 1
