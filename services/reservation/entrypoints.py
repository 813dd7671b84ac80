"""Inbound adapters: the gRPC ReservationService and the stock-event consumer."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

import grpc

from bookrental.reservation.v1 import reservation_pb2, reservation_pb2_grpc
from bookrental.stock.v1 import events_pb2 as stock_events
from services import shared_kernel
from services.chassis import events, paging, tracing
from services.chassis.consumer import Subscription
from services.chassis.errors import NotFound
from services.chassis.identity import Identity
from services.chassis.server import rpc

from . import domain, views, wire
from .service import ReservationService

log = logging.getLogger(__name__)


class ReservationServicer(reservation_pb2_grpc.ReservationServiceServicer):
    public_rpcs: frozenset[str]  # set by create_server, read by rpc

    def __init__(self, service: ReservationService, stock_topic: str) -> None:
        self.service = service
        self.stock_topic = stock_topic  # what the read answers' freshness is measured on

    def _freshness(self) -> reservation_pb2.Freshness:
        """How far the book list, and the outcomes in the reservations, have applied stock's
        events (stock's decisions reach this service through its topic)."""
        return wire.freshness(views.freshness(self.stock_topic))

    @rpc
    def ListBooks(
        self, request: reservation_pb2.ListBooksRequest, context: grpc.ServicerContext, caller: Identity | None
    ) -> reservation_pb2.ListBooksResponse:
        offset, limit = paging.page(request.page_size, request.page_token)
        rows = views.book_page(offset, limit, views.book_query(request.query))
        answer = wire.book_list(rows, paging.next_token(offset, limit, len(rows)))
        answer.freshness.CopyFrom(self._freshness())
        return answer

    @rpc
    def GetBook(
        self, request: reservation_pb2.GetBookRequest, context: grpc.ServicerContext, caller: Identity | None
    ) -> reservation_pb2.GetBookResponse:
        book_id = shared_kernel.book_id(request.book_id)
        book = views.book(book_id)
        if book is None:
            raise NotFound(f"book {book_id!r} is not in the book list")
        return reservation_pb2.GetBookResponse(book=wire.book_resource(book), freshness=self._freshness())

    @rpc(role=shared_kernel.CUSTOMER)
    def CreateReservation(
        self, request: reservation_pb2.CreateReservationRequest, context: grpc.ServicerContext, caller: Identity
    ) -> reservation_pb2.CreateReservationResponse:
        r = self.service.create_reservation(caller, request.book_id, request.request_id, request.waitlist)
        tracing.annotate(**{tracing.RESERVATION_ID: r.reservation_id})  # so its trace is found by the reservation
        log.info(
            "reservation requested",
            extra={
                "reservation_id": r.reservation_id,
                "book_id": r.book_id,
                "user_id": caller.user_id,
                "correlation_id": r.reservation_id,
            },
        )
        return reservation_pb2.CreateReservationResponse(reservation=wire.reservation_resource(r))

    @rpc
    def GetReservation(
        self, request: reservation_pb2.GetReservationRequest, context: grpc.ServicerContext, caller: Identity
    ) -> reservation_pb2.GetReservationResponse:
        r = self.service.get_reservation(caller, domain.reservation_id(request.reservation_id))
        return reservation_pb2.GetReservationResponse(
            reservation=wire.reservation_resource(r), freshness=self._freshness()
        )

    @rpc
    def ListReservations(
        self, request: reservation_pb2.ListReservationsRequest, context: grpc.ServicerContext, caller: Identity
    ) -> reservation_pb2.ListReservationsResponse:
        offset, limit = paging.page(request.page_size, request.page_token)
        found = self.service.list_reservations(caller, offset, limit)
        return reservation_pb2.ListReservationsResponse(
            reservations=[wire.reservation_resource(r) for r in found],
            next_page_token=paging.next_token(offset, limit, len(found)),
        )

    @rpc
    def CancelReservation(
        self, request: reservation_pb2.CancelReservationRequest, context: grpc.ServicerContext, caller: Identity
    ) -> reservation_pb2.CancelReservationResponse:
        r = self.service.cancel_reservation(caller, domain.reservation_id(request.reservation_id))
        log.info(
            "reservation canceled",
            extra={"reservation_id": r.reservation_id, "book_id": r.book_id, "correlation_id": r.reservation_id},
        )
        return reservation_pb2.CancelReservationResponse(reservation=wire.reservation_resource(r))


def subscriptions(service: ReservationService) -> list[Subscription[Any]]:
    def book_only(event: Any, envelope: events.Envelope) -> None:
        service.apply_stock_change(*wire.stock_change(event, envelope))

    # Each of stock's decisions moves the reservation along its life (docs/holds.md); a
    # repeat, or one for a reservation already past that step, changes nothing.
    def applied(
        what: str, change: Callable[[Any], domain.Reservation | None], **detail: Callable[[Any], object]
    ) -> Callable[[Any, events.Envelope], None]:
        """`detail`: more fields for the log line, each read from the event."""

        def handle(event: Any, envelope: events.Envelope) -> None:
            book_only(event, envelope)
            r = change(event)
            log.info(
                what,
                extra={
                    "reservation_id": event.reservation_id,
                    **{name: read(event) for name, read in detail.items()},
                    "status": r.status.value if r else None,
                    "correlation_id": envelope.correlation_id,
                },
            )

        return handle

    handlers: dict[type, Callable[[Any, events.Envelope], None]] = {
        stock_events.StockReserved: applied(
            "stock reserved", lambda e: service.confirm(e.reservation_id, _time(e, "pickup_deadline"))
        ),
        stock_events.StockRejected: applied(
            "stock rejected", lambda e: service.reject(e.reservation_id, e.reason), reason=lambda e: e.reason
        ),
        stock_events.StockWaitlisted: applied(
            "stock waitlisted", lambda e: service.waitlist(e.reservation_id, e.ticket, e.queue_position)
        ),
        stock_events.StockAllocated: applied(
            "stock allocated", lambda e: service.confirm(e.reservation_id, _time(e, "pickup_deadline"))
        ),
        stock_events.StockHoldExpired: applied("hold expired", lambda e: service.expire(e.reservation_id)),
        stock_events.StockCheckedOut: applied(
            "checked out", lambda e: service.pick_up(e.reservation_id, e.due_time.ToDatetime())
        ),
        stock_events.StockReturned: applied("returned", lambda e: service.mark_returned(e.reservation_id)),
    }
    return [Subscription(message_class, handlers.get(message_class, book_only)) for message_class in STOCK_EVENTS]


def book_list_subscriptions(apply: Callable[[domain.StockChange], None]) -> list[Subscription[Any]]:
    """The book list's part of every stock event the consumer takes: what rebuilding the
    book list from the stock topic applies (rebuild.py)."""

    def fold(event: Any, envelope: events.Envelope) -> None:
        apply(wire.stock_change(event, envelope))

    return [Subscription(message_class, fold) for message_class in STOCK_EVENTS]


# Every stock event the consumer takes. Each carries the book's state, which the book list
# applies; the handlers above move a reservation along too.
STOCK_EVENTS: tuple[type, ...] = (
    stock_events.StockReceived,
    stock_events.StockReserved,
    stock_events.StockRejected,
    stock_events.StockReleased,
    stock_events.StockWaitlisted,
    stock_events.StockAllocated,
    stock_events.StockWaitlistLeft,
    stock_events.StockHoldExpired,
    stock_events.StockCheckedOut,
    stock_events.StockReturned,
)


def _time(event: Any, field: str) -> datetime.datetime | None:
    """A Timestamp field as stored (naive UTC), None when unset (no deadline)."""
    return getattr(event, field).ToDatetime() if event.HasField(field) else None


# Stock events the reservation service knows and does not need (not "unknown"): an
# overdue loan changes neither the reservation (it stays PICKED_UP) nor the book list.
IGNORED = (stock_events.StockLoanOverdue.DESCRIPTOR.full_name,)
