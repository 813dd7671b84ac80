"""The stack under test: tools.devstack.Stack plus the bench's echo service,
routed through the same Envoy (JWT on, transcoded) as ours, on SQLite (files in
the work dir) or PostgreSQL (databases made for the run on the project's own
embedded server, tools.pgserver, or on the server PG_ADMIN_URL names). Also what
the bench reads from it: each process's CPU time and the services' own databases,
read the same way on both (peewee, one connection per database, the same SQL)."""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import peewee
from playhouse import db_url

from tools import pgdb
from tools.devstack import ROOT, SERVICES, Ports, Stack, free_port

BACKENDS = ("sqlite", "postgresql")
ECHO_SERVICE = "benchecho.v1.EchoService"
DESCRIPTOR = ROOT / "build" / "bench.pb"  # ours + the echo service (make bench-proto)
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds_in(stat: Path) -> float:
    """utime + stime from a /proc/<pid>/stat (a process) or /proc/<pid>/task/<tid>/stat
    (one thread); OSError if it has ended."""
    fields = stat.read_text().rsplit(")", 1)[1].split()  # the name in (...) may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICK


def tree_cpu_seconds(pid: int) -> float:
    """CPU of `pid`'s children: those running (utime + stime) and those it has
    reaped (its cutime + cstime), e.g. PostgreSQL's backends and workers."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[13]) + int(fields[14])) / _TICK
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            if int(text.rsplit(")", 1)[1].split()[1]) == pid:  # its ppid
                total += cpu_seconds_in(stat)
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
    return total


class BenchStack(Stack):
    def __init__(self, workdir: Path, env: dict, key_dir: Path, backend: str = "sqlite", tracing: bool = False):
        """`tracing`: Envoy and the services trace every request to a local receiver (its
        process is `traces`: a stand-in for the operator's collector, not ours to count)."""
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}: one of {', '.join(BACKENDS)}")
        super().__init__(workdir, Ports.free(), env, key_dir=key_dir, tracing_port=free_port() if tracing else None)
        self.backend = backend
        self.echo_port = free_port()
        self.run = uuid.uuid4().hex[:8]  # names this run's PostgreSQL databases br_<run>_<name>
        self._databases: list[str] = []  # those made on a server we did not start (dropped at stop)
        self._own_postgres = False
        self.postgres_settings: dict[str, str] = {}  # more settings for the server it starts
        self._readers: dict[str, peewee.Database] = {}  # DATABASE_URL -> the bench's connection

    def start(self) -> None:
        if self.backend == "postgresql":
            # Server settings as `make run PG=1` (fsync and synchronous_commit on), not the
            # tests' throwaway cluster: the production database, as documented.
            self._own_postgres = self.ensure_postgres(
                self.workdir / "postgres", free_port(), settings=self.postgres_settings
            )
            self.database_urls.update(self._create_databases(list(SERVICES)))
        self._spawn("echo", [sys.executable, "-m", "bench.echo_server", str(self.echo_port)])
        self._wait_tcp("echo", self.echo_port)
        super().start()

    def start_envoy(self, **render_options) -> None:
        # Exactly the config `make run` renders (access log included), plus the echo backend.
        super().start_envoy(
            descriptor_path=str(DESCRIPTOR), extra_backends=[(ECHO_SERVICE, self.echo_port)], **render_options
        )

    def _create_databases(self, names: list[str]) -> dict[str, str]:
        urls = pgdb.create(self.run, names)
        if not self._own_postgres:
            self._databases += names
        return urls

    def stop(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
        super().stop()  # stops "echo" too, with whatever else is left (our PostgreSQL last)
        if self._own_postgres:  # its cluster lives in the work dir, removed with it
            os.environ.pop("PG_ADMIN_URL", None)
        elif self._databases:
            pgdb.drop(self.run, self._databases)
            self._databases = []

    def fresh_topics(self) -> None:
        """Moves the three services to new, empty topics (stopped together, started with
        the new names, back when their consumer groups hold their partitions and Envoy
        sees them healthy). The catch-up's pile-up starts on them, so a replay into a
        fresh alert (a new consumer group reading from the start) reads exactly the
        piled-up outcomes."""
        run = uuid.uuid4().hex[:8]
        running = [name for name in SERVICES if name in self.procs]
        for name in running:
            self.procs[name].send_signal(signal.SIGTERM)  # all drain at once
        for name in running:
            self.stop_process(name)
        self.env = {**self.env, "STOCK_TOPIC": f"bench.stock.{run}", "RESERVATION_TOPIC": f"bench.reservation.{run}"}
        for name in running:
            self.start_service(name, wait=False)
        for name in running:
            self.wait_serving(name)
        self.wait_consumers_joined(running)
        for name in running:
            self.wait_envoy_healthy(name)

    def restart_alert(self, fresh_as: str | None = None) -> None:
        """Starts alert again (its consumer resumes from its committed offset); with
        `fresh_as`, as a new consumer group on an empty database, which reads the
        stock topic's whole backlog again as the same amount of real work."""
        if fresh_as and self.backend == "postgresql":
            self.database_urls["alert"] = self._create_databases([fresh_as])[fresh_as]
        elif fresh_as:
            self.database_urls["alert"] = f"sqlite:///{self.workdir / 'data' / fresh_as}.db"
        env = self.env
        self.env = {**env, "CONSUMER_GROUP": fresh_as} if fresh_as else env
        try:
            self.start_service("alert", wait=False)
        finally:
            self.env = env

    # -- what the bench reads ---------------------------------------------------

    def cpu_seconds(self) -> dict[str, float]:
        """utime + stime of each running process so far (all threads); PostgreSQL's
        with its backends' (a process per connection, children of the postmaster)."""
        out = {}
        for name, proc in self.procs.items():
            try:
                out[name] = cpu_seconds_in(Path(f"/proc/{proc.pid}/stat"))
                if name == "postgres":
                    out[name] += tree_cpu_seconds(proc.pid)
            except OSError:
                continue
        return out

    def db(self, service: str) -> peewee.Database:
        """The bench's own connection to a service's database (made once per URL; peewee
        runs every statement in autocommit, so each read sees what is committed). SQLite
        read-only: a read never creates a database the service has not made yet."""
        url = self.database_url(service)
        if url not in self._readers:
            if url.startswith("sqlite:///"):
                path = url.removeprefix("sqlite:///")
                self._readers[url] = peewee.SqliteDatabase(f"file:{path}?mode=ro", uri=True, timeout=30)
            else:
                self._readers[url] = db_url.connect(url)
        return self._readers[url]

    def rows(self, service: str, sql: str, *args) -> list[tuple]:
        """`sql` with `?` for each of `args` (the driver's own placeholder is put in)."""
        db = self.db(service)
        try:
            return db.execute_sql(sql.replace("?", db.param), args).fetchall()
        except peewee.DatabaseError:
            db.close()  # a fresh connection next time, whatever state the driver is in
            raise

    def count(self, service: str, sql: str, *args) -> int:
        return self.rows(service, sql, *args)[0][0]

    def pending_reservations(self) -> int:
        return self.count("reservation", "SELECT count(*) FROM reservation WHERE status = 'REQUESTED'")

    def reservations(self) -> int:
        return self.count("reservation", "SELECT count(*) FROM reservation")

    def notifications(self) -> int:
        try:
            return self.count("alert", "SELECT count(*) FROM notification")
        except peewee.DatabaseError:  # a fresh alert has not created its database or table yet
            return 0

    def latencies_since(self, since: datetime.datetime) -> tuple[list[float], list[float]]:
        """Seconds from each reservation's create_time (written while its request is
        handled) to CONFIRMED (its update_time) and to its notification's create_time.
        All three are naive-UTC times from the same clock."""
        # SQLite keeps them as ISO text (compared as text), PostgreSQL as timestamps.
        stamp = since.strftime("%Y-%m-%d %H:%M:%S") if self.backend == "sqlite" else since
        rows = self.rows(
            "reservation",
            "SELECT reservation_id, create_time, update_time FROM reservation "
            "WHERE status = 'CONFIRMED' AND create_time >= ?",
            stamp,
        )
        notified = dict(
            self.rows("alert", "SELECT reservation_id, create_time FROM notification WHERE create_time >= ?", stamp)
        )

        def parse(value: str | datetime.datetime) -> datetime.datetime:
            return value if isinstance(value, datetime.datetime) else datetime.datetime.fromisoformat(value)

        confirm, notify = [], []
        for rid, created, updated in rows:
            start = parse(created)
            confirm.append((parse(updated) - start).total_seconds())
            if rid in notified:
                notify.append((parse(notified[rid]) - start).total_seconds())
        return confirm, notify


@contextlib.contextmanager
def scratch_databases(stack: Stack, workdir: Path, names: list[str]) -> Iterator[dict[str, str]]:
    """For a bench that needs no services: the embedded PostgreSQL started under `workdir`
    by `stack` (stopped with it), a database per name (their DATABASE_URLs), dropped after."""
    os.environ["PG_ADMIN_URL"] = stack.start_postgres(workdir / "postgres", free_port())
    run = uuid.uuid4().hex[:8]
    try:
        yield pgdb.create(run, names)
    finally:
        pgdb.drop(run, names)
