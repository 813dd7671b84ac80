"""CPU per event of the alert service's two hot paths, without broker or gRPC:
recording outcomes the way the consumer does (a transaction per poll batch) and
the log dispatcher delivering a backlog. On SQLite (a temp file) and on PostgreSQL
(a scratch database, dropped afterwards) on the server PG_ADMIN_URL names, else
on the project's own, started in a temp dir for the run (tools.pgserver).

    .venv/bin/python -m bench.alert_cpu [--events 4000] [--deliveries 4000] [--backend sqlite|postgresql]

Prints ms per event: record_outcome (AlertService.record_outcome, transactions of
--batch events), handler (the consumer's handler: that and its log line) and
dispatch (the log channel delivering and recording). cpu is this process's own
(PostgreSQL's server work is not in it; wall shows the round trips). Log lines go
through the services' JSON formatter to /dev/null: formatting them is part of the
cost, writing them to a terminal is not.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path

from bookrental.stock.v1 import events_pb2 as stock_events
from services.alert import bootstrap, channels, domain, entrypoints, repository, wire
from services.alert.dispatcher import Dispatcher
from services.alert.service import AlertService
from services.alert.settings import AlertSettings
from services.chassis import db, events, logs
from tools import pgdb
from tools.devstack import Stack, free_port


def _events(count: int, users: int):
    for i in range(count):
        envelope = events.Envelope(
            event_id=str(uuid.uuid4()), event_type="x", source="stock", time="", correlation_id=f"r-{i}"
        )
        yield (
            envelope,
            stock_events.StockReserved(
                reservation_id=f"r-{i}", user_id=f"u{i % users}", book_id=f"b-{i % 50}", title="The Little Prince"
            ),
        )


def record(service: AlertService, count: int, batch: int, with_handler: bool) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per event; a transaction per batch, its inserts
    gathered, as the consumer runs a poll batch."""
    subscription = entrypoints.subscriptions(service)[0]
    handle, prepare = subscription.handler, subscription.prepare
    assert prepare is not None
    todo = list(_events(count, users=max(count // 4, 1)))
    before = repository.NotificationRow.select().count()
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, count, batch):
        with db.database.atomic(), db.gathered():  # as the consumer applies a batch
            prepare([event for _, event in todo[i : i + batch]])
            for envelope, event in todo[i : i + batch]:
                if with_handler:
                    handle(event, envelope)
                else:
                    service.record_outcome(envelope.event_id, wire.outcome(domain.Kind.CONFIRMED, event))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    added = repository.NotificationRow.select().count() - before
    assert added == count, f"{added} notifications recorded for {count} events"
    return cpu / count, wall / count


def dispatch(service: AlertService, count: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per delivery for the log dispatcher to deliver its
    backlog: `count` more outcomes and those the recording runs left."""
    with db.database.atomic():
        for envelope, event in _events(count, users=100):
            service.record_outcome(envelope.event_id, wire.outcome(domain.Kind.CONFIRMED, event))
    settings = AlertSettings.from_env({})
    deliveries = repository.DeliveryRepository()
    d = Dispatcher(
        deliveries,
        channels.LogChannel(),
        channels.breaker_for(f"bench-{uuid.uuid4().hex[:6]}", settings),
        settings.retry,
        lease_s=6.0,
    )
    due = deliveries.pending_count(domain.LOG)  # with those the recording runs left
    wall, cpu = time.perf_counter(), time.process_time()
    delivered = 0
    while done := d.deliver_due():
        delivered += done
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    left = deliveries.pending_count(domain.LOG)
    assert delivered == due and left == 0, f"{delivered} of {due} delivered, {left} left PENDING"
    return cpu / delivered, wall / delivered


def run(url: str, args) -> dict:
    database = db.connect(url)
    db.create_schema(database, repository.MODELS)
    repository.migrate_schema()
    service = AlertService(bootstrap.unit_of_work)
    # A quarter of the customers chose preferences (log only here: nothing is offered).
    with service.uow() as uow:
        for u in range(0, args.events // 4, 4):
            uow.preferences.put(f"u{u}", domain.Preferences(language="en"))
    out = {}
    for name, with_handler in (("record_outcome", False), ("handler", True)):
        cpu, wall = record(service, args.events, args.batch, with_handler)
        out.update({f"{name}_cpu_ms": cpu * 1e3, f"{name}_wall_ms": wall * 1e3})
    cpu, wall = dispatch(service, args.deliveries)
    out.update(dispatch_cpu_ms=cpu * 1e3, dispatch_wall_ms=wall * 1e3)
    database.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--deliveries", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), action="append")
    args = parser.parse_args()
    logs.setup("alert", "INFO")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler), handler
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the run
    for backend in args.backend or ("sqlite", "postgresql"):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                result = run(f"sqlite:///{tmp}/alert.db", args)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                server, started = Stack(Path(tmp)), False
                try:
                    started = server.ensure_postgres(Path(tmp) / "postgres", free_port())
                    scratch = uuid.uuid4().hex[:8]
                    try:
                        result = run(pgdb.create(scratch, ["alert"])["alert"], args)
                    finally:
                        pgdb.drop(scratch, ["alert"])  # FORCE: the pool's connections may still be open
                finally:
                    server.stop()
                    if started:
                        os.environ.pop("PG_ADMIN_URL")
        print(f"{backend:10s} " + "  ".join(f"{k} {v:.3f}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
