"""Wiring of the reservation service: the one place its parts are put together."""
from __future__ import annotations

from bookrental.reservation.v1 import reservation_pb2, reservation_pb2_grpc
from services.catalogue import RESERVATION
from services.chassis import app
from services.chassis.server import Service
from services.chassis.settings import Settings

from . import adapters, entrypoints
from .service import ReservationService


def main() -> None:
    settings = Settings.from_env(RESERVATION.name, grpc_port=RESERVATION.grpc_port,
                                 metrics_port=RESERVATION.metrics_port)
    runtime = app.start(settings, adapters.MODELS, adapters.INDEXES)
    service = ReservationService(runtime.uow, settings.reservation_topic)
    app.serve(
        runtime,
        [Service(reservation_pb2.DESCRIPTOR.services_by_name["ReservationService"].full_name,
                 entrypoints.ReservationServicer(service),
                 reservation_pb2_grpc.add_ReservationServiceServicer_to_server)],
        consume=[settings.stock_topic],
        subscriptions=entrypoints.subscriptions(service),
    )
