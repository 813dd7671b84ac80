"""Alert's subscriptions as the consumer calls them (the decoded stock event and its
envelope), against fake repositories: each stock decision becomes its notification kind
with the detail the event carries (a place, a pickup deadline, a due time), a redelivered
event makes no second one, every stock event type is either told or knowingly ignored,
and every kind goes on the wire under its own name. Last, a whole life run by stock's own
use cases: each customer is told each outcome once."""

from __future__ import annotations

import datetime
import uuid
from collections import Counter

import pytest
from google.protobuf import timestamp_pb2

from bookrental.alert.v1 import alert_pb2
from bookrental.stock.v1 import events_pb2 as stock_events
from services.alert import entrypoints, wire
from services.alert.domain import EMAIL, LOG, Kind
from services.alert.service import AlertService
from services.alert.views import NotificationView
from services.chassis.events import Envelope
from services.stock import wire as stock_wire
from services.stock.service import StockService
from tests.unit.fakes import EPOCH, alert_store, stock_store

DEADLINE = datetime.datetime(2026, 12, 4, 12, 30, 59)
DUE = datetime.datetime(2026, 12, 18, 9, 5, 0)
COMMON = dict(reservation_id="r-1", user_id="alice", book_id="b-1", title="Dune", available=0, stock_version=7)


