"""Read models of the alert service (CQRS): a customer's notifications with their
deliveries, read straight from their tables into plain frozen values."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import peewee

from .repository import DeliveryRow, NotificationRow


@dataclasses.dataclass(frozen=True)
class DeliveryView:
    delivery_id: str
    channel: str
    status: str
    attempts: int
    last_error: str
    send_time: datetime.datetime | None


@dataclasses.dataclass(frozen=True)
class NotificationView:
    notification_id: str
    reservation_id: str
    user_id: str
    book_id: str
    kind: str
    message: str
    channel: str  # the channels, comma-separated
    status: str  # over all its deliveries
    attempts: int
    last_error: str
    create_time: datetime.datetime
    sent_time: datetime.datetime | None
    subject: str
    language: str


def _fields(row: peewee.Model, view: type[NotificationView] | type[DeliveryView]) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in dataclasses.fields(view)}


def notifications(user_id: str, offset: int, limit: int) -> list[tuple[NotificationView, list[DeliveryView]]]:
    """The customer's notifications, newest first, each with its deliveries."""
    rows = list(
        NotificationRow.select()
        .where(NotificationRow.user_id == user_id)
        .order_by(NotificationRow.create_time.desc(), NotificationRow.notification_id)
        .offset(offset)
        .limit(limit)
    )
    deliveries: dict[str, list[DeliveryView]] = {r.notification_id: [] for r in rows}
    if rows:
        for d in (
            DeliveryRow.select()
            .where(DeliveryRow.notification_id.in_(list(deliveries)))
            .order_by(DeliveryRow.delivery_id)
        ):
            deliveries[d.notification_id].append(DeliveryView(**_fields(d, DeliveryView)))
    return [(NotificationView(**_fields(r, NotificationView)), deliveries[r.notification_id]) for r in rows]
