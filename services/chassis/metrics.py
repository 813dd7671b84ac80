"""Prometheus metrics of the delivery machinery, beside the RPC metrics in
server.py: consumer lag per partition, outbox backlog, dead-lettered
messages and circuit-breaker state. Names are the contract of the alert
rules and the dashboard in k8s/monitoring/ (a test checks they exist)."""
from __future__ import annotations

import json
import logging
import threading

import pybreaker
from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

CONSUMER_LAG = Gauge("bookrental_consumer_lag", "Messages between the committed offset and the high watermark",
                     ["group", "topic", "partition"])
DEAD_LETTERED = Counter("bookrental_dead_lettered_total", "Messages copied to <topic>.dlq", ["topic"])
BREAKER_OPENED = Counter("bookrental_breaker_opened_total", "Times a circuit breaker opened", ["breaker"])

# pybreaker's state names, as one number an alert can compare.
_BREAKER_STATES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}


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


class _BreakerListener(pybreaker.CircuitBreakerListener):
    def state_change(self, cb, old_state, new_state) -> None:
        if new_state.name == pybreaker.STATE_OPEN:
            BREAKER_OPENED.labels(cb.name).inc()


class _Breakers:
    """bookrental_breaker_state{breaker}: 0 closed, 1 half-open, 2 open, read at scrape time."""

    def __init__(self):
        self.breakers: dict[str, pybreaker.CircuitBreaker] = {}

    def collect(self):
        family = GaugeMetricFamily("bookrental_breaker_state",
                                   "Circuit breaker state: 0 closed, 1 half-open, 2 open", labels=["breaker"])
        for name, breaker in sorted(self.breakers.items()):
            family.add_metric([name], _BREAKER_STATES.get(breaker.current_state, 2))
        yield family


_breakers = _Breakers()
REGISTRY.register(_breakers)


def watch_breaker(breaker: pybreaker.CircuitBreaker) -> pybreaker.CircuitBreaker:
    """Exports a breaker's state and counts its openings; returns it."""
    _breakers.breakers[breaker.name] = breaker
    BREAKER_OPENED.labels(breaker.name)  # present at 0 before the first opening
    breaker.add_listener(_BreakerListener())
    return breaker


class _OutboxBacklog:
    """bookrental_outbox_unsent: rows not yet acked by the broker, counted at
    scrape time (the partial index outbox_unsent keeps it cheap). Counting in
    the relay would freeze the number exactly when it matters: while the
    breaker is open the relay does not run."""

    def __init__(self, count):
        self.count = count

    def collect(self):
        family = GaugeMetricFamily("bookrental_outbox_unsent", "Outbox rows not yet published")
        try:
            family.add_metric([], self.count())
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the database is away
            log.warning("cannot count the outbox backlog", extra={"error": str(exc)})
            family.add_metric([], float("nan"))
        yield family


def watch_outbox(count) -> None:
    """`count()` returns the number of unsent outbox rows."""
    REGISTRY.register(_OutboxBacklog(count))
