"""The admin command that re-derives alert's notifications from the stock topic: each
outcome event the consumer has applied whose notification the table lacks (a restored
backup, rows lost or deleted) gets it back, as its deliveries' records say it went, and
is not sent again (services/alert/domain.py `restored`; docs/operations.md, "Rebuilding a
read model from the log"). Run it with the service's own settings (the same environment):

    python -m services.alert.restore            # make restore-notifications, locally
"""

from __future__ import annotations

import datetime
import sys
import time
from collections.abc import Callable

from services.catalogue import ALERT
from services.chassis import db, rebuild
from services.chassis.events import Envelope
from services.chassis.settings import Settings
from services.chassis.times import from_iso

from . import domain, entrypoints, repository
from .bootstrap import STOCK_TOPIC, unit_of_work
from .service import AlertService
from .settings import AlertSettings

CHUNK = 500  # outcomes per transaction


def main(argv: list[str] | None = None) -> int:
    a = rebuild.admin_parser(
        "python -m services.alert.restore",
        "Re-derive the notifications the table lacks from the stock topic's outcome events that the"
        " alert consumer has applied; nothing is sent again. Reads DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS,"
        " STOCK_TOPIC and the channel settings as the service does.",
        truncated="restore what the topic still holds even when it no longer holds its first events",
    ).parse_args(argv)

    def body(say: Callable[[str], None]) -> None:
        settings = Settings.from_env(ALERT.name, grpc_port=ALERT.grpc_port, metrics_port=ALERT.metrics_port)
        service = AlertService(unit_of_work, AlertSettings.from_env().offered)
        topic = STOCK_TOPIC.name()
        db.create_schema(db.connect(settings.database_url), repository.MODELS)  # a dropped table is made again
        say(f"alert's notifications from {topic!r} on {settings.kafka_bootstrap_servers}")
        started, restored = time.monotonic(), 0
        pending: list[tuple[str, domain.Outcome, datetime.datetime | None]] = []

        def flush() -> None:
            nonlocal restored
            restored += service.restore_notifications(pending)
            pending.clear()

        def collect(envelope: Envelope, outcome: domain.Outcome) -> None:
            pending.append((envelope.event_id, outcome, from_iso(envelope.time)))
            if len(pending) >= CHUNK:
                flush()

        reader = rebuild.LogReader(settings, topic, entrypoints.outcome_subscriptions(collect))
        try:
            if not a.allow_truncated:
                reader.refuse_truncated()
            # Only what the consumer group has applied: a newer event's notification is its to record
            # (with its deliveries), and one restored first would keep it from being sent.
            reader.read_to_end(upto=reader.applied(settings.consumer_group))
            flush()
        finally:
            reader.close()
        say(
            f"done in {time.monotonic() - started:.2f} s: {reader.read} events read"
            f" ({reader.passed_over} not outcomes); {restored} notifications restored"
        )

    return rebuild.run_admin("restore", body, after_failure="what it restored stays; run it again for the rest")


if __name__ == "__main__":
    sys.exit(main())
