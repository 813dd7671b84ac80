"""Alert persistence (peewee), delivery channels, and protobuf mapping."""
from __future__ import annotations

import logging

import peewee

from bookrental.alert.v1 import alert_pb2
from services.chassis.db import BaseModel, timestamp, utcnow

from . import domain

log = logging.getLogger("bookrental.alert.delivery")


class NotificationRow(BaseModel):
    notification_id = peewee.CharField(max_length=36, primary_key=True)
    reservation_id = peewee.CharField(max_length=64)
    user_id = peewee.CharField(max_length=128)
    book_id = peewee.CharField(max_length=64)
    kind = peewee.CharField(max_length=16)
    message = peewee.TextField()
    channel = peewee.CharField(max_length=32)
    status = peewee.CharField(max_length=16, index=True)
    attempts = peewee.IntegerField(default=0)
    last_error = peewee.TextField(default="")
    create_time = peewee.DateTimeField()
    sent_time = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "notification"
        indexes = ((("user_id", "create_time"), False),)


MODELS = [NotificationRow]


class NotificationRepository:
    def add(self, n: domain.Notification) -> None:
        (NotificationRow.insert(notification_id=n.notification_id, reservation_id=n.reservation_id,
                                user_id=n.user_id, book_id=n.book_id, kind=n.kind.value, message=n.message,
                                channel=n.channel, status=n.status.value, create_time=utcnow())
         .on_conflict_ignore().execute())

    def pending(self, limit: int = 100) -> list[NotificationRow]:
        return list(NotificationRow.select().where(NotificationRow.status == domain.DeliveryStatus.PENDING.value)
                    .order_by(NotificationRow.create_time).limit(limit))

    def mark(self, notification_id: str, status: domain.DeliveryStatus, error: str = "") -> None:
        (NotificationRow.update(status=status.value, attempts=NotificationRow.attempts + 1, last_error=error,
                                sent_time=utcnow() if status is domain.DeliveryStatus.SENT else None)
         .where(NotificationRow.notification_id == notification_id).execute())

    def list_for(self, user_id: str, offset: int, limit: int) -> list[NotificationRow]:
        return list(NotificationRow.select().where(NotificationRow.user_id == user_id)
                    .order_by(NotificationRow.create_time.desc(), NotificationRow.notification_id)
                    .offset(offset).limit(limit))


class LogChannel:
    """The default channel: one structured log line per notification."""

    name = "log"

    def send(self, row: NotificationRow) -> None:
        log.info("notification delivered", extra={
            "channel": self.name, "notification_id": row.notification_id, "user_id": row.user_id,
            "reservation_id": row.reservation_id, "kind": row.kind, "text": row.message,
            "correlation_id": row.reservation_id})


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


def notification_resource(row: NotificationRow) -> alert_pb2.Notification:
    return alert_pb2.Notification(
        notification_id=row.notification_id, reservation_id=row.reservation_id, book_id=row.book_id,
        kind=_KIND[domain.Kind(row.kind)], message=row.message, channel=row.channel,
        status=_STATUS[domain.DeliveryStatus(row.status)], create_time=timestamp(row.create_time))
