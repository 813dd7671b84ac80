"""CPU per reservation of every process AND thread at one fixed REST rate, with
the end-to-end latencies of the same load: what `make bench` sums per process,
split so the next cost is visible (gRPC's threads, the consumer, the relay,
librdkafka's, the broker's). The services name their threads (chassis/threads.py).

    make bench-threads THREADS_ARGS='--rate 500 --seconds 15'
    make bench-threads THREADS_ARGS='--rate 615 --seconds 20 --preload 45'   # after 45 s at 1,300/s on the same topics

`--preload` first loads the same topics at 1,300/s for that many seconds without
measuring: it shows what a fuller partition costs the broker. `--backend postgresql`
runs the services on PostgreSQL (as `make bench`'s pass): its server is one line, the
postmaster with its backends (a process per connection, not threads). `--statements 15`
(PostgreSQL only) also lists the statements the server spent longest executing, with
calls and microseconds per reservation (pg_stat_statements, preloaded for the run).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import tempfile
from pathlib import Path

from bench.run import Bench, Config
from bench.stack import BACKENDS, cpu_seconds_in


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far per thread name of a process (rpc_0..rpc_7 summed as rpc)."""
    out: dict[str, float] = collections.defaultdict(float)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            seconds = cpu_seconds_in(task / "stat")
        except OSError:
            continue  # the thread ended meanwhile
        out[name.rstrip("0123456789_-") or name] += seconds
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.threads", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rate", type=float, default=500, help="reservations per second (REST, paced)")
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--preload", type=float, default=0, help="seconds at 1,300/s on the same topics first")
    p.add_argument("--backend", choices=BACKENDS, default="sqlite", help="the services' database")
    p.add_argument(
        "--statements",
        type=int,
        default=0,
        metavar="N",
        help="PostgreSQL only: also the N statements that took the server longest (pg_stat_statements)",
    )
    p.add_argument(
        "--tracing",
        action="store_true",
        help="trace every request to a local OTLP receiver (its CPU is shown as `traces`, not ours)",
    )
    a = p.parse_args(argv)
    if a.statements and a.backend != "postgresql":
        p.error("--statements needs --backend postgresql")
    workdir = Path(tempfile.mkdtemp(prefix="bookrental-threads-"))
    # The stack starts on new topics; the loads below stay on them (services are not
    # restarted in between, so their threads can be followed).
    bench = Bench(Config(reps=1, e2e_s=a.seconds), workdir, a.backend, a.tracing)
    if a.statements:
        bench.stack.postgres_settings = {"shared_preload_libraries": "pg_stat_statements"}
    try:
        bench.start()
        if a.preload:
            pre = bench._reservation_load("rest", a.preload, 1300)
            print(f"preload: {pre['made']} reservations at {pre['rate']:.0f}/s (kept up: {pre['kept_up']})")
        pids = {name: proc.pid for name, proc in bench.stack.procs.items() if name not in ("echo", "postgres")}
        before = {name: thread_cpu(pid) for name, pid in pids.items()}
        server0 = bench.stack.cpu_seconds().get("postgres")
        if a.statements:
            _statements_reset()
        r = bench.e2e(a.rate)
        after = {name: thread_cpu(pid) for name, pid in pids.items()}
        server1 = bench.stack.cpu_seconds().get("postgres")
        made = r["e2e_n"]
        print(
            f"{made} reservations at {r['e2e_rate']:.0f}/s; request p50 {r['e2e_request_p50_ms']:.1f} ms; "
            f"confirm p50/p95/p99 {r['e2e_confirm_p50_ms']:.0f}/{r['e2e_confirm_p95_ms']:.0f}/"
            f"{r['e2e_confirm_p99_ms']:.0f} ms; notified p50/p99 {r['e2e_notify_p50_ms']:.0f}/"
            f"{r['e2e_notify_p99_ms']:.0f} ms"
        )
        print("CPU microseconds per reservation, per process and thread:")
        for name in pids:
            per = {t: (after[name][t] - before[name].get(t, 0)) / made * 1e6 for t in after[name]}
            shown = "  ".join(f"{t}={us:.0f}" for t, us in sorted(per.items(), key=lambda x: -x[1]) if us >= 5)
            print(f"  {name:12s} {sum(per.values()):6.0f}   {shown}")
        if server0 is not None and server1 is not None:
            print(f"  {'postgres':12s} {(server1 - server0) / made * 1e6:6.0f}   (the server and its backends)")
        if a.statements:
            print(f"The {a.statements} statements the server spent longest on, per reservation:")
            print("  database                calls    µs exec  statement")
            top, totals = _statements_top(a.statements)
            for database, calls, exec_ms, query in top:
                statement = " ".join(query.split())[:110]
                print(f"  {database:22s} {calls / made:6.2f} {exec_ms * 1000 / made:9.1f}  {statement}")
            print("All statements, per reservation:")
            for database, calls, exec_ms in totals:
                print(f"  {database:22s} {calls / made:6.2f} {exec_ms * 1000 / made:9.1f}")
    finally:
        bench.stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _statements_reset() -> None:
    from tools import pgdb

    with pgdb._admin() as conn, conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        cur.execute("SELECT pg_stat_statements_reset()")


def _statements_top(n: int) -> tuple[list[tuple[str, int, float, str]], list[tuple[str, int, float]]]:
    """(database, calls, total execution ms, statement) of the server's costliest statements
    since the reset, the load's (the bench's own reads of the databases at the end too),
    and (database, calls, execution ms) of all statements per database."""
    from tools import pgdb

    joined = "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
    with pgdb._admin() as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT d.datname, s.calls, s.total_exec_time, s.query {joined} ORDER BY s.total_exec_time DESC LIMIT %s",
            (n,),
        )
        top = cur.fetchall()
        cur.execute(f"SELECT d.datname, sum(s.calls), sum(s.total_exec_time) {joined} GROUP BY 1 ORDER BY 3 DESC")
        return top, cur.fetchall()


if __name__ == "__main__":
    raise SystemExit(main())
