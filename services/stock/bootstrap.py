"""Wiring of the stock service: the one place its parts are put together."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Mapping

from bookrental.stock.v1 import stock_pb2, stock_pb2_grpc
from services import catalogue
from services.catalogue import STOCK
from services.chassis import app
from services.chassis.periodic import Periodic
from services.chassis.server import Service
from services.chassis.settings import Settings, Topic, number
from services.chassis.uow import Publication, SqlUnitOfWork

from . import domain, entrypoints, repository, wire
from .service import StockService

# The topics it uses (docs/architecture.md §4): it publishes on the first and consumes the second.
STOCK_TOPIC = Topic("STOCK_TOPIC", catalogue.STOCK_TOPIC)
RESERVATION_TOPIC = Topic("RESERVATION_TOPIC", catalogue.RESERVATION_TOPIC)


MAX_SPAN_SECONDS = 366 * 24 * 3600  # a year and a day: longer is a typo, not a policy


def hold_spans(env: Mapping[str, str] | None = None) -> tuple[datetime.timedelta, datetime.timedelta]:
    """HOLD_PICKUP_SECONDS (how long a held copy waits for its customer, default 3 days)
    and LOAN_SECONDS (how long a loan lasts, default 14 days); refused when out of range."""
    env = os.environ if env is None else env
    pickup = number(env, "HOLD_PICKUP_SECONDS", int(domain.HOLD_PICKUP.total_seconds()), 1, MAX_SPAN_SECONDS)
    loan = number(env, "LOAN_SECONDS", int(domain.LOAN.total_seconds()), 1, MAX_SPAN_SECONDS)
    return datetime.timedelta(seconds=pickup), datetime.timedelta(seconds=loan)


def scan_interval(env: Mapping[str, str] | None = None) -> float:
    """HOLD_SCAN_SECONDS: how often each replica's deadline scanner looks for holds past
    their pickup deadline and loans past their due time (default 5; fractions from 0.2, for
    tests). A deadline fires at most this long after it passed."""
    env = os.environ if env is None else env
    return number(env, "HOLD_SCAN_SECONDS", 5.0, 0.2, 3600.0, float)


def publications(topic: str) -> dict[type, Publication]:
    """How each domain event leaves the service: keyed by book (one book's events stay
    in order); an outcome for a reservation carries its id as the correlation id."""
    outcome: dict[type, Publication] = {
        event_type: Publication(topic, wire.event_message, key="book_id", correlation_id="reservation_id")
        for event_type in (
            domain.StockReserved,
            domain.StockRejected,
            domain.StockReleased,
            domain.StockWaitlisted,
            domain.StockAllocated,
            domain.StockWaitlistLeft,
            domain.StockHoldExpired,
            domain.StockCheckedOut,
            domain.StockReturned,
            domain.StockLoanOverdue,
        )
    }
    return {domain.StockReceived: Publication(topic, wire.event_message, key="book_id"), **outcome}


class StockSqlUnitOfWork(SqlUnitOfWork):
    """The repositories unit_of_work gives it, declared for the type checker (ports.StockUnitOfWork)."""

    stocks: repository.StockRepository
    holds: repository.HoldRepository


def unit_of_work(topic: str, on_commit: Callable[[], None] = lambda: None) -> Callable[..., StockSqlUnitOfWork]:
    table = publications(topic)

    def uow(read_only: bool = False) -> StockSqlUnitOfWork:
        return StockSqlUnitOfWork(
            table,
            on_commit,
            read_only=read_only,
            stocks=repository.StockRepository(),
            holds=repository.HoldRepository(),
        )

    return uow


def main() -> None:
    settings = Settings.from_env(STOCK.name, grpc_port=STOCK.grpc_port, metrics_port=STOCK.metrics_port)
    pickup, loan = hold_spans()
    scan_every = scan_interval()
    published, consumed = STOCK_TOPIC.name(), RESERVATION_TOPIC.name()
    runtime = app.start(
        settings, repository.MODELS, topics=[STOCK_TOPIC, RESERVATION_TOPIC], keep_all=catalogue.KEPT_WHOLE
    )
    service = StockService(unit_of_work(published, runtime.relay.wake), hold_pickup=pickup, loan=loan)
    app.serve(
        runtime,
        [
            Service(
                stock_pb2.DESCRIPTOR.services_by_name["StockService"].full_name,
                entrypoints.StockServicer(service),
                stock_pb2_grpc.add_StockServiceServicer_to_server,
            )
        ],
        consume=[consumed],
        subscriptions=entrypoints.subscriptions(service),
        background=[Periodic("deadline-scan", entrypoints.deadline_scan(service), scan_every)],
    )
