"""`make bench`: one run measures this machine's limit (an echo RPC through the
same Envoy, JWT on) and our reservation path beside it, so their ratio holds on
a shared, noisy machine. Phases of each repetition:

  echo       wrk, closed loop, POST /v1/echo with a token            -> the limit (req/s)
  books      wrk, closed loop, GET /v1/books                          -> read path (req/s)
  rest       CreateReservation through Envoy REST: a short unpaced probe estimates
             what the pipeline sustains, then SUSTAIN_S at that rate (stepping down
             until every reservation is final within 5 s after the load stops)
  grpc       the same straight to the reservation service's gRPC port
  e2e        REST at half the sustained rate: request -> CONFIRMED, -> notification
  catch-up   alert stopped while CATCHUP_N outcomes pile up, then started: events/s

Each backend (--backend: SQLite, PostgreSQL, or both, the default) is a pass of its own:
its own stack (PostgreSQL: the project's embedded server, tools.pgserver, or the one
PG_ADMIN_URL names), all the phases above; both passes in one run give the ratio of
their REST rates.

    python -m bench [--reps 3] [--sustain 30] [--backend both] [--tracing] [--note TEXT]
        # writes bench/results/ and a row per backend in docs/performance.md
    python -m bench --smoke [--backend sqlite]   # ~30 s: checks it runs, writes nothing
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import jwt

from bench import report
from bench.stack import BACKENDS, BenchStack
from tools.devkeys import ensure_keys, load_private_key, public_jwk
from tools.token import AUDIENCE, ISSUER

HERE = Path(__file__).resolve().parent
BOOK_PREFIX = "bk-"
KEEP_UP_S = 5.0  # every outcome final within this long after the load stops


@dataclasses.dataclass
class Config:
    reps: int = 3
    users: int = 4000
    books: int = 500
    concurrency: int = 48
    threads: int = 1  # wrk threads: one keeps up, leaving the cores to the system (docs/performance.md)
    echo_s: float = 10
    books_s: float = 10
    probe_s: float = 5
    sustain_s: float = 30
    tries: int = 5  # sustained runs at most per path and repetition
    e2e_s: float = 20
    catchup_n: int = 20000
    pileup_s: float = 150  # bounds the pile-up: it runs at the pipeline's own pace
    pileup_rate: float = 0  # 0: the measured gRPC rate; smoke sets one so the pile-up spans several batches
    fixed_rate: float = 0  # smoke: skip the probe and use this rate
    smoke: bool = False

    @classmethod
    def smoke_config(cls) -> Config:
        return cls(
            reps=1,
            users=200,
            books=20,
            concurrency=8,
            echo_s=1,
            books_s=1,
            probe_s=0,
            sustain_s=2,
            tries=1,
            e2e_s=2,
            catchup_n=1000,
            pileup_s=3,
            pileup_rate=400,
            fixed_rate=40,
            smoke=True,
        )


class Bench:
    def __init__(self, cfg: Config, workdir: Path, backend: str = "sqlite", tracing: bool = False):
        self.cfg = cfg
        self.workdir = workdir
        key_dir = workdir / "keys"
        ensure_keys(key_dir)
        # Its customers never cancel: each ends up holding one reservation of many books
        # (every (user, book) pair once), so the limit is the book count. The customer's
        # lock and count still run on every create, as with the default of 5, but never refuse.
        env = {"LOG_LEVEL": "INFO", "RESERVATION_LIMIT": str(cfg.books)}
        self.stack = BenchStack(workdir, env, key_dir, backend, tracing)
        self.k = 0  # next request number: every phase gets (user, book) pairs never used before
        self.tokens = workdir / "tokens.lua"

    # -- set-up ---------------------------------------------------------------

    def start(self) -> None:
        self.stack.start()
        cfg = self.cfg
        # Pre-minted tokens, one per user, read by the wrk script. The same claims as
        # tools.token.mint_token, with the key loaded once (mint_token reloads it per call).
        key = load_private_key(self.stack.key_dir)
        kid, now = public_jwk(key)["kid"], int(time.time())

        def token(user: str) -> str:
            claims = {
                "iss": ISSUER,
                "aud": AUDIENCE,
                "sub": user,
                "roles": "customer",
                "iat": now,
                "nbf": now,
                "exp": now + 6 * 3600,
            }
            return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

        lines = [f'"{token(f"user-{u}")}",' for u in range(cfg.users)]
        self.tokens.write_text("return {\n" + "\n".join(lines) + "\n}\n")
        self.receive_stock()

    def receive_stock(self) -> None:
        """Every book gets more copies than the run can reserve, straight to the
        stock service over gRPC; then waits until the book list shows them all."""
        from bookrental.stock.v1 import stock_pb2, stock_pb2_grpc

        md = (("x-user-id", "bench-manager"), ("x-user-roles", "stock_manager"))
        with grpc.insecure_channel(f"127.0.0.1:{self.stack.ports.stock}") as channel:
            stub = stock_pb2_grpc.StockServiceStub(channel)
            calls = [
                stub.ReceiveStock.future(
                    stock_pb2.ReceiveStockRequest(
                        book_id=f"{BOOK_PREFIX}{b}", quantity=100000, title=f"Bench book {b}"
                    ),
                    metadata=md,
                    timeout=30,
                )
                for b in range(self.cfg.books)
            ]
            for call in calls:
                call.result()
        self._until(
            lambda: self.stack.count("reservation", "SELECT count(*) FROM book") == self.cfg.books,
            60,
            "book list shows every bench book",
        )

    @staticmethod
    def _until(probe, timeout: float, what: str, interval: float = 0.05) -> float:
        """Polls until probe() is true; returns the monotonic time it became true."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if probe():
                return time.monotonic()
            time.sleep(interval)
        raise TimeoutError(f"{what}: not within {timeout}s")

    # -- load -----------------------------------------------------------------

    def _take(self, count: int) -> int:
        offset, self.k = self.k, self.k + count
        if self.k > self.cfg.users * self.cfg.books:
            raise RuntimeError("ran out of distinct (user, book) pairs; raise --users or --books")
        return offset

    def wrk(self, mode: str, duration: float, rate: float = 0, count: int = 0) -> dict:
        """Runs wrk; returns its summary plus the CPU it used (from wait4's rusage)."""
        cfg = self.cfg
        if mode == "reserve":  # bounded: each reservation needs a (user, book) pair of its own
            count = count or int((rate or 4000) * duration * 1.05) + cfg.concurrency
            offset = self._take(count)
        else:  # echo and reads change nothing: bounded by duration only
            count, offset = 10**9, 0
        script = self.workdir / f"{mode}.lua"
        params = (
            f'MODE = "{mode}"\nOFFSET = {offset}\nCOUNT = {count}\nRATE = {rate}\nTHREADS = {cfg.threads}\n'
            f'BOOKS = {cfg.books}\nBOOK_PREFIX = "{BOOK_PREFIX}"\nTOKENS = "{self.tokens}"\n'
        )
        script.write_text(params + (HERE / "load.lua").read_text())
        argv = [
            "wrk",
            f"-t{cfg.threads}",
            f"-c{cfg.concurrency}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{self.stack.ports.envoy}",
        ]
        return self._load(argv)

    def grpc_load(self, duration: float, rate: float = 0, count: int = 0) -> dict:
        cfg = self.cfg
        count = count or int((rate or 4000) * duration * 1.05) + cfg.concurrency
        spec = {
            "target": f"127.0.0.1:{self.stack.ports.reservation}",
            "offset": self._take(count),
            "count": count,
            "rate": rate,
            "concurrency": cfg.concurrency,
            "duration": duration,
            "users": cfg.users,
            "books": cfg.books,
            "book_prefix": BOOK_PREFIX,
        }
        return self._load([sys.executable, "-m", "bench.grpc_load", json.dumps(spec)])

    @staticmethod
    def _load(argv: list[str]) -> dict:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None  # stdout=PIPE
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        found = re.search(r"^BENCH (\{.*\})$", out, re.M)
        if proc.returncode != 0 or not found:
            raise RuntimeError(f"{argv[0]} failed ({proc.returncode}):\n{out[-2000:]}")
        result = json.loads(found.group(1))
        result["cpu_s"] = usage.ru_utime + usage.ru_stime
        result["errors"] = sum(v for k, v in result.items() if k.startswith("errors_"))
        result["rate"] = result["requests"] / (result["duration_us"] / 1e6)
        return result

    # -- phases ---------------------------------------------------------------

    def echo(self) -> dict:
        r = self.wrk("echo", self.cfg.echo_s)
        return {
            "echo_rps": r["rate"],
            "echo_p50_ms": r["p50_us"] / 1000,
            "echo_p99_ms": r["p99_us"] / 1000,
            "echo_errors": r["errors"],
        }

    def books(self) -> dict:
        r = self.wrk("books", self.cfg.books_s)
        return {
            "books_rps": r["rate"],
            "books_p50_ms": r["p50_us"] / 1000,
            "books_p99_ms": r["p99_us"] / 1000,
            "books_errors": r["errors"],
        }

    def _drained(self, timeout: float) -> float | None:
        """Monotonic time at which no reservation is REQUESTED any more, or None."""
        try:
            return self._until(lambda: self.stack.pending_reservations() == 0, timeout, "drain", 0.02)
        except TimeoutError:
            return None

    def _reservation_load(self, path: str, duration: float, rate: float = 0) -> dict:
        """One load of CreateReservation; with CPU per process and whether the
        pipeline kept up (all final within KEEP_UP_S of the load's end)."""
        before_rows = self.stack.reservations()
        cpu0 = self.stack.cpu_seconds()
        start = time.monotonic()
        r = self.wrk("reserve", duration, rate) if path == "rest" else self.grpc_load(duration, rate)
        stopped = time.monotonic()
        done = self._drained(KEEP_UP_S)
        cpu1 = self.stack.cpu_seconds()
        if done is None:  # let it finish anyway, so the next phase starts clean
            done = self._drained(120)
        made = self.stack.reservations() - before_rows
        r.update(
            made=made,
            kept_up=done is not None and done - stopped <= KEEP_UP_S,
            drain_s=(done - stopped) if done else None,
            pipeline_rate=made / (done - start) if done else 0,
        )
        r["cpu_per_1000"] = {name: (cpu1[name] - cpu0.get(name, 0)) / made * 1000 for name in cpu1} if made else {}
        r["cpu_per_1000"]["load"] = r["cpu_s"] / made * 1000 if made else 0
        return r

    def sustained(self, path: str) -> dict:
        """The highest rate that keeps up for sustain_s: from the probe's estimate, one
        step up (+25%) after a first pass, steps down after a failure (to 85% of what
        the failed run's pipeline finished per second). The rate is the one achieved:
        if the load tool could not reach its target, the request path is the limit."""
        cfg = self.cfg
        if cfg.fixed_rate:
            rate = cfg.fixed_rate
        else:
            probe = self._reservation_load(path, cfg.probe_s)
            # What the whole pipeline finished per second, accepting at full speed.
            rate = min(probe["rate"], probe["pipeline_rate"])
        tried, best, failed = [], None, False
        for _ in range(cfg.tries):
            r = self._reservation_load(path, cfg.sustain_s, rate)
            ok = r["kept_up"] and r["errors"] <= 0.001 * r["requests"]
            tried.append(
                {
                    "target": round(rate, 1),
                    "achieved": round(r["rate"], 1),
                    "kept_up": r["kept_up"],
                    "drain_s": r["drain_s"],
                    "errors": r["errors"],
                    "ok": ok,
                }
            )
            if ok and (best is None or r["rate"] > best["rate"]):
                best = r
            if ok and (failed or cfg.fixed_rate or len(tried) > 1):
                break  # a pass after a failure, or the step up passed too
            if ok:
                rate *= 1.25
            else:
                if best is not None:
                    break  # the step up failed: the previous pass stands
                failed = True
                rate = min(rate, r["rate"], r["pipeline_rate"]) * 0.85
        p, r = path, best or r
        return {
            f"{p}_rps": r["rate"] if best else 0.0,
            f"{p}_kept_up": best is not None,
            f"{p}_tried": tried,
            f"{p}_p50_ms": r["p50_us"] / 1000,
            f"{p}_p99_ms": r["p99_us"] / 1000,
            f"{p}_drain_s": r["drain_s"],
            f"{p}_errors": r["errors"],
            f"{p}_cpu_per_1000": r["cpu_per_1000"],
        }

    def e2e(self, rate: float) -> dict:
        since = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(seconds=0.2)
        before = self.stack.notifications()
        r = self._reservation_load("rest", self.cfg.e2e_s, rate)
        self._until(lambda: self.stack.notifications() - before >= r["made"], 30, "every notification recorded")
        confirm, notify = self.stack.latencies_since(since)

        def pct(xs, p):
            xs = sorted(xs)
            return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000 if xs else None

        out = {"e2e_rate": r["rate"], "e2e_n": len(confirm), "e2e_request_p50_ms": r["p50_us"] / 1000}
        for name, xs in (("confirm", confirm), ("notify", notify)):
            for p in (50, 95, 99):
                out[f"e2e_{name}_p{p}_ms"] = pct(xs, p)
        return out

    def pile_up(self, rate: float) -> int:
        """Alert stopped while up to catchup_n outcomes pile up on its topic, made at
        `rate` (one the pipeline keeps up with) for at most pileup_s. Returns the number
        of outcome events alert has to catch up on."""
        stack = self.stack
        stack.fresh_topics()
        stack.stop_process("alert")
        n = min(self.cfg.catchup_n, int(rate * self.cfg.pileup_s))
        r = self.grpc_load(duration=self.cfg.pileup_s * 1.5, rate=rate, count=n)
        if self._drained(max(120.0, n / 20)) is None:
            raise RuntimeError("reservations did not reach a final state while alert was down")
        return r["requests"] - r["errors"]

    def catch_up(self, expected: int, fresh_as: str | None = None, on_start: Callable[[], None] = lambda: None) -> dict:
        """Starts alert and times it until its notifications reach `expected`
        (the events/s counts from its first notification: start-up is reported apart).
        `on_start` runs once alert's process is started (bench.profile attaches py-spy)."""
        stack = self.stack
        before = stack.notifications() if not fresh_as else 0
        started = time.monotonic()
        stack.restart_alert(fresh_as)
        on_start()
        first = self._until(lambda: stack.notifications() > before, 120, "alert's first notification", 0.01)
        first_count = stack.notifications() - before
        done = self._until(lambda: stack.notifications() - before >= expected, 900, "alert caught up", 0.01)
        cpu = stack.cpu_seconds().get("alert", 0)
        stack.stop_process("alert")
        if first_count >= expected:  # alert applies up to 200 per transaction: nothing left to time
            raise RuntimeError(f"all {expected} outcomes landed at once; pile up more (--catchup) to time them")
        return {
            "catchup_events": expected,
            "catchup_eps": (expected - first_count) / max(done - first, 1e-3),
            "catchup_total_s": done - started,
            "catchup_start_s": first - started,
            "catchup_alert_cpu_per_1000": cpu / expected * 1000,
        }

    def repetition(self) -> dict:
        rep: dict[str, Any] = {"loadavg_1m": report.loadavg()[0]}  # other people's work on the same cores

        def phase(name: str, figures: dict) -> None:
            rep.update(figures)
            shown = {
                k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items() if not isinstance(v, dict)
            }
            print(f"bench:   {name}: {shown}", flush=True)

        phase("echo", self.echo())
        phase("books", self.books())
        phase("rest", self.sustained("rest"))
        phase("grpc", self.sustained("grpc"))
        rest = rep["rest_rps"] or rep["rest_tried"][-1]["achieved"]
        phase("e2e", self.e2e(max(1.0, rest / 2)))
        rep["rest_ratio"] = rep["rest_rps"] / rep["echo_rps"]
        rep["books_ratio"] = rep["books_rps"] / rep["echo_rps"]
        rep["rest_grpc_ratio"] = rep["rest_rps"] / rep["grpc_rps"] if rep["grpc_rps"] else None
        return rep


