"""The stock service on the wire: its resource as protobuf, and its domain events
as the messages published on the stock topic (same field names)."""

from __future__ import annotations

import datetime
from typing import Any

from bookrental.stock.v1 import events_pb2, stock_pb2
from services.chassis.times import timestamp

from . import domain


def stock_resource(stock: domain.Stock) -> stock_pb2.Stock:
    return stock_pb2.Stock(
        book_id=stock.book_id,
        title=stock.title,
        available=stock.available,
        total_received=stock.total_received,
        update_time=timestamp(stock.update_time),
        held=stock.held,
        on_loan=stock.on_loan,
        waiting=stock.waiting,
    )


_HOLD_STATUS = {
    domain.HoldStatus.RESERVED: stock_pb2.HOLD_STATUS_RESERVED,
    domain.HoldStatus.REJECTED: stock_pb2.HOLD_STATUS_REJECTED,
    domain.HoldStatus.RELEASED: stock_pb2.HOLD_STATUS_RELEASED,
    domain.HoldStatus.CANCELED: stock_pb2.HOLD_STATUS_CANCELED,
    domain.HoldStatus.WAITING: stock_pb2.HOLD_STATUS_WAITING,
    domain.HoldStatus.ON_LOAN: stock_pb2.HOLD_STATUS_ON_LOAN,
    domain.HoldStatus.RETURNED: stock_pb2.HOLD_STATUS_RETURNED,
    domain.HoldStatus.EXPIRED: stock_pb2.HOLD_STATUS_EXPIRED,
}


def hold_resource(hold: domain.Hold, stock: domain.Stock) -> stock_pb2.Hold:
    """A hold with its book's stock; a time it does not have stays unset, not the epoch."""
    message = stock_pb2.Hold(
        reservation_id=hold.reservation_id,
        book_id=hold.book_id,
        user_id=hold.user_id,
        status=_HOLD_STATUS[hold.status],
        stock=stock_resource(stock),
    )
    if hold.pickup_deadline is not None:
        message.pickup_deadline.CopyFrom(timestamp(hold.pickup_deadline))
    if hold.due_time is not None:
        message.due_time.CopyFrom(timestamp(hold.due_time))
    return message


# Domain event -> the protobuf message published for it.
Message = (
    events_pb2.StockReceived
    | events_pb2.StockReserved
    | events_pb2.StockRejected
    | events_pb2.StockReleased
    | events_pb2.StockWaitlisted
    | events_pb2.StockAllocated
    | events_pb2.StockWaitlistLeft
    | events_pb2.StockHoldExpired
    | events_pb2.StockCheckedOut
    | events_pb2.StockReturned
    | events_pb2.StockLoanOverdue
)
MESSAGES: dict[type[domain.Event], type[Message]] = {
    domain.StockReceived: events_pb2.StockReceived,
    domain.StockReserved: events_pb2.StockReserved,
    domain.StockRejected: events_pb2.StockRejected,
    domain.StockReleased: events_pb2.StockReleased,
    domain.StockWaitlisted: events_pb2.StockWaitlisted,
    domain.StockAllocated: events_pb2.StockAllocated,
    domain.StockWaitlistLeft: events_pb2.StockWaitlistLeft,
    domain.StockHoldExpired: events_pb2.StockHoldExpired,
    domain.StockCheckedOut: events_pb2.StockCheckedOut,
    domain.StockReturned: events_pb2.StockReturned,
    domain.StockLoanOverdue: events_pb2.StockLoanOverdue,
}


def event_message(event: domain.Event) -> Message:
    """The event's fields by name; a time as a Timestamp, and None (no deadline) left unset."""
    fields: dict[str, Any] = {
        name: timestamp(value) if isinstance(value, datetime.datetime) else value
        for name, value in vars(event).items()
        if value is not None
    }
    message = MESSAGES[type(event)](**fields)
    message.occur_time.GetCurrentTime()
    return message
