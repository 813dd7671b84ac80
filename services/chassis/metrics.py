"""Prometheus metrics of the delivery machinery, beside the RPC metrics in
server.py: consumer lag per partition, outbox backlog, dead-lettered
messages, circuit-breaker state and the sizes of the outbox and inbox. Names are the contract of the alert
rules and the dashboard in k8s/monitoring/ (a test checks they exist)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator

import pybreaker
from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

# on_change(breaker, old_state, new_state), as pybreaker's listeners are told
BreakerChange = Callable[
    [pybreaker.CircuitBreaker, pybreaker.CircuitBreakerState | None, pybreaker.CircuitBreakerState], None
]

CONSUMER_LAG = Gauge(
    "bookrental_consumer_lag",
    "Messages between the committed offset and the high watermark",
    ["group", "topic", "partition"],
)
DEAD_LETTERED = Counter("bookrental_dead_lettered_total", "Messages copied to <topic>.dlq", ["topic"])
BREAKER_OPENED = Counter("bookrental_breaker_opened_total", "Times a circuit breaker opened", ["breaker"])
# The tables the purge keeps bounded (purge.py), as its last count: one per run, not per scrape.
OUTBOX_SENT_ROWS = Gauge("bookrental_outbox_sent_rows", "Published outbox rows kept for the retention window")
INBOX_ROWS = Gauge("bookrental_inbox_rows", "Inbox records (ids of applied events) kept for the retention window")
PURGED = Counter("bookrental_purged_rows_total", "Rows deleted past the retention window", ["table"])
for _table in ("outbox", "inbox"):
    PURGED.labels(_table)  # exported at 0 before the first

# pybreaker's state names, as one number an alert can compare.
BREAKER_STATES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}


def record_consumer_stats(stats_json: str, group: str = "") -> None:
    """librdkafka's stats_cb (statistics.interval.ms): per assigned partition,
    consumer_lag = high watermark - committed offset. librdkafka says -1 while
    the group has committed nothing there; we then count from the low
    watermark (auto.offset.reset=earliest), so a new group's backlog shows."""
    try:
        stats = json.loads(stats_json)
    except ValueError:
        return
    seen = set()
    for topic, t in stats.get("topics", {}).items():
        for partition, p in t.get("partitions", {}).items():
            lag = p.get("consumer_lag", -1)
            high, low = p.get("hi_offset", -1), p.get("lo_offset", -1)
            if lag < 0 and p.get("committed_offset", -1) < 0 and high >= 0 and low >= 0:
                lag = high - low
            if partition == "-1" or lag < 0:  # -1: librdkafka's internal unassigned partition
                continue
            CONSUMER_LAG.labels(group, topic, partition).set(lag)
            seen.add((group, topic, partition))
    with _lag_lock:
        for gone in _lag_labels.get(group, set()) - seen:  # revoked: another replica has them now
            CONSUMER_LAG.remove(*gone)
        _lag_labels[group] = seen


_lag_labels: dict[str, set[tuple[str, str, str]]] = {}
_lag_lock = threading.Lock()


class BreakerMetrics(pybreaker.CircuitBreakerListener):
    """A breaker's state (0 closed, 1 half-open, 2 open) and its openings, on the metrics
    it is given: the one helper behind the relay's breaker and alert's channel breakers.
    `on_change(breaker, old_state, new_state)` runs after each change."""

    def __init__(self, state: Gauge, opened: Counter, on_change: BreakerChange = lambda cb, old, new: None) -> None:
        self.state, self.opened, self.on_change = state, opened, on_change

    def watch(self, breaker: pybreaker.CircuitBreaker) -> pybreaker.CircuitBreaker:
        """Exports the breaker's state and counts its openings (present at 0 before the first); returns it."""
        self.state.labels(breaker.name).set(BREAKER_STATES[breaker.current_state])
        self.opened.labels(breaker.name)
        breaker.add_listener(self)
        return breaker

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        self.state.labels(cb.name).set(BREAKER_STATES[new_state.name])
        if new_state.name == pybreaker.STATE_OPEN:
            self.opened.labels(cb.name).inc()
        self.on_change(cb, old_state, new_state)


BREAKER_STATE = Gauge("bookrental_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open", ["breaker"])
watch_breaker = BreakerMetrics(BREAKER_STATE, BREAKER_OPENED).watch


class _OutboxBacklog:
    """bookrental_outbox_unsent: rows not yet acked by the broker, counted at
    scrape time (the partial index outbox_unsent keeps it cheap). Counting in
    the relay would freeze the number exactly when it matters: while the
    breaker is open the relay does not run."""

    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("bookrental_outbox_unsent", "Outbox rows not yet published")
        try:
            family.add_metric([], self.count())
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the database is away
            log.warning("cannot count the outbox backlog", extra={"error": str(exc)})
            family.add_metric([], float("nan"))
        yield family


def watch_outbox(count: Callable[[], int]) -> None:
    """`count()` returns the number of unsent outbox rows."""
    REGISTRY.register(_OutboxBacklog(count))