def median_of(reps: list[dict]) -> dict:
    """Per figure, the median over repetitions (numbers and per-process dicts)."""
    out: dict[str, Any] = {}
    for key, first in reps[0].items():
        values = [r[key] for r in reps if r.get(key) is not None]
        if not values:
            continue
        if isinstance(first, bool):
            out[key] = all(values)
        elif isinstance(first, (int, float)) and all(isinstance(v, (int, float)) for v in values):
            out[key] = statistics.median(values)
        elif isinstance(first, dict) and all(isinstance(v, dict) for v in values):
            out[key] = {n: statistics.median(v.get(n, 0) for v in values) for n in first}
    return out


def options(argv: list[str] | None = None) -> tuple[argparse.Namespace, Config, list[str]]:
    """The command line: its options, the Config they make, the backends to run, in order."""
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--smoke", action="store_true", help="tiny durations; checks it runs, writes nothing")
    p.add_argument("--reps", type=int, help="repetitions (default 3); figures are their medians")
    p.add_argument("--sustain", type=float, help="seconds of sustained reservation load (default 30)")
    p.add_argument("--catchup", type=int, help="outcomes piled up for the catch-up phase (default 20000)")
    p.add_argument(
        "--backend",
        choices=[*BACKENDS, "both"],
        help="the services' database: a pass on each with both (the default; --smoke: sqlite)",
    )
    p.add_argument("--note", default="", help="what this run measures, e.g. the change it follows")
    p.add_argument(
        "--tracing",
        action="store_true",
        help="Envoy and the services trace every request to a local OTLP receiver (make run TRACING=1)",
    )
    p.add_argument("--keep", action="store_true", help="keep the stack's work dir (logs, databases)")
    a = p.parse_args(argv)
    cfg = Config.smoke_config() if a.smoke else Config()
    for field, value in (("reps", a.reps), ("sustain_s", a.sustain), ("catchup_n", a.catchup)):
        if value is not None:
            setattr(cfg, field, value)
    backend = a.backend or ("sqlite" if a.smoke else "both")
    return a, cfg, list(BACKENDS) if backend == "both" else [backend]


