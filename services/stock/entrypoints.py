"""Inbound adapters: the gRPC StockService, the reservation-event consumer and the
deadline scanner's round (the clock's: run every HOLD_SCAN_SECONDS by bootstrap)."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

import grpc
from prometheus_client import Counter

from bookrental.reservation.v1 import events_pb2 as reservation_events
from bookrental.stock.v1 import stock_pb2, stock_pb2_grpc
from services import shared_kernel
from services.chassis import events, paging, validate
from services.chassis.consumer import Subscription
from services.chassis.identity import Identity
from services.chassis.server import rpc
from services.chassis.times import utcnow

from . import domain, wire
from .service import StockService

log = logging.getLogger(__name__)

# What the deadline scanner did, on this replica (sum over replicas for the service's).
HOLDS_EXPIRED = Counter("bookrental_stock_holds_expired_total", "Holds that expired at their pickup deadline")
OVERDUE_NOTICES = Counter("bookrental_stock_overdue_notices_total", "Loans noticed past their due time (once each)")


class StockServicer(stock_pb2_grpc.StockServiceServicer):
    public_rpcs: frozenset[str]  # set by create_server, read by rpc

    def __init__(self, service: StockService) -> None:
        self.service = service

    @rpc(role=shared_kernel.STOCK_MANAGER)
    def ReceiveStock(
        self, request: stock_pb2.ReceiveStockRequest, context: grpc.ServicerContext, caller: Identity
    ) -> stock_pb2.ReceiveStockResponse:
        stock = self.service.receive_stock(request.book_id, request.quantity, request.title, utcnow())
        log.info(
            "stock received",
            extra={"book_id": stock.book_id, "quantity": request.quantity, "available": stock.available},
        )
        return stock_pb2.ReceiveStockResponse(stock=wire.stock_resource(stock))

    @rpc(role=shared_kernel.STOCK_MANAGER)
    def GetStock(
        self, request: stock_pb2.GetStockRequest, context: grpc.ServicerContext, caller: Identity
    ) -> stock_pb2.GetStockResponse:
        stock = self.service.get_stock(request.book_id)
        return stock_pb2.GetStockResponse(stock=wire.stock_resource(stock))

    @rpc(role=shared_kernel.STOCK_MANAGER)
    def ListStocks(
        self, request: stock_pb2.ListStocksRequest, context: grpc.ServicerContext, caller: Identity
    ) -> stock_pb2.ListStocksResponse:
        offset, limit = paging.page(request.page_size, request.page_token)
        stocks = self.service.list_stocks(offset, limit)
        return stock_pb2.ListStocksResponse(
            stocks=[wire.stock_resource(s) for s in stocks],
            next_page_token=paging.next_token(offset, limit, len(stocks)),
        )

    # Issue 19: the hold shelf's desk. The clock is read here and passed as `now`.

    @rpc(role=shared_kernel.STOCK_MANAGER)
    def CheckOut(
        self, request: stock_pb2.CheckOutRequest, context: grpc.ServicerContext, caller: Identity
    ) -> stock_pb2.CheckOutResponse:
        hold = self.service.check_out(_reservation_id(request.reservation_id), utcnow())
        log.info(
            "checked out",
            extra={
                "reservation_id": hold.reservation_id,
                "book_id": hold.book_id,
                "correlation_id": hold.reservation_id,
            },
        )
        return stock_pb2.CheckOutResponse(hold=wire.hold_resource(hold, self.service.get_stock(hold.book_id)))

    @rpc(role=shared_kernel.STOCK_MANAGER)
    def Return(
        self, request: stock_pb2.ReturnRequest, context: grpc.ServicerContext, caller: Identity
    ) -> stock_pb2.ReturnResponse:
        hold = self.service.return_copy(_reservation_id(request.reservation_id), utcnow())
        log.info(
            "returned",
            extra={
                "reservation_id": hold.reservation_id,
                "book_id": hold.book_id,
                "correlation_id": hold.reservation_id,
            },
        )
        return stock_pb2.ReturnResponse(hold=wire.hold_resource(hold, self.service.get_stock(hold.book_id)))


MAX_RESERVATION_ID = 64  # as the reservation service makes them


def _reservation_id(value: str) -> str:
    return validate.text(value, "reservation_id", MAX_RESERVATION_ID, required=True)


def subscriptions(service: StockService) -> list[Subscription[Any]]:
    def on_requested(event: reservation_events.ReservationRequested, envelope: events.Envelope) -> None:
        # The clock is read here, at the edge: a held copy waits until now + HOLD_PICKUP_SECONDS.
        hold = service.reserve_copy(event.reservation_id, event.user_id, event.book_id, event.waitlist, utcnow())
        log.info(
            "reservation decided",
            extra={
                "reservation_id": event.reservation_id,
                "book_id": event.book_id,
                "hold": hold.status.value,
                "correlation_id": envelope.correlation_id,
            },
        )

    def on_canceled(event: reservation_events.ReservationCanceled, envelope: events.Envelope) -> None:
        hold = service.release_copy(event.reservation_id, event.user_id, event.book_id, utcnow())
        log.info(
            "reservation canceled",
            extra={
                "reservation_id": event.reservation_id,
                "book_id": event.book_id,
                "hold": hold.status.value,
                "correlation_id": envelope.correlation_id,
            },
        )

    return [
        Subscription(reservation_events.ReservationRequested, on_requested),
        Subscription(reservation_events.ReservationCanceled, on_canceled),
    ]


def deadline_scan(service: StockService, clock: Callable[[], datetime.datetime] = utcnow) -> Callable[[], int]:
    """The deadline scanner's round: holds past their pickup deadline expire (the copy
    serves the next in line or goes back to the shelf) and loans past their due time get
    their one overdue notice. Returns how many it handled. Every replica runs it: each
    change is decided again under the book's lock, so a second scanner changes nothing."""

    def expired(hold: domain.Hold) -> None:
        HOLDS_EXPIRED.inc()
        log.info(
            "hold expired",
            extra={
                "reservation_id": hold.reservation_id,
                "book_id": hold.book_id,
                "user_id": hold.user_id,
                "correlation_id": hold.reservation_id,
            },
        )

    def overdue(hold: domain.Hold) -> None:
        OVERDUE_NOTICES.inc()
        log.info(
            "loan overdue",
            extra={
                "reservation_id": hold.reservation_id,
                "book_id": hold.book_id,
                "user_id": hold.user_id,
                "due_time": hold.due_time,
                "correlation_id": hold.reservation_id,
            },
        )

    def scan() -> int:
        now = clock()
        return len(service.expire_holds(now, done=expired)) + len(service.notice_overdue_loans(now, done=overdue))

    return scan
