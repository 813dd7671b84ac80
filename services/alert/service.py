"""Alert use cases: record a notification per stock outcome (inside the
consumer's transaction), deliver pending ones separately, list a customer's."""
from __future__ import annotations

import logging
import threading

from services.chassis.db import database

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


class Dispatcher:
    """Delivers pending notifications off the consumer's path: woken after each
    consumer commit, and polls now and then for anything left behind."""

    def __init__(self, service: AlertService, poll_interval_s: float = 1.0):
        self.service = service
        self.poll_interval_s = poll_interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                handled = self.service.deliver_pending()
            except Exception as exc:  # noqa: BLE001 - the database may be away; try again later
                log.warning("delivery round failed", extra={"error": str(exc)})
                database.close()
                handled = 0
            if not handled:
                self._wake.wait(self.poll_interval_s)
                self._wake.clear()
