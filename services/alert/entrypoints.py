"""Inbound adapters: the gRPC AlertService and the stock-outcome consumer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc

from bookrental.alert.v1 import alert_pb2, alert_pb2_grpc
from bookrental.stock.v1 import events_pb2 as stock_events
from services.chassis import events, paging, times
from services.chassis.consumer import Subscription
from services.chassis.identity import Identity
from services.chassis.server import rpc

from . import domain, views, wire
from .service import AlertService

log = logging.getLogger(__name__)


class AlertServicer(alert_pb2_grpc.AlertServiceServicer):
    public_rpcs: frozenset[str]  # set by create_server, read by rpc

    def __init__(self, service: AlertService) -> None:
        self.service = service

    @rpc
    def ListNotifications(
        self, request: alert_pb2.ListNotificationsRequest, context: grpc.ServicerContext, caller: Identity
    ) -> alert_pb2.ListNotificationsResponse:
        offset, limit = paging.page(request.page_size, request.page_token)
        rows = views.notifications(caller.user_id, offset, limit)
        return alert_pb2.ListNotificationsResponse(
            notifications=[wire.notification_resource(r, deliveries) for r, deliveries in rows],
            next_page_token=paging.next_token(offset, limit, len(rows)),
        )

    @rpc
    def GetPreferences(
        self, request: alert_pb2.GetPreferencesRequest, context: grpc.ServicerContext, caller: Identity
    ) -> alert_pb2.GetPreferencesResponse:
        prefs, update_time = self.service.get_preferences(caller.user_id)
        return alert_pb2.GetPreferencesResponse(preferences=wire.preferences_resource(prefs, update_time))

    @rpc
    def UpdatePreferences(
        self, request: alert_pb2.UpdatePreferencesRequest, context: grpc.ServicerContext, caller: Identity
    ) -> alert_pb2.UpdatePreferencesResponse:
        p = request.preferences
        changes: domain.PreferenceChanges = {
            "email": p.email,
            "phone": p.phone,
            "channels": list(p.channels),
            "language": p.language,
        }
        prefs, update_time = self.service.update_preferences(caller.user_id, changes, list(request.update_mask.paths))
        log.info(
            "preferences updated",
            extra={"user_id": caller.user_id, "channels": list(prefs.channels), "language": prefs.language},
        )
        return alert_pb2.UpdatePreferencesResponse(preferences=wire.preferences_resource(prefs, update_time))


# Which stock outcome becomes which notification (docs/holds.md, the kinds table).
OUTCOMES: tuple[tuple[type[wire.StockOutcome], domain.Kind, bool], ...] = (
    (stock_events.StockReserved, domain.Kind.CONFIRMED, False),
    (stock_events.StockRejected, domain.Kind.REJECTED, False),
    (stock_events.StockReleased, domain.Kind.CANCELED, False),
    (stock_events.StockWaitlisted, domain.Kind.WAITLISTED, False),
    (stock_events.StockAllocated, domain.Kind.READY, False),
    # A cancel while waiting: the customer's one cancel notice, since no copy was held
    # (stock sends StockReleased only for a held copy, StockWaitlistLeft only for a waiting one).
    (stock_events.StockWaitlistLeft, domain.Kind.CANCELED, True),
    (stock_events.StockHoldExpired, domain.Kind.EXPIRED, False),
    (stock_events.StockLoanOverdue, domain.Kind.OVERDUE, False),
    (stock_events.StockReturned, domain.Kind.RETURNED, False),
)

# What an outcome event gives its notification: its envelope (the id, the time) and the outcome.
Handle = Callable[[events.Envelope, domain.Outcome], None]


def outcome_subscriptions(
    handle: Handle, prepare: Callable[[list[wire.StockOutcome]], None] | None = None
) -> list[Subscription[Any]]:
    """A subscription per outcome event (OUTCOMES), handing `handle` what its notification
    is made from: the live consumer's (subscriptions) and a restore's from the log (restore.py)."""

    def of(kind: domain.Kind, left_queue: bool) -> Callable[[wire.StockOutcome, events.Envelope], None]:
        def given(event: wire.StockOutcome, envelope: events.Envelope) -> None:
            handle(envelope, wire.outcome(kind, event, left_queue))

        return given

    return [
        Subscription(message_class, of(kind, left_queue), prepare=prepare)
        for message_class, kind, left_queue in OUTCOMES
    ]


def subscriptions(service: AlertService) -> list[Subscription[Any]]:
    def record(envelope: events.Envelope, outcome: domain.Outcome) -> None:
        n = service.record_outcome(envelope.event_id, outcome, times.from_iso(envelope.time))
        log.info(
            "notification recorded",
            extra={
                "notification_id": n.notification_id,
                "kind": outcome.kind.value,
                "reservation_id": outcome.reservation_id,
                "correlation_id": envelope.correlation_id,
            },
        )

    def read_ahead(batch: list[wire.StockOutcome]) -> None:
        service.read_ahead({event.user_id for event in batch})

    return outcome_subscriptions(record, prepare=read_ahead)


# Stock events the alert service knows and does not need (not "unknown"): a receipt is
# nobody's outcome, and a check-out happens with the customer at the desk, the copy in
# hand (the due time is on their reservation): a notice would tell them nothing new.
IGNORED = tuple(t.DESCRIPTOR.full_name for t in (stock_events.StockReceived, stock_events.StockCheckedOut))
