"""Alert use cases: record a notification per stock outcome (inside the
consumer's transaction: it never waits for a provider), and read or change a
customer's preferences. Delivering notifications is the dispatchers' work
(dispatcher.py)."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence

from . import domain
from .ports import AlertUnitOfWork


class AlertService:
    def __init__(self, uow: Callable[..., AlertUnitOfWork], offered: tuple[str, ...] = ()) -> None:
        self.uow = uow  # uow() for a change, uow(read_only=True) for a read
        self.offered = offered  # optional channels the operator configured

    def record_outcome(
        self, event_id: str, outcome: domain.Outcome, occurred_at: datetime.datetime | None = None
    ) -> domain.Notification:
        """The notification of one stock outcome event, in the customer's language, through
        their channels; the same event again changes nothing (its id is the event's).
        `occurred_at`: the event's time, the notification's create_time."""
        with self.uow() as uow:
            prefs, _ = uow.preferences.get(outcome.user_id)
            n = domain.notification_for(event_id, outcome, prefs, self.offered, occurred_at)
            uow.notifications.add(n)
        return n

    def restore_notifications(self, outcomes: Sequence[tuple[str, domain.Outcome, datetime.datetime | None]]) -> int:
        """Re-derives, from outcome events (event id, outcome, its time) that the consumer has
        already applied, the notifications the table lacks (restore.py), each with the state
        its deliveries' records give it (domain.restored); returns how many it restored.
        Nothing is sent: a restored notification gets no new delivery."""
        with self.uow() as uow:
            prefs: dict[str, domain.Preferences] = {}
            derived = []
            for event_id, outcome, occurred_at in outcomes:
                if outcome.user_id not in prefs:
                    prefs[outcome.user_id] = uow.preferences.get(outcome.user_id)[0]
                derived.append(
                    domain.notification_for(event_id, outcome, prefs[outcome.user_id], self.offered, occurred_at)
                )
            missing = uow.notifications.missing([n.notification_id for n in derived])
            uow.notifications.restore([n for n in derived if n.notification_id in missing])
        return len(missing)

    def read_ahead(self, user_ids: set[str]) -> None:
        """In a consumer batch: its customers' preferences in one read, so that
        record_outcome does not read them one by one."""
        with self.uow() as uow:
            uow.preferences.read_ahead(user_ids)

    def get_preferences(self, user_id: str) -> tuple[domain.Preferences, datetime.datetime | None]:
        with self.uow(read_only=True) as uow:
            return uow.preferences.get(user_id)

    def update_preferences(
        self, user_id: str, changes: domain.PreferenceChanges, mask: list[str]
    ) -> tuple[domain.Preferences, datetime.datetime]:
        with self.uow() as uow:
            current, _ = uow.preferences.get(user_id)
            updated = domain.updated_preferences(current, changes, mask, self.offered)
            return updated, uow.preferences.put(user_id, updated)
