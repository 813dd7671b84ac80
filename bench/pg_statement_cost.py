"""What one statement costs the PostgreSQL server, three ways: psycopg2's text statements
(what the services send), the same prepared once (PREPARE/EXECUTE), and ten rows in one
multi-row INSERT. An outbox row as the services write it, one connection, a commit per
ten rows, on the project's embedded PostgreSQL with the bench's settings (fsync on).
Each way runs twice, alternating; server CPU is the postmaster's tree (its backends).

    make bench-pg-statements [PG_STATEMENTS_ARGS='--rows 5000']
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stack import tree_cpu_seconds
from tools.devstack import Ports, Stack, free_port

COLUMNS = "event_id, topic, key, event_type, correlation_id, payload, occur_time"
PER_COMMIT = 10


def _row() -> tuple[Any, ...]:
    return (
        uuid.uuid4().hex,
        "bookrental.reservation.v1",
        "b-1",
        "bookrental.reservation.v1.ReservationRequested",
        uuid.uuid4().hex,
        b"x" * 120,
        time.time(),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.pg_statement_cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rows", type=int, default=5000, help="rows per way and round")
    a = p.parse_args(argv)
    import psycopg2

    workdir = Path(tempfile.mkdtemp(prefix="bookrental-pgcost-"))
    stack = Stack(workdir, Ports.free())
    try:
        conn = psycopg2.connect(stack.start_postgres(workdir / "postgres", free_port()))
        server = stack.procs["postgres"].pid
        cur = conn.cursor()
        cur.execute(
            "CREATE TABLE outbox (id bigserial PRIMARY KEY, event_id text UNIQUE, topic text, key text,"
            " event_type text, correlation_id text, payload bytea, occur_time double precision,"
            " sent_at double precision)"
        )
        cur.execute("CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL")
        cur.execute(f"PREPARE insert_outbox AS INSERT INTO outbox ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        conn.commit()
        one = "(%s, %s, %s, %s, %s, %s, %s)"

        def one_by_one(sql: str, name: str) -> Callable[[int], None]:
            """A row per statement, a commit per PER_COMMIT rows."""

            def run(n: int) -> None:
                for i in range(n):
                    cur.execute(sql, _row())
                    if i % PER_COMMIT == PER_COMMIT - 1:
                        conn.commit()
                conn.commit()

            run.__name__ = name
            return run

        text = one_by_one(f"INSERT INTO outbox ({COLUMNS}) VALUES {one}", "text")
        prepared = one_by_one(f"EXECUTE insert_outbox {one}", "prepared")

        def multi_row(n: int) -> None:
            for _ in range(0, n, PER_COMMIT):
                values = [v for _ in range(PER_COMMIT) for v in _row()]
                cur.execute(f"INSERT INTO outbox ({COLUMNS}) VALUES {', '.join([one] * PER_COMMIT)}", values)
                conn.commit()

        ways: list[Callable[[int], None]] = [text, prepared, multi_row]
        for way in ways * 2:
            server0, client0, wall0 = tree_cpu_seconds(server), time.process_time(), time.monotonic()
            way(a.rows)
            server1, client1, wall1 = tree_cpu_seconds(server), time.process_time(), time.monotonic()
            print(
                f"{way.__name__:9s} µs per row: server CPU {(server1 - server0) / a.rows * 1e6:6.1f}, "
                f"client CPU {(client1 - client0) / a.rows * 1e6:6.1f}, wall {(wall1 - wall0) / a.rows * 1e6:6.1f}",
                flush=True,
            )
        conn.close()
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
