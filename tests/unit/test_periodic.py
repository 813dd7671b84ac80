"""The chassis' periodic task (services/chassis/periodic.py), as the stock deadline
scanner uses it: a round per interval, at once again while rounds find work; a failed
round logged in one line and tried again an interval later, never sooner (a database
outage neither kills it nor makes it spin); stop() ends it promptly, even mid-wait;
its rounds counted by result."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest
from prometheus_client import REGISTRY

from services.chassis.periodic import Periodic
from tools.client import eventually

FAILED = "periodic task failed; trying again at the next round"


def rounds(task: str, result: str) -> float:
    return REGISTRY.get_sample_value("bookrental_periodic_rounds_total", {"task": task, "result": result}) or 0


class Step:
    """A step that answers from a script (a number handled, or an exception), then 0; it
    notes when it was called."""

    def __init__(self, *script):
        self.script = list(script)
        self.calls: list[float] = []
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            self.calls.append(time.monotonic())
            outcome = self.script.pop(0) if self.script else 0
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture
def task():
    started = []

    def start(step, interval_s, batch_size=1):
        p = Periodic(f"test-{uuid.uuid4().hex[:6]}", step, interval_s, batch_size)
        started.append(p)
        p.start()
        return p

    yield start
    for p in started:
        p.stop(timeout=2)


def test_a_failing_round_is_logged_once_and_tried_again_an_interval_later_never_sooner(task, caplog):
    caplog.set_level(logging.WARNING, logger="services.chassis.periodic")
    step = Step(*[OSError("database unavailable")] * 1000)
    p = task(step, 0.2)
    eventually(lambda: len(step.calls) >= 4, timeout=5, what="four rounds")
    p.stop(timeout=2)
    gaps = [b - a for a, b in zip(step.calls, step.calls[1:], strict=False)]
    assert min(gaps) >= 0.19, gaps  # no retry before the next round: an outage does not make it spin
    lines = [r for r in caplog.records if r.getMessage() == FAILED and r.task == p.name]
    assert len(lines) == len(step.calls) == rounds(p.name, "failed")
    assert lines[0].error == "OSError: database unavailable"
    assert rounds(p.name, "ok") == 0


def test_after_failures_the_next_round_succeeds_and_is_counted(task):
    step = Step(OSError("down"), OSError("down"), 1)
    p = task(step, 0.05)
    eventually(lambda: rounds(p.name, "ok") >= 1, timeout=5, what="a successful round")
    assert rounds(p.name, "failed") == 2
    last_ok = REGISTRY.get_sample_value("bookrental_periodic_last_ok_seconds", {"task": p.name})
    assert time.time() - 5 < last_ok <= time.time()


def test_a_round_that_found_work_is_followed_at_once_then_it_waits_its_interval(task):
    step = Step(100, 3, 0)
    p = task(step, 30)  # a whole interval between these three would take a minute
    eventually(lambda: len(step.calls) == 3, timeout=5, what="three rounds back to back")
    time.sleep(0.3)
    assert len(step.calls) == 3, "it ran again without waiting its interval"
    began = time.monotonic()
    p.stop(timeout=5)
    assert time.monotonic() - began < 2, "stop waited out the interval"
    assert not p._thread.is_alive()


def test_a_task_that_works_in_batches_waits_its_interval_after_a_short_batch(task):
    """A round that handled fewer than its batch took all there was: one more at once
    would only find what arrived since (a purge would chase each row that just came due)."""
    step = Step(500, 500, 7, 500)
    task(step, 30, batch_size=500)
    eventually(lambda: len(step.calls) == 3, timeout=5, what="the full batches' rounds and the short one")
    time.sleep(0.3)
    assert len(step.calls) == 3, "it ran again after a short batch without waiting its interval"


def test_stop_ends_it_while_every_round_fails(task):
    step = Step(*[OSError("down")] * 1000)
    p = task(step, 30)
    eventually(lambda: step.calls, timeout=5, what="a first round")
    began = time.monotonic()
    p.stop(timeout=5)
    assert time.monotonic() - began < 2 and not p._thread.is_alive()
