"""Wiring of the reservation service: the one place its parts are put together."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from bookrental.reservation.v1 import reservation_pb2, reservation_pb2_grpc
from services import catalogue
from services.catalogue import RESERVATION
from services.chassis import app
from services.chassis.server import Service
from services.chassis.settings import Settings, SettingsError, Topic, number
from services.chassis.uow import Publication, SqlUnitOfWork

from . import domain, entrypoints, repository, wire
from .service import ReservationService

# The topics it uses (docs/architecture.md §4): it publishes on the first and consumes the second.
RESERVATION_TOPIC = Topic("RESERVATION_TOPIC", catalogue.RESERVATION_TOPIC)
STOCK_TOPIC = Topic("STOCK_TOPIC", catalogue.STOCK_TOPIC)

MAX_RESERVATION_LIMIT = 1000  # more is a typo, not a library's policy


def reservation_limit(env: Mapping[str, str] | None = None) -> int | None:
    """RESERVATION_LIMIT: the most active reservations a customer may hold across all
    books, 1 to 1000 (default 5), or `off` for no limit; anything else is refused. 0 is
    refused too, not read as "no limit": a limit of nothing would refuse every request."""
    env = os.environ if env is None else env
    if env.get("RESERVATION_LIMIT", "").strip().lower() == "off":
        return None
    try:
        return number(env, "RESERVATION_LIMIT", domain.RESERVATION_LIMIT, 1, MAX_RESERVATION_LIMIT)
    except SettingsError as exc:
        raise SettingsError(f"{exc} (or off, for no limit)") from None


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
    limit = reservation_limit()
    published, consumed = RESERVATION_TOPIC.name(), STOCK_TOPIC.name()
    runtime = app.start(
        settings,
        repository.MODELS,
        repository.INDEXES,
        topics=[STOCK_TOPIC, RESERVATION_TOPIC],
        keep_all=catalogue.KEPT_WHOLE,
    )
    service = ReservationService(unit_of_work(published, runtime.relay.wake), reservation_limit=limit)
    app.serve(
        runtime,
        [
            Service(
                reservation_pb2.DESCRIPTOR.services_by_name["ReservationService"].full_name,
                entrypoints.ReservationServicer(service, consumed),
                reservation_pb2_grpc.add_ReservationServiceServicer_to_server,
            )
        ],
        consume=[consumed],
        subscriptions=entrypoints.subscriptions(service),
        ignore=entrypoints.IGNORED,
        positions=True,  # its book list and reservations say how fresh they are
    )
