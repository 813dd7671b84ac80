"""Wiring of the alert service: the one place its parts are put together."""

from __future__ import annotations

from bookrental.alert.v1 import alert_pb2, alert_pb2_grpc
from services import catalogue
from services.catalogue import ALERT
from services.chassis import app
from services.chassis.server import Service
from services.chassis.settings import Settings, Topic
from services.chassis.uow import SqlUnitOfWork

from . import channels, entrypoints, repository
from .dispatcher import Dispatcher
from .service import AlertService
from .settings import AlertSettings

# The topic it uses (docs/architecture.md §4): it consumes the stock outcomes and publishes nothing.
STOCK_TOPIC = Topic("STOCK_TOPIC", catalogue.STOCK_TOPIC)
# Created at start as well, as every service always has: any one service started alone
# leaves all the flow's topics (and their .dlq twins) in place.
RESERVATION_TOPIC = Topic("RESERVATION_TOPIC", catalogue.RESERVATION_TOPIC)


class AlertSqlUnitOfWork(SqlUnitOfWork):
    """The repositories unit_of_work gives it, declared for the type checker (ports.AlertUnitOfWork)."""

    notifications: repository.NotificationRepository
    preferences: repository.PreferencesRepository


def unit_of_work(read_only: bool = False) -> AlertSqlUnitOfWork:
    """Alert publishes no events: its unit of work has no publications."""
    return AlertSqlUnitOfWork(
        {},
        read_only=read_only,
        notifications=repository.NotificationRepository(),
        preferences=repository.PreferencesRepository(),
    )


def main() -> None:
    settings = Settings.from_env(ALERT.name, grpc_port=ALERT.grpc_port, metrics_port=ALERT.metrics_port)
    alert_settings = AlertSettings.from_env()
    consumed = STOCK_TOPIC.name()
    runtime = app.start(
        settings, repository.MODELS, topics=[STOCK_TOPIC, RESERVATION_TOPIC], keep_all=catalogue.KEPT_WHOLE
    )
    repository.migrate_schema()
    service = AlertService(unit_of_work, alert_settings.offered)
    dispatchers = [
        Dispatcher(
            repository.DeliveryRepository(),
            channel,
            channels.breaker_for(channel.name, alert_settings),
            alert_settings.retry,
            alert_settings.dispatch_poll_s,
            # A claimed delivery is free again after this, should its dispatcher die
            # mid-call; longer than a call can take (an SMTP session is several replies).
            lease_s=6 * _timeout(channel, alert_settings),
        )
        for channel in channels.configured(alert_settings)
    ]

    def wake_dispatchers() -> None:
        for d in dispatchers:
            d.wake()

    app.serve(
        runtime,
        [
            Service(
                alert_pb2.DESCRIPTOR.services_by_name["AlertService"].full_name,
                entrypoints.AlertServicer(service),
                alert_pb2_grpc.add_AlertServiceServicer_to_server,
            )
        ],
        consume=[consumed],
        subscriptions=entrypoints.subscriptions(service),
        ignore=entrypoints.IGNORED,
        background=dispatchers,
        on_commit=wake_dispatchers,
    )


def _timeout(channel: channels.Channel, s: AlertSettings) -> float:
    if channel.name == "email" and s.smtp:
        return s.smtp.timeout_s
    if channel.name == "messenger" and s.messenger:
        return s.messenger.timeout_s
    return 1.0
