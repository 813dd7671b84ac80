"""`make bench-smoke`: the benchmark in miniature (its own stack, seconds of load),
so the harness cannot rot between real runs. Asserts only that every phase ran
and produced numbers; the figures themselves come from `make bench`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_bench_smoke_runs_every_phase_and_yields_numbers():
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    done = subprocess.run(["make", "-s", "bench-smoke"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH-SMOKE "))
    figures = json.loads(line.removeprefix("BENCH-SMOKE "))
    for name in (
        "echo_rps",
        "books_rps",
        "rest_rps",
        "grpc_rps",
        "e2e_confirm_p99_ms",
        "e2e_notify_p99_ms",
        "catchup_eps",
    ):
        failed = [x for x in done.stdout.splitlines() if " failed" in x]
        assert figures.get(name) and figures[name] > 0, (name, failed, figures)
    assert figures["rest_kept_up"] and figures["grpc_kept_up"], figures
    assert figures["rest_errors"] == 0 and figures["echo_errors"] == 0, figures
    assert set(figures["rest_cpu_per_1000"]) >= {"reservation", "stock", "alert", "envoy", "broker", "load"}
