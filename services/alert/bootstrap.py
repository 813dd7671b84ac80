"""Wiring of the alert service: the one place its parts are put together."""
from __future__ import annotations

from bookrental.alert.v1 import alert_pb2, alert_pb2_grpc
from services.chassis import app
from services.chassis.server import Service
from services.chassis.settings import Settings

from . import adapters, entrypoints
from .service import AlertService, Dispatcher


def main() -> None:
    settings = Settings.from_env("alert", grpc_port=50053, metrics_port=9103)
    runtime = app.start(settings, adapters.MODELS)
    service = AlertService(adapters.LogChannel())
    dispatcher = Dispatcher(service)
    app.serve(
        runtime,
        [Service(alert_pb2.DESCRIPTOR.services_by_name["AlertService"].full_name,
                 entrypoints.AlertServicer(service), alert_pb2_grpc.add_AlertServiceServicer_to_server)],
        consume=[settings.stock_topic],
        subscriptions=entrypoints.subscriptions(service),
        ignore=entrypoints.IGNORED,
        background=[dispatcher],
        on_commit=dispatcher.wake,
    )