def run_pass(cfg: Config, workdir: Path, backend: str, tracing: bool = False) -> list[dict]:
    """One backend's pass: its own stack, the repetitions, then the catch-up; its repetitions."""
    bench = Bench(cfg, workdir, backend, tracing)
    reps: list[dict] = []
    try:
        print(f"bench: [{backend}] starting the stack in {workdir}", flush=True)
        bench.start()
        for i in range(cfg.reps):
            rep = bench.repetition()
            reps.append(rep)
            print(f"bench: [{backend}] repetition {i + 1}/{cfg.reps}: " + report.one_line(rep), flush=True)
        # Catch-up: one pile-up on new topics (it takes the pipeline's own pace), then
        # alert drains it; the further repetitions replay that stock topic into a fresh
        # alert (new consumer group, empty database): the same work, without piling up again.
        try:
            piled = bench.pile_up(
                cfg.pileup_rate or statistics.median(r["grpc_rps"] or r["rest_rps"] or 10 for r in reps)
            )
            for i in range(cfg.reps):
                figures = bench.catch_up(piled) if i == 0 else bench.catch_up(piled, fresh_as=f"alert_replay{i}")
                print(f"bench:   [{backend}] catch-up {i + 1}/{cfg.reps}: {figures}", flush=True)
                reps[i].update(figures)
        except Exception as exc:  # noqa: BLE001 - the other figures still count
            print(f"bench: [{backend}] catch-up failed: {exc}", flush=True)
            for rep in reps:
                rep.setdefault("catchup_error", str(exc))
    finally:
        bench.stack.stop()
    return reps


