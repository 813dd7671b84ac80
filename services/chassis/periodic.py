"""A task every replica runs every few seconds, such as a scan for what fell due: a
round per interval (at once again while rounds find work), a failed round logged in
one line and tried again an interval later, never sooner; stopped with the service's
other background workers, at once (no last round). Its rounds are counted on the
metrics endpoint."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge

from .db import database, is_transient, release
from .worker import Worker

log = logging.getLogger(__name__)

ROUNDS = Counter(
    "bookrental_periodic_rounds_total", "Rounds of a periodic task, by result (ok, failed)", ["task", "result"]
)
# An alert can compare it with time(): a task whose rounds all fail, or that stopped, falls behind.
LAST_OK = Gauge(
    "bookrental_periodic_last_ok_seconds", "Unix time of a periodic task's latest successful round", ["task"]
)


class Periodic(Worker):
    """Runs `step` (it returns how much it handled) every `interval_s` seconds; a round
    that handled something (at least `batch_size`: a step that works in batches of that
    many and handled fewer took all there was) is followed at once by another, so a
    backlog (after an outage) is worked off without waiting an interval per batch."""

    def __init__(self, name: str, step: Callable[[], int], interval_s: float, batch_size: int = 1) -> None:
        self.task_step = step
        self.interval_s = interval_s
        self._ok, self._failed = ROUNDS.labels(name, "ok"), ROUNDS.labels(name, "failed")
        self._last_ok = LAST_OK.labels(name)
        # A failure waits a whole interval (not the relay's short backoff): the next tick is soon enough.
        super().__init__(
            name,
            self._round,
            interval_s,
            on_error=self._on_error,
            backoff_s=(interval_s, interval_s),
            batch_size=batch_size,
        )

    def _round(self) -> int:
        if self._stop.is_set():
            return 0  # stopping: no last round (a worker's drain); what is due waits for the next start or replica
        try:
            handled = self.task_step()
        finally:
            release()  # between rounds the pool has its connection back (PostgreSQL)
        self._ok.inc()
        self._last_ok.set(time.time())
        return handled

    def _on_error(self, exc: Exception) -> None:
        self._failed.inc()
        log.warning(
            "periodic task failed; trying again at the next round",
            extra={"task": self.name, "retry_in_s": self.interval_s, "error": f"{type(exc).__name__}: {exc}".strip()},
        )
        if is_transient(exc):
            database.close()  # a broken connection is opened afresh at the next round
