"""The alert service on the wire: its resources as protobuf."""

from __future__ import annotations

import datetime

from bookrental.alert.v1 import alert_pb2
from services.chassis.times import timestamp

from . import domain
from .views import DeliveryView, NotificationView

_KIND = {
    domain.Kind.CONFIRMED: alert_pb2.NOTIFICATION_KIND_CONFIRMED,
    domain.Kind.REJECTED: alert_pb2.NOTIFICATION_KIND_REJECTED,
    domain.Kind.CANCELED: alert_pb2.NOTIFICATION_KIND_CANCELED,
}
_STATUS = {
    domain.DeliveryStatus.PENDING: alert_pb2.NOTIFICATION_STATUS_PENDING,
    domain.DeliveryStatus.SENT: alert_pb2.NOTIFICATION_STATUS_SENT,
    domain.DeliveryStatus.FAILED: alert_pb2.NOTIFICATION_STATUS_FAILED,
}


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
