"""Stock's events and resource on the wire: every domain event has its message, with
every field of the event under the same name, times as Timestamps and no deadline
(None) left unset rather than sent as the epoch."""

from __future__ import annotations

import dataclasses
import datetime
import typing

from bookrental.stock.v1 import stock_pb2
from services.stock import domain, wire

T = datetime.datetime(2026, 12, 1, 12, 0, 0)


def test_every_domain_event_has_its_message_with_the_same_fields():
    events = typing.get_args(domain.Event)
    assert set(wire.MESSAGES) == set(events)
    for event in events:
        declared = set(wire.MESSAGES[event].DESCRIPTOR.fields_by_name)
        assert {f.name for f in dataclasses.fields(event)} <= declared, event.__name__


def test_times_go_as_timestamps_and_no_deadline_stays_unset():
    base = dict(reservation_id="r1", user_id="u1", book_id="b1", title="T", available=0, stock_version=3, waiting=2)
    allocated = wire.event_message(domain.StockAllocated(**base, pickup_deadline=T))
    assert allocated.pickup_deadline.ToDatetime() == T
    assert (allocated.waiting, allocated.stock_version) == (2, 3)
    assert allocated.occur_time.seconds > 0
    assert not wire.event_message(domain.StockAllocated(**base, pickup_deadline=None)).HasField("pickup_deadline")
    assert wire.event_message(domain.StockCheckedOut(**base, due_time=T)).due_time.ToDatetime() == T
    waitlisted = wire.event_message(domain.StockWaitlisted(**base, queue_position=2, ticket=7))
    assert (waitlisted.queue_position, waitlisted.ticket) == (2, 7)


def test_the_stock_resource_counts_every_copy():
    stock = domain.Stock("b1", "T", available=1, total_received=4, stock_version=5, on_loan=2, waiting=0)
    r = wire.stock_resource(stock)
    assert (r.available, r.held, r.on_loan, r.waiting, r.total_received) == (1, 1, 2, 0, 4)
    assert r.available + r.held + r.on_loan == r.total_received


def test_a_hold_goes_with_its_status_its_times_only_when_set_and_its_books_stock():
    stock = domain.Stock("b1", "T", available=0, total_received=1, stock_version=3, on_loan=1)
    loan = domain.Hold("r1", "b1", "u1", domain.HoldStatus.ON_LOAN, due_time=T)
    h = wire.hold_resource(loan, stock)
    assert (h.reservation_id, h.book_id, h.user_id, h.status) == ("r1", "b1", "u1", stock_pb2.HOLD_STATUS_ON_LOAN)
    assert h.due_time.ToDatetime() == T and not h.HasField("pickup_deadline")
    assert (h.stock.on_loan, h.stock.held) == (1, 0)
    names = {wire.hold_resource(domain.Hold("r", "b", "u", s), stock).status for s in domain.HoldStatus}
    assert len(names) == len(domain.HoldStatus) and stock_pb2.HOLD_STATUS_UNSPECIFIED not in names
