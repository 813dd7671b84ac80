"""Where `make bench` writes: bench/results/<date>-<sha>.json (everything) and
one row per backend of each run in docs/performance.md (history kept: a newer run
adds its rows), PostgreSQL's beside SQLite's with the ratio of their REST rates."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from tools import kafka

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "performance.md"
ROWS_END = "<!-- bench rows end: make bench adds a row above this line -->"
DATABASE = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def git_sha() -> str:
    sha = _run(["git", "rev-parse", "--short", "HEAD"]) or "nogit"
    # Files under bench/results and docs/performance.md are what a run writes: not "dirty".
    dirty = _run(["git", "status", "--porcelain", "--", ".", ":!bench/results", ":!docs/performance.md"])
    return sha + ("-dirty" if dirty else "")


def machine_info() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    import confluent_kafka

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "mem_gib": round(int(mem) / 2**20, 1),
        "kernel": platform.release(),
        "loadavg_start": loadavg(),
        "git": git_sha(),
        "versions": {
            "python": sys.version.split()[0],
            "grpcio": version("grpcio"),
            "protobuf": version("protobuf"),
            "peewee": version("peewee"),
            "confluent-kafka": version("confluent-kafka"),
            "librdkafka": confluent_kafka.libversion()[0],
            "envoy": _run([str(Path(sys.executable).parent / "envoy"), "--version"]).split("version:")[-1].strip(),
            "broker": f"Apache Kafka {kafka.version()} (KRaft, one node)",
            "wrk": _run(["wrk", "-v"]).splitlines()[0] if _run(["wrk", "-v"]) else "?",
        },
    }


def _f(x, digits: int = 0) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def _books(m: dict) -> str:
    """The book list's rate, and its share of the echo limit (results before 2026-12-02 have none)."""
    ratio = m.get("books_ratio")
    return _f(m["books_rps"]) + (f" ({_f(ratio * 100, 1)}%)" if ratio is not None else "")


def one_line(m: dict) -> str:
    m = {**m, "catchup_eps": m.get("catchup_eps")}
    return (
        f"echo {_f(m['echo_rps'])}/s, REST {_f(m['rest_rps'])}/s ({_f(m['rest_ratio'] * 100, 1)}% of echo), "
        f"gRPC {_f(m['grpc_rps'])}/s, e2e confirm p50/p99 {_f(m['e2e_confirm_p50_ms'], 1)}/"
        f"{_f(m['e2e_confirm_p99_ms'], 1)} ms, books {_f(m['books_rps'])}/s"
        + (f" ({_f(m['books_ratio'] * 100, 1)}% of echo)" if m.get("books_ratio") is not None else "")
        + (f", catch-up {_f(m['catchup_eps'])} ev/s" if m["catchup_eps"] else "")
    )


def backend_ratio(runs: dict[str, dict]) -> float | None:
    """REST reservations/s on PostgreSQL over those on SQLite, both passes of one run
    (their medians); None unless both ran and SQLite's kept up."""
    try:
        pg, lite = (runs[b]["median"]["rest_rps"] for b in ("postgresql", "sqlite"))
    except KeyError:
        return None
    return pg / lite if lite else None


def table_rows(result: dict, path: Path) -> list[str]:
    """One row per backend, in the order they ran; PostgreSQL's row carries the ratio."""
    cfg, ratio = result["config"], result.get("postgresql_sqlite_rest_ratio")
    when = datetime.datetime.fromtimestamp(result["started"], datetime.UTC).strftime("%Y-%m-%d %H:%M")
    rel = path.relative_to(ROOT)
    rows = []
    for backend, run in result["runs"].items():
        m = run["median"]
        cpu = m.get("rest_cpu_per_1000", {})
        cpu_cell = " · ".join(
            f"{name} {cpu[name]:.2f}"
            for name in ("reservation", "stock", "alert", "envoy", "broker", "postgres", "load")
            if name in cpu
        )
        rows.append(
            f"| {when} | [{result['machine']['git']}](../{rel}) | {result['note'] or '–'} "
            f"| {cfg['reps']}×{cfg['sustain_s']:.0f}s | {DATABASE[backend]} | {_f(m['echo_rps'])} "
            f"| {_f(m['rest_rps'])} | {_f(m['rest_ratio'] * 100, 1)}% "
            f"| {_f(ratio if backend == 'postgresql' else None, 2)} | {_f(m['grpc_rps'])} "
            f"| {_f(m['rest_grpc_ratio'], 2)} "
            f"| {_f(m['e2e_confirm_p50_ms'], 1)} / {_f(m['e2e_confirm_p95_ms'], 1)} / {_f(m['e2e_confirm_p99_ms'], 1)} "
            f"| {_f(m['e2e_notify_p50_ms'], 1)} / {_f(m['e2e_notify_p99_ms'], 1)} | {_books(m)} "
            f"| {_f(m.get('catchup_eps'))} | {cpu_cell} |"
        )
    return rows


def write(result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    day = datetime.datetime.fromtimestamp(result["started"], datetime.UTC).strftime("%Y-%m-%d")
    base = f"{day}-{result['machine']['git']}"
    path, n = RESULTS / f"{base}.json", 2
    while path.exists():
        path, n = RESULTS / f"{base}-{n}.json", n + 1
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    text = DOC.read_text()
    if ROWS_END not in text:
        raise RuntimeError(f"{DOC} lost its marker line; add it back below the table: {ROWS_END}")
    DOC.write_text(text.replace(ROWS_END, "".join(row + "\n" for row in table_rows(result, path)) + ROWS_END))
    return path
