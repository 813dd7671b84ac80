"""The stock service on the wire: its resource as protobuf, and its domain events
as the messages published on the stock topic (same field names)."""

from __future__ import annotations

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
    )


# Domain event -> the protobuf message published for it.
Message = events_pb2.StockReceived | events_pb2.StockReserved | events_pb2.StockRejected | events_pb2.StockReleased
MESSAGES: dict[type[domain.Event], type[Message]] = {
    domain.StockReceived: events_pb2.StockReceived,
    domain.StockReserved: events_pb2.StockReserved,
    domain.StockRejected: events_pb2.StockRejected,
    domain.StockReleased: events_pb2.StockReleased,
}


def event_message(event: domain.Event) -> Message:
    message = MESSAGES[type(event)](**vars(event))
    message.occur_time.GetCurrentTime()
    return message
