"""Wiring of the alert service: the one place its parts are put together."""
from __future__ import annotations

from bookrental.alert.v1 import alert_pb2, alert_pb2_grpc
from services.catalogue import ALERT
from services.chassis import app
from services.chassis.server import Service
from services.chassis.settings import Settings

from . import adapters, channels, entrypoints
from .service import AlertService, Dispatcher
from .settings import AlertSettings


def main() -> None:
    settings = Settings.from_env(ALERT.name, grpc_port=ALERT.grpc_port, metrics_port=ALERT.metrics_port)
    alert_settings = AlertSettings.from_env()
    runtime = app.start(settings, adapters.MODELS)
    adapters.migrate_schema()
    service = AlertService(alert_settings.offered)
    dispatchers = [
        Dispatcher(service.repo, channel, channels.breaker_for(channel.name, alert_settings), alert_settings.retry,
                   alert_settings.dispatch_poll_s,
                   # A claimed delivery is free again after this, should its dispatcher die
                   # mid-call; longer than a call can take (an SMTP session is several replies).
                   lease_s=6 * _timeout(channel, alert_settings))
        for channel in channels.configured(alert_settings)]

    def wake_dispatchers() -> None:
        for d in dispatchers:
            d.wake()

    app.serve(
        runtime,
        [Service(alert_pb2.DESCRIPTOR.services_by_name["AlertService"].full_name,
                 entrypoints.AlertServicer(service), alert_pb2_grpc.add_AlertServiceServicer_to_server)],
        consume=[settings.stock_topic],
        subscriptions=entrypoints.subscriptions(service),
        ignore=entrypoints.IGNORED,
        background=dispatchers,
        on_commit=wake_dispatchers,
    )


def _timeout(channel, s: AlertSettings) -> float:
    if channel.name == "email" and s.smtp:
        return s.smtp.timeout_s
    if channel.name == "messenger" and s.messenger:
        return s.messenger.timeout_s
    return 1.0