def ts(value: datetime.datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(value)
    return t


class Alert:
    """Alert's consumer side over a fake store: deliver(message) as the consumer does."""

    def __init__(self) -> None:
        self.store = alert_store()
        self.service = AlertService(self.store.uow, offered=(EMAIL,))
        self.handlers = {s.message_class: s.handler for s in entrypoints.subscriptions(self.service)}

    def deliver(self, message, event_id: str | None = None) -> None:
        envelope = Envelope(
            event_id or str(uuid.uuid4()), message.DESCRIPTOR.full_name, "stock", "", message.reservation_id
        )
        self.handlers[type(message)](message, envelope)

    def notifications(self, user_id: str | None = None) -> list:
        return [n for n in self.store.tables["notifications"].values() if user_id in (None, n.user_id)]


@pytest.fixture
def alert():
    a = Alert()
    a.service.update_preferences("alice", {"email": "alice@example.com", "channels": [EMAIL], "language": "en"}, [])
    return a


@pytest.mark.parametrize(
    "message, kind, says",
    [
        (
            stock_events.StockReserved(**COMMON, pickup_deadline=ts(DEADLINE)),
            Kind.CONFIRMED,
            "confirmed; pick it up by 2026-12-04 12:30 UTC.",
        ),
        (stock_events.StockReserved(**COMMON), Kind.CONFIRMED, "is confirmed. Reservation r-1."),
        (
            stock_events.StockRejected(**COMMON, reason="out of stock: no copy left"),
            Kind.REJECTED,
            "could not be confirmed: out of stock",
        ),
        (stock_events.StockReleased(**COMMON), Kind.CANCELED, "canceled and the copy went back to stock"),
        (
            stock_events.StockWaitlisted(**COMMON, waiting=2, queue_position=2, ticket=7),
            Kind.WAITLISTED,
            "on the waiting list, number 2 in line",
        ),
        (
            stock_events.StockAllocated(**COMMON, pickup_deadline=ts(DEADLINE)),
            Kind.READY,
            "is held for you; pick it up by 2026-12-04 12:30 UTC.",
        ),
        (stock_events.StockWaitlistLeft(**COMMON), Kind.CANCELED, "canceled and it left the waiting list"),
        (stock_events.StockHoldExpired(**COMMON), Kind.EXPIRED, "expired: it was not picked up by its pickup deadline"),
        (
            stock_events.StockLoanOverdue(**COMMON, due_time=ts(DUE)),
            Kind.OVERDUE,
            "overdue (due 2026-12-18 09:05 UTC): please return it",
        ),
        (stock_events.StockReturned(**COMMON), Kind.RETURNED, "is returned. Thank you."),
    ],
    ids=lambda v: type(v).__name__ if hasattr(v, "DESCRIPTOR") else None,
)
def test_each_stock_decision_is_told_as_its_kind_with_the_detail_it_carries(alert, message, kind, says):
    alert.deliver(message)
    [n] = alert.notifications()
    assert (n.kind, n.reservation_id, n.user_id, n.book_id) == (kind, "r-1", "alice", "b-1")
    assert says in n.message and "“Dune” (b-1)" in n.message and n.message.endswith("Reservation r-1.")
    assert n.deliveries == [(LOG, ""), (EMAIL, "alice@example.com")]  # every channel the customer chose


def test_korean_is_told_by_default_with_the_same_details():
    a = Alert()
    a.deliver(stock_events.StockWaitlisted(**COMMON, waiting=1, queue_position=1, ticket=7))
    a.deliver(stock_events.StockAllocated(**{**COMMON, "reservation_id": "r-2"}, pickup_deadline=ts(DEADLINE)))
    waitlisted, ready = a.notifications()
    assert "(대기 순번 1번)" in waitlisted.message and waitlisted.language == "ko"
    assert "2026-12-04 12:30 UTC까지 찾아가 주세요" in ready.message and ready.subject == "예약 도서 준비: Dune"


def test_a_redelivered_event_makes_no_second_notification(alert):
    overdue = stock_events.StockLoanOverdue(**COMMON, due_time=ts(DUE))
    for _ in range(3):
        alert.deliver(overdue, event_id="evt-overdue")
    alert.deliver(stock_events.StockAllocated(**COMMON, pickup_deadline=ts(DEADLINE)), event_id="evt-ready")
    alert.deliver(stock_events.StockAllocated(**COMMON, pickup_deadline=ts(DEADLINE)), event_id="evt-ready")
    assert sorted(n.kind for n in alert.notifications()) == [Kind.OVERDUE, Kind.READY]


def test_an_unset_time_reads_as_none_not_the_epoch():
    told = wire.outcome(Kind.READY, stock_events.StockAllocated(**COMMON))
    assert (told.pickup_deadline, told.due_time, told.queue_position) == (None, None, 0)
    told = wire.outcome(Kind.OVERDUE, stock_events.StockLoanOverdue(**COMMON, due_time=ts(DUE)))
    assert (told.due_time, told.pickup_deadline) == (DUE, None)


def test_every_stock_event_is_told_or_knowingly_ignored():
    every = {m.full_name for m in stock_events.DESCRIPTOR.message_types_by_name.values()}
    told = {s.message_class.DESCRIPTOR.full_name for s in entrypoints.subscriptions(None)}
    assert told | set(entrypoints.IGNORED) == every and not told & set(entrypoints.IGNORED)
    # A check-out is at the desk, with the customer; a receipt is nobody's outcome.
    assert set(entrypoints.IGNORED) == {
        stock_events.StockCheckedOut.DESCRIPTOR.full_name,
        stock_events.StockReceived.DESCRIPTOR.full_name,
    }


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_goes_on_the_wire_under_its_own_name(kind):
    view = NotificationView(
        "n-1", "r-1", "alice", "b-1", kind.value, "text", "log", "SENT", 1, "", EPOCH, EPOCH, "subject", "en"
    )
    resource = wire.notification_resource(view, [])
    assert alert_pb2.NotificationKind.Name(resource.kind) == f"NOTIFICATION_KIND_{kind.value}"


def test_a_whole_life_run_by_stock_tells_each_customer_each_outcome_once():
    """Stock's own use cases make the events (one copy; carol holds it, dave and erin
    wait, erin leaves, carol borrows and returns it, dave's hold from the queue expires,
    frank borrows the copy and keeps it past its due time), each goes through stock's
    wire to alert's handlers, and then every event is delivered again."""
    stock_side = stock_store()
    stock = StockService(stock_side.uow, hold_pickup=datetime.timedelta(days=3), loan=datetime.timedelta(days=14))
    t0 = EPOCH + datetime.timedelta(days=1)

    def later(days: float) -> datetime.datetime:
        return t0 + datetime.timedelta(days=days)

    stock.receive_stock("b-1", 1, "Dune", now=t0)
    stock.reserve_copy("r-carol", "carol", "b-1", now=t0)
    stock.reserve_copy("r-dave", "dave", "b-1", waitlist=True, now=t0)
    stock.reserve_copy("r-erin", "erin", "b-1", waitlist=True, now=t0)
    stock.release_copy("r-erin", "erin", "b-1", now=later(0.5))
    stock.check_out("r-carol", later(1))
    stock.return_copy("r-carol", later(2))  # the copy goes to dave, held until later(5)
    assert [h.reservation_id for h in stock.expire_holds(later(6))] == ["r-dave"]
    stock.reserve_copy("r-frank", "frank", "b-1", now=later(6))
    stock.check_out("r-frank", later(6))
    for day in (21, 22):  # the scanner runs again: the loan was noticed once
        stock.notice_overdue_loans(later(day))

    alert = Alert()  # in Korean, the default
    messages = [(str(uuid.uuid4()), stock_wire.event_message(e)) for e in stock_side.published]
    for event_id, message in messages:
        if type(message) in alert.handlers:
            alert.deliver(message, event_id)
    first = {n.notification_id: n.message for n in alert.notifications()}
    for event_id, message in messages:  # a redelivery of everything
        if type(message) in alert.handlers:
            alert.deliver(message, event_id)

    told = {u: Counter(n.kind for n in alert.notifications(u)) for u in ("carol", "dave", "erin", "frank")}
    assert told == {
        "carol": Counter([Kind.CONFIRMED, Kind.RETURNED]),  # no notice at the check-out desk
        "dave": Counter([Kind.WAITLISTED, Kind.READY, Kind.EXPIRED]),
        "erin": Counter([Kind.WAITLISTED, Kind.CANCELED]),  # one cancel notice: she left the queue
        "frank": Counter([Kind.CONFIRMED, Kind.OVERDUE]),
    }
    assert {n.notification_id: n.message for n in alert.notifications()} == first
    by = {(n.user_id, n.kind): n.message for n in alert.notifications()}
    assert "(대기 순번 1번)" in by["dave", Kind.WAITLISTED] and "(대기 순번 2번)" in by["erin", Kind.WAITLISTED]
    assert f"{later(5):%Y-%m-%d %H:%M} UTC까지 찾아가 주세요" in by["dave", Kind.READY]  # returned + 3 days
    assert "대기 명단에서 빠졌습니다" in by["erin", Kind.CANCELED]
    assert f"반납 기한({later(20):%Y-%m-%d %H:%M} UTC)이 지났습니다" in by["frank", Kind.OVERDUE]
