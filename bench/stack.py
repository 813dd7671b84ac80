"""The stack under test: tools.devstack.Stack plus the bench's echo service,
routed through the same Envoy (JWT on, transcoded) as ours. Also what the
bench reads from it: each process's CPU time and the services' own databases."""

from __future__ import annotations

import datetime
import os
import signal
import sqlite3
import sys
import uuid
from pathlib import Path

from tools.devstack import ROOT, SERVICES, Ports, Stack, free_port

ECHO_SERVICE = "benchecho.v1.EchoService"
DESCRIPTOR = ROOT / "build" / "bench.pb"  # ours + the echo service (make bench-proto)
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds_in(stat: Path) -> float:
    """utime + stime from a /proc/<pid>/stat (a process) or /proc/<pid>/task/<tid>/stat
    (one thread); OSError if it has ended."""
    fields = stat.read_text().rsplit(")", 1)[1].split()  # the name in (...) may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICK


class BenchStack(Stack):
    def __init__(self, workdir: Path, env: dict, key_dir: Path):
        super().__init__(workdir, Ports.free(), env, key_dir=key_dir)
        self.echo_port = free_port()

    def start(self) -> None:
        self._spawn("echo", [sys.executable, "-m", "bench.echo_server", str(self.echo_port)])
        self._wait_tcp("echo", self.echo_port)
        super().start()

    def start_envoy(self, **render_options) -> None:
        # Exactly the config `make run` renders (access log included), plus the echo backend.
        super().start_envoy(
            descriptor_path=str(DESCRIPTOR), extra_backends=[(ECHO_SERVICE, self.echo_port)], **render_options
        )

    def stop(self) -> None:
        super().stop()  # stops "echo" too, with whatever else is left

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
        if fresh_as:
            self.database_urls["alert"] = f"sqlite:///{self.workdir / 'data' / fresh_as}.db"
        env = self.env
        self.env = {**env, "CONSUMER_GROUP": fresh_as} if fresh_as else env
        try:
            self.start_service("alert", wait=False)
        finally:
            self.env = env

    # -- what the bench reads ---------------------------------------------------

    def cpu_seconds(self) -> dict[str, float]:
        """utime + stime of each running process so far (all threads)."""
        out = {}
        for name, proc in self.procs.items():
            try:
                out[name] = cpu_seconds_in(Path(f"/proc/{proc.pid}/stat"))
            except OSError:
                continue
        return out

    def db(self, service: str) -> sqlite3.Connection:
        path = self.database_url(service).split("sqlite:///", 1)[1]
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)

    def count(self, service: str, sql: str, *args) -> int:
        with self.db(service) as conn:
            return conn.execute(sql, args).fetchone()[0]

    def pending_reservations(self) -> int:
        return self.count("reservation", "SELECT count(*) FROM reservation WHERE status = 'REQUESTED'")

    def reservations(self) -> int:
        return self.count("reservation", "SELECT count(*) FROM reservation")

    def notifications(self) -> int:
        try:
            return self.count("alert", "SELECT count(*) FROM notification")
        except sqlite3.OperationalError:  # a fresh alert has not created its database yet
            return 0

    def latencies_since(self, since: datetime.datetime) -> tuple[list[float], list[float]]:
        """Seconds from each reservation's create_time (written while its request is
        handled) to CONFIRMED (its update_time) and to its notification's create_time.
        All three are naive-UTC times from the same clock."""
        stamp = since.strftime("%Y-%m-%d %H:%M:%S")
        with self.db("reservation") as conn:
            rows = conn.execute(
                "SELECT reservation_id, create_time, update_time FROM reservation "
                "WHERE status = 'CONFIRMED' AND create_time >= ?",
                (stamp,),
            ).fetchall()
        with self.db("alert") as conn:
            notified = dict(
                conn.execute(
                    "SELECT reservation_id, create_time FROM notification WHERE create_time >= ?", (stamp,)
                ).fetchall()
            )
        parse = datetime.datetime.fromisoformat
        confirm, notify = [], []
        for rid, created, updated in rows:
            start = parse(created)
            confirm.append((parse(updated) - start).total_seconds())
            if rid in notified:
                notify.append((parse(notified[rid]) - start).total_seconds())
        return confirm, notify
