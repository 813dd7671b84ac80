"""`make bench`'s choice of backends and the rows it adds to docs/performance.md, from
given figures (the bench's own run is `make bench`; `make bench-smoke` runs SQLite's
pass only, the PostgreSQL pass is `make bench-smoke BENCH_ARGS='--backend postgresql'`)."""

from __future__ import annotations

import pytest

from bench import report
from bench.run import options


def test_make_bench_runs_sqlite_then_postgresql_unless_told_one():
    assert options([])[2] == ["sqlite", "postgresql"]
    assert options(["--backend", "both"])[2] == ["sqlite", "postgresql"]
    assert options(["--backend", "postgresql", "--reps", "1"])[2] == ["postgresql"]
    assert options(["--backend", "sqlite"])[2] == ["sqlite"]


def test_the_smoke_runs_sqlite_only_unless_told_otherwise():
    _, cfg, backends = options(["--smoke"])
    assert cfg.smoke and backends == ["sqlite"]
    assert options(["--smoke", "--backend", "postgresql"])[2] == ["postgresql"]


def test_an_unknown_backend_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_:
        options(["--backend", "mysql"])
    assert exit_.value.code == 2
    assert "invalid choice: 'mysql'" in capsys.readouterr().err


def median(rest_rps: float, echo_rps: float = 1000.0) -> dict:
    return {
        "echo_rps": echo_rps,
        "rest_rps": rest_rps,
        "rest_ratio": rest_rps / echo_rps,
        "grpc_rps": 500.0,
        "rest_grpc_ratio": rest_rps / 500.0,
        "e2e_confirm_p50_ms": 30.0,
        "e2e_confirm_p95_ms": 60.0,
        "e2e_confirm_p99_ms": 90.0,
        "e2e_notify_p50_ms": 31.0,
        "e2e_notify_p99_ms": 95.0,
        "books_rps": 400.0,
        "books_ratio": 400.0 / echo_rps,
        "catchup_eps": 3000.0,
        "rest_cpu_per_1000": {"reservation": 1.0, "postgres": 0.5, "load": 0.1},
    }


def result(runs: dict) -> dict:
    return {
        "note": "n",
        "config": {"reps": 3, "sustain_s": 30},
        "machine": {"git": "abc1234"},
        "started": 0,
        "runs": runs,
        "postgresql_sqlite_rest_ratio": report.backend_ratio(runs),
    }


def cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def header() -> list[str]:
    lines = report.DOC.read_text().splitlines()
    return cells(next(line for line in lines if line.startswith("| run (UTC) |")))


def test_postgresql_s_row_sits_beside_sqlite_s_with_the_ratio_of_their_rest_rates():
    runs = {"sqlite": {"median": median(800.0)}, "postgresql": {"median": median(440.0)}}
    rows = [
        dict(zip(header(), cells(r), strict=True)) for r in report.table_rows(result(runs), report.RESULTS / "x.json")
    ]
    assert [r["database"] for r in rows] == ["SQLite", "PostgreSQL"]
    assert [r["REST reservations/s"] for r in rows] == ["800", "440"]
    assert [r["REST PostgreSQL / SQLite"] for r in rows] == ["–", "0.55"]
    assert rows[1]["CPU s per 1,000 reservations (REST run)"] == "reservation 1.00 · postgres 0.50 · load 0.10"
    assert rows[0]["GET /v1/books req/s (% of echo)"] == "400 (40.0%)"


def test_one_backend_alone_has_no_ratio():
    runs = {"postgresql": {"median": median(440.0)}}
    assert report.backend_ratio(runs) is None
    (row,) = report.table_rows(result(runs), report.RESULTS / "x.json")
    named = dict(zip(header(), cells(row), strict=True))
    assert named["database"] == "PostgreSQL" and named["REST PostgreSQL / SQLite"] == "–"


def test_no_ratio_when_sqlite_did_not_keep_up():
    assert report.backend_ratio({"sqlite": {"median": median(0.0)}, "postgresql": {"median": median(440.0)}}) is None
