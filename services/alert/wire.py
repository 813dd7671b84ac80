"""The alert service on the wire: its resources as protobuf, and the stock outcome
events it reads as domain outcomes."""

from __future__ import annotations

import datetime

from bookrental.alert.v1 import alert_pb2
from bookrental.stock.v1 import events_pb2 as stock_events
from services.chassis.times import timestamp

from . import domain
from .views import DeliveryView, NotificationView

_KIND = {
    domain.Kind.CONFIRMED: alert_pb2.NOTIFICATION_KIND_CONFIRMED,
    domain.Kind.REJECTED: alert_pb2.NOTIFICATION_KIND_REJECTED,
    domain.Kind.CANCELED: alert_pb2.NOTIFICATION_KIND_CANCELED,
    domain.Kind.WAITLISTED: alert_pb2.NOTIFICATION_KIND_WAITLISTED,
    domain.Kind.READY: alert_pb2.NOTIFICATION_KIND_READY,
    domain.Kind.EXPIRED: alert_pb2.NOTIFICATION_KIND_EXPIRED,
    domain.Kind.OVERDUE: alert_pb2.NOTIFICATION_KIND_OVERDUE,
    domain.Kind.RETURNED: alert_pb2.NOTIFICATION_KIND_RETURNED,
}
_STATUS = {
    domain.DeliveryStatus.PENDING: alert_pb2.NOTIFICATION_STATUS_PENDING,
    domain.DeliveryStatus.SENT: alert_pb2.NOTIFICATION_STATUS_SENT,
    domain.DeliveryStatus.FAILED: alert_pb2.NOTIFICATION_STATUS_FAILED,
}

# The stock events alert tells a customer of: each names the reservation, its customer and
# book, and some a detail the message says (a reason, a place, a deadline, a due time).
StockOutcome = (
    stock_events.StockReserved
    | stock_events.StockRejected
    | stock_events.StockReleased
    | stock_events.StockWaitlisted
    | stock_events.StockAllocated
    | stock_events.StockWaitlistLeft
    | stock_events.StockHoldExpired
    | stock_events.StockReturned
    | stock_events.StockLoanOverdue
)


def outcome(kind: domain.Kind, event: StockOutcome, left_queue: bool = False) -> domain.Outcome:
    """The event as its notification reads it: the detail fields its type declares
    (the rest take their "none" value), an unset time None rather than the epoch."""
    return domain.Outcome(
        kind,
        event.reservation_id,
        event.user_id,
        event.book_id,
        event.title,
        reason=getattr(event, "reason", ""),
        queue_position=getattr(event, "queue_position", 0),
        pickup_deadline=_time(event, "pickup_deadline"),
        due_time=_time(event, "due_time"),
        left_queue=left_queue,
    )


def _time(event: StockOutcome, field: str) -> datetime.datetime | None:
    """A Timestamp field as the services store times (naive UTC); None if the type has no
    such field or the event left it unset."""
    if field not in event.DESCRIPTOR.fields_by_name or not event.HasField(field):
        return None
    value: datetime.datetime = getattr(event, field).ToDatetime()
    return value


def delivery_resource(d: DeliveryView) -> alert_pb2.Delivery:
    out = alert_pb2.Delivery(
        channel=d.channel, status=_STATUS[domain.DeliveryStatus(d.status)], attempts=d.attempts, last_error=d.last_error
    )
    if d.send_time is not None:
        out.send_time.CopyFrom(timestamp(d.send_time))
    return out


def notification_resource(n: NotificationView, deliveries: list[DeliveryView]) -> alert_pb2.Notification:
    return alert_pb2.Notification(
        notification_id=n.notification_id,
        reservation_id=n.reservation_id,
        book_id=n.book_id,
        kind=_KIND[domain.Kind(n.kind)],
        message=n.message,
        channel=n.channel,
        status=_STATUS[domain.DeliveryStatus(n.status)],
        create_time=timestamp(n.create_time),
        attempts=n.attempts,
        last_error=n.last_error,
        language=n.language,
        deliveries=[delivery_resource(d) for d in deliveries],
    )


def preferences_resource(p: domain.Preferences, update_time: datetime.datetime | None) -> alert_pb2.Preferences:
    out = alert_pb2.Preferences(email=p.email, phone=p.phone, channels=list(p.channels), language=p.language)
    if update_time is not None:
        out.update_time.CopyFrom(timestamp(update_time))
    return out
