"""Reservation's subscriptions to issue 19's stock events, as the consumer calls them
(the decoded message and its envelope), against fake repositories: each moves the
reservation one step of its life with the times the message carries, and a repeat
changes nothing. StockLoanOverdue is known and ignored, not "unknown"."""

from __future__ import annotations

import datetime

from google.protobuf import timestamp_pb2

from bookrental.stock.v1 import events_pb2 as stock_events
from services.chassis.events import Envelope
from services.chassis.identity import Identity
from services.reservation import entrypoints
from services.reservation.domain import Status
from services.reservation.service import ReservationService
from tests.unit.fakes import reservation_store

ALICE = Identity("alice", frozenset({"customer"}))
DEADLINE = datetime.datetime(2026, 12, 4, 12, 0, 0)
DUE = datetime.datetime(2026, 12, 18, 12, 0, 0)


def ts(value: datetime.datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(value)
    return t


def test_stocks_decisions_move_the_reservation_along_its_life():
    store = reservation_store()
    service = ReservationService(store.uow)
    handlers = {s.message_class: s.handler for s in entrypoints.subscriptions(service)}
    r = service.create_reservation(ALICE, "b-1", waitlist=True)
    assert store.published[-1].waitlist is True  # stock reads it from ReservationRequested
    common = dict(reservation_id=r.reservation_id, user_id="alice", book_id="b-1", title="Dune", available=0)

    def deliver(message) -> Status:
        handlers[type(message)](message, Envelope("e", message.DESCRIPTOR.full_name, "stock", "", r.reservation_id))
        return service.get_reservation(ALICE, r.reservation_id).status

    assert deliver(stock_events.StockWaitlisted(**common, stock_version=2, waiting=1, queue_position=1, ticket=2)) is (
        Status.WAITLISTED
    )
    allocated = stock_events.StockAllocated(**common, stock_version=3, waiting=0, pickup_deadline=ts(DEADLINE))
    assert deliver(allocated) is Status.CONFIRMED
    assert service.get_reservation(ALICE, r.reservation_id).pickup_deadline == DEADLINE
    assert deliver(allocated) is Status.CONFIRMED  # a repeat changes nothing
    assert deliver(stock_events.StockCheckedOut(**common, stock_version=4, due_time=ts(DUE))) is Status.PICKED_UP
    assert service.get_reservation(ALICE, r.reservation_id).due_time == DUE
    assert deliver(stock_events.StockReturned(**common, stock_version=5)) is Status.RETURNED


def test_a_held_copy_without_a_deadline_is_confirmed_without_one_and_an_expiry_ends_it():
    store = reservation_store()
    service = ReservationService(store.uow)
    handlers = {s.message_class: s.handler for s in entrypoints.subscriptions(service)}
    r = service.create_reservation(ALICE, "b-1")
    common = dict(reservation_id=r.reservation_id, user_id="alice", book_id="b-1", title="Dune", available=0)
    envelope = Envelope("e", "t", "stock", "", r.reservation_id)
    handlers[stock_events.StockReserved](stock_events.StockReserved(**common, stock_version=2), envelope)
    confirmed = service.get_reservation(ALICE, r.reservation_id)
    assert (confirmed.status, confirmed.pickup_deadline) == (Status.CONFIRMED, None)
    handlers[stock_events.StockHoldExpired](stock_events.StockHoldExpired(**common, stock_version=3), envelope)
    assert service.get_reservation(ALICE, r.reservation_id).status is Status.EXPIRED


def test_an_overdue_notice_is_known_and_ignored():
    subscribed = {s.message_class.DESCRIPTOR.full_name for s in entrypoints.subscriptions(None)}
    assert stock_events.StockLoanOverdue.DESCRIPTOR.full_name in entrypoints.IGNORED
    assert not subscribed & set(entrypoints.IGNORED)
