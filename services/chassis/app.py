"""Composition helper: what every service does at start and stop, once."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Collection, Sequence
from typing import Any

import peewee

from . import db, kafka, logs, metrics, outbox, purge, server, tracing
from .consumer import EventConsumer, Subscription
from .outbox import OutboxRelay
from .readiness import Dependency, Readiness
from .settings import Settings, SettingsError, Topic
from .worker import Worker

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Runtime:
    """What the wiring module needs before it builds its services."""

    settings: Settings
    relay: OutboxRelay  # its wake() is what a unit of work calls after a commit that wrote events


def start(
    settings: Settings,
    models: Sequence[type[peewee.Model]],
    indexes: Sequence[str] = (),
    topics: Sequence[Topic] = (),
    keep_all: Collection[str] = (),
) -> Runtime:
    """`topics`: those the service uses; each is created (with its .dlq twin) if missing,
    set to keep every event if its default name is in `keep_all` (catalogue.KEPT_WHOLE)."""
    logs.setup(settings.service, settings.log_level)
    if endpoint := tracing.setup(settings.service):
        log.info("tracing on", extra={"otlp_endpoint": endpoint})
    database = db.connect(settings.database_url)
    db.create_schema(database, models, indexes)
    kafka.ensure_topics(settings, [t.name() for t in topics], [t.name() for t in topics if t.default in keep_all])
    metrics.watch_outbox(outbox.unsent_count)
    return Runtime(settings, OutboxRelay(settings, kafka.producer_config(settings)))


def serve(
    runtime: Runtime,
    services: list[server.Service],
    consume: list[str],
    subscriptions: list[Subscription[Any]],
    ignore: tuple[str, ...] = (),
    background: Sequence[Worker] = (),
    on_commit: Callable[[], None] = lambda: None,
    positions: bool = False,
) -> None:
    """Serves until SIGTERM. `background` workers (start()/stop()) run beside
    the consumer; `on_commit` is called after each committed consumer batch;
    `positions`: the consumer keeps its partitions' positions, for answers that say
    how fresh they are (positions.py)."""
    settings = runtime.settings
    background = [*background, purge.periodic(settings.event_retention_s)]  # bounded outbox and inbox

    def after_batch() -> None:
        runtime.relay.wake()
        on_commit()

    stopping = threading.Event()
    failed: list[bool] = []

    def on_fatal() -> None:
        failed.append(True)
        stopping.set()

    consumer = EventConsumer(
        kafka.consumer_config(settings),
        kafka.producer_config(settings),
        consume,
        subscriptions,
        on_commit=after_batch,
        ignore=ignore,
        on_fatal=on_fatal,
        positions=positions,
    )

    def start_background() -> None:
        runtime.relay.start()
        for worker in background:
            worker.start()
        consumer.start()

    def stop_background() -> None:
        consumer.stop()  # offsets of handled events are committed before it leaves
        for worker in background:
            worker.stop()
        runtime.relay.stop()  # publishes what was committed before exiting

    def broker_down() -> str | None:
        return kafka.unreachable(runtime.relay.producer, settings.kafka_bootstrap_servers)

    readiness = Readiness(
        [
            # RPCs cannot be answered without it: the replica leaves the balancers.
            Dependency("database", db.ping, gates=True),  # raises when it does not answer: Readiness says why
            # The outbox and the group's offsets carry the service through these: reported only.
            Dependency("broker", broker_down, gates=False),
            Dependency("consumer", consumer.not_joined, gates=False),
        ],
        settings.readiness_interval_s,
    )
    # RPC threads borrow a pooled connection per call; each gives it back when its call ends.
    server.serve(
        settings, services, start_background, stop_background, stopping, after_call=db.release, readiness=readiness
    )
    tracing.shutdown()  # the spans still buffered
    if failed:
        raise SystemExit(1)


def main(build: Callable[[], None]) -> None:
    """Runs a service's build-and-serve function with readable start-up errors."""
    try:
        build()
    except SettingsError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    except server.PortUnavailable as exc:
        raise SystemExit(f"cannot start: {exc}") from None
