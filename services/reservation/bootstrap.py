"""Wiring of the reservation service: the one place its parts are put together."""

from __future__ import annotations

from collections.abc import Callable

from bookrental.reservation.v1 import reservation_pb2, reservation_pb2_grpc
from services import catalogue
from services.catalogue import RESERVATION
from services.chassis import app
from services.chassis.server import Service
from services.chassis.settings import Settings, Topic
from services.chassis.uow import Publication, SqlUnitOfWork

from . import domain, entrypoints, repository, wire
from .service import ReservationService

# The topics it uses (docs/architecture.md §4): it publishes on the first and consumes the second.
RESERVATION_TOPIC = Topic("RESERVATION_TOPIC", catalogue.RESERVATION_TOPIC)
STOCK_TOPIC = Topic("STOCK_TOPIC", catalogue.STOCK_TOPIC)


def publications(topic: str) -> dict[type, Publication]:
    """How each domain event leaves the service: keyed by book (one book's events stay
    in order), the reservation it concerns as the correlation id."""
    return {
        event_type: Publication(topic, wire.event_message, key="book_id", correlation_id="reservation_id")
        for event_type in (domain.ReservationRequested, domain.ReservationCanceled)
    }


class ReservationSqlUnitOfWork(SqlUnitOfWork):
    """The repositories unit_of_work gives it, declared for the type checker (ports.ReservationUnitOfWork)."""

    reservations: repository.ReservationRepository
    books: repository.BookRepository


def unit_of_work(topic: str, on_commit: Callable[[], None] = lambda: None) -> Callable[..., ReservationSqlUnitOfWork]:
    table = publications(topic)

    def uow(read_only: bool = False) -> ReservationSqlUnitOfWork:
        return ReservationSqlUnitOfWork(
            table,
            on_commit,
            read_only=read_only,
            reservations=repository.ReservationRepository(),
            books=repository.BookRepository(),
        )

    return uow


def main() -> None:
    settings = Settings.from_env(
        RESERVATION.name, grpc_port=RESERVATION.grpc_port, metrics_port=RESERVATION.metrics_port
    )
    published, consumed = RESERVATION_TOPIC.name(), STOCK_TOPIC.name()
    runtime = app.start(settings, repository.MODELS, repository.INDEXES, topics=[consumed, published])
    service = ReservationService(unit_of_work(published, runtime.relay.wake))
    app.serve(
        runtime,
        [
            Service(
                reservation_pb2.DESCRIPTOR.services_by_name["ReservationService"].full_name,
                entrypoints.ReservationServicer(service),
                reservation_pb2_grpc.add_ReservationServiceServicer_to_server,
            )
        ],
        consume=[consumed],
        subscriptions=entrypoints.subscriptions(service),
        ignore=entrypoints.IGNORED,
    )
