"""The chassis worker's rounds (the outbox relay, the alert dispatchers): after a full
batch it asks again at once, after a short one it waits for a wake (a new commit) or the
poll, and a wake that comes while a round runs is never lost."""

from __future__ import annotations

import queue
import threading
import time

from services.chassis.worker import Worker

DEADLINE_S = 5.0


class Queue:
    """Items a step takes, at most `batch` a round, recording each round's count."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.items = 0
        self.lock = threading.Lock()
        self.rounds: queue.Queue[int] = queue.Queue()

    def add(self, n: int) -> None:
        with self.lock:
            self.items += n

    def step(self) -> int:
        with self.lock:
            taken = min(self.items, self.batch)
            self.items -= taken
        self.rounds.put(taken)
        return taken

    def next_round(self, timeout: float = DEADLINE_S) -> int:
        return self.rounds.get(timeout=timeout)


def worker(q: Queue, batch_size: int) -> Worker:
    # A poll far longer than the test: a round that comes came from a wake or a full batch.
    w = Worker("test-worker", q.step, poll_interval_s=600, batch_size=batch_size)
    w.start()
    return w


def test_a_full_batch_is_followed_at_once_and_a_short_one_waits_for_a_wake():
    q = Queue(batch=10)
    q.add(25)
    w = worker(q, batch_size=10)
    try:
        assert [q.next_round() for _ in range(3)] == [10, 10, 5]
        assert q.rounds.empty()
        time.sleep(0.3)  # a round now would be one asked for nothing
        assert q.rounds.empty(), "a short batch was followed by another round without a wake"
        q.add(3)
        w.wake()
        assert q.next_round() == 3
    finally:
        w.stop()
    assert not w._thread.is_alive()


def test_with_the_default_batch_size_a_round_that_handled_any_is_followed_at_once():
    q = Queue(batch=10)
    q.add(5)
    w = Worker("test-worker", q.step, poll_interval_s=600)  # no batch_size: the default
    w.start()
    try:
        assert [q.next_round(), q.next_round()] == [5, 0]
    finally:
        w.stop()


def test_a_wake_during_a_short_round_is_not_lost():
    q = Queue(batch=10)
    q.add(2)
    taken, go_on = threading.Event(), threading.Event()

    def step() -> int:
        n = q.step()  # took what was ready
        taken.set()
        go_on.wait(DEADLINE_S)  # ... and is still at work when the next commit comes
        return n

    w = Worker("test-worker", step, poll_interval_s=600, batch_size=10)
    w.start()
    try:
        assert taken.wait(DEADLINE_S) and q.next_round() == 2
        taken.clear()
        q.add(4)
        w.wake()
        go_on.set()
        assert taken.wait(DEADLINE_S), "the wake that came during the short round was lost"
        assert q.next_round() == 4
    finally:
        go_on.set()
        w.stop()
