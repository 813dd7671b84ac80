"""How long rebuilding the book list from the log takes (services/reservation/rebuild.py,
the same code the admin command runs): `--events` stock events of `--books` books on a
topic of a broker of its own (each book received, then reserved and released in turn,
a stock_version per change, as stock publishes them), folded into fresh tables on SQLite
and on the project's embedded PostgreSQL, then switched over against a live book list
that already holds them. Reports the rebuild's seconds, events/s, how long the switch-over
held the tables' lock, what it changed (nothing, the second time: the live list was the
same), and the bytes an event takes in the topic's log; then alert's restore of the
notifications of those events (every one lost) into an empty table.

    make bench-rebuild [REBUILD_BENCH_ARGS='--events 100000 --books 1000']
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from bench.stack import scratch_databases
from bookrental.stock.v1 import events_pb2 as stock_events
from services.alert import restore
from services.catalogue import ALERT, RESERVATION
from services.chassis import db, events, rebuild
from services.chassis.settings import Settings
from services.reservation import repository
from services.reservation.rebuild import BookListProjection
from tools.devstack import Ports, Stack


def stock_log(events_n: int, books: int) -> list[tuple[str, Any]]:
    """(book_id, event) as stock publishes them: each book received once, then reserved
    and released in turn, its stock_version growing by one per change."""
    log: list[tuple[str, Any]] = []
    version = dict.fromkeys(range(books), 0)
    for i in range(events_n):
        b = i % books
        book_id, version[b] = f"book-{b:05d}", version[b] + 1
        v = version[b]
        if v == 1:
            event: Any = stock_events.StockReceived(
                book_id=book_id, title=f"Title {b}", quantity=10, available=10, total_received=10, stock_version=v
            )
        elif v % 2 == 0:
            event = stock_events.StockReserved(
                reservation_id=str(uuid.uuid4()), user_id="u", book_id=book_id, available=9, stock_version=v
            )
        else:
            event = stock_events.StockReleased(
                reservation_id=str(uuid.uuid4()), user_id="u", book_id=book_id, available=10, stock_version=v
            )
        log.append((book_id, event))
    return log


def publish(bootstrap: str, topic: str, log: list[tuple[str, Any]]) -> float:
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: a client gone before its answer cancels it
    admin.create_topics([NewTopic(topic, 6, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20})
    began = time.perf_counter()
    for book_id, event in log:
        headers: list[tuple[str, str | bytes | None]] = list(
            events.headers(events.new_event_id(), event.DESCRIPTOR.full_name, "stock", events.now_iso(), "")
        )
        while True:
            try:
                producer.produce(topic, key=book_id.encode(), value=event.SerializeToString(), headers=headers)
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(60):
        raise RuntimeError("the stock log was not all acknowledged")
    return time.perf_counter() - began


def measure(url: str, bootstrap: str, topic: str) -> dict[str, Any]:
    conn = db.connect(url)
    db.create_schema(conn, repository.MODELS, repository.INDEXES)
    settings = dataclasses.replace(
        Settings.from_env(RESERVATION.name, RESERVATION.grpc_port, 0, env={}),
        kafka_bootstrap_servers=bootstrap,
        database_url=url,
    )
    out: dict[str, Any] = {}
    for run in ("into an empty list", "over the same list"):
        report = rebuild.rebuild(settings, topic, BookListProjection(), progress=lambda line: print(f"  {line}"))
        out[run] = {
            "events": report.events,
            "seconds": round(report.seconds, 2),
            "events_per_s": round(report.events / report.seconds),
            "switch_over_lock_ms": round(report.locked_s * 1000, 1),
            "rows": report.rows,
            "passes": report.passes,
            "differences": dataclasses.asdict(report.differences),
        }
        print(f"bench-rebuild: {url.split(':')[0]} {run}: {json.dumps(out[run])}", flush=True)
    conn.close()
    return out


def measure_restore(url: str, bootstrap: str, topic: str) -> dict[str, Any]:
    """Alert's restore (services/alert/restore.py, as the command runs it) into an empty
    notification table, the alert group's offsets committed at the topic's end (every
    outcome applied, every notification lost); then once more, with nothing to restore."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    ends = admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in partitions})
    committed = [TopicPartition(topic, tp.partition, f.result().offset) for tp, f in ends.items()]
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(ALERT.name, committed)])[ALERT.name].result(10)
    os.environ.update({"DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STOCK_TOPIC": topic})
    out: dict[str, Any] = {}
    for run in ("into an empty table", "with nothing to restore"):
        began = time.perf_counter()
        assert restore.main([]) == 0
        out[run] = {"seconds": round(time.perf_counter() - began, 2)}
    conn = db.connect(url)
    out["notifications"] = db.count("notification")
    conn.close()
    out["notifications_per_s"] = round(out["notifications"] / out["into an empty table"]["seconds"])
    print(f"bench-rebuild: {url.split(':')[0]} restore: {json.dumps(out)}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.rebuild_rate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--events", type=int, default=100_000, help="stock events on the topic")
    p.add_argument("--books", type=int, default=1000, help="books they are about")
    p.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    a = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bookrental-rebuild-"))
    stack = Stack(workdir, Ports.free())
    results: dict[str, Any] = {"events": a.events, "books": a.books}
    try:
        stack.start_broker()
        bootstrap, topic = f"127.0.0.1:{stack.ports.broker}", "bench.stock.v1"
        results["publish_s"] = round(publish(bootstrap, topic, stock_log(a.events, a.books)), 2)
        # What the topic takes on the broker's disk, kept whole (its log segments; no index files).
        segments = stack.broker_log_dir.glob(f"{topic}-*/*.log")
        results["log_bytes_per_event"] = round(sum(f.stat().st_size for f in segments) / a.events, 1)
        if a.backend in ("sqlite", "both"):
            results["sqlite"] = measure(f"sqlite:///{workdir / 'reservation.db'}", bootstrap, topic)
            results["sqlite"]["restore"] = measure_restore(f"sqlite:///{workdir / 'alert.db'}", bootstrap, topic)
        if a.backend in ("postgresql", "both"):
            with scratch_databases(stack, workdir, ["reservation", "alert"]) as urls:
                results["postgresql"] = measure(urls["reservation"], bootstrap, topic)
                results["postgresql"]["restore"] = measure_restore(urls["alert"], bootstrap, topic)
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