def main(argv: list[str] | None = None) -> int:
    a, cfg, backends = options(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (make bench installs it)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="bookrental-bench-"))
    info = report.machine_info()
    started = time.time()
    runs: dict[str, dict] = {}
    try:
        for backend in backends:
            reps = run_pass(cfg, workdir / backend, backend, a.tracing)
            runs[backend] = {"median": median_of(reps), "repetitions": reps}
    finally:
        if not a.keep and not a.smoke:
            shutil.rmtree(workdir, ignore_errors=True)
    args = argv or sys.argv[1:]
    result = {
        "note": a.note,
        "tracing": a.tracing,
        # Quoted for a shell twice (the make variable, then bench's own arguments), so it runs when pasted.
        "command": "make bench" + (f" BENCH_ARGS={shlex.quote(shlex.join(args))}" if args else ""),
        "config": dataclasses.asdict(cfg),
        "machine": info,
        "started": started,
        "duration_s": time.time() - started,
        "runs": runs,  # per backend, in the order run
        "postgresql_sqlite_rest_ratio": report.backend_ratio(runs),
    }
    result["machine"]["loadavg_end"] = report.loadavg()
    for backend, run in runs.items():
        print(f"bench: [{backend}] " + json.dumps(run["median"], indent=1, default=str), flush=True)
    if result["postgresql_sqlite_rest_ratio"] is not None:
        print(f"bench: REST reservations PostgreSQL / SQLite: {result['postgresql_sqlite_rest_ratio']:.2f}", flush=True)
    if cfg.smoke:
        for backend, run in runs.items():
            print("BENCH-SMOKE " + json.dumps({"backend": backend, **run["median"]}, default=str), flush=True)
        shutil.rmtree(workdir, ignore_errors=True)
        return 0
    path = report.write(result)
    print(f"bench: results in {path}; rows added to docs/performance.md", flush=True)
    return 0
