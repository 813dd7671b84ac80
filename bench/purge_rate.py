"""How fast the purge (services/chassis/purge.py) works off a backlog, and what a writer
waits meanwhile, on SQLite and on the project's embedded PostgreSQL (fsync on): `--rows`
sent outbox rows and as many inbox records, written as the services write them
(outbox.record, the consumer's inbox claim in batches of 200) and then past the window
(the purge's clock moved forward). Reports rows/s, each DELETE statement's time, a
writer's latency (one event recorded in its own transaction every 5 ms) before and
during the purge, the count the purge makes for the metrics, what the inbox index
costs the consumer's claim, and building it on an inbox that has none.

    make bench-purge [PURGE_ARGS='--rows 100000']
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from bench.stack import scratch_databases
from bookrental.reservation.v1 import events_pb2
from services.chassis import db, events, outbox, purge
from services.chassis.consumer import EventConsumer
from tools.devstack import Ports, Stack

MESSAGE = events_pb2.ReservationRequested(reservation_id="r-1", book_id="b-1", user_id="u-1")
INDEX = "inbox_processed_at"


def _ms(seconds: list[float]) -> dict[str, float]:
    s = sorted(seconds)
    return {
        "p50_ms": round(statistics.median(s) * 1000, 2),
        "p99_ms": round(s[int(len(s) * 0.99) - 1 if len(s) > 1 else 0] * 1000, 2),
        "max_ms": round(s[-1] * 1000, 2),
    }


def _fill_outbox(rows: int) -> None:
    """`rows` events recorded in transactions of 1000 (one multi-row INSERT each), then
    marked sent as the relay marks them."""
    for i in range(0, rows, 1000):
        with db.database.atomic(), db.gathered():
            for j in range(min(1000, rows - i)):
                outbox.record("bench.purge", f"k{j}", MESSAGE, f"r{i + j}")
    db.execute("UPDATE outbox SET sent_at = ? WHERE sent_at IS NULL", (time.time(),))


def _claim(rows: int) -> float:
    """`rows` events claimed in the inbox in the consumer's batches of 200; seconds taken."""
    began = time.perf_counter()
    for _ in range(0, rows, 200):
        batch = [events.Envelope(events.new_event_id(), "bench.Event", "bench", "", "") for _ in range(200)]
        with db.database.atomic():
            EventConsumer._claim(batch)
    return time.perf_counter() - began


class Writer(threading.Thread):
    """One event recorded in its own transaction every 5 ms; each one's latency."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.005):
            began = time.perf_counter()
            with db.database.atomic():
                outbox.record("bench.purge", "writer", MESSAGE)
            self.latencies.append(time.perf_counter() - began)
        db.release()


def _writer_during(work: Callable[[], Any]) -> tuple[list[float], Any]:
    """The writer's latencies while `work` runs, and what it returned."""
    writer = Writer()
    writer.start()
    try:
        return writer.latencies, work()
    finally:
        writer.stop.set()
        writer.join()


def measure(url: str, rows: int) -> dict[str, Any]:
    conn = db.connect(url)
    db.create_schema(conn, [])
    out: dict[str, Any] = {"rows_per_table": rows}
    # What the index costs the hot statement: the same claims without it, then with it.
    db.execute(f"DROP INDEX {INDEX}")
    without = _claim(rows)
    began = time.perf_counter()
    db.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON inbox (processed_at)")
    out["index_build_on_existing_inbox_s"] = round(time.perf_counter() - began, 2)
    db.execute("DELETE FROM inbox")
    with_index = _claim(rows)
    out["inbox_claim_us_per_event"] = {
        "without_index": round(without / rows * 1e6, 1),
        "with_index": round(with_index / rows * 1e6, 1),
    }
    _fill_outbox(rows)
    if not db.is_sqlite():
        db.execute("VACUUM ANALYZE outbox")  # as autovacuum would have, on a table filled over days
        db.execute("VACUUM ANALYZE inbox")

    window = 15 * 86400
    task = purge.Purge(window, clock=lambda: time.time() + window + 3600)  # an hour past the window
    began = time.perf_counter()
    task.count()
    out["count_for_metrics_ms"] = round((time.perf_counter() - began) * 1000, 1)

    statements: dict[str, list[float]] = {"outbox": [], "inbox": []}
    timed_rows = db.rows

    def timing(sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        began = time.perf_counter()
        got = timed_rows(sql, params)
        if "DELETE FROM" in sql:
            statements[sql.split("DELETE FROM ")[1].split()[0]].append(time.perf_counter() - began)
        return got

    idle, _ = _writer_during(lambda: time.sleep(2.0))

    def run() -> tuple[int, float]:
        began, deleted = time.perf_counter(), 0
        while True:
            n = task.step()
            deleted += n
            if n < task.batch_size:
                return deleted, time.perf_counter() - began

    with mock.patch.object(db, "rows", timing):  # the purge's statements, timed
        busy, (deleted, seconds) = _writer_during(run)
    out["purged_rows"] = deleted
    out["purge_s"] = round(seconds, 2)
    out["rows_per_s"] = round(deleted / seconds)
    out["statement"] = {t: {"count": len(s), **_ms(s)} for t, s in statements.items()}
    out["writer_idle"] = _ms(idle)
    out["writer_during_purge"] = {"writes": len(busy), **_ms(busy)}
    conn.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.purge_rate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", type=int, default=100_000, help="old rows per table (outbox and inbox)")
    p.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    a = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bookrental-purge-"))
    stack = Stack(workdir, Ports.free())
    results = {}
    try:
        if a.backend in ("sqlite", "both"):
            results["sqlite"] = measure(f"sqlite:///{workdir / 'purge.db'}", a.rows)
        if a.backend in ("postgresql", "both"):
            with scratch_databases(stack, workdir, ["purge"]) as urls:
                results["postgresql"] = measure(urls["purge"], a.rows)
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
