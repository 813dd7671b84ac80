"""Alert rules, pure: which stock outcome becomes which notification, and its words."""
from __future__ import annotations

import dataclasses
import enum
import uuid

_NAMESPACE = uuid.UUID("6f1c1f7e-4d1b-4b8e-9a51-7d0b8f1f2a10")


class Kind(str, enum.Enum):
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELED = "CANCELED"


class DeliveryStatus(str, enum.Enum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


@dataclasses.dataclass
class Notification:
    notification_id: str
    reservation_id: str
    user_id: str
    book_id: str
    kind: Kind
    message: str
    channel: str
    status: DeliveryStatus = DeliveryStatus.PENDING


def _book(title: str, book_id: str) -> str:
    return f"\u201c{title}\u201d ({book_id})" if title else book_id


def compose(kind: Kind, reservation_id: str, book_id: str, title: str, reason: str = "") -> str:
    book = _book(title, book_id)
    if kind is Kind.CONFIRMED:
        return f"Your reservation of {book} is confirmed. Reservation {reservation_id}."
    if kind is Kind.REJECTED:
        why = f": {reason}" if reason else ""
        return f"Sorry, your reservation of {book} could not be confirmed{why}. Reservation {reservation_id}."
    return f"Your reservation of {book} is canceled and the copy went back to stock. Reservation {reservation_id}."


def notification_for(event_id: str, kind: Kind, reservation_id: str, user_id: str, book_id: str,
                     title: str, reason: str = "", channel: str = "log") -> Notification:
    """One notification per outcome event: its id derives from the event's id,
    so a redelivered event can never make a second one."""
    return Notification(str(uuid.uuid5(_NAMESPACE, event_id)), reservation_id, user_id, book_id, kind,
                        compose(kind, reservation_id, book_id, title, reason), channel)
