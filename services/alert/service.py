"""Alert use cases: record a notification per stock outcome (inside the
consumer's transaction), deliver pending ones separately, list a customer's."""
from __future__ import annotations

import logging

from services.chassis.db import database
from services.chassis.worker import Worker

from . import adapters, domain

log = logging.getLogger(__name__)


class AlertService:
    def __init__(self, channel=None):
        self.repo = adapters.NotificationRepository()
        self.channel = channel or adapters.LogChannel()

    def record_outcome(self, event_id: str, kind: domain.Kind, event) -> domain.Notification:
        n = domain.notification_for(event_id, kind, event.reservation_id, event.user_id, event.book_id,
                                    event.title, getattr(event, "reason", ""), self.channel.name)
        self.repo.add(n)
        return n

    def deliver_pending(self) -> int:
        """Sends what is pending; returns how many were handled."""
        rows = self.repo.pending()
        for row in rows:
            try:
                self.channel.send(row)
                self.repo.mark(row.notification_id, domain.DeliveryStatus.SENT)
            except Exception as exc:  # noqa: BLE001 - recorded on the row; the log channel does not fail
                log.warning("delivery failed", extra={"notification_id": row.notification_id, "error": str(exc)})
                self.repo.mark(row.notification_id, domain.DeliveryStatus.FAILED, str(exc))
        return len(rows)

    def list_notifications(self, user_id: str, offset: int, limit: int):
        return self.repo.list_for(user_id, offset, limit)


class Dispatcher(Worker):
    """Delivers pending notifications off the consumer's path: woken after each
    consumer commit, and polls now and then for anything left behind."""

    def __init__(self, service: AlertService, poll_interval_s: float = 1.0):
        super().__init__("alert-dispatcher", service.deliver_pending, poll_interval_s, on_error=self._on_error)

    @staticmethod
    def _on_error(exc: Exception) -> None:
        log.warning("delivery round failed", extra={"error": str(exc)})
        database.close()  # the database may be away; reconnect on the next round
